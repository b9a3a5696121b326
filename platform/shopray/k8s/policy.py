"""shopray's own rules for the rendered manifests: resources, secrets, disruption budgets."""

from __future__ import annotations

import re

from shopray.k8s.pods import GPU, containers, get, pod_specs, ray_cluster, ray_groups
from shopray.k8s.problems import Problem, describe, path_text

# The Secrets the runbook creates; manifests may only reference these keys.
EXPECTED_SECRETS = {
    "shopray-app": {"SHOPRAY_ADMIN_KEY", "QDRANT_API_KEY"},
    "shopray-redis": {"password"},
}
SECRET_NAME = re.compile(r"(KEY|SECRET|PASSWORD|TOKEN|CREDENTIAL)", re.I)
BASIC = ("cpu", "memory")


def _containers(doc: dict) -> list[Problem]:
    out = []
    for pod_path, pod in pod_specs(doc):
        claims = get(doc, ["spec", "volumeClaimTemplates"]) if doc.get("kind") == "StatefulSet" else None
        volumes = {v.get("name") for v in pod.get("volumes") or []} | {get(c, ["metadata", "name"]) for c in claims or []}
        for c_path, container in containers(pod):
            if not container.get("image"):
                out.append(Problem(describe(doc), path_text(doc, pod_path + c_path), f"container {container.get('name')!r} has no image (a strategic-merge patch on a custom resource replaces lists whole: use a JSON patch)", "policy"))
            for m, mount in enumerate(container.get("volumeMounts") or []):
                if mount.get("name") not in volumes:
                    out.append(Problem(describe(doc), path_text(doc, pod_path + c_path + ["volumeMounts", m]), f"mounts volume {mount.get('name')!r}, which the pod does not declare", "policy"))
            at = path_text(doc, pod_path + c_path + ["resources"])
            res = container.get("resources") or {}
            requests, limits = res.get("requests") or {}, res.get("limits") or {}
            missing = [f"{kind}.{r}" for kind, have in (("requests", requests), ("limits", limits)) for r in BASIC if r not in have]
            if missing:
                out.append(Problem(describe(doc), at, f"container {container.get('name')!r} has no {', '.join(missing)}: every container needs cpu and memory requests and limits", "policy"))
            for name in sorted((set(requests) | set(limits)) - set(BASIC) - {"ephemeral-storage"}):
                if str(requests.get(name, limits.get(name))) != str(limits.get(name)):
                    out.append(Problem(describe(doc), at, f"{name}: requests ({requests.get(name)}) and limits ({limits.get(name)}) must be equal for an extended resource", "policy"))
    _, cluster = ray_cluster(doc)
    if cluster and cluster.get("enableInTreeAutoscaling"):
        res = get(cluster, ["autoscalerOptions", "resources"]) or {}
        if not all(r in (res.get(k) or {}) for k in ("requests", "limits") for r in BASIC):
            path, _ = ray_cluster(doc)
            out.append(Problem(describe(doc), path_text(doc, path + ["autoscalerOptions", "resources"]), "the autoscaler sidecar needs cpu and memory requests and limits", "policy"))
    return out


def _gpu_groups(doc: dict) -> list[Problem]:
    out = []
    for group in ray_groups(doc):
        pod = group.pod
        tolerated = any(t.get("key") == GPU for t in pod.get("tolerations") or [])
        pinned = pod.get("nodeSelector") or pod.get("affinity")
        if group.gpus <= 0:
            if tolerated:
                out.append(Problem(describe(doc), path_text(doc, group.path + ["template", "spec"]), f"group {group.name!r} tolerates GPU nodes but its pods ask for no {GPU}: they would take a GPU node and leave its GPUs idle; add {GPU} to the container's requests and limits", "policy"))
            continue
        if not (tolerated and pinned):
            out.append(Problem(describe(doc), path_text(doc, group.path + ["template", "spec"]), f"GPU group {group.name!r} needs a toleration for {GPU} and a nodeSelector (or affinity) for GPU nodes", "policy"))
    return out


def _secret_refs(doc: dict) -> list[Problem]:
    out = []
    if doc.get("kind") == "Secret":
        return [Problem(describe(doc), "", "Secrets are never kept in k8s/: create them with kubectl (README, Kubernetes runbook)", "policy")]

    def ref(at: str, name: str, key: str | None) -> None:
        keys = EXPECTED_SECRETS.get(name)
        if keys is None:
            out.append(Problem(describe(doc), at, f"references Secret {name!r}, which the runbook does not create; known: {', '.join(EXPECTED_SECRETS)}", "policy"))
        elif key is not None and key not in keys:
            out.append(Problem(describe(doc), at, f"references key {key!r} of Secret {name!r}; it has {', '.join(sorted(keys))}", "policy"))

    for pod_path, pod in pod_specs(doc):
        for c_path, container in containers(pod):
            base = pod_path + c_path
            for i, env in enumerate(container.get("env") or []):
                at = path_text(doc, base + ["env", i])
                if "value" in env and SECRET_NAME.search(env.get("name", "")):
                    out.append(Problem(describe(doc), at, f"{env['name']} is inlined; take it from a Secret with valueFrom.secretKeyRef", "policy"))
                secret = get(env, ["valueFrom", "secretKeyRef"])
                if secret:
                    ref(at, secret.get("name"), secret.get("key"))
            for i, source in enumerate(container.get("envFrom") or []):
                if source.get("secretRef"):
                    ref(path_text(doc, base + ["envFrom", i]), source["secretRef"].get("name"), None)
    path, cluster = ray_cluster(doc)
    password = get(cluster, ["gcsFaultToleranceOptions", "redisPassword"]) if cluster else None
    if password:
        at = path_text(doc, path + ["gcsFaultToleranceOptions", "redisPassword"])
        if "value" in password:
            out.append(Problem(describe(doc), at, "the Redis password is inlined; use valueFrom.secretKeyRef", "policy"))
        elif get(password, ["valueFrom", "secretKeyRef"]):
            ref(at, password["valueFrom"]["secretKeyRef"].get("name"), password["valueFrom"]["secretKeyRef"].get("key"))
    return out


def _covered_by_pdb(doc: dict, docs: list[dict]) -> list[Problem]:
    if doc.get("kind") != "RayService":
        return []
    selectors = [get(d, ["spec", "selector", "matchLabels"]) or {} for d in docs if d.get("kind") == "PodDisruptionBudget"]
    out = []
    for group in ray_groups(doc):
        labels = get(group.spec, ["template", "metadata", "labels"]) or {}
        if not group.head and not any(sel and sel.items() <= labels.items() for sel in selectors):
            out.append(Problem(describe(doc), path_text(doc, group.path), f"no PodDisruptionBudget selects the pods of Serve worker group {group.name!r} (labels {labels})", "policy"))
    return out


def check(doc: dict, docs: list[dict]) -> list[Problem]:
    return _containers(doc) + _gpu_groups(doc) + _secret_refs(doc) + _covered_by_pdb(doc, docs)
