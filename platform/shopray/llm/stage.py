"""Stage 1 with the LLM: the QueryParser contract, answered by vLLM, with rules as fallback.

The stage is ready as soon as its rule parser is, whatever the engine is
doing: start-up (or a missing model) degrades answers, never health. It
follows the index like the retriever does: a new version brings a new
vocabulary, schema and rule parser, and retires cached intents. While no model
exists it keeps looking, so training one after `shopray serve` is enough.
"""

from __future__ import annotations

import logging
import threading
import time

from shopray.config import AppConfig, ParserConfig
from shopray.llm.engine import EngineState
from shopray.llm.runtime import ModelMissing, make_parser, resolve_model
from shopray.llm.service import LLMParser, Parse, catalog_for
from shopray.parser import QueryParser
from shopray.pipeline import SearchContext

log = logging.getLogger("shopray.llm")

MISSING_MODEL_HINT = "no parser model %r (%s): the rule parser answers and responses say 'parser_unavailable'; train one with `shopray train parser`"


class LLMQueryParser(QueryParser):
    def __init__(self, llm: LLMParser, store, config: ParserConfig, model_label: str | None):
        super().__init__(llm.catalog.rule, llm.catalog.version)
        self.llm, self.store, self.config, self.model_label = llm, store, config, model_label
        self._checked = time.monotonic()
        self._lock = threading.Lock()
        self._restarts = 0

    @classmethod
    def from_config(cls, config: AppConfig) -> "LLMQueryParser":
        from shopray.index import open_store

        store = open_store(config.index)
        version = store.current_version()
        if version is None:
            raise FileNotFoundError(f"index {config.index.name!r} has no published version")
        vocabulary = store.manifest(version).vocabulary
        try:
            model_dir, label = resolve_model(config.parser)
        except ModelMissing as exc:
            log.warning(MISSING_MODEL_HINT, config.parser.model, exc)
            model_dir, label = None, None
        return cls(make_parser(config.parser, model_dir, version, vocabulary), store, config.parser, label)

    # ------------------------------------------------------------------ following index and model
    def refresh(self, force: bool = False) -> None:
        if not force and time.monotonic() - self._checked < self.config.refresh_s:
            return
        with self._lock:
            self._checked = time.monotonic()
            current = self.store.current_version()
            if current and current != self.llm.catalog.version:
                vocabulary = self.store.manifest(current).vocabulary
                few_shot = list(self.llm.catalog.few_shot)
                if few_shot:
                    from shopray.llm.prompt import few_shot_examples

                    few_shot = few_shot_examples(vocabulary, self.config.few_shot_examples)
                self.llm.set_catalog(catalog_for(current, vocabulary, few_shot))
                self.parser, self.index_version = self.llm.catalog.rule, current
            if self.llm.engine is None:
                self._adopt_model()
            else:
                self._follow_model()

    def _adopt_model(self) -> None:
        try:
            model_dir, label = resolve_model(self.config)
        except ModelMissing:
            return
        log.info("parser model %s appeared; starting the engine", label)
        fresh = make_parser(self.config, model_dir, self.llm.catalog.version, self.llm.catalog.vocabulary)
        fresh.cache = self.llm.cache
        self.llm, self.model_label = fresh, label

    def _follow_model(self) -> None:
        """Promotion: the alias names another model. Start its engine beside the serving one and swap
        when it is ready; the old engine stops after a grace period, so in-flight parses finish on it."""
        pending = getattr(self, "_pending", None)
        if pending is None:
            try:
                model_dir, label = resolve_model(self.config)
            except ModelMissing:
                return
            if label == self.model_label or label == getattr(self, "_failed_label", None):
                return
            log.info("parser model %s named by %r; starting its engine beside %s", label, self.config.model, self.model_label)
            self._pending = (make_parser(self.config, model_dir, self.llm.catalog.version, self.llm.catalog.vocabulary), label)
            return
        fresh, label = pending
        state = fresh.engine.state if fresh.engine else EngineState.FAILED
        if state is EngineState.STARTING:
            return
        self._pending = None
        if state is not EngineState.READY:
            log.error("parser model %s did not start (%s); still serving %s", label, fresh.engine.error if fresh.engine else "no engine", self.model_label)
            self._failed_label = label
            return
        old, self.llm, self.model_label = self.llm, fresh, label  # cached intents were the old model's: fresh cache
        if old.engine is not None:
            threading.Timer(30.0, old.engine.shutdown).start()
        log.info("parser model switched to %s", label)

    def set_model(self, ref: str) -> None:
        """Serve's reconfigure: pin the model reference (alias, version or directory) and follow it."""
        self.config = self.config.model_copy(update={"model": ref})
        self.refresh(force=True)

    # ------------------------------------------------------------------ Stage
    def _apply(self, ctx: SearchContext, parse: Parse) -> SearchContext:
        ctx.intent = parse.intent
        version = self.llm.catalog.version
        if parse.fallback:
            ctx.degraded.append(parse.fallback)
            ctx.versions["parser"] = f"rule@{version}"
        else:
            ctx.versions["parser"] = f"llm:{self.model_label}@{version}"
        return ctx

    def run(self, ctx: SearchContext) -> SearchContext:
        self.refresh()
        return self._apply(ctx, self.llm.parse(ctx.request.query))

    async def arun(self, ctx: SearchContext) -> SearchContext:
        self.refresh()
        return self._apply(ctx, await self.llm.aparse(ctx.request.query))

    def ready(self) -> bool:
        return True  # the rule parser answers whatever the engine's state

    def check(self, max_restarts: int = 3) -> None:
        """Restart an engine that died after it had served; one that never started stays down (see describe())."""
        engine = self.llm.engine
        if engine is None or engine.alive() or engine.ready_at is None or engine.state is EngineState.STARTING:
            return
        if self._restarts >= max_restarts:
            raise RuntimeError(f"parser engine died {self._restarts + 1} times: {engine.error}")
        self._restarts += 1
        log.warning("parser engine died (%s); restart %d of %d", engine.error, self._restarts, max_restarts)
        engine.shutdown()
        engine.start()

    def describe(self) -> dict:
        engine = self.llm.engine
        return {
            "kind": "llm",
            "model": self.model_label,
            "index_version": self.llm.catalog.version,
            "engine": engine.describe() if engine else {"state": "no_model"},
            "cache": self.llm.cache.stats(),
            "outcomes": dict(self.llm.counts),
        }
