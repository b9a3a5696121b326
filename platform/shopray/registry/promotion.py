"""`shopray promote {ranker,parser} VERSION [--force]`: move the `production` alias, and with it the running app.

Promotion is one atomic write of the registry's ``aliases.json``. The Serve
replicas name their model by that alias (``ranker.model`` / ``parser.model``:
``production``) and re-resolve it every ``refresh_s``: a replica loads the new
version in full beside the old one, then swaps a reference, so in-flight requests
finish on the old model and no request fails. Responses name the model that
answered (``versions.ranker``, ``versions.parser``), so a client sees the switch.

The command asks the running app (``POST /admin/promote`` with ``X-Admin-Key``
= $SHOPRAY_ADMIN_KEY), so the key is checked where the registry is, then waits
until responses carry the new version. ``--offline`` edits a local registry
directly (no app), and still needs the key set. A model whose card scores below
production's on production's metric, or has no score on it, is refused unless
``--force``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from shopray.registry import ModelCard, Registry

ADMIN_KEY_ENV = "SHOPRAY_ADMIN_KEY"


class PromotionRefused(Exception):
    """The candidate's card does not show it is at least as good as production."""


class PromoteRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    kind: Literal["ranker", "parser"] = Field(description="Which model to promote.")
    version: str = Field(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9._-]+$", description="Registry version id, or the alias `candidate`.")
    force: bool = Field(default=False, description="Promote even when the card is worse than production's or not comparable.")


def refusal(card: ModelCard, production: ModelCard | None) -> str | None:
    """Why ``card`` may not replace ``production``; None when it may."""
    if production is None or production.score is None:
        return None
    score = card.metrics.get(production.metric)
    if score is None:
        return (f"not comparable: production {production.version} is scored on {production.metric} ({production.score}), "
                f"{card.version}'s card has no {production.metric} (its metric: {card.metric})")
    if score < production.score:
        return f"{card.version} is worse than production {production.version} on {production.metric}: {score} < {production.score}"
    return None


def promote(registry: Registry, kind: str, ref: str, force: bool = False) -> dict:
    """Move `production` to ``ref`` (a version or `candidate`); raises PromotionRefused or KeyError."""
    version = registry.resolve(kind, ref)
    card = registry.card(kind, version)
    try:
        previous = registry.resolve(kind, "production")
        production = registry.card(kind, previous)
    except KeyError:
        previous, production = None, None
    result = {"kind": kind, "version": version, "previous": previous, "metric": card.metric, "score": card.score,
              "production_metric": production.metric if production else None, "production_score": production.score if production else None}
    if previous == version:
        return {**result, "changed": False, "forced": False}
    reason = refusal(card, production)
    if reason and not force:
        raise PromotionRefused(reason)
    registry.set_alias(kind, "production", version)
    return {**result, "changed": True, "forced": bool(reason), "refusal_overridden": reason}


def wait_for_switch(url: str, kind: str, version: str, timeout_s: float, settle: int = 3) -> float | None:
    """Seconds until ``settle`` responses in a row name ``version``; None on timeout."""
    import httpx

    field = "ranker" if kind == "ranker" else "parser"
    t0, streak = time.monotonic(), 0
    with httpx.Client(base_url=url, timeout=10) as client:
        while time.monotonic() - t0 < timeout_s:
            try:
                resp = client.post("/search", json={"query": "promotion probe", "k": 1})
                seen = resp.json().get("versions", {}).get(field, "") if resp.status_code == 200 else ""
            except httpx.HTTPError:
                seen = ""
            streak = streak + 1 if version in seen else 0
            if streak >= settle:
                return round(time.monotonic() - t0, 2)
            time.sleep(0.25)
    return None


def main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(prog="shopray promote", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("kind", choices=["ranker", "parser"])
    p.add_argument("version", help="registry version id, or 'candidate'")
    p.add_argument("--force", action="store_true", help="promote even when the card is worse than production's")
    p.add_argument("--url", default=os.environ.get("SHOPRAY_URL", "http://127.0.0.1:8000"), help="the running app (default $SHOPRAY_URL or http://127.0.0.1:8000)")
    p.add_argument("--offline", action="store_true", help="no running app: move the alias in the local registry only")
    p.add_argument("--registry", default=None, help="--offline: registry root (default $SHOPRAY_HOME/registry)")
    p.add_argument("--wait", type=float, default=60.0, help="seconds to wait until responses carry the new version (0: do not wait)")
    ns = p.parse_args(argv)
    key = os.environ.get(ADMIN_KEY_ENV)
    if not key:
        print(f"promotion needs the admin key: set {ADMIN_KEY_ENV}", file=sys.stderr)
        return 2
    if ns.offline:
        from pathlib import Path

        try:
            result = promote(Registry(Path(ns.registry) if ns.registry else None), ns.kind, ns.version, ns.force)
        except PromotionRefused as exc:
            print(f"refused: {exc} (use --force to promote anyway)", file=sys.stderr)
            return 1
        except KeyError as exc:
            print(f"not found: {exc}", file=sys.stderr)
            return 1
        print(json.dumps(result))
        return 0
    import httpx

    body = PromoteRequest(kind=ns.kind, version=ns.version, force=ns.force).model_dump()
    try:
        resp = httpx.post(f"{ns.url.rstrip('/')}/admin/promote", json=body, headers={"X-Admin-Key": key}, timeout=30)
    except httpx.HTTPError as exc:
        print(f"cannot reach {ns.url}: {exc} (--offline moves the alias without an app)", file=sys.stderr)
        return 1
    detail = resp.json() if resp.headers.get("content-type", "").startswith("application/json") else {"detail": resp.text}
    if resp.status_code != 200:
        label = {409: "refused", 404: "not found", 401: "denied", 403: "denied"}.get(resp.status_code, f"HTTP {resp.status_code}")
        print(f"{label}: {detail.get('detail')}" + (" (use --force to promote anyway)" if resp.status_code == 409 else ""), file=sys.stderr)
        return 2 if resp.status_code in (401, 403) else 1
    result = detail
    if ns.wait > 0 and result.get("changed"):
        result["switched_after_s"] = wait_for_switch(ns.url.rstrip("/"), ns.kind, result["version"], ns.wait)
    print(json.dumps(result))
    return 0 if not (ns.wait > 0 and result.get("changed") and result.get("switched_after_s") is None) else 3
