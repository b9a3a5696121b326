"""Dotted paths into nested settings: how a sweep file names what it fixes and searches ("app.ranker.top_n")."""

from __future__ import annotations

import copy
from typing import Any

import yaml


def flatten(d: dict, prefix: str = "") -> dict[str, Any]:
    out = {}
    for k, v in d.items():
        if isinstance(v, dict):
            out.update(flatten(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = v
    return out


def apply_dotted(base: dict, params: dict[str, Any]) -> dict:
    """A deep copy of ``base`` with each dotted key set: {"app.ranker.top_n": 20} -> base["app"]["ranker"]["top_n"]."""
    out = copy.deepcopy(base)
    for key, value in params.items():
        node = out
        parts = key.split(".")
        for part in parts[:-1]:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise KeyError(f"{key!r}: {part!r} is not a section")
        node[parts[-1]] = value
    return out


def lookup(d: dict, key: str) -> Any:
    node: Any = d
    for part in key.split("."):
        if not isinstance(node, dict) or part not in node:
            return None
        node = node[part]
    return node


def assignments(items: list[str]) -> dict[str, Any]:
    """``--set`` arguments, each ``dotted.key=value`` with the value read as YAML: {"dotted.key": value}."""
    out: dict[str, Any] = {}
    for item in items:
        key, _, value = item.partition("=")
        out[key] = yaml.safe_load(value)
    return out
