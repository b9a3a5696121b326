"""Per-request latency of the diversifiers at serving sizes.

Usage: PYTHONPATH=platform python benchmarks/diversity_speed.py [--repeats 300]

Times each method on random unit-norm d=384 embeddings (the MiniLM size) with
k=10 and diversity=0.5, and prints the median and p95 over many runs as a
markdown table. Median, because the box is shared and outliers are noise.
"""

from __future__ import annotations

import argparse
import platform
import shlex
import sys
import time

import numpy as np

from shopray.diversity import METHODS


def bench(fn, args, repeats: int) -> tuple[float, float]:
    for _ in range(5):  # warm caches and BLAS threads
        fn(*args)
    times = np.empty(repeats)
    for r in range(repeats):
        t0 = time.perf_counter()
        fn(*args)
        times[r] = time.perf_counter() - t0
    return float(np.median(times)) * 1e3, float(np.percentile(times, 95)) * 1e3


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeats", type=int, default=300)
    ap.add_argument("--sizes", type=int, nargs="+", default=[50, 100, 200])
    ap.add_argument("--methods", nargs="+", default=["mmr", "dpp"], choices=sorted(METHODS))
    ap.add_argument("--k", type=int, default=10)
    ap.add_argument("--dim", type=int, default=384)
    ap.add_argument("--diversity", type=float, default=0.5)
    a = ap.parse_args()
    rng = np.random.default_rng(0)
    print(f"command: PYTHONPATH=platform {shlex.join([sys.executable, *sys.argv])}")
    print(f"numpy {np.__version__}, python {platform.python_version()}, {platform.machine()}")
    print(f"k={a.k}, d={a.dim}, diversity={a.diversity}, repeats={a.repeats}\n")
    print("| method | N | median ms | p95 ms |")
    print("|---|---:|---:|---:|")
    for n in a.sizes:
        emb = rng.normal(size=(n, a.dim)).astype(np.float32)
        emb /= np.linalg.norm(emb, axis=1, keepdims=True)
        scores = np.sort(rng.normal(size=n))[::-1]
        payloads = [{"brand": f"b{rng.integers(8)}", "category": f"c{rng.integers(4)}"} for _ in range(n)]
        for m in a.methods:
            med, p95 = bench(METHODS[m], (scores, emb, payloads, a.k, a.diversity), a.repeats)
            print(f"| {m} | {n} | {med:.3f} | {p95:.3f} |")


if __name__ == "__main__":
    main()
