"""Stage 2, retrieve: hybrid dense + BM25 retrieval from Qdrant, fused with weighted RRF.

The client's filters always hold. The intent's brand, category, color and
price are stated constraints: exact matches come first, and while they run
short the retriever gives up one constraint at a time and retrieves again
(``constraints.py``). Session clicks pull the query vector toward what the
shopper clicked. Catalog changes (``changes.py``) are applied to the
reader in the background within ``feed_check_s``; products out of stock are
hidden, sunk below the rest, or shown, as ``out_of_stock`` or the request says.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from shopray.api import Filters
from shopray.config import AppConfig, EmbeddingConfig, RetrieverConfig
from shopray.domain import CandidateSet, Intent, OutOfStock, Tiers
from shopray.embedding import Embedder, encoder_path, index_encoder, shared_embedder
from shopray.follow import Follower
from shopray.graph import SearchContext
from shopray.stages.retrieve.constraints import Constraints
from shopray.stages.retrieve.facets import count_facets
from shopray.stages.retrieve.index import ChangeFeed, FilterSpec, Hit, HybridQuery, IndexReader, IndexStore, open_store

# How often a retriever looks for a newly published index version.
INDEX_CHECK_S = 5.0


def _normalise(v: np.ndarray) -> np.ndarray:
    norm = float(np.linalg.norm(v))
    return v / norm if norm > 0 else v


def follow_index(store: IndexStore, hnsw_ef: int, every_s: float = INDEX_CHECK_S) -> Follower[str, IndexReader]:
    """A reader on the version published now; a rebuild's new version is opened and swapped in within ``every_s``.
    Readers of old versions are left to the garbage collector: requests in flight still hold them."""
    def open_version(version: str) -> IndexReader:
        reader = store.open(version, hnsw_ef=hnsw_ef)
        reader.speller  # built before the swap, not on the first query that reads the new version
        return reader

    return store.follow(open_version, "index", every_s)


class Retriever:
    def __init__(self, index: Follower[str, IndexReader], embedder: Embedder, config: RetrieverConfig, hnsw_ef: int = 128,
                 embedding: EmbeddingConfig | None = None, feed: ChangeFeed | None = None):
        """``embedder`` encodes queries for an index built with the packaged or a configured encoder; an index built
        with a registered one (``embedding.model: auto`` found one for the catalog) gets that one, from ``embedding``.
        ``feed``: the catalog changes to apply on top of the index (None: the index as published)."""
        self.index, self.embedder, self.config, self.hnsw_ef, self.feed = index, embedder, config, hnsw_ef, feed
        self.embedding = embedding or embedder.config
        self._encoders: dict[str, Embedder] = {}

    def encoder(self, reader: IndexReader) -> Embedder:
        """The encoder the reader's index version was built with: query and product vectors must come from one model."""
        recorded = reader.manifest.embedding_model
        if recorded not in self._encoders:
            wanted = index_encoder(self.embedding, recorded)
            self._encoders[recorded] = self.embedder if encoder_path(wanted.model) == self.embedder.model_path else shared_embedder(wanted)
        return self._encoders[recorded]

    @classmethod
    def from_config(cls, config: AppConfig) -> "Retriever":
        if config.retriever.num_threads:
            import torch

            torch.set_num_threads(config.retriever.num_threads)
        store = open_store(config.index)
        default = index_encoder(config.embedding, "")
        return cls(follow_index(store, config.index.hnsw_ef), shared_embedder(default), config.retriever, config.index.hnsw_ef, config.embedding, store.feed)

    def ready(self) -> bool:
        return self.index.current is not None

    def _query(self, reader: IndexReader, vector: np.ndarray, sparse_text: str, filters: FilterSpec) -> list[Hit]:
        cfg = self.config
        return reader.query(
            HybridQuery(
                dense=vector,
                sparse_text=sparse_text,
                limit=cfg.candidates,
                prefetch=max(cfg.prefetch, cfg.candidates),
                rrf_k=cfg.rrf_k,
                weights=(cfg.dense_weight, cfg.sparse_weight),
                filters=filters,
                hnsw_ef=self.hnsw_ef,
            )
        )

    def _list_ranks(self, reader: IndexReader, vector: np.ndarray, sparse_text: str, filters: FilterSpec) -> dict[str, tuple[int | None, int | None]]:
        """Each product's 1-based rank in the dense list and in the BM25 list that fusion combines (for ``explain``)."""
        def ranks(weights: tuple[float, float]) -> dict[str, int]:
            q = HybridQuery(dense=vector, sparse_text=sparse_text, limit=self.config.prefetch, prefetch=self.config.prefetch,
                            rrf_k=self.config.rrf_k, weights=weights, filters=filters, hnsw_ef=self.hnsw_ef)
            return {h.product_id: i for i, h in enumerate((h for h in reader.query(q) if h.score > 0), 1)}  # weight 0: not in that list

        dense, sparse = ranks((1.0, 0.0)), ranks((0.0, 1.0))
        return {p: (dense.get(p), sparse.get(p)) for p in dense.keys() | sparse.keys()}

    def session_vector(self, reader: IndexReader, clicked: list[str]) -> np.ndarray | None:
        hits = reader.retrieve(clicked) if clicked else []
        if not hits:
            return None
        return _normalise(np.mean([h.vector for h in hits], axis=0))

    def retrieve(self, query: str, intent: Intent, filters: Filters | None = None, clicked: list[str] | None = None,
                 k: int = 10, strict: bool = False, out_of_stock: OutOfStock | None = None, explain: bool = False) -> CandidateSet:
        """Candidates best first: exact matches to the intent, then (unless ``strict``) each relaxation tier;
        products out of stock as ``out_of_stock`` says (default: the config's)."""
        cfg, reader = self.config, self.index.current
        typed = intent.keywords or query
        text = reader.speller.correct(typed) if cfg.spelling else typed
        embedder = self.encoder(reader)
        if self.feed is not None:
            reader.follow(self.feed, cfg.feed_check_s, embedder.encode)
        stock = out_of_stock or cfg.out_of_stock
        query_vector = vector = embedder.encode([text])[0]
        session = self.session_vector(reader, clicked or [])
        if session is not None:
            vector = _normalise((1 - cfg.session_weight) * vector + cfg.session_weight * session)

        hard = FilterSpec(**(filters.model_dump() if filters else {}), in_stock=True if stock == "hide" else None)
        constraints = Constraints.of(intent, hard, cfg.relax_order, cfg.price_band)
        hits: list[Hit] = []
        seen: set[str] = set()
        ranks: dict[str, tuple[int | None, int | None]] = {}  # explain: the dense and BM25 ranks in the tier that found each
        for n in range(1 + (0 if strict else len(constraints.stated))):
            if n and len(hits) >= max(cfg.min_filtered, k):
                break
            for h in self._query(reader, vector, text, constraints.relaxed(n)):
                if h.product_id not in seen:
                    seen.add(h.product_id)
                    hits.append(h)
            if explain:
                ranks = self._list_ranks(reader, vector, text, constraints.relaxed(n)) | ranks

        tiers = None
        groups, meets = constraints.groups([h.payload for h in hits]) if constraints.stated else (np.zeros(len(hits), dtype=int), None)
        sold_out = np.array([h.payload.get("in_stock") is False for h in hits], dtype=bool) if stock == "sink" else None
        if sold_out is not None and sold_out.any():  # below every tier of what can be bought, in the same order among themselves
            groups = groups + sold_out * (int(groups.max()) + 1)
            meets = meets if meets is not None else [[] for _ in hits]
        # Equal fused scores are common (rank fusion is symmetric); the product id breaks the tie, so every replica
        # returns the same order (a reader's own tie order can differ from process to process).
        order = np.lexsort((np.array([h.product_id for h in hits]), -np.array([h.score for h in hits]), groups))[: cfg.candidates]
        hits = [hits[i] for i in order]
        if meets is not None:
            tiers = Tiers(stated=constraints.stated, groups=groups[order], meets=[meets[i] for i in order])
        explanations = None
        if explain:
            applied = {f: v for f, v in dataclasses.asdict(hard).items() if v not in (None, ())}
            explanations = [{"dense_rank": ranks.get(h.product_id, (None, None))[0], "bm25_rank": ranks.get(h.product_id, (None, None))[1],
                             "fused": h.score, "tier": int(groups[i]), "filters": applied,
                             "session_pull": None if session is None else round(cfg.session_weight * float(h.vector @ session), 6)}
                            for i, h in zip(order, hits)]
        return CandidateSet(
            ids=[h.product_id for h in hits],
            payloads=[h.payload for h in hits],
            scores=np.array([h.score for h in hits], dtype=float),
            embeddings=np.stack([h.vector for h in hits]) if hits else np.zeros((0, embedder.dim), dtype=np.float32),
            session_vector=session,
            notes={"index_version": reader.label},
            tiers=tiers,
            query_vector=query_vector,
            query_text=text,
            repaired=text != typed,
            explanations=explanations,
        )

    def run(self, ctx: SearchContext) -> SearchContext:
        req = ctx.request
        intent = ctx.intent or Intent(keywords=req.query, source="none")
        ctx.candidates = self.retrieve(req.query, intent, req.filters, req.session.clicked if req.session else None, k=req.k, strict=req.strict,
                                       out_of_stock=req.out_of_stock, explain=req.explain)
        ctx.versions["index"] = str(ctx.candidates.notes["index_version"])
        if req.facets:
            ctx.facets = count_facets(ctx.candidates.payloads, self.config.facet_values, self.config.price_bands)
        return ctx
