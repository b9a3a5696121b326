"""`shopray k8s {render,validate}`: the KubeRay manifests in k8s/, kept in step with deployments/.

    shopray k8s render                     regenerate overlays/*/generated/ and print both builds
    shopray k8s render --overlay prod      ... one overlay: pipe it to `kubectl apply -f -`
    shopray k8s render --check             fail if a generated file is out of date (CI)
    shopray k8s validate                   drift check + kustomize build + every check, both overlays
    shopray k8s validate --manifest F      validate an already-built YAML stream
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import yaml

from shopray.k8s.layout import OVERLAY_SOURCES, Layout
from shopray.k8s.render import build, check_drift, kustomize_build, write_generated
from shopray.k8s.validate import K8S_VERSION, load_crds, validate_docs


def _overlays(choice: str) -> list[str]:
    return list(OVERLAY_SOURCES) if choice == "all" else [choice]


def _drift(layout: Layout, overlays: list[str], tuning: Path | None) -> int:
    drifts = [d for o in overlays for d in check_drift(layout, o, tuning)]
    for d in drifts:
        print(f"DRIFT {d}", file=sys.stderr)
    if drifts:
        print("the checked-in k8s manifests do not match deployments/ and tuning/: run `shopray k8s render` and commit k8s/", file=sys.stderr)
    return 1 if drifts else 0


def cmd_render(ns: argparse.Namespace, layout: Layout) -> int:
    overlays = _overlays(ns.overlay)
    if ns.check:
        rc = _drift(layout, overlays, ns.tuning)
        if rc == 0:
            print(f"k8s generated files are up to date ({', '.join(overlays)})", file=sys.stderr)
        return rc
    for overlay in overlays:
        for path in write_generated(layout, overlay, ns.tuning):
            print(f"wrote {path.relative_to(layout.root)}", file=sys.stderr)
    for overlay in overlays:
        built = kustomize_build(layout.overlay(overlay))
        if ns.out:
            target = Path(ns.out) / f"{overlay}.yaml"
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(built)
            print(f"built {target}", file=sys.stderr)
        else:
            sys.stdout.write((f"# overlay: {overlay}\n---\n" if len(overlays) > 1 else "") + built)
    return 0


def cmd_validate(ns: argparse.Namespace, layout: Layout) -> int:
    crds = load_crds(Path(ns.crds) if ns.crds else layout.crds())
    if ns.manifest:
        docs = [d for d in yaml.safe_load_all(Path(ns.manifest).read_text()) if d]
        reports = [validate_docs(ns.manifest, docs, crds, ns.k8s_version)]
        rc = 0
    else:
        overlays = _overlays(ns.overlay)
        rc = _drift(layout, overlays, ns.tuning)
        reports = [validate_docs(f"k8s/overlays/{o}", build(layout, o), crds, ns.k8s_version) for o in overlays]
    for report in reports:
        print(report.text())
    return 1 if rc or not all(r.ok for r in reports) else 0


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="shopray k8s", description="Render and validate the KubeRay manifests in k8s/.")
    parser.add_argument("--root", default=None, help="checkout root (default: the one this package lives in)")
    sub = parser.add_subparsers(dest="command", required=True)
    for name, help_ in (("render", "regenerate k8s/overlays/*/generated/ from deployments/ and tuning/, then kustomize"),
                        ("validate", "check drift, build with kustomize and validate every object")):
        p = sub.add_parser(name, help=help_)
        p.add_argument("--overlay", choices=[*OVERLAY_SOURCES, "all"], default="all")
        p.add_argument("--tuning", type=Path, default=None, help="sweep directory (default: tuning/)")
    render_p, validate_p = sub.choices["render"], sub.choices["validate"]
    render_p.add_argument("--check", action="store_true", help="write nothing; exit 1 if a generated file is out of date")
    render_p.add_argument("--out", default=None, help="write <overlay>.yaml here instead of printing")
    validate_p.add_argument("--crds", default=None, help="KubeRay CRD directory (default: ../shared/kuberay-crds)")
    validate_p.add_argument("--k8s-version", default=K8S_VERSION, help=f"Kubernetes schema version (default {K8S_VERSION})")
    validate_p.add_argument("--manifest", default=None, help="validate this built YAML stream instead of the overlays")
    ns = parser.parse_args(argv)
    layout = Layout.find(ns.root)
    try:
        return (cmd_render if ns.command == "render" else cmd_validate)(ns, layout)
    except (RuntimeError, FileNotFoundError) as e:
        print(f"shopray k8s {ns.command}: {e}", file=sys.stderr)
        return 2
