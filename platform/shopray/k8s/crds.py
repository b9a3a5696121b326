"""Custom resources checked against the real KubeRay CRDs' openAPIV3Schema.

An openAPIV3Schema is almost JSON Schema; the API server adds three rules that
plain jsonschema does not know, applied here so that what passes here is what
the API server accepts:
- unknown fields are rejected (kubectl's default --validate=strict; without it
  they are silently pruned, which is how a misspelt field goes unnoticed), except
  under x-kubernetes-preserve-unknown-fields;
- `nullable: true` admits null;
- x-kubernetes-int-or-string admits an integer or a string.
CEL rules (x-kubernetes-validations) are not evaluated: in KubeRay v1.7 they
guard immutability on update and RayJob deletionStrategy, which shopray does not set.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

import jsonschema
import yaml

# libyaml parses the 3 MB of KubeRay CRDs in about 3 s; pure-Python PyYAML takes over a minute.
_Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def structural(schema: dict) -> dict:
    """The API server's reading of an openAPIV3Schema, as plain JSON Schema."""
    out = {k: v for k, v in schema.items() if not k.startswith("x-kubernetes-") and k != "nullable"}
    if schema.get("x-kubernetes-int-or-string"):
        out.pop("type", None)
        out.setdefault("anyOf", [{"type": "integer"}, {"type": "string"}])
    if schema.get("nullable") and "type" in out:
        out["type"] = [out["type"], "null"]
    if "properties" in out:
        out["properties"] = {k: structural(v) for k, v in out["properties"].items()}
        if not schema.get("x-kubernetes-preserve-unknown-fields") and "additionalProperties" not in out:
            out["additionalProperties"] = False
    if isinstance(out.get("additionalProperties"), dict):
        out["additionalProperties"] = structural(out["additionalProperties"])
    if isinstance(out.get("items"), dict):
        out["items"] = structural(out["items"])
    for key in ("anyOf", "allOf", "oneOf"):
        if key in out:
            out[key] = [structural(s) for s in out[key]]
    return out


@dataclass
class CRDSet:
    """apiVersion/kind -> validator, from every CRD file in a directory."""

    directory: Path
    validators: dict[tuple[str, str], jsonschema.Draft7Validator] = field(default_factory=dict)
    served: dict[str, list[str]] = field(default_factory=dict)

    @classmethod
    def load(cls, directory: Path) -> "CRDSet":
        crds = cls(directory)
        files = sorted(Path(directory).glob("*.yaml"))
        if not files:
            raise FileNotFoundError(f"no CRD files (*.yaml) in {directory}")
        for path in files:
            for doc in yaml.load_all(path.read_text(), Loader=_Loader):
                if doc and doc.get("kind") == "CustomResourceDefinition":
                    crds._add(doc)
        return crds

    def _add(self, crd: dict) -> None:
        group, kind = crd["spec"]["group"], crd["spec"]["names"]["kind"]
        for version in crd["spec"]["versions"]:
            if not version.get("served", True):
                continue
            api_version = f"{group}/{version['name']}"
            self.served.setdefault(kind, []).append(api_version)
            schema = structural(version["schema"]["openAPIV3Schema"])
            self.validators[(api_version, kind)] = jsonschema.Draft7Validator(schema)

    @cached_property
    def groups(self) -> set[str]:
        return {api.split("/")[0] for versions in self.served.values() for api in versions}

    def handles(self, doc: dict) -> bool:
        return str(doc.get("apiVersion", "")).split("/")[0] in self.groups

    def errors(self, doc: dict) -> tuple[str | None, list[jsonschema.ValidationError]]:
        """(a problem finding the schema, or None; the schema errors)."""
        key = (doc.get("apiVersion"), doc.get("kind"))
        validator = self.validators.get(key)
        if validator is None:
            versions = self.served.get(doc.get("kind"), [])
            known = f"served versions: {', '.join(versions)}" if versions else f"known kinds: {', '.join(sorted(self.served))}"
            return f"no CRD in {self.directory} serves {key[0]} {key[1]} ({known})", []
        return None, sorted(validator.iter_errors(doc), key=lambda e: list(e.absolute_path))
