"""Cross-encoder throughput: pairs/s of each precision and backend (torch-fp32, fp32 and int8 on ONNX Runtime where auto picks it, bf16) by batch size, against the machine's fp32 GEMM rate.

    .venv/bin/python benchmarks/ranker_throughput.py [--model production] [--threads 2] [--pairs 512]

Pairs are real (query, title) pairs: Home Depot validation pairs when
../shared/data/homedepot exists, synthetic demo-catalog pairs otherwise.
Timing covers what a request pays: tokenisation, length-sorted batching and
the forward pass. "Share of GEMM" divides the ranker's achieved FLOP rate
(useful FLOPs: unpadded tokens; weight matmuls plus attention) by the rate
of one large fp32 matmul on the same threads. For int8 the same FLOP count
is used for every precision, so bf16's and int8's shares read as "fp32-equivalent work per second".
"""

from __future__ import annotations

import argparse
import json
import sys
import time

import numpy as np

from shopray.bench.report import print_command


def gemm_gflops(n: int = 4096, repeats: int = 5) -> float:
    import torch

    a, b = torch.randn(n, n), torch.randn(n, n)
    a @ b
    best = 0.0
    for _ in range(repeats):
        t = time.perf_counter()
        a @ b
        best = max(best, 2 * n**3 / (time.perf_counter() - t) / 1e9)
    return best


def flops_per_pair(config, tokens: int) -> float:
    """Forward FLOPs of a BERT encoder on one sequence (weight matmuls + attention scores and mix)."""
    h, inter, layers = config.hidden_size, config.intermediate_size, config.num_hidden_layers
    per_layer = 2 * tokens * (4 * h * h + 2 * h * inter) + 4 * tokens * tokens * h
    return layers * per_layer + 2 * h * h  # + the pooler/head, negligible


def sample_pairs(n: int, seed: int = 0) -> tuple[list[str], list[str]]:
    from shopray.training.ranker.data import default_homedepot_dir, homedepot_split, judgment_groups, synthetic_groups

    data = default_homedepot_dir()
    if data is not None:
        _, val, titles = homedepot_split(data)
        groups = judgment_groups(val, titles, "homedepot")
    else:
        groups = synthetic_groups(max(1, n // 5), seed=seed)
    pairs = [(g.query, t) for g in groups for t in g.texts]
    rng = np.random.default_rng(seed)
    chosen = rng.choice(len(pairs), size=min(n, len(pairs)), replace=False)
    return [pairs[i][0] for i in chosen], [pairs[i][1] for i in chosen]


def measure(scorer, queries, texts, batch_size: int, min_seconds: float) -> float:
    """Pairs per second, best of repeated passes over the sample once warm."""
    scorer.score_pairs(queries[: batch_size * 2], texts[: batch_size * 2], batch_size=batch_size)
    best, spent = 0.0, 0.0
    while spent < min_seconds:
        t = time.perf_counter()
        scorer.score_pairs(queries, texts, batch_size=batch_size)
        dt = time.perf_counter() - t
        spent += dt
        best = max(best, len(texts) / dt)
    return best


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="production", help="registry alias/version or directory; a fresh MiniLM head when none exists (speed does not depend on training)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--pairs", type=int, default=512)
    ap.add_argument("--batch-sizes", default="1,8,32,64")
    ap.add_argument("--max-length", type=int, default=64)
    ap.add_argument("--precisions", default="torch-fp32,fp32,int8", help="ranker.precision values to compare, each on the backend auto picks for it, "
                    "or with torch- in front on torch (bf16 wants AMX or AVX512-BF16)")
    ap.add_argument("--min-seconds", type=float, default=4.0, help="timed seconds per cell (best pass reported)")
    ns = ap.parse_args(argv)
    print_command(argv)

    import torch
    from transformers import AutoConfig

    from shopray.bench.ranker import cross_encoder_dir
    from shopray.stages.rank.cross_encoder import CrossEncoderScorer

    torch.set_num_threads(ns.threads)
    model_dir = cross_encoder_dir(ns.model)
    queries, texts = sample_pairs(ns.pairs)
    gemm = gemm_before = gemm_gflops()
    precisions = ns.precisions.split(",")
    # "torch-fp32" forces torch; a bare precision runs on what ranker.backend: auto picks for it.
    scorers = {p: CrossEncoderScorer(model_dir, device="cpu", precision=p.removeprefix("torch-"), max_length=ns.max_length,
                                     backend="torch" if p.startswith("torch-") else "auto") for p in precisions}
    ids, _ = scorers[precisions[0]].encode(queries, texts)
    config = AutoConfig.from_pretrained(model_dir, local_files_only=True)
    useful = sum(flops_per_pair(config, len(x)) for x in ids) / len(ids)
    rows = []
    for bs in [int(b) for b in ns.batch_sizes.split(",")]:
        row = {"batch_size": bs}
        for name, scorer in scorers.items():
            # Batch size 1 is slow; fewer pairs keep the run short without changing the rate.
            n = len(texts) if bs >= 8 else min(len(texts), 128)
            pps = measure(scorer, queries[:n], texts[:n], bs, ns.min_seconds)
            row[f"{name}_pairs_s"] = round(pps, 1)
            row[f"{name}_gflops"] = round(pps * useful / 1e9, 1)
        for name in precisions[1:]:
            row[f"{name}_speedup"] = round(row[f"{name}_pairs_s"] / row[f"{precisions[0]}_pairs_s"], 2)
        rows.append(row)
        print(json.dumps(row), flush=True)
    # The box is shared: take the better of a GEMM run before and after as its capability.
    gemm_after = gemm_gflops()
    gemm = max(gemm, gemm_after)
    for row in rows:
        for name in precisions:
            row[f"{name}_share_of_gemm"] = round(row[f"{name}_gflops"] / gemm, 3)
    result = {
        "threads": ns.threads,
        "model": str(model_dir),
        "pairs": len(texts),
        "mean_tokens_per_pair": round(float(np.mean([len(x) for x in ids])), 1),
        "gflop_per_pair": round(useful / 1e9, 4),
        "gemm_fp32_gflops": round(gemm, 1),
        "gemm_fp32_gflops_before_after": [round(gemm_before, 1), round(gemm_after, 1)],
        "rows": rows,
    }
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
