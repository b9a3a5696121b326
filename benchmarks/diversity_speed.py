"""Per-request latency of the diversifiers at serving sizes.

    .venv/bin/python benchmarks/diversity_speed.py [--repeats 300]

Times each method on random unit-norm d=384 embeddings (the MiniLM size) with
k=10 and diversity=0.5, and prints the median and p95 over many runs as a
markdown table. Median, because the box is shared and outliers are noise.
"""

from __future__ import annotations

import argparse
import platform
import sys
import time

import numpy as np

from shopray.bench.report import markdown_table, percentiles, print_command
from shopray.stages.diversify.methods import METHODS


def seconds_per_call(fn, args, repeats: int) -> list[float]:
    for _ in range(5):  # warm caches and BLAS threads
        fn(*args)
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn(*args)
        times.append(time.perf_counter() - t0)
    return times


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeats", type=int, default=300)
    ap.add_argument("--sizes", type=int, nargs="+", default=[50, 100, 200])
    ap.add_argument("--methods", nargs="+", default=["mmr", "dpp"], choices=sorted(METHODS))
    ap.add_argument("--k", type=int, default=10)
    ap.add_argument("--dim", type=int, default=384)
    ap.add_argument("--diversity", type=float, default=0.5)
    a = ap.parse_args(argv)
    print_command(argv)
    print(f"numpy {np.__version__}, python {platform.python_version()}, {platform.machine()}")
    print(f"k={a.k}, d={a.dim}, diversity={a.diversity}, repeats={a.repeats}\n")
    rng = np.random.default_rng(0)
    rows = []
    for n in a.sizes:
        emb = rng.normal(size=(n, a.dim)).astype(np.float32)
        emb /= np.linalg.norm(emb, axis=1, keepdims=True)
        scores = np.sort(rng.normal(size=n))[::-1]
        payloads = [{"brand": f"b{rng.integers(8)}", "category": f"c{rng.integers(4)}"} for _ in range(n)]
        for m in a.methods:
            p = percentiles(seconds_per_call(METHODS[m], (scores, emb, payloads, a.k, a.diversity), a.repeats), (50, 95), scale=1e3, digits=None)
            rows.append([m, n, f"{p['p50_ms']:.3f}", f"{p['p95_ms']:.3f}"])
    print(markdown_table(["method", "N", "median ms", "p95 ms"], rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
