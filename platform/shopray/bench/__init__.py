"""Shared benchmark harness; the scripts in benchmarks/ are thin entry points on it.

- ``report``: percentiles (one helper), the ``command:`` line (one format), markdown tables
- ``load``: closed-loop clients, open-loop arrivals, a ramp of clients; the same over ``POST /search``
- ``cluster``: a local Ray + Serve a benchmark owns (worker environment via runtime_env), or joining a running one
- ``ranker``: a cross-encoder to time and realistic ranker requests, for the ranker speed benchmarks
- ``locust``: ``shopray loadtest``
"""
