"""The QueryParser deployment on Serve with parser.kind=llm but no trained model yet (a fresh machine).

The replica must come up healthy at once, answer with the rule parser, say so
in `degraded`, and report its engine state; no engine starts here (the real
engine is covered in test_llm.py, the Serve path with a model in
benchmarks/parser_latency.py).
"""

import pytest

from shopray.api import SearchRequest
from shopray.config import ParserConfig
from shopray.graph import SearchContext
from shopray.pipeline import PARSE

pytestmark = pytest.mark.ray


@pytest.fixture(scope="module")
def parser_handle(app_config, serve_port, tmp_path_factory):
    from ray import serve

    from shopray.serving.app import bind_stage

    config = app_config.model_copy(update={"parser": ParserConfig(kind="llm", registry=tmp_path_factory.mktemp("empty-registry"))})
    app = bind_stage(PARSE, config)
    handle = serve.run(app, name="llm-parser-test", route_prefix=None)
    yield handle
    serve.delete("llm-parser-test")


def test_without_a_model_the_rule_parser_answers_and_says_so(parser_handle):
    ctx = parser_handle.run.remote(SearchContext(request=SearchRequest(query="red running shoes under 80"))).result(timeout_s=60)
    assert ctx.intent.source == "rule" and ctx.intent.price_max == 80
    assert ctx.degraded == ["parser_unavailable"]
    assert ctx.versions["parser"].startswith("rule@")


def test_replica_is_ready_and_reports_engine_state(parser_handle):
    assert parser_handle.ready.remote().result(timeout_s=30) is True
    stats = parser_handle.stats.remote().result(timeout_s=30)
    assert stats["kind"] == "llm" and stats["engine"] == {"state": "no_model"}
    assert stats["outcomes"]["parser_unavailable"] >= 1


def test_cache_hit_rate_and_outcomes_reach_prometheus(parser_handle, metrics_port):
    import time

    import httpx

    parser_handle.run.remote(SearchContext(request=SearchRequest(query="blue drill"))).result(timeout_s=60)
    wanted = ("ray_shopray_parser_cache_hit_rate{", 'ray_shopray_parser_outcomes_total{', 'outcome="parser_unavailable"')
    deadline, text = time.monotonic() + 90, ""  # Ray exports metrics every few seconds
    while time.monotonic() < deadline:
        text = httpx.get(f"http://127.0.0.1:{metrics_port}/metrics", timeout=10).text
        if all(w in text for w in wanted):
            break
        time.sleep(3)
    assert all(w in text for w in wanted), [w for w in wanted if w not in text]
