"""`shopray train embedder` on a small shop's judged queries: a registered encoder that an index records and a retriever uses."""

import csv
import json

import pytest

from shopray.training.embedder.data import epoch_triples, training_queries
from shopray.training.ranker.data import synthetic_groups


def test_mined_negatives_skip_the_top_and_never_include_judged_products():
    import random

    import numpy as np

    train = {"red shoe": {"a": 2.0, "b": 0.0, "c": 1.0}, "no positive": {"d": 0.0}}
    ids = ["a", "b", "c", "x1", "x2", "x3", "x4"]
    mined = np.array([[3, 0, 4, 1, 5, 2, 6], [0, 1, 2, 3, 4, 5, 6]])
    (query,) = training_queries(train, ids, mined, min_gain=1.0, max_gain=0.3, skip=2)
    assert query.positives == ["a", "c"]
    assert query.negatives == ["b", "x2", "x3", "x4"]  # judged poor first; x1 is in the skipped top 2, a/b/c are judged
    triples = epoch_triples([query], random.Random(0))
    assert len(triples) == 1 and triples[0][1] in {"a", "c"} and triples[0][2] in {"b", "x2", "x3", "x4"}


@pytest.fixture(scope="module")
def shop(tmp_path_factory, small_catalog):
    root = tmp_path_factory.mktemp("shop")
    catalog = root / "catalog.jsonl"
    catalog.write_text("".join(json.dumps(p.payload()) + "\n" for p in small_catalog))
    judgments = root / "judgments.csv"
    with judgments.open("w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["query", "product_id", "relevance"])
        for group in synthetic_groups(160, seed=5, products=small_catalog):
            for pid, label in zip(group.ids, group.labels):
                writer.writerow([group.query, pid, 1 + 2 * label])
    return catalog, judgments


def test_train_registers_an_embedder_that_an_index_records_and_serves(shop, tmp_path, monkeypatch, app_config, small_catalog):
    from shopray.config import EmbeddingConfig
    from shopray.domain import Intent
    from shopray.embedding import Embedder
    from shopray.registry import Registry
    from shopray.stages.retrieve.index import open_store
    from shopray.stages.retrieve.ingest import build_index, embedding_name
    from shopray.stages.retrieve.stage import Retriever
    from shopray.training.embedder.train import parse_args, train

    monkeypatch.setenv("SHOPRAY_HOME", str(tmp_path))
    catalog, judgments = shop
    result = train(parse_args(["--catalog", str(catalog), "--judgments", str(judgments), "--epochs", "1", "--batch-size", "16",
                               "--mine", "20", "--skip", "2", "--eval-sample", "50", "--no-progress", "--alias", "production"]))
    card = Registry().card("embedder", "production")
    assert card.kind == "embedder" and card.version == result["version"]
    assert {"ndcg@10", "base_ndcg@10"} <= set(card.metrics) and 0 < card.metrics["ndcg@10"] <= 1
    assert card.data["train_queries"] > 0 and card.data["val_queries"] > 0

    from shopray.catalog import catalog_sha256, load_products
    from shopray.embedding import for_catalog

    # auto: the embedder trained on this catalog's judgments; any other catalog keeps the packaged MiniLM.
    assert for_catalog(EmbeddingConfig(), catalog_sha256(load_products(str(catalog)).products)).model == result["version"]
    assert for_catalog(EmbeddingConfig(), "another shop").model is None

    config = EmbeddingConfig(model="production", device="cpu")
    assert embedding_name(config).startswith(f"embedder:{result['version']}")
    encoder = Embedder(config)
    assert encoder.model_path.endswith(result["version"])
    index = app_config.index.model_copy(update={"name": "tuned", "root": tmp_path / "index"})
    manifest = build_index(small_catalog, open_store(index), config)
    assert manifest.embedding_model == embedding_name(config)
    tuned = Retriever.from_config(app_config.model_copy(update={"index": index, "embedding": config}))
    product = small_catalog[0]
    assert product.product_id in tuned.retrieve(product.title, Intent(keywords=product.title)).ids[:5]
