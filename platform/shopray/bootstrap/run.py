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
from pathlib import Path
from typing import TextIO

import ray
from tqdm import tqdm

from shopray.bootstrap import progress
from shopray.bootstrap.keys import AUTO, AutoModel, Kind, can_train, find, is_structured
from shopray.catalog import catalog_sha256, load_products
from shopray.config import PARSER_SIZES, AppConfig
from shopray.registry import Registry, model_label
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
        student = config.bootstrap.ranker.student_layers
        if student:
            why += f", distilled into its first {student} layers"
        if found is not None and (not student or is_student(auto.registry, found)):
            out.lines.append(f"ranker: the cross-encoder {model_label(found)} ({why})")
        elif found is not None:
            out.jobs.append(Job("ranker", auto.key(manifest.catalog_sha256)))
            out.lines.append(f"ranker: the cross-encoder {model_label(found)} answers while its {student}-layer student is distilled ({why})")
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
    return _train_ranker(job.key, config, reporter, card, products, threads)


# The teacher's share of the ranker job's time, for its progress bar (2.7 and 8 minutes on 2 AVX2 cores).
TEACHER_SHARE = 0.25


def _train_ranker(key: str, config: AppConfig, reporter: progress.Reporter, card: dict, products: list, threads: int) -> str:
    """The cross-encoder, then (``student_layers``) its distilled student; each is registered with the key as it is
    done, so replicas serve the teacher while the student learns. A job stopped after the teacher resumes there."""
    r = config.bootstrap.ranker
    registry = AutoModel("ranker", r, config.ranker.registry).registry
    common = ["--no-homedepot", "--batch-size", str(r.batch_size), "--max-length", str(r.max_length), "--seed", str(r.seed), "--threads", str(threads),
              "--alias", "none", "--no-progress", "--time-budget-min", "600", *(["--registry", str(config.ranker.registry)] if config.ranker.registry else [])]
    share = TEACHER_SHARE if r.student_layers else 1.0
    found = find(registry, "ranker", key)
    if found is None:
        argv = common + ["--synthetic-queries", str(r.synthetic_queries), "--max-steps", str(r.max_steps), "--eval-every", str(max(1, r.max_steps // 2)),
                         "--lr", str(r.lr), "--layers", str(r.layers)]
        version = _run_ranker(argv, lambda phase, done: reporter.update(phase, share * done), {**card, "bootstrap_role": "teacher"}, products)
        found = registry.path("ranker", version)
    if not r.student_layers or is_student(registry, found):
        return found.name
    argv = common + ["--synthetic-queries", str(r.student_queries), "--eval-every", "200", "--lr", str(r.student_lr),
                     "--init", str(found), "--teacher", str(found), "--layers", str(r.student_layers)]
    return _run_ranker(argv, lambda phase, done: reporter.update(f"student: {phase}", share + (1 - share) * done), {**card, "bootstrap_role": "student"}, products)


def _run_ranker(argv: list[str], report, card: dict, products: list) -> str:
    run_dir = tempfile.mkdtemp(prefix="shopray-bootstrap-ranker-")  # checkpoints: the registry keeps the model
    try:
        return train_ranker(ranker_args(["--run-dir", run_dir, *argv]), progress=report, card_data=card, products=products)["version"]
    finally:
        shutil.rmtree(run_dir, ignore_errors=True)


def is_student(registry: Registry, model: Path) -> bool:
    """Whether a bootstrapped ranker is the distilled student (else the cross-encoder it learns from)."""
    return registry.card("ranker", model.name).data.get("bootstrap_role") == "student"


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
