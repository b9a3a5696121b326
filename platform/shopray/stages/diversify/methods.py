"""The diversity methods by name, one per file (mmr, dpp, caps, window), and ``diversify`` to call one.

Every method has the signature
    method(scores (N,), embeddings (N, d), payloads, k, diversity, **params) -> list[int]
and returns min(k, N) indices into its input in display order. Inputs come
best first; ``diversity`` in [0, 1] is the per-request knob and 0 always
returns the ranker's order. See ``_common`` for how bad inputs are handled.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from shopray.stages.diversify._common import prepare
from shopray.stages.diversify.caps import caps
from shopray.stages.diversify.dpp import dpp
from shopray.stages.diversify.mmr import mmr
from shopray.stages.diversify.window import window


def none(scores, embeddings, payloads, k: int, diversity: float) -> list[int]:
    """The ranker's order; still validates inputs like the other methods."""
    p = prepare(scores, embeddings, payloads, k, diversity)
    return p.identity()


METHODS: dict[str, Callable[..., list[int]]] = {
    "none": none,
    "mmr": mmr,
    "dpp": dpp,
    "caps": caps,
    "window": window,
}


def diversify(
    method: str,
    scores: np.ndarray,
    embeddings: np.ndarray,
    payloads: list[dict] | None,
    k: int,
    diversity: float,
    **params,
) -> list[int]:
    """Dispatch to a method by name; unknown names raise ValueError."""
    try:
        fn = METHODS[method]
    except KeyError:
        raise ValueError(f"unknown diversity method {method!r}; choose from {sorted(METHODS)}") from None
    return fn(scores, embeddings, payloads, k, diversity, **params)
