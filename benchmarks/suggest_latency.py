"""Search-box suggestion latency on the demo catalog: build time, then p50/p99 per keystroke.

    .venv/bin/python benchmarks/suggest_latency.py [--n 2000] [--typos 0.3] [--seed 7]

Builds the suggester for the demo catalog (24,000 products) in this process,
then times ``suggest`` on prefixes of real demo titles, each cut at a random
character, a share of them with one typo (a letter dropped, doubled, swapped
with its neighbour or replaced). Word corrections are cached as they would be
in a serving replica, so later prefixes of a title reuse earlier ones. Prints
the share of prefixes that got at least one suggestion beside the latencies.
"""

from __future__ import annotations

import argparse
import json
import random
import string
import time

from shopray.bench.report import percentiles, print_command
from shopray.catalog.demo import generate_demo_catalog
from shopray.config import SuggestConfig
from shopray.suggest import Suggester


def typo(text: str, rng: random.Random) -> str:
    """``text`` with one edit at a random letter."""
    letters = [i for i, c in enumerate(text) if c.isalpha()]
    if not letters:
        return text
    i = rng.choice(letters)
    edit = rng.choice(("drop", "double", "swap", "replace"))
    if edit == "drop":
        return text[:i] + text[i + 1 :]
    if edit == "double":
        return text[: i + 1] + text[i:]
    if edit == "swap" and i + 1 < len(text):
        return text[:i] + text[i + 1] + text[i] + text[i + 2 :]
    return text[:i] + rng.choice(string.ascii_lowercase) + text[i + 1 :]


def prefixes(titles: list[str], n: int, typo_share: float, seed: int) -> list[str]:
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        cut = rng.choice(titles)[: rng.randint(1, 40)]
        out.append(typo(cut, rng) if rng.random() < typo_share else cut)
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--n", type=int, default=2000, help="prefixes timed")
    p.add_argument("--typos", type=float, default=0.3, help="share of prefixes with one typo")
    p.add_argument("--seed", type=int, default=7)
    args = p.parse_args(argv)
    print_command(argv)

    products = generate_demo_catalog()
    t0 = time.perf_counter()
    suggester = Suggester.from_products(products, SuggestConfig())
    build_s = time.perf_counter() - t0
    print(f"built {len(suggester)} phrases from {len(products)} products in {build_s:.2f} s")

    seconds, answered = [], 0
    for q in prefixes([p.title for p in products], args.n, args.typos, args.seed):
        t = time.perf_counter()
        found = suggester.suggest(q)
        seconds.append(time.perf_counter() - t)
        answered += bool(found)
    figures = percentiles(seconds, (50, 99), scale=1000, digits=3)
    print(f"{args.n} prefixes ({args.typos:.0%} with a typo): p50 {figures['p50_ms']} ms  p99 {figures['p99_ms']} ms  answered {answered / args.n:.1%}")
    print(json.dumps({"build_s": round(build_s, 2), "phrases": len(suggester), **figures, "answered": round(answered / args.n, 3)}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
