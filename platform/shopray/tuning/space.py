"""Sweep-file distributions -> Ray Tune search-space objects."""

from __future__ import annotations

from typing import Any

from ray import tune

from shopray.tuning.spec import Param


def to_tune(param: Param) -> Any:
    if param.type == "choice":
        return tune.choice(param.values)
    if param.type == "loguniform":
        return tune.loguniform(param.low, param.high)
    if param.type == "uniform":
        return tune.uniform(param.low, param.high)
    if param.type == "quniform":
        return tune.quniform(param.low, param.high, param.q)
    return tune.randint(int(param.low), int(param.high))


def param_space(space: dict[str, Param]) -> dict[str, Any]:
    return {key: to_tune(p) for key, p in space.items()}
