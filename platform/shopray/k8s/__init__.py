"""KubeRay manifests in k8s/: rendered from deployments/ and tuning/ (`render`), checked offline (`validate`); the command is `cli`."""
