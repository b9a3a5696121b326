"""Ray Tune sweeps (`shopray tune`): sweep-file validation, real tiny sweeps, outputs, registration, resume."""

from __future__ import annotations

import json
import os
import signal
from pathlib import Path

import pytest
import yaml
from ray.tune import Callback

from shopray.tuning.spec import SweepSpec, load_spec

REPO = Path(__file__).resolve().parents[2]


def _write(path: Path, data: dict) -> Path:
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def _ranker_sweep(storage: Path) -> dict:
    return {
        "name": "ranker-tiny",
        "trainable": "ranker",
        "num_samples": 2,
        "max_concurrent_trials": 2,
        "resources_per_trial": {"cpu": 1},
        "serve_headroom_cpus": 0,
        "scheduler": {"type": "asha", "max_t": 2, "grace_period": 1, "reduction_factor": 2},
        "search": {"algorithm": "random", "seed": 1},
        "storage": str(storage),
        "winner": {"alias": "candidate", "full_eval": True},
        "fixed": {"homedepot": False, "synthetic_queries": 40, "max_steps": 4, "eval_every": 2, "val_queries": 8, "max_length": 32, "batch_size": 8},
        "search_space": {"lr": {"type": "loguniform", "low": 1e-5, "high": 1e-4}, "warmup": {"type": "uniform", "low": 0.0, "high": 0.2}},
    }


def _pipeline_sweep(storage: Path, app_config) -> dict:
    return {
        "name": "pipeline-tiny",
        "trainable": "pipeline",
        "num_samples": 3,
        "max_concurrent_trials": 1,
        "serve_headroom_cpus": 0,
        "scheduler": {"type": "fifo"},
        "search": {"algorithm": "optuna", "seed": 0, "start_from_defaults": True},
        "storage": str(storage),
        "fixed": {
            "diversity_weight": 0.1,
            # small_catalog is generate_demo_catalog(n=400, seed=11): synthetic judgments over the same products
            "judgments": {"source": "synthetic", "queries": 6, "seed": 11, "catalog_size": 400},
            "app": {"index": {"name": app_config.index.name, "root": str(app_config.index.root), "qdrant_url": None}, "embedding": {"device": "cpu"}, "parser": {"kind": "rule"}},
        },
        "search_space": {
            "app.retriever.candidates": {"type": "choice", "values": [30, 100]},
            "app.retriever.dense_weight": {"type": "uniform", "low": 0.0, "high": 2.0},
            "app.diversifier.default_diversity": {"type": "uniform", "low": 0.0, "high": 0.5},
        },
    }


# ---------------------------------------------------------------------------- the sweep file


@pytest.mark.parametrize("path", sorted((REPO / "tuning").glob("*.yaml")), ids=lambda p: p.stem)
def test_shipped_sweeps_validate(path):
    spec = load_spec(path)
    assert spec.name == path.stem
    assert spec.max_concurrent_trials * spec.resources_per_trial.cpu <= 2  # fits a 2-core box beside Serve


@pytest.mark.parametrize(
    "change, message",
    [
        ({"colour": 1}, "colour"),
        ({"search_space": {"lr": {"type": "loguniform", "low": 1e-3, "high": 1e-5}}}, "low"),
        ({"search_space": {"lr": {"type": "loguniform", "low": 0, "high": 1e-5}}}, "low"),
        ({"search_space": {"learning_rate": {"type": "uniform", "low": 0, "high": 1}}}, "learning_rate"),
        ({"search_space": {"batch_size": {"type": "choice", "values": [0, 8]}}}, "batch_size"),
        ({"search_space": {"max_steps": {"type": "choice", "values": [4, 8]}}}, "both fixed and searched"),
        ({"metric": "accuracy"}, "accuracy"),
        ({"scheduler": {"type": "asha", "max_t": 2, "grace_period": 5}}, "grace_period"),
        ({"trainable": "embedder"}, "trainable"),
        ({"name": "Bad Name"}, "name"),
    ],
)
def test_bad_sweep_files_fail_with_the_field(tmp_path, change, message):
    data = {**_ranker_sweep(tmp_path), **change}
    with pytest.raises(ValueError, match=message):
        SweepSpec.model_validate(data)


def test_pipeline_keys_are_checked_against_appconfig(tmp_path):
    data = {"name": "p", "trainable": "pipeline", "storage": str(tmp_path), "search_space": {"app.retriever.candidatez": {"type": "choice", "values": [10]}}}
    with pytest.raises(ValueError, match="candidatez"):
        SweepSpec.model_validate(data)
    data["search_space"] = {"app.retriever.candidates": {"type": "choice", "values": [0, 10]}}
    with pytest.raises(ValueError, match="candidates"):
        SweepSpec.model_validate(data)


def test_cli_rejects_a_bad_file_before_ray(tmp_path, capsys):
    from shopray.cli import main

    bad = _write(tmp_path / "bad.yaml", {**_ranker_sweep(tmp_path), "num_sampels": 3})
    assert main(["tune", str(bad)]) == 2
    assert "num_sampels" in capsys.readouterr().err
    good = _write(tmp_path / "good.yaml", _ranker_sweep(tmp_path))
    assert main(["tune", str(good), "--check"]) == 0


def test_defaults_point_is_the_untuned_config(tmp_path):
    from types import SimpleNamespace

    fake = SimpleNamespace(index=SimpleNamespace(name="test", root=tmp_path))
    spec = SweepSpec.model_validate(_pipeline_sweep(tmp_path, fake))
    assert spec.defaults_point() == {"app.retriever.candidates": 100, "app.retriever.dense_weight": 1.0, "app.diversifier.default_diversity": 0.0}


# ---------------------------------------------------------------------------- real sweeps


@pytest.fixture
def registry_home(tmp_path, monkeypatch):
    monkeypatch.setenv("SHOPRAY_HOME", str(tmp_path / "home"))
    return tmp_path / "home"


@pytest.mark.ray
def test_ranker_sweep_runs_asha_writes_outputs_and_registers_the_winner(tmp_path, ray_session, registry_home):
    from shopray.registry import Registry
    from shopray.tuning.runner import run_sweep

    run = run_sweep(SweepSpec.model_validate(_ranker_sweep(tmp_path / "tune")))
    assert not run.interrupted and run.path.parent == tmp_path / "tune" / "ranker-tiny"
    summary = json.loads(Path(run.outputs["summary"]).read_text())
    assert summary["trials"] == 2 and summary["errored"] == 0
    for name in ("results.csv", "results.md", "metric.png", "summary.json", "sweep.yaml"):
        assert (run.path / name).stat().st_size > 0, name
    assert "val_ndcg@10" in (run.path / "results.csv").read_text().splitlines()[0]

    reg = Registry()
    version = run.registered["version"]
    assert reg.resolve("ranker", "candidate") == version
    card = reg.card("ranker", version)
    assert card.parent.startswith(f"sweep:ranker-tiny/{run.path.name}/trial:")
    assert card.metric == "ndcg@10" and 0 <= card.score <= 1 and "val_ndcg@10" in card.metrics
    assert len(card.data["train_pairs_sha256"]) == 64
    assert card.config["lr"] > 0 and card.config["max_steps"] == 4
    assert (reg.path("ranker", version) / "model.safetensors").exists()


class InterruptAfterFirstTrial(Callback):
    """Sends Tune's stop signal (SIGUSR1, as Ctrl+C would SIGINT) once, when the first trial completes."""

    def __init__(self, marker: str):
        self.marker = marker

    def on_trial_complete(self, iteration, trials, trial, **info):
        if not os.path.exists(self.marker):
            Path(self.marker).write_text(trial.trial_id)
            os.kill(os.getpid(), signal.SIGUSR1)


@pytest.mark.ray
def test_an_interrupted_sweep_resumes_without_redoing_finished_trials(tmp_path, app_config, registry_home):
    from shopray.tuning.runner import run_sweep

    spec = SweepSpec.model_validate(_pipeline_sweep(tmp_path / "tune", app_config))
    marker = tmp_path / "interrupted"
    first = run_sweep(spec, callbacks=[InterruptAfterFirstTrial(str(marker))])
    assert marker.exists() and first.interrupted
    done_id = marker.read_text()
    done_dir = next(p for p in first.path.iterdir() if done_id in p.name)
    before = (done_dir / "result.json").read_text()

    second = run_sweep(spec, resume=True)
    assert second.path == first.path and not second.interrupted
    summary = json.loads(Path(second.outputs["summary"]).read_text())
    assert summary["trials"] == 3 and summary["terminated"] == 3
    assert (done_dir / "result.json").read_text() == before  # the finished trial was not run again
    rows = (second.path / "results.csv").read_text().splitlines()
    assert len(rows) == 4 and "objective" in rows[0]
    sessions = [json.loads(line) for line in (second.path / "sessions.jsonl").read_text().splitlines()]
    assert [s["interrupted"] for s in sessions] == [True, False] and sessions[1]["resumed"]


@pytest.mark.ray
def test_parser_sweep_reports_field_f1_and_registers_a_servable_model(tmp_path, ray_session, registry_home):
    from shopray.registry import Registry
    from shopray.tuning.runner import run_sweep

    spec = SweepSpec.model_validate({
        "name": "parser-tiny", "trainable": "parser", "num_samples": 2, "max_concurrent_trials": 2, "serve_headroom_cpus": 0,
        "scheduler": {"type": "asha", "max_t": 2, "grace_period": 1}, "storage": str(tmp_path / "tune"),
        "winner": {"alias": "candidate", "full_eval": False},  # full_eval scores through vLLM: too slow for a unit test
        "fixed": {"demo_size": 300, "examples": 300, "heldout": 16, "steps": 4, "eval_every": 2, "batch_size": 16, "vocab_size": 512},
        "search_space": {"model_size": {"type": "choice", "values": ["xs"]}, "lr": {"type": "loguniform", "low": 1e-3, "high": 5e-3}},
    })
    run = run_sweep(spec)
    summary = json.loads(Path(run.outputs["summary"]).read_text())
    assert summary["trials"] == 2 and summary["errored"] == 0
    card = Registry().card("parser", "candidate")
    assert card.metric == "val_field_f1" and 0 <= card.score <= 1
    assert card.parent.startswith("sweep:parser-tiny/") and len(card.data["train_sha256"]) == 64
    model_dir = Registry().path("parser", "candidate")
    assert (model_dir / "shopray_parser.json").exists() and (model_dir / "tokenizer.json").exists()
