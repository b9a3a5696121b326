"""Stage 1: free text -> Intent, by composition: the rule parser always, the LLM parser when its model is loaded.

Every query is parsed by the rules first (well under a millisecond): they
supply the keywords and the fallback. With ``parser.kind: llm`` the model's
answer replaces the rule intent when it arrives within its budget and passes
validation; otherwise the rule intent goes out and the response says why in
``degraded``. What the client asked to ignore is dropped here, once, whichever
parser answered.

The stage follows two things (``shopray.follow``): the index, whose vocabulary
makes the rule parser, the schema and the hints; and the model the config
names, whose engine starts beside the serving one and replaces it when ready.
The stage is ready at once: a model that is missing or still starting degrades
answers (``parser_unavailable``, ``parser_warming``), never health.
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from shopray.bootstrap.keys import AUTO, AutoModel, is_structured
from shopray.config import AppConfig, ParserConfig
from shopray.domain import Intent, Vocabulary
from shopray.follow import Follower
from shopray.graph import SearchContext
from shopray.registry import ModelNotFound, model_label, resolve_model
from shopray.stages.parse.cache import IntentCache
from shopray.stages.parse.engine import EngineState
from shopray.stages.parse.llm import UNAVAILABLE, LLMParser, ParseFailed
from shopray.stages.parse.prompt import normalize_query
from shopray.stages.parse.terms import CatalogTerms
from shopray.stages.retrieve.index import IndexStore, open_store

log = logging.getLogger(__name__)

WARMING, UNSTRUCTURED = "parser_warming", "parser_unstructured_catalog"
ENGINE_GRACE_S = 30.0  # a replaced engine keeps serving parses already on it this long
MISSING_MODEL_HINT = "no parser model %r (%s): the rule parser answers and responses say 'parser_unavailable'; train one with `shopray train parser`"


@dataclass
class Parse:
    intent: Intent
    fallback: str | None  # the degraded label when the rule parser answered for the LLM, else None
    parser: str  # what answered, for ``versions.parser``
    cached: bool = False


def without_fields(intent: Intent, ignored: list[str]) -> Intent:
    """Drop intent fields the client asked to ignore ("price" covers both bounds)."""
    if not ignored:
        return intent
    update: dict = {}
    for name in ignored:
        if name == "price":
            update.update(price_min=None, price_max=None)
        else:
            update[name] = [] if name == "attributes" else None
    return intent.model_copy(update=update)


def index_terms(store: IndexStore, every_s: float) -> Follower[tuple[str, int], CatalogTerms]:
    """The catalog terms of the index version published now, following rebuilds and the live changes that alter
    its vocabulary (a withdrawn brand, a new color); their version, which keys the intent cache, names both."""
    feed_seqs: dict[str, int] = {}  # version -> the feed change it was built with: manifests are read once

    def key() -> tuple[str, int] | None:
        version = store.current_version()
        if version is None:
            return None
        if version not in feed_seqs:
            feed_seqs[version] = store.manifest(version).feed_seq
        return version, store.feed.vocabulary_seq(after=feed_seqs[version])

    def build(key: tuple[str, int]) -> CatalogTerms:
        version, seq = key
        manifest = store.manifest(version)
        if not seq:
            return CatalogTerms.build(version, manifest.vocabulary, manifest.catalog_sha256)
        return CatalogTerms.build(f"{version}+{seq}", store.feed.vocabulary(seq), manifest.catalog_sha256)

    return store.follow(build, "parser-terms", every_s, key)


def model_resolver(config: ParserConfig, terms: Follower[str, CatalogTerms], auto: AutoModel):
    """What ``config.model`` names now: a model directory, or None while there is none. ``auto`` names the parser
    trained for the served catalog, and none for a catalog with no fields to learn."""

    def resolve() -> Path | None:
        if config.model == AUTO:
            current = terms.current
            return auto.resolve(current.catalog_sha256) if is_structured(current.vocabulary) else None
        try:
            return resolve_model("parser", config.model, config.registry)
        except ModelNotFound:
            return None

    return resolve


def model_follower(config: ParserConfig, resolve) -> Follower[Path, LLMParser]:
    """The LLM parser of the model ``resolve`` names now; its engine starts in the background."""

    def build(model_dir: Path) -> LLMParser:
        parser = LLMParser.load(model_dir, config, model_label(model_dir))
        if not parser.engine.wait_ready():
            raise RuntimeError(f"parser engine for {model_dir} did not start: {parser.engine.error}")
        return parser

    return Follower(resolve, build, name="parser-model", every_s=config.refresh_s, retire=lambda p: p.engine.shutdown(), grace_s=ENGINE_GRACE_S)


class ParseStage:
    def __init__(self, terms: Follower[str, CatalogTerms], llm: Follower[Path, LLMParser] | None, config: ParserConfig, auto: AutoModel | None = None):
        self.terms, self.llm, self.config, self.auto = terms, llm, config, auto
        self.outcomes: Counter[str] = Counter()
        self._restarts = 0

    @classmethod
    def from_config(cls, config: AppConfig) -> "ParseStage":
        cfg = config.parser
        terms = index_terms(open_store(config.index), cfg.refresh_s)
        llm, auto = None, AutoModel("parser", config.bootstrap.parser, cfg.registry)
        if cfg.kind == "llm":
            llm = model_follower(cfg, model_resolver(cfg, terms, auto))
            llm.check()
            if not is_structured(terms.current.vocabulary):
                log.warning("the catalog has no brand, category or color for an LLM parser to learn: the rule parser and keywords answer (degraded: %s)", UNSTRUCTURED)
            elif not llm.building:
                log.warning(MISSING_MODEL_HINT, cfg.model, "not in the registry")
        return cls(terms, llm, cfg, auto)

    @classmethod
    def for_model(cls, model_dir: str | Path, vocabulary: Vocabulary, config: ParserConfig | None = None, version: str = "local", wait_s: float = 600) -> "ParseStage":
        """The LLM parser in this process over a fixed vocabulary, its engine started (training evaluation, benchmarks)."""
        config = config or ParserConfig(kind="llm", model=str(model_dir), timeout_ms=30_000, cache_size=0)
        parser = LLMParser.load(Path(model_dir), config, model_label(Path(model_dir)))
        if not parser.engine.wait_ready(wait_s):
            raise RuntimeError(f"parser engine did not start: {parser.engine.error}")
        return cls(Follower.fixed(CatalogTerms.build(version, vocabulary), version), Follower.fixed(parser, "local"), config)

    # ------------------------------------------------------------------ parsing
    def _model(self, terms: CatalogTerms) -> tuple[LLMParser | None, str | None]:
        """The model to ask, or why there is none (None: the rule parser is the configured one)."""
        if self.llm is None:
            return None, None
        parser = self.llm.current
        if parser is not None:
            return parser, None
        if self.config.model == AUTO and not is_structured(terms.vocabulary):
            return None, UNSTRUCTURED
        training = self.config.model == AUTO and self.auto is not None and self.auto.training(terms.catalog_sha256)
        return None, WARMING if self.llm.building or training else UNAVAILABLE

    def _start(self, query: str) -> tuple[CatalogTerms, str, Intent, LLMParser | None, Parse | None]:
        terms = self.terms.current  # one consistent snapshot for the whole request
        rule = terms.rules.parse(query)
        parser, missing = self._model(terms)
        if parser is None:
            return terms, "", rule, None, self._done(Parse(rule, missing, f"rule@{terms.version}"))
        norm = normalize_query(query)
        label = f"llm:{parser.label}@{terms.version}"
        if not norm:
            return terms, norm, rule, None, self._done(Parse(rule, None, label))
        hit = parser.cached(norm, terms)
        if hit is not None:
            return terms, norm, rule, None, self._done(Parse(hit, None, label, cached=True))
        return terms, norm, rule, parser, None

    def _done(self, parse: Parse) -> Parse:
        if parse.cached:
            self.outcomes["cache_hit"] += 1
        else:
            self.outcomes[parse.fallback or ("llm" if parse.parser.startswith("llm:") else "rule")] += 1
        return parse

    def _fell_back(self, terms: CatalogTerms, rule: Intent, failure: ParseFailed) -> Parse:
        return self._done(Parse(rule, failure.reason, f"rule@{terms.version}"))

    def parse(self, query: str) -> Parse:
        terms, norm, rule, parser, done = self._start(query)
        if done is not None:
            return done
        try:
            intent = parser.parse(norm, terms, rule.keywords)
        except ParseFailed as failure:
            return self._fell_back(terms, rule, failure)
        return self._done(Parse(intent, None, f"llm:{parser.label}@{terms.version}"))

    async def aparse(self, query: str) -> Parse:
        terms, norm, rule, parser, done = self._start(query)
        if done is not None:
            return done
        try:
            intent = await parser.aparse(norm, terms, rule.keywords)
        except ParseFailed as failure:
            return self._fell_back(terms, rule, failure)
        return self._done(Parse(intent, None, f"llm:{parser.label}@{terms.version}"))

    def parse_many(self, queries: list[str], concurrency: int = 32) -> list[Parse]:
        """Many queries in flight at once, as vLLM batches them (evaluation, benchmarks)."""

        async def run() -> list[Parse]:
            gate = asyncio.Semaphore(concurrency)

            async def one(q: str) -> Parse:
                async with gate:
                    return await self.aparse(q)

            return await asyncio.gather(*(one(q) for q in queries))

        return asyncio.run(run())

    # ------------------------------------------------------------------ Stage
    def _apply(self, ctx: SearchContext, parse: Parse) -> SearchContext:
        ctx.intent = without_fields(parse.intent, ctx.request.ignore_intent)
        ctx.versions["parser"] = parse.parser
        if parse.fallback and self.llm is not None:
            ctx.degraded.append(parse.fallback)
        return ctx

    def run(self, ctx: SearchContext) -> SearchContext:
        return self._apply(ctx, self.parse(ctx.request.query))

    async def arun(self, ctx: SearchContext) -> SearchContext:
        return self._apply(ctx, await self.aparse(ctx.request.query))

    def ready(self) -> bool:
        return True  # the rule parser answers whatever the engine's state

    def retarget(self, model: str) -> None:
        """Serve's reconfigure: follow another model reference (alias, version or directory)."""
        if self.llm is not None:
            self.config = self.config.model_copy(update={"model": model})
            self.llm.retarget(model_resolver(self.config, self.terms, self.auto))

    def check(self, max_restarts: int = 3) -> None:
        """Restart an engine that died after it had served; one that never started stays down (see describe())."""
        parser = self.llm.current if self.llm else None
        engine = parser.engine if parser else None
        if engine is None or engine.alive() or engine.ready_at is None or engine.state is EngineState.STARTING:
            return
        if self._restarts >= max_restarts:
            raise RuntimeError(f"parser engine died {self._restarts + 1} times: {engine.error}")
        self._restarts += 1
        log.warning("parser engine died (%s); restart %d of %d", engine.error, self._restarts, max_restarts)
        engine.shutdown()
        engine.start()

    def describe(self) -> dict:
        parser = self.llm.current if self.llm else None
        if self.llm is None:
            engine = {"state": "rules_only"}
        elif parser is None:
            engine = {"state": "starting" if self.llm.building else "no_model"}
        else:
            engine = parser.engine.describe()
        return {
            "kind": self.config.kind,
            "model": parser.label if parser else None,
            "index_version": self.terms.current.version,
            "engine": engine,
            "cache": (parser.cache if parser else IntentCache(0)).stats(),
            "outcomes": dict(self.outcomes),
        }

    def shutdown(self) -> None:
        parser = self.llm.current if self.llm else None
        if parser is not None and parser.engine is not None:
            parser.engine.shutdown()
