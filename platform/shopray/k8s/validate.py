"""`shopray k8s validate`: every object of a kustomize build, against the real schemas.

- ray.io objects: the KubeRay CRDs in ../shared/kuberay-crds (crds.py);
- everything else: the Kubernetes OpenAPI schemas shipped in kubernetes-validate
  (offline, strict: unknown fields are errors);
- serveConfigV2: Ray's ServeDeploySchema and deploy-time checks, import paths,
  shopray's AppConfig (servecheck.py);
- what KubeRay rejects at reconcile time and whether Serve fits (kuberay.py);
- shopray's rules: resources, secrets, disruption budgets (policy.py).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import kubernetes_validate

from shopray.k8s import kuberay, policy, servecheck
from shopray.k8s.crds import CRDSet
from shopray.k8s.problems import Problem, describe, path_text, schema_message

# The oldest Kubernetes the manifests promise to apply on; kubernetes-validate
# ships its schemas (1.25-1.37) in the wheel, so this works offline.
K8S_VERSION = "1.32"


@dataclass
class Report:
    name: str
    objects: int = 0
    checked: list[str] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    def text(self) -> str:
        lines = [f"== {self.name}: {self.objects} objects, {len(self.problems)} problem(s)"]
        lines += [f"  ok   {c}" for c in self.checked]
        lines += [f"  FAIL {p}" for p in self.problems]
        return "\n".join(lines)


def _core(doc: dict, version: str) -> tuple[list[Problem], str]:
    try:
        kubernetes_validate.validate(doc, version, strict=True)
    except kubernetes_validate.ValidationError as e:
        return [Problem(describe(doc), path_text(doc, e.absolute_path), schema_message(e), "k8s")], ""
    except kubernetes_validate.SchemaNotFoundError as e:
        return [Problem(describe(doc), "", e.message, "k8s")], ""
    return [], f"Kubernetes {version} schema"


def _custom(doc: dict, crds: CRDSet) -> tuple[list[Problem], str]:
    missing, errors = crds.errors(doc)
    if missing:
        return [Problem(describe(doc), "", missing, "crd")], ""
    problems = [Problem(describe(doc), path_text(doc, e.absolute_path), schema_message(e), "crd") for e in errors]
    return problems, f"KubeRay CRD {doc['apiVersion']}"


def validate_docs(name: str, docs: list[dict], crds: CRDSet, version: str = K8S_VERSION) -> Report:
    report = Report(name, objects=len(docs))
    for doc in docs:
        problems, how = _custom(doc, crds) if crds.handles(doc) else _core(doc, version)
        checks = [how]
        if doc.get("kind") == "RayService":
            problems += servecheck.check(doc.get("spec", {}).get("serveConfigV2") or "", describe(doc))
            checks.append("serveConfigV2 (ServeDeploySchema, import path, AppConfig)")
        problems += kuberay.check(doc) + policy.check(doc, docs)
        report.problems += problems
        if not problems:
            report.checked.append(f"{describe(doc)}: {', '.join(checks)}, policy")
    return report


def load_crds(directory: Path) -> CRDSet:
    if not Path(directory).is_dir():
        raise FileNotFoundError(f"KubeRay CRDs not found at {directory}: pass --crds DIR or set SHOPRAY_KUBERAY_CRDS")
    return CRDSet.load(directory)
