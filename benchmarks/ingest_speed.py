"""Ingestion speed in one run: the encoder alone, Ray Data embedding, and a whole index build, on the same titles.

    .venv/bin/python benchmarks/ingest_speed.py [--catalog ../shared/data/homedepot/catalog.jsonl] [--limit N] [--precisions torch-fp32,auto]

Per precision, each on the backend `embedding.backend: auto` picks for it (`torch-` first: PyTorch; on CPUs
without native bf16, auto runs fp32 on ONNX Runtime): "encoder alone" is one in-process encoder on every core over
the titles in order of length (the ceiling); "Ray Data" is `ingest.embedded`,
the actor pool `shopray index` runs, sized from the machine; "index build" is
`build_index` into a scratch store: embedding, the Qdrant edge shard, BM25 and
publishing. Ray starts before the first timing, so no figure pays for it.
Without --catalog the demo catalog is used.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

from shopray.bench.report import markdown_table, print_command


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--catalog", default=None)
    ap.add_argument("--limit", type=int, default=None, help="first N products only")
    ap.add_argument("--precisions", default="torch-fp32,auto", help="embedding.precision values to compare; torch-<precision> on PyTorch")
    ns = ap.parse_args(argv)
    command = print_command(argv)

    import ray
    import torch

    from shopray.catalog import load_products
    from shopray.config import EmbeddingConfig, IndexConfig
    from shopray.embedding import Embedder
    from shopray.stages.retrieve.index import open_store
    from shopray.stages.retrieve.ingest import build_index, embedded

    products = load_products(ns.catalog or "demo").products[: ns.limit]
    texts = [p.search_text() for p in products]
    ray.init(include_dashboard=False, log_to_driver=False)
    rows = []
    for name in ns.precisions.split(","):
        precision = name.removeprefix("torch-")
        config = EmbeddingConfig(device="cpu", precision=precision, backend="torch" if name.startswith("torch-") else "auto")
        torch.set_num_threads(os.cpu_count() or 1)
        encoder = Embedder(config)
        ordered = sorted(texts, key=len)
        encoder.encode(ordered[:256])
        started = time.perf_counter()
        for i in range(0, len(ordered), 512):
            encoder.encode(ordered[i : i + 512])
        alone = len(texts) / (time.perf_counter() - started)
        encoder_backend = f"{encoder.backend} {encoder.dtype}"
        del encoder

        started = time.perf_counter()
        count = sum(len(r) for r, _ in embedded(texts, config))
        data = count / (time.perf_counter() - started)

        with tempfile.TemporaryDirectory() as root:
            started = time.perf_counter()
            build_index(products, open_store(IndexConfig(name="bench", root=Path(root))), config)
            build_s = time.perf_counter() - started
        rows.append((f"{name} ({encoder_backend})", f"{alone:.0f}", f"{data:.0f}", f"{data / alone:.2f}", f"{len(texts) / build_s:.0f}", f"{build_s:.1f}"))
        print(rows[-1], flush=True)
    ray.shutdown()
    print(f"{len(texts)} products, {os.cpu_count()} cores; {command}")
    print(markdown_table(["encoder (backend, dtype)", "encoder alone rows/s", "Ray Data rows/s", "Ray Data / alone", "index build rows/s", "index build s"], rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
