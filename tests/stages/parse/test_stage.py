"""The parse stage by composition: one place applies what the client asked to ignore, whichever parser answered."""

import asyncio

import pytest

from shopray.api import SearchRequest
from shopray.config import ParserConfig
from shopray.domain import Vocabulary
from shopray.follow import Follower
from shopray.graph import SearchContext
from shopray.stages.parse.llm import LLMParser
from shopray.stages.parse.rules import RuleParser
from shopray.stages.parse.stage import ParseStage
from shopray.stages.parse.terms import CatalogTerms

VOCAB = Vocabulary(brands=["Nike"], categories=["Shoes > Running"], colors=["red"], price_min=5.0, price_max=200.0, price_p25=10.0)
QUERY = "red nike running shoes under 80"


class _ScriptedEngine:
    """Always the same schema-valid answer, synchronously or not; the real engine is exercised in test_llm."""

    text = '{"brand":"Nike","color":"red","price_max":80}'

    def generate_sync(self, prompt_ids, schema, max_tokens, timeout_s):
        return self.text

    async def generate(self, prompt_ids, schema, max_tokens, timeout_s):
        return self.text


class _Tokenizer:
    def apply_chat_template(self, turns, tokenize, add_generation_prompt):
        return [1, 2, 3]


def _stage(kind: str) -> ParseStage:
    llm = Follower.fixed(LLMParser(_ScriptedEngine(), _Tokenizer(), label="scripted", timeout_s=1.0)) if kind == "llm" else None
    return ParseStage(Follower.fixed(CatalogTerms.build("v1", VOCAB)), llm, ParserConfig(kind=kind))


@pytest.mark.parametrize("kind", ["llm", "rule"])
@pytest.mark.parametrize("run_async", [False, True])
def test_ignored_intent_fields_are_dropped_whichever_parser_answered(kind, run_async):
    stage = _stage(kind)
    ctx = SearchContext(request=SearchRequest(query=QUERY, ignore_intent=["color", "price"]))
    ctx = asyncio.run(stage.arun(ctx)) if run_async else stage.run(ctx)
    assert ctx.intent.source == kind and ctx.degraded == []
    assert ctx.versions["parser"] == ("llm:scripted@v1" if kind == "llm" else "rule@v1")
    assert ctx.intent.brand == "Nike"
    assert ctx.intent.color is None and ctx.intent.price_min is None and ctx.intent.price_max is None


def test_without_ignored_fields_both_parsers_keep_them():
    for kind in ("llm", "rule"):
        intent = _stage(kind).run(SearchContext(request=SearchRequest(query=QUERY))).intent
        assert (intent.brand, intent.color, intent.price_max) == ("Nike", "red", 80), kind


def test_the_llm_intent_carries_the_rule_parsers_keywords():
    intent = _stage("llm").run(SearchContext(request=SearchRequest(query=QUERY))).intent
    assert intent.keywords == RuleParser(VOCAB).parse(QUERY).keywords


def test_a_configured_model_that_is_missing_or_starting_degrades_answers_not_health():
    missing = Follower(lambda: None, lambda key: None, name="model", every_s=0)
    stage = ParseStage(Follower.fixed(CatalogTerms.build("v1", VOCAB)), missing, ParserConfig(kind="llm"))
    ctx = stage.run(SearchContext(request=SearchRequest(query=QUERY)))
    assert stage.ready() and ctx.intent.source == "rule" and ctx.degraded == ["parser_unavailable"]
    assert ctx.versions["parser"] == "rule@v1" and stage.describe()["engine"] == {"state": "no_model"}


def test_while_the_model_starts_answers_say_parser_warming_then_the_llm_answers():
    import threading

    started = threading.Event()
    parser = LLMParser(_ScriptedEngine(), _Tokenizer(), label="scripted", timeout_s=1.0)
    warming = Follower(lambda: "model", lambda key: started.wait(30) and parser, name="model", every_s=0)
    warming.check()  # the engine starts in the background
    stage = ParseStage(Follower.fixed(CatalogTerms.build("v1", VOCAB)), warming, ParserConfig(kind="llm"))
    first = stage.run(SearchContext(request=SearchRequest(query=QUERY)))
    assert first.degraded == ["parser_warming"] and first.intent.source == "rule"
    assert stage.describe()["engine"] == {"state": "starting"}
    started.set()
    for _ in range(200):
        if warming.current is parser:
            break
        threading.Event().wait(0.01)
    later = stage.run(SearchContext(request=SearchRequest(query=QUERY)))
    assert later.degraded == [] and later.intent.source == "llm" and later.versions["parser"] == "llm:scripted@v1"


class _CountingEngine(_ScriptedEngine):
    def __init__(self):
        self.calls = 0

    def generate_sync(self, prompt_ids, schema, max_tokens, timeout_s):
        self.calls += 1
        return "{}"

    async def generate(self, prompt_ids, schema, max_tokens, timeout_s):
        return self.generate_sync(prompt_ids, schema, max_tokens, timeout_s)


@pytest.mark.parametrize("run_async", [False, True])
def test_a_query_that_names_nothing_the_schema_allows_is_answered_without_decoding(run_async):
    engine = _CountingEngine()
    stage = ParseStage(Follower.fixed(CatalogTerms.build("v1", VOCAB)), Follower.fixed(LLMParser(engine, _Tokenizer(), label="s", timeout_s=1.0)),
                       ParserConfig(kind="llm"))

    def parse(query):
        ctx = SearchContext(request=SearchRequest(query=query))
        return (asyncio.run(stage.arun(ctx)) if run_async else stage.run(ctx)).intent

    intent = parse("a gift for my dad")  # no brand, category, color, attribute, price or "cheap": only {} is valid
    assert engine.calls == 0 and intent.source == "llm" and intent.keywords == RuleParser(VOCAB).parse("a gift for my dad").keywords
    assert (intent.brand, intent.category, intent.color, intent.price_max) == (None, None, None, None)
    for query in ("a cheap gift", "a gift under 30", "nike gift"):  # each leaves the model a field to fill or not
        parse(query)
    assert engine.calls == 3
