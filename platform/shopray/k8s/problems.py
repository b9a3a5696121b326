"""Validation findings, worded for the person who has to fix the manifest."""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass

import jsonschema


@dataclass(frozen=True)
class Problem:
    where: str  # "RayService shopray-dev/shopray"
    path: str  # "spec.rayClusterConfig.workerGroupSpecs[1](gpu).template.spec"
    message: str
    check: str  # which validator found it: crd, k8s, serve, policy

    def __str__(self) -> str:
        at = f" at {self.path}" if self.path else ""
        return f"[{self.check}] {self.where}{at}: {self.message}"


def describe(doc: dict) -> str:
    meta = doc.get("metadata") or {}
    ns = f"{meta['namespace']}/" if meta.get("namespace") else ""
    return f"{doc.get('kind', '?')} {ns}{meta.get('name', '?')}"


def path_text(doc, path) -> str:
    """JSON path with list items named: workerGroupSpecs[1](gpu), containers[0](ray-worker)."""
    parts: list[str] = []
    node = doc
    for step in path:
        if isinstance(step, int):
            label = ""
            if isinstance(node, list) and step < len(node) and isinstance(node[step], dict):
                item = node[step]
                label = item.get("groupName") or item.get("name") or ""
            parts[-1:] = [f"{parts[-1] if parts else ''}[{step}]" + (f"({label})" if label else "")]
        else:
            parts.append(str(step))
        try:
            node = node[step]
        except (KeyError, IndexError, TypeError):
            node = None
    return ".".join(parts)


def _known_fields(error: jsonschema.ValidationError) -> list[str]:
    return sorted((error.schema or {}).get("properties", {}))


def schema_message(error: jsonschema.ValidationError) -> str:
    """jsonschema's wording, rephrased for the common cases."""
    if error.validator == "additionalProperties":
        unexpected = re.findall(r"'([^']+)'", error.message.split("(")[-1])
        known = _known_fields(error)
        hints = []
        for name in unexpected:
            close = difflib.get_close_matches(name, known, n=1)
            hints.append(f"unknown field '{name}'" + (f" (did you mean '{close[0]}'?)" if close else ""))
        listing = f". Fields allowed here: {', '.join(known)}" if len(known) <= 15 else ""
        return "; ".join(hints) + listing
    if error.validator == "required":
        return f"missing required field {error.message.split(' is a required')[0]}"
    if error.validator == "type":
        return f"expected {error.validator_value}, got {error.instance!r}"
    if error.validator == "enum":
        return f"{error.instance!r} is not allowed; one of {error.validator_value}"
    return error.message
