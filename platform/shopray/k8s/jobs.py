"""RayJobs stamped from k8s/templates/rayjob.yaml: one indexing job, one per sweep."""

from __future__ import annotations

import copy
import re
from pathlib import Path

import yaml

from shopray.k8s.kuberay import MAX_NAME

# Where the image keeps the checkout's files (Dockerfile: WORKDIR /app).
IMAGE_ROOT = "/app"
INDEX_DEADLINE_S = 2 * 3600
SWEEP_DEADLINE_S = 8 * 3600


def job_name(prefix: str, stem: str) -> str:
    """A DNS-1035 label: lowercase alphanumerics and '-', starting with a letter."""
    slug = re.sub(r"[^a-z0-9-]+", "-", stem.lower()).strip("-")
    return f"{prefix}-{slug}"[: MAX_NAME["RayJob"]].rstrip("-")


def _stamp(template: dict, name: str, kind: str, entrypoint: str, deadline_s: int) -> dict:
    job = copy.deepcopy(template)
    job["metadata"] = {"name": name, "labels": {"app.kubernetes.io/name": "shopray-job", "shopray.io/job": kind}}
    job["spec"]["entrypoint"] = entrypoint
    # Past this the operator stops the job and tears its cluster down: a hung
    # sweep must not hold GPUs forever.
    job["spec"]["activeDeadlineSeconds"] = deadline_s
    return job


def index_job(template: dict, source: str, catalog: str, index: str) -> dict:
    """Index the catalog, then train the models `model: auto` names for it (the replicas swap them in when registered)."""
    config = f"--config {IMAGE_ROOT}/{source} --catalog {catalog}"
    entrypoint = f"shopray index {config} --name {index} && shopray bootstrap {config}"
    return _stamp(template, job_name("index", index), "index", entrypoint, INDEX_DEADLINE_S)


def sweep_job(template: dict, sweep: Path, tuning_dir: Path) -> dict:
    rel = sweep.relative_to(tuning_dir.parent).as_posix()
    entrypoint = f"shopray tune --config {IMAGE_ROOT}/{rel}"
    return _stamp(template, job_name("sweep", sweep.stem), "sweep", entrypoint, SWEEP_DEADLINE_S)


def sweep_files(tuning_dir: Path) -> list[Path]:
    return sorted(p for p in tuning_dir.glob("*.yaml") if p.is_file()) if tuning_dir.is_dir() else []


def load_template(path: Path) -> dict:
    return yaml.safe_load(path.read_text())
