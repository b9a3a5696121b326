"""Wiring: a ParserConfig (or a model directory) -> a started engine and an LLMParser."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

from shopray.config import ParserConfig, ParserEngineConfig
from shopray.llm.cache import IntentCache
from shopray.llm.engine import EngineSettings, ParserEngine
from shopray.llm.prompt import few_shot_examples
from shopray.llm.service import LLMParser, Parse, catalog_for
from shopray.models import Vocabulary

log = logging.getLogger("shopray.llm")


class ModelMissing(LookupError):
    """The configured parser model does not exist (yet)."""


def resolve_model(config: ParserConfig) -> tuple[Path, str]:
    """(model directory, label for versions): a path as given, else a registry alias or version."""
    from shopray.registry import Registry

    path = Path(config.model).expanduser()
    if path.is_dir():
        return path.resolve(), path.name
    if "/" in config.model or config.model.startswith("."):
        raise ModelMissing(f"parser model directory {config.model} does not exist")
    registry = Registry(config.registry)
    try:
        version = registry.resolve("parser", config.model)
    except KeyError as exc:
        raise ModelMissing(str(exc).strip("'\"")) from exc
    return registry.path("parser", version), version


MARKER = "shopray_parser.json"


def is_trained_parser(model_dir: Path) -> bool:
    """A shopray-trained parser learned the bare prompt; any other model gets instructions and examples."""
    return (model_dir / MARKER).exists()


def load_tokenizer(model_dir: Path):
    """The tokenizer exactly as trained for a shopray parser; the model's own class for anything else.

    transformers picks the tokenizer class from config.json's model_type, and its
    Qwen2 class re-creates Qwen2's pre-tokenizer, which splits text differently
    from the one this parser was trained with; tokenizer.json itself is exact.
    vLLM only detokenizes (prompts are sent as token ids), so it is unaffected.
    """
    if is_trained_parser(model_dir):
        from transformers import PreTrainedTokenizerFast

        return PreTrainedTokenizerFast.from_pretrained(str(model_dir))
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(str(model_dir))


def engine_settings(model_dir: Path, engine: ParserEngineConfig) -> EngineSettings:
    return EngineSettings(model=str(model_dir), **engine.model_dump())


def make_parser(config: ParserConfig, model_dir: Path | None, version: str, vocabulary: Vocabulary, start: bool = True) -> LLMParser:
    """The LLM parser for one catalog version; without a model directory it answers with rules only."""
    engine, tokenizer, few_shot = None, None, None
    if model_dir is not None:
        tokenizer = load_tokenizer(model_dir)
        use_few_shot = config.few_shot if config.few_shot is not None else not is_trained_parser(model_dir)
        if use_few_shot:
            few_shot = few_shot_examples(vocabulary, config.few_shot_examples)
        engine = ParserEngine(engine_settings(model_dir, config.engine))
        if start:
            engine.start()
    return LLMParser(
        engine,
        tokenizer,
        catalog_for(version, vocabulary, few_shot),
        timeout_s=config.timeout_ms / 1000,
        max_tokens=config.max_tokens,
        cache=IntentCache(config.cache_size),
        infer_category=config.infer_category,
    )


def local_parser(model_dir: str, vocabulary: Vocabulary, version: str = "local", timeout_s: float = 30.0, cache_size: int = 0, wait_s: float = 600) -> "LocalParser":
    """An LLM parser in this process with its engine started (for training evaluation and benchmarks)."""
    config = ParserConfig(kind="llm", model=model_dir, timeout_ms=int(timeout_s * 1000), cache_size=cache_size)
    parser = make_parser(config, Path(model_dir), version, vocabulary)
    if not parser.engine.wait_ready(wait_s):
        raise RuntimeError(f"parser engine did not start: {parser.engine.error}")
    return LocalParser(parser)


class LocalParser:
    """Batch helpers over an LLMParser: many queries in flight at once, as vLLM batches them."""

    def __init__(self, parser: LLMParser):
        self.parser = parser
        self.engine = parser.engine
        self.catalog = parser.catalog

    def parse_many(self, queries: list[str], concurrency: int = 32) -> list[Parse]:
        async def run() -> list[Parse]:
            gate = asyncio.Semaphore(concurrency)

            async def one(q: str) -> Parse:
                async with gate:
                    return await self.parser.aparse(q)

            return await asyncio.gather(*(one(q) for q in queries))

        return asyncio.run(run())
