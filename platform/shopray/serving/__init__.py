"""Ray Serve wrappers around the plain stages in shopray.pipeline."""
