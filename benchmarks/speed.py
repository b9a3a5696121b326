"""The speed targets in one run: the shipped Serve config over HTTP, the same stages in this process, the
cross-encoder's pairs/s and the LLM parser's uncached latency, in one table with the command.

    .venv/bin/python benchmarks/speed.py                                  # deployments/local.yaml as shipped
    .venv/bin/python benchmarks/speed.py --set ranker.precision=fp32 --set 'graph.in_ingress=[]' --set ranker.num_threads=null --set retriever.num_threads=null --set ranker.batch_wait_timeout_s=0.005 --set ranker.forward_batch_size=64 --set parser.engine.enforce_eager=true   # as before #17

Needs the models `shopray serve` trains for the demo catalog (run it once). Every
query is distinct, so no parser-cache hits except in the Zipf row, whose hot
queries repeat the way a shop's do. The Serve graph and the in-process stages
run the same queries in the same process, one after the other, so their ratio
is measured on the same machine state. Open-loop rows send arrivals at a fixed
rate whatever the answers do (real shoppers do not wait for each other).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time

import numpy as np

from shopray.bench.load import arrivals, demo_queries, searches, statuses
from shopray.bench.report import markdown_table, percentiles, print_command
from shopray.tuning.dotted import apply_dotted, assignments


def distinct(n: int, seed: int) -> list[str]:
    """``n`` different demo queries: repeats would be parser-cache hits."""
    seen: dict[str, None] = {}
    for query in demo_queries(n * 3, seed=seed):
        seen.setdefault(query, None)
    return list(seen)[:n]


def zipf(n: int, pool: list[str], seed: int = 0, a: float = 1.2) -> list[str]:
    ranks = np.random.default_rng(seed).zipf(a, size=n)
    return [pool[(r - 1) % len(pool)] for r in ranks]


def until_modelled(search, timeout_s: float = 900) -> None:
    """Until a search answers with no degraded label: every model loaded, none warming."""
    deadline = time.monotonic() + timeout_s
    while search():
        if time.monotonic() > deadline:
            raise TimeoutError("still degraded: are the models trained? (run `shopray serve` once)")
        time.sleep(2)


def http_degraded(url: str) -> list[str] | bool:
    import httpx

    try:
        resp = httpx.post(f"{url}/search", json={"query": "red running shoes"}, timeout=30)
    except httpx.TransportError:
        return True
    return resp.json()["degraded"] if resp.status_code == 200 else True


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--config", default="deployments/local.yaml")
    ap.add_argument("--set", dest="sets", action="append", default=[], help="override one shopray arg, e.g. ranker.precision=fp32")
    ap.add_argument("--n", type=int, default=200, help="sequential searches, over HTTP and in process")
    ap.add_argument("--rps", type=float, default=15.0)
    ap.add_argument("--seconds", type=float, default=60.0, help="open-loop duration, each of the fresh and the Zipf mix")
    ap.add_argument("--pairs", type=int, default=1024, help="(query, title) pairs for the cross-encoder's rate")
    ap.add_argument("--json", default=None, help="also write the figures here")
    ns = ap.parse_args(argv)
    command = print_command(argv)

    from ray import serve

    from shopray.api import SearchRequest
    from shopray.bench.cluster import local_cluster
    from shopray.config import AppConfig, load_serve_file
    from shopray.graph import SearchContext
    from shopray.pipeline import Pipeline
    from shopray.serving.app import bind_app

    serve_file = load_serve_file(ns.config)
    app = serve_file["applications"][0]
    config = AppConfig.model_validate(apply_dotted(app.get("args") or {}, assignments(ns.sets)))
    options = {d["name"]: {k: v for k, v in d.items() if k != "name"} for d in app.get("deployments", [])}
    rows: list[tuple[str, str, str]] = []
    figures: dict = {"command": command, "config": ns.config, "sets": ns.sets}
    warm = distinct(20, seed=99)
    fresh = distinct(ns.n + int(ns.rps * ns.seconds), seed=1)
    sequential, open_fresh = fresh[: ns.n], fresh[ns.n :]

    with local_cluster(num_cpus=2, http=True) as cluster:
        serve.run(bind_app(config, options), name="shopray", route_prefix="/")
        until_modelled(lambda: http_degraded(cluster.url))
        asyncio.run(searches(cluster.url, warm))
        answers = asyncio.run(searches(cluster.url, sequential))
        ok = [a for a in answers if a.status == 200]
        graph = percentiles([a.latency_ms for a in ok], (50, 99))
        stage_p50 = {key: percentiles([a.timings_ms[key] for a in ok], (50,))["p50_ms"] for key in ok[0].timings_ms if key != "total"}
        degraded = sorted({label for a in answers for label in a.degraded})
        figures["graph"] = {**graph, "statuses": statuses(answers), "stage_p50_ms": stage_p50, "degraded": degraded, "versions": ok[0].versions}
        rows += [("sequential p50 (HTTP, Serve graph)", f"{graph['p50_ms']:.1f} ms", "<= 80 ms"), ("sequential p99", f"{graph['p99_ms']:.1f} ms", "<= 250 ms")]
        rows.append(("stage p50 in the graph", ", ".join(f"{k} {v:.1f}" for k, v in stage_p50.items()), ""))
        for label, queries in (("fresh", open_fresh), ("Zipf (hot queries cached)", zipf(len(open_fresh), distinct(2000, seed=7)))):
            loaded = asyncio.run(arrivals(cluster.url, ns.rps, ns.seconds, queries))
            served = [a.latency_ms for a in loaded if a.status == 200]
            p = percentiles(served, (50, 99)) if served else {"p50_ms": float("nan"), "p99_ms": float("nan")}
            errors = len(loaded) - len(served)
            figures[f"open_loop_{label.split()[0].lower()}"] = {**p, "sent": len(loaded), "statuses": statuses(loaded)}
            rows.append((f"open loop {ns.rps:g} RPS x {ns.seconds:g} s, {label}", f"p50 {p['p50_ms']:.0f} ms, p99 {p['p99_ms']:.0f} ms, {errors} errors of {len(loaded)}", "p99 <= 1 s, 0 errors"))
        serve.delete("shopray")

        # The same stages, config and queries in this process (no Serve, no hops).
        pipeline = Pipeline.from_config(config)
        until_modelled(lambda: pipeline.run(SearchContext(request=SearchRequest(query="red running shoes"))).ctx.degraded)
        for query in warm:
            pipeline.run(SearchContext(request=SearchRequest(query=query)))
        outcomes = [pipeline.run(SearchContext(request=SearchRequest(query=q, k=10))) for q in sequential]
        local = percentiles([o.timings_ms["total"] for o in outcomes], (50, 99))
        local_stage = {key: percentiles([o.timings_ms[key] for o in outcomes], (50,))["p50_ms"] for key in outcomes[0].timings_ms if key != "total"}
        local_degraded = sorted({label for o in outcomes for label in o.ctx.degraded})
        figures["in_process"] = {**local, "stage_p50_ms": local_stage, "degraded": local_degraded}
        ratio = graph["p50_ms"] / local["p50_ms"]
        rows.append(("same stages in one process p50 / p99", f"{local['p50_ms']:.1f} / {local['p99_ms']:.1f} ms", ""))
        rows.append(("stage p50 in process", ", ".join(f"{k} {v:.1f}" for k, v in local_stage.items()), ""))
        rows.append(("Serve graph / in process, p50", f"{ratio:.2f}x", "<= 1.2x"))
        rows.append(("parser, uncached, concurrency 1, p50", f"{local_stage['parse']:.1f} ms", "<= 25 ms"))

        scorer = pipeline["rank"].scorer
        if hasattr(scorer, "score_pairs"):
            from shopray.training.ranker.data import synthetic_groups

            groups = synthetic_groups(max(1, ns.pairs // 5), seed=3)
            q = [g.query for g in groups for _ in g.texts][: ns.pairs]
            t = [x for g in groups for x in g.texts][: ns.pairs]
            scorer.score_pairs(q[:128], t[:128])
            started = time.perf_counter()
            scorer.score_pairs(q, t)
            pps = len(t) / (time.perf_counter() - started)
            figures["crossencoder"] = {"pairs_s": round(pps, 1), "version": scorer.version, "max_length": config.ranker.max_length, "forward_batch_size": config.ranker.forward_batch_size}
            rows.append((f"cross-encoder pairs/s ({scorer.version.rsplit(':', 1)[-1]}, max_length {config.ranker.max_length})", f"{pps:.0f}", ">= 1000"))
        pipeline["parse"].shutdown()  # its vLLM engine, before Ray goes: otherwise it dies noisily at exit

    figures["rows"] = rows
    print(markdown_table(["figure", "measured", "target"], rows))
    print(f"versions: {json.dumps(figures['graph']['versions'])}; degraded seen: graph {figures['graph']['degraded']}, in process {figures['in_process']['degraded']}")
    if ns.json:
        with open(ns.json, "w") as fh:
            json.dump(figures, fh, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
