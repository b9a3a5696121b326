"""Intent cache: LRU order, hit rate, and invalidation when the catalog version changes."""

import logging

from shopray.config import ParserConfig
from shopray.domain import Intent, Vocabulary
from shopray.follow import Follower
from shopray.stages.parse.cache import IntentCache
from shopray.stages.parse.llm import LLMParser
from shopray.stages.parse.stage import ParseStage
from shopray.stages.parse.terms import CatalogTerms


def test_lru_evicts_the_least_recently_used():
    cache = IntentCache(2)
    cache.put("v1", "a", Intent(keywords="a"))
    cache.put("v1", "b", Intent(keywords="b"))
    assert cache.get("v1", "a").keywords == "a"  # a is now the most recent
    cache.put("v1", "c", Intent(keywords="c"))
    assert cache.get("v1", "b") is None
    assert cache.get("v1", "a") is not None and cache.get("v1", "c") is not None
    assert len(cache) == 2
    assert cache.stats()["hits"] == 3 and cache.stats()["misses"] == 1 and cache.hit_rate == 0.75


def test_cached_intents_are_copies():
    cache = IntentCache(4)
    cache.put("v1", "q", Intent(attributes=["leather"]))
    cache.get("v1", "q").attributes.append("mutated")
    assert cache.get("v1", "q").attributes == ["leather"]


def test_zero_size_disables_the_cache():
    cache = IntentCache(0)
    cache.put("v1", "q", Intent())
    assert cache.get("v1", "q") is None and len(cache) == 0


class _ScriptedEngine:
    """Answers with a fixed JSON, counting calls; the real engine is exercised in test_llm.py."""

    def __init__(self, text: str):
        self.text, self.calls = text, 0

    def generate_sync(self, prompt_ids, schema, max_tokens, timeout_s):
        self.calls += 1
        return self.text


class _Tokenizer:
    def apply_chat_template(self, turns, tokenize, add_generation_prompt):
        return [1, 2, 3]


def test_new_catalog_version_invalidates_cached_intents(caplog):
    v1 = Vocabulary(brands=["Nike"], categories=["Shoes > Running"], colors=["red"], price_p25=10.0)
    v2 = Vocabulary(brands=["Adidas"], categories=["Shoes > Running"], colors=["red"], price_p25=10.0)
    engine = _ScriptedEngine('{"brand":"Nike"}')
    parser = LLMParser(engine, _Tokenizer(), label="test", timeout_s=1.0, cache=IntentCache(16))
    catalogs, published = {"v1": v1, "v2": v2}, ["v1"]
    terms = Follower(lambda: published[0], lambda v: CatalogTerms.build(v, catalogs[v]), name="terms", every_s=0)
    terms.check(wait=True)
    stage = ParseStage(terms, Follower.fixed(parser), ParserConfig(kind="llm"))
    first = stage.parse("Nike red shoes")
    again = stage.parse("  nike   RED shoes ")  # the same normalised query
    assert first.intent.brand == "Nike" and first.fallback is None and not first.cached
    assert again.cached and engine.calls == 1

    published[0] = "v2"
    assert terms.check(wait=True)
    with caplog.at_level(logging.WARNING, logger="shopray.stages.parse.llm"):
        after = stage.parse("nike red shoes")  # "red" leaves the model a field, so the engine is asked
    assert "parser output rejected: schema violation" in caplog.text and "nike" not in caplog.text.lower()  # no query text in logs
    assert len(parser.cache) == 0
    # Nike is not in the new catalog: the old answer must not come back from the cache,
    # and the engine's (now out-of-schema) answer is rejected, not served.
    assert engine.calls == 2 and not after.cached
    assert after.fallback == "parser_invalid_output" and after.intent.brand is None and after.intent.source == "rule"
