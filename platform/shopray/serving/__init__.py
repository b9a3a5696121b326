"""Ray Serve around the stages: `build_app`, the FastAPI ingress, admission control, the generic stage deployment, metrics, and `shopray serve` (``launch``)."""
