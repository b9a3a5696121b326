"""Query -> Intent through the LLM, with the rule parser as the answer of last resort.

Every query is parsed by the rule parser first (sub-millisecond): it supplies
the keywords and is the fallback. The LLM answer replaces the rule intent only
when it arrives within the budget and passes schema validation; otherwise the
rule intent goes out with a reason for the response's ``degraded`` list.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass

from shopray.llm.cache import IntentCache
from shopray.llm.candidates import CandidateFinder
from shopray.llm.engine import EngineUnavailable, GenerationTimeout, ParserEngine
from shopray.llm.prompt import messages, normalize_query
from shopray.llm.schema import InvalidOutput, intent_schema, narrowed, to_intent, validate
from shopray.models import Intent, Vocabulary
from shopray.parser import RuleParser

log = logging.getLogger("shopray.llm")

TIMEOUT, UNAVAILABLE, INVALID = "parser_timeout", "parser_unavailable", "parser_invalid_output"


@dataclass(frozen=True)
class Catalog:
    """Everything derived from one index version, swapped as a unit."""

    version: str
    vocabulary: Vocabulary
    rule: RuleParser
    schema: dict
    finder: CandidateFinder
    few_shot: tuple[tuple[str, str], ...] = ()


def catalog_for(version: str, vocabulary: Vocabulary, few_shot: list[tuple[str, str]] | None = None) -> Catalog:
    return Catalog(version, vocabulary, RuleParser(vocabulary), intent_schema(vocabulary), CandidateFinder(vocabulary), tuple(few_shot or ()))


@dataclass
class Parse:
    intent: Intent
    fallback: str | None  # why the rule parser answered, or None when the LLM did
    cached: bool = False


class LLMParser:
    def __init__(
        self,
        engine: ParserEngine | None,
        tokenizer,
        catalog: Catalog,
        timeout_s: float,
        max_tokens: int = 64,
        cache: IntentCache | None = None,
        infer_category: bool = False,
    ):
        self.engine = engine
        self.tokenizer = tokenizer
        self.catalog = catalog
        self.timeout_s = timeout_s
        self.max_tokens = max_tokens
        self.infer_category = infer_category
        self.cache = cache if cache is not None else IntentCache(0)
        self._tok_lock = threading.Lock()  # HF fast tokenizers are not safe to share across threads
        self.counts = {"llm": 0, TIMEOUT: 0, UNAVAILABLE: 0, INVALID: 0, "cache_hit": 0}

    def set_catalog(self, catalog: Catalog) -> None:
        """A new index version: new vocabulary, schema and rule parser; intents of the old one are dropped."""
        self.catalog = catalog
        dropped = self.cache.retain(catalog.version)
        log.info("parser follows index version %s (%d cached intents dropped)", catalog.version, dropped)

    def prompt_ids(self, query: str, catalog: Catalog | None = None, found: dict[str, list[str]] | None = None) -> list[int]:
        catalog = catalog or self.catalog
        with self._tok_lock:
            out = self.tokenizer.apply_chat_template(
                messages(query, list(catalog.few_shot), catalog.finder.hint(query, found)), tokenize=True, add_generation_prompt=True
            )
        return list(out["input_ids"] if isinstance(out, dict) or hasattr(out, "keys") else out)

    def _before(self, query: str) -> tuple[Catalog, str, Intent, Parse | None]:
        catalog = self.catalog  # one consistent snapshot for the whole request
        norm = normalize_query(query)
        rule = catalog.rule.parse(query)
        if not norm:
            return catalog, norm, rule, Parse(rule, None)
        hit = self.cache.get(catalog.version, norm)
        if hit is not None:
            self.counts["cache_hit"] += 1
            return catalog, norm, rule, Parse(hit, None, cached=True)
        return catalog, norm, rule, None

    def _request(self, catalog: Catalog, norm: str) -> tuple[list[int], dict]:
        """Prompt and per-query schema, from one lookup of the catalog values the query mentions."""
        found = catalog.finder.find(norm)
        return self.prompt_ids(norm, catalog, found), narrowed(catalog.schema, found, norm, self.infer_category)

    def _after(self, catalog: Catalog, norm: str, rule: Intent, text: str, schema: dict) -> Parse:
        try:
            intent = to_intent(validate(text, schema), rule.keywords, catalog.vocabulary)
        except InvalidOutput as exc:
            log.warning("parser output rejected for %r: %s", norm, exc)
            return self._fallback(rule, INVALID)
        self.cache.put(catalog.version, norm, intent)
        self.counts["llm"] += 1
        return Parse(intent, None)

    def _failed(self, norm: str, rule: Intent, exc: Exception) -> Parse:
        if isinstance(exc, GenerationTimeout):
            return self._fallback(rule, TIMEOUT)
        if not isinstance(exc, EngineUnavailable):  # the engine refused the request (e.g. too long)
            log.error("parser engine failed on %r", norm, exc_info=exc)
        return self._fallback(rule, UNAVAILABLE)

    def _fallback(self, rule: Intent, reason: str) -> Parse:
        self.counts[reason] += 1
        return Parse(rule, reason)

    def _engine(self) -> ParserEngine:
        if self.engine is None:
            raise EngineUnavailable("no parser model")
        return self.engine

    async def aparse(self, query: str) -> Parse:
        catalog, norm, rule, done = self._before(query)
        if done is not None:
            return done
        try:
            engine = self._engine()
            prompt, schema = self._request(catalog, norm)
            text = await engine.generate(prompt, schema, self.max_tokens, self.timeout_s)
        except Exception as exc:  # noqa: BLE001 - whatever went wrong, the rule parser answers
            return self._failed(norm, rule, exc)
        return self._after(catalog, norm, rule, text, schema)

    def parse(self, query: str) -> Parse:
        catalog, norm, rule, done = self._before(query)
        if done is not None:
            return done
        try:
            engine = self._engine()
            prompt, schema = self._request(catalog, norm)
            text = engine.generate_sync(prompt, schema, self.max_tokens, self.timeout_s)
        except Exception as exc:  # noqa: BLE001 - whatever went wrong, the rule parser answers
            return self._failed(norm, rule, exc)
        return self._after(catalog, norm, rule, text, schema)
