"""What `shopray serve` trains for the catalog it serves, as Ray tasks beside the app, with progress bars.

``plan`` says which models ``auto`` names for this index, which exist already
(by content key: ``keys``) and which must be trained, and why: a catalog with
no brand, category or color gets no LLM parser. ``start`` submits one Ray task
that trains the missing ones in turn (the parser first: it is what the shopper
types into); each writes its progress beside the registry (``progress``) and
registers its model with the content key on its card, where the serving
replicas find it (``model: auto``) and swap it in. ``watch`` draws the bars.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from dataclasses import dataclass, field
from typing import TextIO

import ray
from tqdm import tqdm

from shopray.bootstrap import progress
from shopray.bootstrap.keys import AUTO, AutoModel, Kind, can_train, is_structured
from shopray.catalog import catalog_sha256, load_products
from shopray.config import PARSER_SIZES, AppConfig
from shopray.registry import model_label
from shopray.stages.retrieve.index import IndexManifest
from shopray.training.parser.data import TrainArgs
from shopray.training.parser.train import run as train_parser
from shopray.training.ranker.train import parse_args as ranker_args
from shopray.training.ranker.train import train as train_ranker


@dataclass(frozen=True)
class Job:
    kind: Kind
    key: str


@dataclass
class Plan:
    jobs: list[Job] = field(default_factory=list)
    lines: list[str] = field(default_factory=list)  # what each stage gets, and why


def plan(config: AppConfig, manifest: IndexManifest) -> Plan:
    out = Plan()
    parser, ranker = config.parser, config.ranker
    if parser.kind != "llm":
        out.lines.append("parser: the rule parser (parser.kind: rule)")
    elif parser.model != AUTO:
        out.lines.append(f"parser: the LLM parser {parser.model!r} (parser.model)")
    elif not is_structured(manifest.vocabulary):
        out.lines.append(f"parser: rules and keywords only: catalog {manifest.name!r} has no brand, category or color for an LLM parser to learn")
    else:
        auto = AutoModel("parser", config.bootstrap.parser, parser.registry)
        found = auto.resolve(manifest.catalog_sha256)
        if found is not None:
            out.lines.append(f"parser: the LLM parser {model_label(found)}, trained for this catalog's {len(manifest.vocabulary.brands)} brands and {len(manifest.vocabulary.categories)} categories")
        else:
            out.jobs.append(Job("parser", auto.key(manifest.catalog_sha256)))
            out.lines.append(f"parser: an LLM parser for this catalog's vocabulary is trained now ({config.bootstrap.parser.steps} steps on {config.bootstrap.parser.examples:,} synthetic queries); rules answer meanwhile")
    if ranker.kind == "biencoder":
        out.lines.append("ranker: the MiniLM bi-encoder (ranker.kind: biencoder)")
    elif ranker.model != AUTO:
        out.lines.append(f"ranker: the cross-encoder {ranker.model!r} (ranker.model)")
    elif not can_train("ranker", manifest.vocabulary):
        out.lines.append(f"ranker: the retriever's order: catalog {manifest.name!r} has no categories to make training queries from, and on "
                         "Home Depot's titles a cross-encoder trained on another catalog ranked below the retriever's order")
    else:
        auto = AutoModel("ranker", config.bootstrap.ranker, ranker.registry)
        found = auto.resolve(manifest.catalog_sha256)
        why = "MiniLM-L6 fine-tuned on graded synthetic queries made of this catalog's categories, brands, colors and materials"
        if found is not None:
            out.lines.append(f"ranker: the cross-encoder {model_label(found)} ({why})")
        else:
            out.jobs.append(Job("ranker", auto.key(manifest.catalog_sha256)))
            out.lines.append(f"ranker: a cross-encoder is trained now ({why}); the bi-encoder answers meanwhile")
    return out


def _train(job: Job, config: AppConfig, reporter: progress.Reporter, products: list | None = None) -> str:
    """One model, trained and registered with its content key; returns the version. The parser learns the catalog
    ``config.catalog`` names, or ``products`` when given (what the index was built from); so does the ranker's data."""
    threads = config.bootstrap.threads or os.cpu_count() or 1
    products = products if products is not None else load_products(config.catalog).products
    card = {"bootstrap_key": job.key, "catalog_sha256": catalog_sha256(products)}
    if job.kind == "parser":
        r = config.bootstrap.parser
        registry = str(config.parser.registry) if config.parser.registry else None
        args = TrainArgs(catalog=config.catalog or "given products", examples=r.examples, heldout=r.heldout, steps=r.steps, batch_size=r.batch_size, lr=r.lr, seed=r.seed,
                         registry=registry, alias=None, promote=False, evaluate=r.heldout > 0, threads=threads, progress=False, **PARSER_SIZES[r.model_size])
        return train_parser(args, products, progress=reporter.update, card_data=card)["version"]
    r = config.bootstrap.ranker
    run_dir = tempfile.mkdtemp(prefix="shopray-bootstrap-ranker-")  # checkpoints: the registry keeps the model
    argv = ["--run-dir", run_dir,"--no-homedepot", "--synthetic-queries", str(r.synthetic_queries), "--max-steps", str(r.max_steps), "--eval-every", str(max(1, r.max_steps // 2)),
            "--batch-size", str(r.batch_size), "--lr", str(r.lr), "--max-length", str(r.max_length), "--layers", str(r.layers), "--seed", str(r.seed), "--threads", str(threads),
            "--alias", "none", "--no-progress", "--time-budget-min", "600"]
    if config.ranker.registry:
        argv += ["--registry", str(config.ranker.registry)]
    try:
        return train_ranker(ranker_args(argv), progress=reporter.update, card_data=card, products=products)["version"]
    finally:
        shutil.rmtree(run_dir, ignore_errors=True)


@ray.remote(num_cpus=1, max_retries=0)
def _train_all(jobs: list[Job], config: dict) -> dict[str, str]:
    """Runs on the cluster: each job in turn; a failure is recorded in its progress file and the next job still runs."""
    app = AppConfig.model_validate(config)
    out = {}
    # Every job reports from the start (queued), so replicas say *_warming for what comes later too.
    reporters = [progress.Reporter(AutoModel(job.kind, getattr(app.bootstrap, job.kind), getattr(app, job.kind).registry).registry, job.kind, job.key) for job in jobs]
    for job, reporter in zip(jobs, reporters):
        try:
            out[job.kind] = _train(job, app, reporter)
        except Exception as exc:  # the app keeps answering without the model, and says so
            reporter.fail(f"{type(exc).__name__}: {exc}")
            out[job.kind] = f"failed: {type(exc).__name__}: {exc}"
        else:
            reporter.close()
    return out


def start(config: AppConfig, jobs: list[Job]) -> ray.ObjectRef:
    return _train_all.remote(jobs, config.model_dump(mode="json"))


def watch(config: AppConfig, jobs: list[Job], task: ray.ObjectRef, out: TextIO, poll_s: float = 1.0) -> dict[str, str]:
    """Progress bars with an ETA for each job until the task ends; returns {kind: version or 'failed: ...'}."""
    bars = {job.kind: tqdm(total=100, desc=f"training {job.kind}: waiting", file=out, bar_format="{percentage:3.0f}%|{bar}| {desc}") for job in jobs}
    registries = {job.kind: AutoModel(job.kind, getattr(config.bootstrap, job.kind), getattr(config, job.kind).registry).registry for job in jobs}
    while True:
        ready, _ = ray.wait([task], timeout=poll_s)
        for job in jobs:
            state = progress.read(registries[job.kind], job.kind, job.key)
            if state is not None:
                bar = bars[job.kind]
                bar.n = round(100 * state.done)
                eta = f", ETA {state.eta_s / 60:.1f} min" if state.eta_s is not None else ""
                bar.set_description_str(f"training {job.kind}: {state.phase}{eta}", refresh=True)
        if ready:
            break
        time.sleep(0)
    result = ray.get(task)
    for kind, bar in bars.items():
        if not str(result.get(kind, "")).startswith("failed"):
            bar.n = 100
            bar.set_description_str(f"training {kind}: registered {result[kind]}", refresh=True)
        bar.close()
    return result
