"""The LLM parser: a query becomes the JSON intent vLLM decodes under the catalog's schema.

One ``LLMParser`` is one model: its engine, tokenizer and intent cache. It
parses against whatever ``CatalogTerms`` the caller passes, and raises
``ParseFailed`` (with the ``degraded`` label to report) when it cannot answer
within its budget or its answer fails validation; the parse stage
(``stage.ParseStage``) then answers with the rule parser.
"""

from __future__ import annotations

import logging
import threading
from pathlib import Path

from shopray.config import ParserConfig
from shopray.domain import Intent
from shopray.stages.parse.cache import IntentCache
from shopray.stages.parse.engine import EngineUnavailable, GenerationTimeout, ParserEngine
from shopray.stages.parse.prompt import messages
from shopray.stages.parse.schema import InvalidOutput, narrowed, to_intent, validate
from shopray.stages.parse.terms import CatalogTerms

log = logging.getLogger(__name__)

TIMEOUT, UNAVAILABLE, INVALID = "parser_timeout", "parser_unavailable", "parser_invalid_output"
# Written into a model directory by `shopray train parser`: that model learned the bare one-turn prompt.
TRAINED_MARKER = "shopray_parser.json"
NOTHING = "{}"  # the one answer a schema without properties admits


class ParseFailed(Exception):
    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


def load_tokenizer(model_dir: Path):
    """The tokenizer exactly as trained for a shopray parser; the model's own class for anything else.

    transformers picks the tokenizer class from config.json's model_type, and its
    Qwen2 class re-creates Qwen2's pre-tokenizer, which splits text differently
    from the one this parser was trained with; tokenizer.json itself is exact.
    vLLM only detokenizes (prompts are sent as token ids), so it is unaffected.
    """
    from transformers import AutoTokenizer, PreTrainedTokenizerFast

    if (model_dir / TRAINED_MARKER).exists():
        return PreTrainedTokenizerFast.from_pretrained(str(model_dir), local_files_only=True)
    return AutoTokenizer.from_pretrained(str(model_dir), local_files_only=True)


class LLMParser:
    def __init__(self, engine: ParserEngine | None, tokenizer, *, label: str, timeout_s: float, max_tokens: int = 64,
                 cache: IntentCache | None = None, infer_category: bool = False, few_shot: int = 0):
        self.engine, self.tokenizer, self.label = engine, tokenizer, label
        self.timeout_s, self.max_tokens, self.infer_category, self.few_shot = timeout_s, max_tokens, infer_category, few_shot
        self.cache = cache if cache is not None else IntentCache(0)
        self._tok_lock = threading.Lock()  # HF fast tokenizers are not safe to share across threads
        self._cache_version: str | None = None

    @classmethod
    def load(cls, model_dir: Path, config: ParserConfig, label: str) -> "LLMParser":
        """The parser for a model directory, its engine starting in the background."""
        trained = (model_dir / TRAINED_MARKER).exists()
        few_shot = config.few_shot if config.few_shot is not None else not trained
        engine = ParserEngine(str(model_dir), config.engine)
        engine.start()
        return cls(engine, load_tokenizer(model_dir), label=label, timeout_s=config.timeout_ms / 1000, max_tokens=config.max_tokens,
                   cache=IntentCache(config.cache_size), infer_category=config.infer_category,
                   few_shot=config.few_shot_examples if few_shot else 0)

    def prompt_ids(self, query: str, terms: CatalogTerms, found: dict[str, list[str]] | None = None) -> list[int]:
        shots = list(terms.few_shot(self.few_shot)) if self.few_shot else None
        with self._tok_lock:
            out = self.tokenizer.apply_chat_template(messages(query, shots, terms.finder.hint(query, found)), tokenize=True, add_generation_prompt=True)
        return list(out["input_ids"] if isinstance(out, dict) or hasattr(out, "keys") else out)

    def cached(self, norm: str, terms: CatalogTerms) -> Intent | None:
        if self._cache_version != terms.version:
            # Intents parsed against another catalog version can never hit again: free their room.
            self.cache.retain(terms.version)
            self._cache_version = terms.version
        return self.cache.get(terms.version, norm)

    def request(self, norm: str, terms: CatalogTerms) -> tuple[list[int] | None, dict]:
        """Prompt and per-query schema, from one lookup of the catalog values the query mentions. No prompt when the
        schema leaves the model no field to fill: its only answer is ``{}``, so the engine is not asked."""
        if self.engine is None:
            raise ParseFailed(UNAVAILABLE)
        found = terms.finder.find(norm)
        schema = narrowed(terms.schema, found, norm, self.infer_category)
        return (self.prompt_ids(norm, terms, found) if schema["properties"] else None), schema

    def answer(self, norm: str, terms: CatalogTerms, keywords: str, text: str, schema: dict) -> Intent:
        try:
            intent = to_intent(validate(text, schema), keywords, terms.vocabulary)
        except InvalidOutput as exc:
            log.warning("parser output rejected: %s", exc)  # not the query: no query text is logged
            raise ParseFailed(INVALID) from exc
        self.cache.put(terms.version, norm, intent)
        return intent

    @staticmethod
    def failed(exc: Exception) -> ParseFailed:
        if isinstance(exc, ParseFailed):
            return exc
        if isinstance(exc, GenerationTimeout):
            return ParseFailed(TIMEOUT)
        if not isinstance(exc, EngineUnavailable):  # the engine refused the request (e.g. too long)
            log.error("parser engine failed", exc_info=exc)
        return ParseFailed(UNAVAILABLE)

    async def aparse(self, norm: str, terms: CatalogTerms, keywords: str) -> Intent:
        """The model's intent for a normalised query (not cached: see ``cached``); raises ParseFailed."""
        try:
            prompt, schema = self.request(norm, terms)
            text = NOTHING if prompt is None else await self.engine.generate(prompt, schema, self.max_tokens, self.timeout_s)
        except Exception as exc:  # noqa: BLE001 - whatever went wrong, the caller falls back
            raise self.failed(exc) from exc
        return self.answer(norm, terms, keywords, text, schema)

    def parse(self, norm: str, terms: CatalogTerms, keywords: str) -> Intent:
        try:
            prompt, schema = self.request(norm, terms)
            text = NOTHING if prompt is None else self.engine.generate_sync(prompt, schema, self.max_tokens, self.timeout_s)
        except Exception as exc:  # noqa: BLE001 - whatever went wrong, the caller falls back
            raise self.failed(exc) from exc
        return self.answer(norm, terms, keywords, text, schema)
