"""What the KubeRay operator rejects after the API server accepted it, and whether
the Serve graph fits the cluster it is given.

The CRD schema cannot express these; KubeRay v1.7 checks the first group at
reconcile time (ray-operator/controllers/ray/utils/validation.go) and reports
them only as events on the object, long after `kubectl apply` said "created".
"""

from __future__ import annotations

import re

import yaml

from shopray.k8s.pods import get, ray_cluster, ray_groups
from shopray.k8s.problems import Problem, describe, path_text

# KubeRay appends 6 characters for the RayCluster name, which may be 53 long.
MAX_NAME = {"RayService": 47, "RayJob": 47, "RayCluster": 53}
DNS1035 = re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])?$")
SERVICE_UPGRADES = ("NewCluster", "NewClusterWithIncrementalUpgrade", "None")


def _operator(doc: dict) -> list[Problem]:
    kind, where, out = doc.get("kind"), describe(doc), []
    name = get(doc, ["metadata", "name"]) or ""
    if len(name) > MAX_NAME[kind] or not DNS1035.match(name):
        out.append(Problem(where, "metadata.name", f"must be a DNS-1035 label of at most {MAX_NAME[kind]} characters (KubeRay derives Service names from it)", "kuberay"))
    path, cluster = ray_cluster(doc)
    if cluster is None:
        if kind == "RayJob" and not get(doc, ["spec", "clusterSelector"]):
            out.append(Problem(where, "spec", "a RayJob needs spec.rayClusterSpec (or a clusterSelector)", "kuberay"))
        return out
    for group in ray_groups(doc):
        spec, at = group.spec, path_text(doc, group.path)
        if not group.pod.get("containers"):
            out.append(Problem(where, at, f"group {group.name!r} has no container", "kuberay"))
        if group.head:
            continue
        low, high, now = (spec.get(k) if isinstance(spec.get(k), int) else None for k in ("minReplicas", "maxReplicas", "replicas"))
        if low is not None and high is not None and low > high:
            out.append(Problem(where, at, f"minReplicas {low} is greater than maxReplicas {high}", "kuberay"))
        elif now is not None and low is not None and high is not None and not low <= now <= high:
            out.append(Problem(where, at, f"replicas {now} is outside minReplicas..maxReplicas ({low}..{high})", "kuberay"))
    head_env = {e.get("name") for e in (ray_groups(doc)[0].ray_container.get("env") or [])}
    if cluster.get("gcsFaultToleranceOptions"):
        for var in sorted(head_env & {"RAY_REDIS_ADDRESS", "REDIS_PASSWORD", "REDIS_USERNAME"}):
            out.append(Problem(where, path_text(doc, path + ["headGroupSpec"]), f"{var} must not be set on the head when gcsFaultToleranceOptions is used; KubeRay sets it", "kuberay"))
    if kind == "RayService":
        upgrade = get(doc, ["spec", "upgradeStrategy", "type"])
        if upgrade is not None and upgrade not in SERVICE_UPGRADES:
            out.append(Problem(where, "spec.upgradeStrategy.type", f"{upgrade!r} is not one of {', '.join(SERVICE_UPGRADES)}", "kuberay"))
    if kind == "RayJob":
        spec = doc["spec"]
        if spec.get("ttlSecondsAfterFinished") and not spec.get("shutdownAfterJobFinishes"):
            out.append(Problem(where, "spec.ttlSecondsAfterFinished", "only works with shutdownAfterJobFinishes: true", "kuberay"))
        for field in ("ttlSecondsAfterFinished", "activeDeadlineSeconds"):
            # shopray's rule: a job that outlives its purpose holds a whole cluster.
            if not isinstance(spec.get(field), int) or spec[field] <= 0:
                out.append(Problem(where, f"spec.{field}", "must be set to a positive number of seconds", "kuberay"))
    return out


def _demand(config: dict) -> list[tuple[int, int, dict, float, float, int]]:
    """(app index, deployment index, deployment, num_cpus, num_gpus, most replicas) per overridden deployment."""
    rows = []
    for a, app in enumerate(config.get("applications") or []):
        for d, dep in enumerate(app.get("deployments") or []):
            options = dep.get("ray_actor_options") or {}
            most = (dep.get("autoscaling_config") or {}).get("max_replicas") or dep.get("num_replicas") or 1
            rows.append((a, d, dep, float(options.get("num_cpus") or 0), float(options.get("num_gpus") or 0), int(most) if str(most).isdigit() else 1))
    return rows


def _serve_fits(doc: dict) -> list[Problem]:
    """Every replica must fit some group's pods, and the maxima must fit all of them.

    A replica that fits nowhere stays PENDING: Serve never becomes RUNNING and the
    RayService never becomes ready, with no error anywhere but Serve's status.
    """
    try:
        config = yaml.safe_load(get(doc, ["spec", "serveConfigV2"]) or "")
    except yaml.YAMLError:
        return []  # servecheck reports it
    if not isinstance(config, dict):
        return []
    where, out = describe(doc), []
    groups = ray_groups(doc)
    gpu_groups = [g for g in groups if g.gpus > 0]
    total_cpu, total_gpu = 0.0, 0.0
    for a, d, dep, cpus, gpus, most in _demand(config):
        at = f"spec.serveConfigV2 applications[{a}].deployments[{d}]({dep.get('name')})"
        total_cpu, total_gpu = total_cpu + cpus * most, total_gpu + gpus * most
        if gpus > 0 and not gpu_groups:
            out.append(Problem(where, at, f"asks for num_gpus={gpus:g} per replica, but no worker group gives its pods a GPU "
                               f"(no resources.limits['nvidia.com/gpu'] in any group of {path_text(doc, ray_cluster(doc)[0])}), "
                               "so these replicas would stay PENDING and the RayService would never become ready. "
                               "Add a GPU worker group, or set num_gpus to 0", "kuberay"))
        elif not any(g.cpus >= cpus and g.gpus >= gpus and g.max_pods > 0 for g in groups):
            out.append(Problem(where, at, f"one replica needs {cpus:g} CPU and {gpus:g} GPU, more than any group's pod offers "
                               f"({', '.join(f'{g.name}: {g.cpus:g} CPU/{g.gpus:g} GPU' for g in groups)})", "kuberay"))
    capacity_cpu = sum(g.cpus * g.max_pods for g in groups)
    capacity_gpu = sum(g.gpus * g.max_pods for g in groups)
    if total_cpu > capacity_cpu:
        out.append(Problem(where, "spec.serveConfigV2", f"at max_replicas the deployments need {total_cpu:g} CPUs; the groups offer at most {capacity_cpu:g} (raise maxReplicas or lower max_replicas)", "kuberay"))
    if gpu_groups and total_gpu > capacity_gpu:
        out.append(Problem(where, "spec.serveConfigV2", f"at max_replicas the deployments need {total_gpu:g} GPUs; the GPU groups offer at most {capacity_gpu:g} (raise maxReplicas or lower max_replicas)", "kuberay"))
    return out


def check(doc: dict) -> list[Problem]:
    if doc.get("kind") not in MAX_NAME:
        return []
    return _operator(doc) + (_serve_fits(doc) if doc["kind"] == "RayService" else [])
