"""The cross-encoder: training end to end into a tmp registry, scoring, int8, and the Ranker stage using it.

A tiny run of `shopray train ranker` on synthetic demo-catalog pairs (no Home
Depot data, no pre-trained model) produces the model every test here uses.
"""

import json

import numpy as np
import pytest
import torch

from shopray.config import AppConfig, EmbeddingConfig, RankerConfig
from shopray.domain import CandidateSet
from shopray.registry import Registry
from shopray.stages.rank.cross_encoder import CrossEncoderScorer
from shopray.stages.rank.scorers import BiEncoderScorer
from shopray.stages.rank.stage import Ranker
from shopray.training.ranker import fit as train_fit
from shopray.training.ranker import train as train_ranker
from shopray.training.ranker.data import distil, load_ranker_data, split_of, synthetic_groups
from shopray.training.ranker.fit import init_cross_encoder


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    root = tmp_path_factory.mktemp("ranker-train")
    argv = [
        "--no-homedepot", "--synthetic-queries", "400", "--max-steps", "50", "--eval-every", "25",
        "--batch-size", "16", "--max-length", "32", "--registry", str(root / "registry"),
        "--run-dir", str(root / "run"), "--alias", "production", "--no-progress",
    ]  # fmt: skip
    result = train_ranker.train(train_ranker.parse_args(argv))
    return {**result, "registry": Registry(root / "registry"), "root": root}


@pytest.fixture(scope="module")
def scorer(trained):
    return CrossEncoderScorer(trained["path"], device="cpu", precision="fp32", max_length=32, batch_size=16)


def test_split_is_by_query_stable_and_about_80_20():
    queries = [f"query number {i}" for i in range(4000)]
    val = [q for q in queries if split_of(q) == "val"]
    assert 0.17 < len(val) / len(queries) < 0.23
    assert all(split_of(q.upper() + "  ") == split_of(q) for q in queries[:200])  # lower-cased, stripped


def test_synthetic_groups_grade_matches_above_mismatches():
    groups = synthetic_groups(200, seed=3)
    assert all(len(g) >= 4 and g.labels[0] == 1.0 for g in groups)  # the anchor product matches its own query
    labels = np.array([y for g in groups for y in g.labels])
    assert set(np.unique(labels)) >= {0.0, 1.0} and labels.min() >= 0 and labels.max() <= 1


def test_data_without_homedepot_splits_synthetic_queries():
    data = load_ranker_data(None, synthetic_queries=300, seed=1)
    assert data.train and data.val
    assert not {g.query for g in data.train} & {g.query for g in data.val}


def test_training_checkpoints_stops_and_registers_a_card(trained):
    reg = trained["registry"]
    assert reg.resolve("ranker", "production") == trained["version"]
    card = reg.card("ranker", "production")
    assert card.metric == "ndcg@10" and card.score == trained["metrics"]["ndcg@10"]
    assert {"ndcg@10", "biencoder_ndcg@10", "steps", "best_step"} <= set(card.metrics)
    assert card.data["sources"] == "synthetic demo-catalog pairs" and card.data["train_pairs"] > 0
    assert card.parent and card.parameters and card.parameters > 20_000_000
    state = json.loads((trained["root"] / "run" / "state.json").read_text())
    assert [h["step"] for h in state["history"]] == [0, 25, 50]
    assert card.metrics["steps"] == 50 and trained["stopped"] == "all steps done"


def test_training_beats_the_untrained_head(trained):
    history = trained["history"]
    assert max(h["val_ndcg@10"] for h in history[1:]) > history[0]["val_ndcg@10"] + 0.05


def test_trained_model_separates_matches_from_random_products(scorer):
    groups = [g for g in synthetic_groups(150, seed=99)]  # seed 99: products and queries unseen in training
    pos = scorer.score_pairs([g.query for g in groups], [g.texts[0] for g in groups])
    neg = scorer.score_pairs([g.query for g in groups], [g.texts[-1] for g in groups])
    unrelated = np.array([g.labels[-1] == 0.0 for g in groups])
    auc = np.mean(pos[unrelated][:, None] > neg[unrelated][None, :])
    assert auc > 0.8, auc


def test_scores_keep_input_order_and_ignore_padding(scorer):
    queries = ["red running shoes", "cordless drill", "blender", "yoga mat"] * 3
    texts = [
        "Nike Pegasus 40 Men's Running Shoes - Red, Size 10",
        "DeWalt 20V MAX Cordless Drill Driver Kit with two batteries and a charger in a hard case",
        "Vitamix",
        "Yoloha Nomad 5mm Lightweight Yoga Mat, Green",
    ] * 3
    one = scorer.score_pairs(queries, texts, batch_size=1)
    many = scorer.score_pairs(queries, texts, batch_size=64)
    np.testing.assert_allclose(one, many, atol=1e-5)
    assert one.shape == (12,) and np.all((one >= 0) & (one <= 1))
    perm = np.random.default_rng(0).permutation(12)
    np.testing.assert_allclose(scorer.score_pairs([queries[i] for i in perm], [texts[i] for i in perm]), one[perm], atol=1e-5)
    assert scorer.score("drill", []).shape == (0,)


def test_score_many_equals_one_request_at_a_time(scorer):
    def cands(titles):
        return CandidateSet(ids=[str(i) for i in range(len(titles))], payloads=[{"title": t} for t in titles], scores=np.zeros(len(titles)), embeddings=np.zeros((len(titles), 384), np.float32))

    a, b = cands(["Ninja Blender, 48 oz", "Klein Tools Screwdriver Set"]), cands(["Reebok Club C 85 Sneakers"])
    together = scorer.score_many([("blender", a), ("sneakers", b)])
    assert [len(s) for s in together] == [2, 1]
    np.testing.assert_allclose(together[0], scorer.score("blender", ["Ninja Blender, 48 oz", "Klein Tools Screwdriver Set"]), atol=1e-5)
    np.testing.assert_allclose(together[1], scorer.score("sneakers", ["Reebok Club C 85 Sneakers"]), atol=1e-5)


def _pairs():
    groups = synthetic_groups(60, seed=5)
    return [g.query for g in groups for _ in g.texts], [x for g in groups for x in g.texts]


def test_torch_int8_quantizes_linear_layers_and_tracks_fp32(trained, scorer):
    int8 = CrossEncoderScorer(trained["path"], device="cpu", precision="int8", max_length=32, backend="torch")
    quantized = [m for m in int8.model.modules() if type(m).__module__.startswith("torch.ao.nn.quantized.dynamic")]
    assert len(quantized) >= 36  # 6 layers x (q, k, v, out, up, down)
    assert int8.version.endswith(":int8") and scorer.version.endswith(":onnx-fp32")
    q, t = _pairs()
    assert np.corrcoef(int8.score_pairs(q, t), scorer.score_pairs(q, t))[0, 1] > 0.95


def test_onnx_runtime_scores_as_torch_does_in_fp32_and_tracks_it_in_int8(trained, scorer, tmp_path, monkeypatch):
    monkeypatch.setenv("SHOPRAY_HOME", str(tmp_path))
    torch_fp32 = CrossEncoderScorer(trained["path"], device="cpu", precision="fp32", max_length=32, backend="torch")
    onnx_fp32 = CrossEncoderScorer(trained["path"], device="cpu", precision="fp32", max_length=32, backend="onnx")
    int8 = CrossEncoderScorer(trained["path"], device="cpu", precision="int8", max_length=32)  # auto: ONNX Runtime on CPU
    assert (torch_fp32.backend, onnx_fp32.backend, int8.backend) == ("torch", "onnx", "onnx") and int8.version.endswith(":onnx-int8")
    q, t = _pairs()
    reference = torch_fp32.score_pairs(q, t)
    np.testing.assert_allclose(onnx_fp32.score_pairs(q, t), reference, atol=1e-4)  # long and short pairs, padded in batches
    assert np.corrcoef(int8.score_pairs(q, t), reference)[0, 1] > 0.99
    # Exported once per model and precision: another replica loads the same files.
    files = {f: f.stat().st_mtime_ns for f in (tmp_path / "cache" / "onnx").glob("*.onnx")}
    assert len(files) == 2
    again = CrossEncoderScorer(trained["path"], device="cpu", precision="int8", max_length=32)
    assert again.onnx.path in files and files[again.onnx.path] == again.onnx.path.stat().st_mtime_ns
    with pytest.raises(ValueError, match="the onnx backend runs fp32 or int8 on CPU"):
        CrossEncoderScorer(trained["path"], device="cpu", precision="bf16", backend="onnx")


def test_device_and_precision_follow_the_hardware(trained):
    scorer = CrossEncoderScorer(trained["path"], device="auto", max_length=32)
    expected = "cuda" if torch.cuda.is_available() else "cpu"
    native_bf16 = torch.cpu._is_amx_tile_supported() or torch.cpu._is_avx512_bf16_supported()
    # Cores without native bf16 get int8 on ONNX Runtime.
    assert scorer.dtype == ("fp16" if expected == "cuda" else "bf16" if native_bf16 else "int8")
    assert scorer.device == expected and scorer.backend == ("onnx" if scorer.dtype == "int8" else "torch")
    if scorer.backend == "torch":
        assert next(scorer.model.parameters()).device.type == expected and scorer.version.endswith(f":{scorer.dtype}")
    else:
        assert scorer.version.endswith(":onnx-int8")
    with pytest.raises(ValueError, match="fp16 needs a GPU"):
        CrossEncoderScorer(trained["path"], device="cpu", precision="fp16")


def test_bf16_halves_the_weights_and_tracks_fp32(trained, scorer):
    bf16 = CrossEncoderScorer(trained["path"], device="cpu", precision="bf16", max_length=32)
    assert {p.dtype for p in bf16.model.parameters()} == {torch.bfloat16} and bf16.version.endswith(":bf16")
    q, t = _pairs()
    assert np.corrcoef(bf16.score_pairs(q, t), scorer.score_pairs(q, t))[0, 1] > 0.99


def test_ranker_stage_uses_the_cross_encoder_by_config(trained):
    config = AppConfig(embedding=EmbeddingConfig(device="cpu"), ranker=RankerConfig(kind="crossencoder", model=trained["path"], top_n=3, max_length=32, retriever_weight=0))
    ranker = Ranker.from_config(config)
    assert isinstance(ranker.scorer, CrossEncoderScorer) and ranker.scorer.version.startswith(f"crossencoder:{trained['version']}")
    titles = ["Klein Tools Screwdriver Set", "Anker Soundcore Wireless Headphones", "Ninja Professional Blender, 72 oz", "Yoga Mat"]
    cands = CandidateSet(ids=list("abcd"), payloads=[{"title": t} for t in titles], scores=np.array([4.0, 3, 2, 1]), embeddings=np.zeros((4, 384), np.float32))
    ranked = ranker.rank("blender", cands)
    expected = np.argsort(-ranker.scorer.score("blender", titles[:3]), kind="stable")
    assert ranked.ids[:3] == [list("abc")[i] for i in expected] and ranked.ids[3] == "d"


def _ctx(titles: list[str]):
    from shopray.api import SearchRequest
    from shopray.domain import Intent
    from shopray.graph import SearchContext

    cands = CandidateSet(ids=[str(i) for i in range(len(titles))], payloads=[{"title": t} for t in titles], scores=np.arange(len(titles), 0, -1.0),
                         embeddings=np.eye(len(titles), 384, dtype=np.float32))
    return SearchContext(request=SearchRequest(query="blender"), intent=Intent(keywords="blender"), candidates=cands)


def test_a_student_keeps_its_starting_models_lower_layers_and_head(trained, tmp_path):
    from transformers import AutoModelForSequenceClassification

    teacher = AutoModelForSequenceClassification.from_pretrained(trained["path"], local_files_only=True)
    student = AutoModelForSequenceClassification.from_pretrained(init_cross_encoder(tmp_path / "two", layers=2, base=trained["path"]), local_files_only=True)
    assert student.config.num_hidden_layers == 2
    assert torch.equal(student.classifier.weight, teacher.classifier.weight)
    assert torch.equal(student.bert.encoder.layer[1].output.dense.weight, teacher.bert.encoder.layer[1].output.dense.weight)
    with pytest.raises(ValueError, match="cannot keep 7"):
        init_cross_encoder(tmp_path / "seven", layers=7, base=trained["path"])


def test_distillation_regresses_a_smaller_student_on_the_teachers_logits(trained, tmp_path):
    argv = [
        "--no-homedepot", "--synthetic-queries", "200", "--max-steps", "40", "--eval-every", "20", "--batch-size", "16", "--lr", "3e-4",
        "--max-length", "32", "--registry", str(trained["root"] / "registry"), "--run-dir", str(tmp_path / "run"),
        "--alias", "none", "--no-progress", "--init", "production", "--teacher", "production", "--layers", "2",
    ]  # fmt: skip
    result = train_ranker.train(train_ranker.parse_args(argv))
    card = trained["registry"].card("ranker", result["version"])
    assert card.config["layers"] == 2 and card.config["teacher"] == trained["version"] and card.config["loss"].startswith("MSE")
    val = load_ranker_data(None, synthetic_queries=200, seed=0).val
    queries, texts = [g.query for g in val for _ in g.texts], [t for g in val for t in g.texts]

    def logits(path):
        return CrossEncoderScorer(path, device="cpu", precision="fp32", max_length=32, backend="torch").logits(queries, texts)

    target = logits(trained["path"])
    before, after = logits(tmp_path / "run" / "init"), logits(result["path"])
    # On queries it never trained on, the student is nearer the teacher than the two layers it started from.
    assert np.mean((after - target) ** 2) < 0.2 * np.mean((before - target) ** 2)  # measured: 0.010 against 0.236


def test_distil_replaces_labels_by_the_teachers_logits_and_refuses_a_listwise_loss(trained):
    groups = synthetic_groups(5, seed=1)
    teacher = CrossEncoderScorer(trained["path"], device="cpu", precision="fp32", max_length=32, backend="torch")
    distil(groups, teacher)
    assert np.allclose([y for g in groups for y in g.labels], teacher.logits([g.query for g in groups for _ in g.texts], [t for g in groups for t in g.texts]))
    model = torch.nn.Linear(2, 1)
    with pytest.raises(ValueError, match="listwise"):
        train_fit.Fit(model, None, [("q", "t", 0.0, 0)], listwise=1.0, loss="mse")
    with pytest.raises(SystemExit):  # the command line refuses it before the teacher scores anything
        train_ranker.parse_args(["--teacher", "production", "--listwise", "1.0"])


@pytest.mark.ray  # the index is built with Ray Data
def test_a_missing_cross_encoder_is_a_labelled_fallback_and_auto_or_biencoder_need_none(app_config, tmp_path):
    base = app_config.model_dump()
    for model in ("production", "auto"):
        config = AppConfig.model_validate({**base, "ranker": RankerConfig(kind="crossencoder", model=model, registry=tmp_path / "empty")})
        ranker = Ranker.from_config(config)
        ctx = ranker.run(_ctx(["Blender", "Yoga Mat", "Drill"]))
        assert ctx.degraded == ["ranker_unavailable"] and ctx.versions["ranker"].startswith("biencoder:"), model
        assert ranker.ready()  # the app still answers: degraded, not down
    auto = Ranker.from_config(AppConfig.model_validate({**base, "ranker": RankerConfig(kind="auto", registry=tmp_path / "empty")}))
    assert isinstance(auto.scorers.current, BiEncoderScorer)
    for kind in ("auto", "biencoder"):  # the bi-encoder is then the configured scorer, not a fallback
        config = AppConfig.model_validate({**base, "ranker": RankerConfig(kind=kind, registry=tmp_path / "empty")})
        ctx = Ranker.from_config(config).run(_ctx(["Blender", "Yoga Mat"]))
        assert ctx.degraded == [] and ctx.versions["ranker"].startswith("biencoder:"), kind


@pytest.mark.ray
def test_while_the_model_is_trained_the_fallback_says_ranker_warming(app_config, tmp_path):
    from shopray.bootstrap import progress
    from shopray.bootstrap.keys import AutoModel
    from shopray.config import RankerRecipe
    from shopray.stages.retrieve.index import open_store

    store = open_store(app_config.index)
    auto = AutoModel("ranker", RankerRecipe(), tmp_path / "registry")
    reporter = progress.Reporter(auto.registry, "ranker", auto.key(store.manifest(store.current_version()).catalog_sha256))
    try:
        config = AppConfig.model_validate({**app_config.model_dump(), "ranker": RankerConfig(kind="crossencoder", registry=tmp_path / "registry")})
        assert Ranker.from_config(config).run(_ctx(["Blender", "Drill"])).degraded == ["ranker_warming"]
    finally:
        reporter.close()


def test_a_catalog_without_categories_keeps_the_retriever_order():
    from shopray.bootstrap.keys import AutoModel
    from shopray.config import RankerRecipe
    from shopray.follow import Follower
    from shopray.stages.rank.scorers import RETRIEVER_ORDER, RetrieverOrder, resolver
    from shopray.stages.retrieve.index.base import IndexManifest

    titles_only = IndexManifest(name="hd", version="v1", created_at="", count=3, dim=384, embedding_model="m", catalog_sha256="a" * 64, vocabulary={})
    resolve = resolver(RankerConfig(kind="crossencoder"), "auto", AutoModel("ranker", RankerRecipe()), Follower.fixed(titles_only))
    assert resolve() == RETRIEVER_ORDER
    ranker = Ranker(RetrieverOrder(), RankerConfig(session_weight=0))
    ctx = ranker.run(_ctx(["Drill", "Blender", "Yoga Mat"]))
    assert ctx.candidates.ids == ["0", "1", "2"] and ctx.degraded == [] and ctx.versions["ranker"] == "retriever-order"


def test_a_catalog_without_categories_gets_a_ranker_trained_on_its_judged_queries(tmp_path):
    from shopray.bootstrap.keys import AutoModel
    from shopray.config import RankerRecipe
    from shopray.follow import Follower
    from shopray.registry import ModelCard, Registry
    from shopray.stages.rank.scorers import RETRIEVER_ORDER, resolver
    from shopray.stages.retrieve.index.base import IndexManifest

    registry = Registry(tmp_path / "registry")
    card = ModelCard(kind="ranker", base_model="test", metric="ndcg@10", data={"catalog_sha256": "a" * 64})
    version = registry.register("ranker", init_cross_encoder(tmp_path / "model"), card, alias=None)
    auto = AutoModel("ranker", RankerRecipe(), registry.root)
    for sha, expected in (("a" * 64, str(registry.path("ranker", version))), ("b" * 64, RETRIEVER_ORDER)):
        manifest = IndexManifest(name="hd", version="v1", created_at="", count=3, dim=384, embedding_model="m", catalog_sha256=sha, vocabulary={})
        assert resolver(RankerConfig(kind="crossencoder"), "auto", auto, Follower.fixed(manifest))() == expected


def test_init_gives_a_fresh_head_on_minilm_weights(tmp_path):
    from transformers import AutoModelForSequenceClassification

    a = AutoModelForSequenceClassification.from_pretrained(init_cross_encoder(tmp_path / "a", seed=1))
    b = AutoModelForSequenceClassification.from_pretrained(init_cross_encoder(tmp_path / "b", seed=2))
    assert a.config.num_labels == 1
    assert torch.equal(a.bert.encoder.layer[0].attention.self.query.weight, b.bert.encoder.layer[0].attention.self.query.weight)
    assert not torch.equal(a.classifier.weight, b.classifier.weight)


def test_listwise_loss_prefers_the_judged_order_within_each_query():
    labels = torch.tensor([1.0, 0.5, 0.0, 1.0, 0.0])
    groups = torch.tensor([0, 0, 0, 7, 7])
    right = torch.tensor([3.0, 1.0, -2.0, 2.0, -1.0])
    swapped = torch.tensor([1.0, 3.0, -2.0, 2.0, -1.0])  # query 0's best two products swapped
    assert train_fit.listwise_loss(right, labels, groups) < train_fit.listwise_loss(swapped, labels, groups)
    # A query whose products are all irrelevant has no target distribution and adds nothing.
    assert float(train_fit.listwise_loss(right, torch.zeros(5), groups)) == 0.0


def test_listwise_batches_hold_whole_queries():
    pairs = [(f"q{g}", f"t{i}", 0.5, g) for g in range(20) for i in range(g % 5 + 1)]
    fit = train_fit.Fit(torch.nn.Linear(1, 1), None, pairs, batch_size=8, listwise=1.0)
    batches = fit._epoch_batches(__import__("random").Random(0))
    assert sorted(j for b in batches for j in b) == list(range(len(pairs)))
    for batch in batches:
        groups = {pairs[j][3] for j in batch}
        assert all(sum(p[3] == g for p in pairs) == sum(pairs[j][3] == g for j in batch) for g in groups)
        assert len(batch) <= 8


def test_training_continues_from_a_registered_ranker_with_a_listwise_loss(trained, tmp_path):
    argv = [
        "--no-homedepot", "--synthetic-queries", "200", "--max-steps", "6", "--eval-every", "3", "--batch-size", "16",
        "--max-length", "32", "--registry", str(trained["root"] / "registry"), "--run-dir", str(tmp_path / "run"),
        "--alias", "none", "--no-progress", "--init", "production", "--listwise", "1.0",
    ]  # fmt: skip
    result = train_ranker.train(train_ranker.parse_args(argv))
    card = trained["registry"].card("ranker", result["version"])
    assert card.parent.startswith(f"ranker:{trained['version']} ") and card.base_model.startswith(f"ranker {trained['version']},")
    assert "listwise" in card.config["loss"]
    # It starts where the registered model is, not from a fresh head: step 0 scores exactly what production scores.
    val = load_ranker_data(None, synthetic_queries=200, seed=0).val
    production = train_fit.val_ndcg(CrossEncoderScorer(trained["path"], device="cpu", precision="fp32", max_length=32, batch_size=64, backend="torch"), val)
    fresh = train_fit.val_ndcg(CrossEncoderScorer(init_cross_encoder(tmp_path / "fresh"), device="cpu", precision="fp32", max_length=32, batch_size=64, backend="torch"), val)
    assert abs(result["history"][0]["val_ndcg@10"] - production) < 1e-3 and abs(production - fresh) > 1e-3


def test_a_new_cross_encoder_keeps_the_layers_asked_for(tmp_path):
    from transformers import AutoConfig

    path = init_cross_encoder(tmp_path / "three", layers=3)
    assert AutoConfig.from_pretrained(path, local_files_only=True).num_hidden_layers == 3
    scorer = CrossEncoderScorer(path, device="cpu", precision="fp32", max_length=16, backend="torch")
    assert len(scorer.model.bert.encoder.layer) == 3 and scorer.score("drill", ["DeWalt Drill", "Tea"]).shape == (2,)


@pytest.mark.ray  # the index is built with Ray Data
def test_train_fusion_registers_a_fusion_for_the_cross_encoder_and_the_ranker_then_uses_it(app_config, small_catalog, trained, tmp_path):
    from shopray.api import SearchRequest
    from shopray.pipeline import Pipeline
    from shopray.training.fusion import train as train_fusion

    registry = tmp_path / "registry"
    config = AppConfig.model_validate({**app_config.model_dump(), "ranker": RankerConfig(kind="crossencoder", model=trained["path"], registry=registry,
                                                                                         max_length=32, popularity_weight=0)})
    # Judged queries: a category's leaf name; its products are relevant (3), a few others judged irrelevant (1).
    leaves = sorted({p.leaf_category for p in small_catalog if p.leaf_category})[:24]
    judgments = {leaf.lower(): {p.product_id: 3.0 if p.leaf_category == leaf else 1.0 for p in small_catalog[:: 7] + [q for q in small_catalog if q.leaf_category == leaf]}
                 for leaf in leaves}
    ns = train_fusion.parse_args(["--registry", str(registry), "--split", "all", "--rounds", "20", "--no-progress"])
    result = train_fusion.train(config, judgments, ns)
    assert result["for_ranker"] == trained["version"] and result["queries"] == len(leaves)
    assert 0 <= result["rrf_ndcg@10"] <= 1 and 0 <= result["ndcg@10"] <= 1
    card = Registry(registry).card("fusion", result["registered"])
    assert card.data["ranker"] == trained["version"] and card.config["features"] and card.metrics["ndcg@10"] == result["ndcg@10"]
    response = Pipeline.from_config(config).search(SearchRequest(query=leaves[0].lower(), k=5, diversity=0))
    assert response.versions["fusion"] == f"lambdamart:{result['registered']}"
    rrf = AppConfig.model_validate({**config.model_dump(), "ranker": {**config.ranker.model_dump(), "fusion": "rrf"}})
    assert "fusion" not in Pipeline.from_config(rrf).search(SearchRequest(query=leaves[0].lower(), k=5, diversity=0)).versions
