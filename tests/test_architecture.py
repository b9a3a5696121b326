"""The house rules, checked: one package per stage declared by one spec, no import cycles, stages without Ray."""

from __future__ import annotations

import ast
import graphlib
import importlib
import subprocess
import sys
from pathlib import Path

import pytest

from shopray.config import AppConfig
from shopray.pipeline import STAGES

SOURCE_ROOT = Path(__file__).resolve().parents[1] / "platform"
PACKAGE = SOURCE_ROOT / "shopray"


def _modules() -> dict[str, Path]:
    out = {}
    for f in PACKAGE.rglob("*.py"):
        parts = list(f.relative_to(SOURCE_ROOT).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = f
    return out


def _imports(module: str, path: Path, modules: dict[str, Path]) -> set[str]:
    """The project modules ``module`` imports anywhere in its file, function bodies included."""
    found = set()
    is_package = path.name == "__init__.py"
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = module.split(".") if is_package else module.split(".")[:-1]
                base = ".".join(anchor[: len(anchor) - node.level + 1] + ([base] if base else []))
            names = [f"{base}.{a.name}" for a in node.names] + [base]
        else:
            continue
        for name in names:
            while name and name not in modules:
                name = name.rpartition(".")[0]
            # A submodule importing its own package's __init__ is how Python loads it, not a dependency.
            if name and name != module and not module.startswith(name + "."):
                found.add(name)
    return found


def test_no_package_named_platform_shadows_the_standard_module():
    assert not (SOURCE_ROOT / "__init__.py").exists()


def test_no_import_cycles_counting_function_local_imports():
    modules = _modules()
    graph = {m: _imports(m, f, modules) for m, f in modules.items()}
    try:
        graphlib.TopologicalSorter(graph).prepare()
    except graphlib.CycleError as exc:
        pytest.fail(f"import cycle: {' -> '.join(exc.args[1])}")


def test_stage_code_never_imports_ray_except_its_deployment():
    """Stages are plain classes, testable without Ray; Serve wraps them in deployment.py."""
    offenders = []
    for module, path in _modules().items():
        if module.startswith("shopray.stages.") and path.name != "deployment.py" and not module.endswith(".ingest"):
            tree = ast.parse(path.read_text(encoding="utf-8"))
            for node in ast.walk(tree):
                names = [a.name for a in node.names] if isinstance(node, ast.Import) else [node.module or ""] if isinstance(node, ast.ImportFrom) else []
                offenders += [f"{module}: {n}" for n in names if n == "ray" or n.startswith("ray.")]
    assert offenders == []


def test_every_stage_is_one_package_declared_by_one_spec():
    config = AppConfig()
    assert [s.key for s in STAGES] == ["parse", "retrieve", "rank", "diversify"]
    assert len({s.label for s in STAGES}) == len({s.deployment for s in STAGES}) == len(STAGES)
    for spec in STAGES:
        package = spec.build.__self__.__module__.rsplit(".", 1)[0]  # Stage.from_config
        assert package == f"shopray.stages.{spec.key}", spec
        assert (PACKAGE / "stages" / spec.key / "spec.py").exists()
        assert spec.budget_s(config) > 0  # the label names the AppConfig section holding budget_ms
        if spec.deployment_class:
            module, name = spec.deployment_class.split(":")
            assert module == f"shopray.stages.{spec.key}.deployment"
            assert getattr(importlib.import_module(module), name)
    assert [s.key for s in STAGES if not s.soft] == ["retrieve"]  # the only stage whose failure is a 503


def _undescribed(model, path: str = "") -> list[str]:
    missing = []
    for name, field in model.model_fields.items():
        if not field.description:
            missing.append(f"{path}{name}")
        annotation = field.annotation
        if isinstance(annotation, type) and hasattr(annotation, "model_fields"):
            missing += _undescribed(annotation, f"{path}{name}.")
    return missing


def test_every_config_field_is_described_and_unknown_fields_are_errors():
    assert _undescribed(AppConfig) == []
    with pytest.raises(ValueError, match="budgets"):
        AppConfig.model_validate({"budgets": {"parse_ms": 1}})


def test_ruff_finds_no_unused_code_or_unsorted_imports():
    """Unused imports and variables are dead code (pyproject's [tool.ruff] says what is checked)."""
    root = SOURCE_ROOT.parent
    proc = subprocess.run([sys.executable, "-m", "ruff", "check", "platform", "tests", "benchmarks"], cwd=root, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout[-4000:]


def test_project_imports_sit_at_the_top_of_modules_except_in_command_entry_points():
    """A function-local import hides a dependency; only the CLI defers them, so `shopray search` and --help start fast."""
    entry_points = {"shopray.cli", "shopray.tuning"}
    hidden = []
    for module, path in _modules().items():
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                for inner in ast.walk(node):
                    name = inner.module if isinstance(inner, ast.ImportFrom) else inner.names[0].name if isinstance(inner, ast.Import) else None
                    if name and (name.startswith("shopray") or getattr(inner, "level", 0)) and module not in entry_points:
                        hidden.append(f"{module}.{node.name}: {name}")
    assert hidden == []
