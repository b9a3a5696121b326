"""Pod templates and Ray groups inside any manifest, with their JSON paths."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Iterator

GPU = "nvidia.com/gpu"
# Where each Ray CRD keeps its RayClusterSpec.
CLUSTER_PATHS = {"RayService": ["spec", "rayClusterConfig"], "RayJob": ["spec", "rayClusterSpec"], "RayCluster": ["spec"]}
WORKLOADS = {"Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Job"}


def get(node, path: list):
    for step in path:
        try:
            node = node[step]
        except (KeyError, IndexError, TypeError):
            return None
    return node


def cpu_quantity(value) -> float:
    """Kubernetes CPU quantity: 2, "2", "500m"."""
    text = str(value)
    return float(text[:-1]) / 1000 if text.endswith("m") else float(text)


@dataclass
class RayGroup:
    name: str  # "head" or the worker groupName
    path: list  # to the group spec
    spec: dict
    head: bool

    @property
    def pod(self) -> dict:
        return get(self.spec, ["template", "spec"]) or {}

    @property
    def ray_container(self) -> dict:
        # KubeRay treats the first container as the Ray container.
        return (self.pod.get("containers") or [{}])[0]

    def _resource(self, start_param: str, resource: str) -> float:
        """What Ray will advertise: rayStartParams wins, else KubeRay reads the container limit."""
        params = self.spec.get("rayStartParams") or {}
        if start_param in params:
            return float(params[start_param])
        limits = (self.ray_container.get("resources") or {}).get("limits") or {}
        return cpu_quantity(limits[resource]) if resource in limits else 0.0

    @property
    def cpus(self) -> float:
        # Ray rounds a fractional CPU limit up.
        return float(math.ceil(self._resource("num-cpus", "cpu")))

    @property
    def gpus(self) -> float:
        return self._resource("num-gpus", GPU)

    @property
    def max_pods(self) -> int:
        most = self.spec.get("maxReplicas")
        # A non-integer is the CRD check's to report; count it as no pods here.
        return 1 if self.head else most if isinstance(most, int) else 0


def ray_cluster(doc: dict) -> tuple[list, dict] | tuple[None, None]:
    path = CLUSTER_PATHS.get(doc.get("kind"))
    cluster = get(doc, path) if path else None
    return (path, cluster) if isinstance(cluster, dict) else (None, None)


def ray_groups(doc: dict) -> list[RayGroup]:
    path, cluster = ray_cluster(doc)
    if cluster is None:
        return []
    groups = [RayGroup("head", path + ["headGroupSpec"], cluster.get("headGroupSpec") or {}, True)]
    for i, spec in enumerate(cluster.get("workerGroupSpecs") or []):
        groups.append(RayGroup(spec.get("groupName", f"#{i}"), path + ["workerGroupSpecs", i], spec, False))
    return groups


def pod_specs(doc: dict) -> Iterator[tuple[list, dict]]:
    """(path, pod spec) for every pod template the object will create."""
    kind = doc.get("kind")
    if kind in WORKLOADS:
        yield ["spec", "template", "spec"], get(doc, ["spec", "template", "spec"]) or {}
    elif kind == "CronJob":
        yield ["spec", "jobTemplate", "spec", "template", "spec"], get(doc, ["spec", "jobTemplate", "spec", "template", "spec"]) or {}
    elif kind == "Pod":
        yield ["spec"], doc.get("spec") or {}
    for group in ray_groups(doc):
        yield group.path + ["template", "spec"], group.pod
    if kind == "RayJob" and get(doc, ["spec", "submitterPodTemplate", "spec"]):
        yield ["spec", "submitterPodTemplate", "spec"], doc["spec"]["submitterPodTemplate"]["spec"]


def containers(pod: dict) -> Iterator[tuple[list, dict]]:
    for key in ("initContainers", "containers"):
        for i, container in enumerate(pod.get(key) or []):
            yield [key, i], container
