"""`shopray registry list|show`: what the model registry holds ($SHOPRAY_HOME/registry)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from shopray.registry import Registry


def rows(registry: Registry, kinds: list[str]) -> list[dict]:
    out = []
    for kind in kinds:
        aliases = registry.aliases(kind)
        for version in registry.versions(kind):
            card = registry.card(kind, version)
            out.append({
                "kind": kind, "version": version, "aliases": ",".join(a for a, v in sorted(aliases.items()) if v == version),
                "metric": card.metric, "score": card.score, "created_at": card.created_at[:19], "parent": card.parent or "",
            })
    return out


def main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(prog="shopray registry", description=__doc__)
    p.add_argument("--registry", type=Path, default=None, help="registry root (default $SHOPRAY_HOME/registry)")
    sub = p.add_subparsers(dest="command", required=True)
    ls = sub.add_parser("list", help="every version, its aliases and its card's metric")
    ls.add_argument("--kind", choices=["ranker", "parser"], default=None)
    ls.add_argument("--json", action="store_true")
    show = sub.add_parser("show", help="one model card")
    show.add_argument("kind", choices=["ranker", "parser"])
    show.add_argument("ref", nargs="?", default="production", help="version id or alias (default production)")
    ns = p.parse_args(argv)
    registry = Registry(ns.registry)
    if ns.command == "show":
        try:
            card = registry.card(ns.kind, ns.ref)
        except KeyError as exc:
            print(f"not found: {exc}", file=sys.stderr)
            return 1
        aliases = [a for a, v in registry.aliases(ns.kind).items() if v == card.version]
        print(json.dumps({**card.model_dump(), "aliases": aliases, "path": str(registry.path(ns.kind, card.version))}, indent=2))
        return 0
    table = rows(registry, [ns.kind] if ns.kind else ["ranker", "parser"])
    if ns.json:
        print(json.dumps(table, indent=2))
        return 0
    if not table:
        print(f"no models under {registry.root}")
        return 0
    cols = ["kind", "version", "aliases", "metric", "score", "created_at", "parent"]
    widths = {c: max(len(c), *(len(str(r[c])) for r in table)) for c in cols}
    print("  ".join(c.ljust(widths[c]) for c in cols))
    for r in table:
        print("  ".join(str(r[c] if r[c] is not None else "").ljust(widths[c]) for c in cols))
    return 0
