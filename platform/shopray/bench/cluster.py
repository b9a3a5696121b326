"""Ray for benchmarks: a local cluster with Serve that the benchmark owns, or a connection to a running one.

``local_cluster`` never joins another cluster (``address="local"``), keeps its
session files in a fresh temp directory and gives every worker, Serve replicas
included, the environment they need through the job's ``runtime_env``:
nothing here changes this process's environment.
"""

from __future__ import annotations

import contextlib
import socket
import tempfile
from dataclasses import dataclass
from typing import Iterator

# Workers load models from local directories only; no replica may reach a model hub.
WORKER_ENV = {"HF_HUB_OFFLINE": "1"}


@dataclass
class Cluster:
    url: str | None  # Serve's HTTP proxy, when started with http=True
    temp_dir: str


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def worker_env(**env_vars: str) -> dict:
    """A runtime_env with ``WORKER_ENV`` plus ``env_vars``: for a deployment that sets its own (it replaces the job's)."""
    return {"env_vars": {**WORKER_ENV, **env_vars}}


@contextlib.contextmanager
def local_cluster(num_cpus: int = 4, num_gpus: int | None = None, *, http: bool = False, env: dict[str, str] | None = None) -> Iterator[Cluster]:
    """Start Ray and Serve in this process; shut both down on exit.

    ``num_gpus`` are logical (placement only); ``http`` starts Serve's proxy on a
    free local port, else Serve runs without one (handles only); ``env`` adds
    environment variables for the workers.
    """
    import ray
    from ray import serve

    temp_dir = tempfile.mkdtemp(prefix="ray-bench-")
    ray.init(address="local", num_cpus=num_cpus, num_gpus=num_gpus, include_dashboard=False, log_to_driver=False, _temp_dir=temp_dir, runtime_env=worker_env(**(env or {})))
    try:
        url = None
        if http:
            port = free_port()
            serve.start(http_options={"host": "127.0.0.1", "port": port})
            url = f"http://127.0.0.1:{port}"
        else:
            serve.start(proxy_location="Disabled")
        yield Cluster(url, temp_dir)
    finally:
        with contextlib.suppress(Exception):
            serve.shutdown()
        ray.shutdown()


def join(address: str, namespace: str = "serve") -> None:
    """Connect to a running cluster (the one serving the app under test)."""
    import ray

    ray.init(address=address, namespace=namespace, log_to_driver=False)
