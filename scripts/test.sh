#!/usr/bin/env bash
# Run the test suite in .venv; arguments go to pytest.
# pytest exits 5 when it collects no tests: fine for a filtered run (`-k nothing-matches`),
# a failure for the whole suite, which must never pass by selecting nothing.
set -uo pipefail
cd "$(dirname "$0")/.."
# -rs lists every skip with its reason; --durations shows the slowest tests.
.venv/bin/python -m pytest -q -p no:cacheprovider -rs --durations=20 "$@"
rc=$?
if [[ $rc -eq 5 ]]; then
    echo "test: pytest collected no tests" >&2
    [[ $# -gt 0 ]] && exit 0 || exit 1
fi
exit $rc
