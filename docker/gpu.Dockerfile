# genlab's serving image for NVIDIA GPUs. Same conventions as the CPU image (../Dockerfile):
# runs at /models, entry point `genlab`, user 10001, health check on /healthz.
#
#   docker build -f docker/gpu.Dockerfile -t genlab:gpu .
#   docker run --rm --gpus all -p 8000:8000 -v "$PWD/runs/demo-vae:/models:ro" genlab:gpu
#
# `--gpus all` (or `--gpus device=0`) needs the NVIDIA Container Toolkit on the host; it mounts
# the host's driver into the container. The CUDA libraries themselves come with the torch wheel
# (the nvidia-* pip packages), so the base is CUDA's small "base" flavour: it sets
# NVIDIA_VISIBLE_DEVICES / NVIDIA_DRIVER_CAPABILITIES and a minimum driver requirement.
# Pick the torch build with TORCH_INDEX_URL, e.g.
#   --build-arg TORCH_INDEX_URL=https://download.pytorch.org/whl/cu128
# (the default, PyPI, has the CUDA build that torch release ships by default). The host driver
# must support that CUDA version. Without a GPU the server fails at start-up (--device cuda);
# replace the arguments with `serve ... --device auto` to fall back to the CPU.
# In docker compose: `deploy: {resources: {reservations: {devices: [{driver: nvidia,
# count: all, capabilities: [gpu]}]}}}` on the service.

# ---- build stage ----------------------------------------------------------------------------------
# Pinned CUDA version and Ubuntu release (Python 3.12 from Ubuntu).
FROM nvidia/cuda:12.8.1-base-ubuntu24.04 AS build
# Where torch comes from (a download.pytorch.org/whl/cuXXX index picks a CUDA version).
ARG TORCH_INDEX_URL=https://pypi.org/simple
# Which optional dependencies to install (pyproject.toml).
ARG EXTRAS=serve,cloud
# No prompts from apt; no pip cache or version check (pip still precompiles .pyc files).
ENV DEBIAN_FRONTEND=noninteractive \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1
# Python and venv support (venv only in this stage); apt lists removed in the same layer.
RUN apt-get update \
    && apt-get install -y --no-install-recommends python3 python3-venv \
    && rm -rf /var/lib/apt/lists/*
# The virtual environment that the runtime stage copies whole.
RUN python3 -m venv /opt/venv
# Its python, pip and console scripts first on PATH.
ENV PATH=/opt/venv/bin:$PATH
# The source goes here; only the installed package reaches the runtime stage.
WORKDIR /src
# The pins first (torch==2.13.0), so the torch layer is cached until they change.
COPY constraints.txt ./
# torch with CUDA from the chosen index.
RUN pip install --index-url "${TORCH_INDEX_URL}" -c constraints.txt torch
# What `pip install .` reads: metadata, README (long description), code.
COPY pyproject.toml README.md ./
COPY src ./src
# genlab (not editable) with its extras; the installed torch satisfies the pin and stays.
RUN pip install -c constraints.txt ".[${EXTRAS}]"

# ---- runtime stage ----------------------------------------------------------------------------------
# The same base, so the venv's links to /usr/bin/python3 stay valid.
FROM nvidia/cuda:12.8.1-base-ubuntu24.04 AS runtime
# Unbuffered logs; no .pyc writes; the venv on PATH; matplotlib's cache in /tmp.
ENV PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PATH=/opt/venv/bin:$PATH \
    MPLCONFIGDIR=/tmp/matplotlib
# The interpreter only (no venv module, no compilers); apt lists removed in the same layer.
RUN apt-get update \
    && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends python3 \
    && rm -rf /var/lib/apt/lists/*
# The same non-root user as the CPU image (uid/gid 10001).
RUN groupadd --system --gid 10001 genlab \
    && useradd --system --uid 10001 --gid genlab --create-home --home-dir /home/genlab \
        --shell /usr/sbin/nologin genlab
# The installed environment from the build stage (owned by root, read-only for genlab).
COPY --from=build /opt/venv /opt/venv
# A writable working directory.
WORKDIR /home/genlab
# Numeric, so Kubernetes' runAsNonRoot can check it.
USER 10001:10001
# 8000: generic and Azure contracts; 8080: SageMaker and Vertex AI.
EXPOSE 8000 8080
# The same urllib probe as the CPU image: $GENLAB_HEALTH_URL, else 8000, else the cloud port.
HEALTHCHECK --interval=30s --timeout=10s --start-period=180s --retries=3 \
    CMD urls="${GENLAB_HEALTH_URL:-http://127.0.0.1:8000/healthz http://127.0.0.1:${SAGEMAKER_BIND_TO_PORT:-${AIP_HTTP_PORT:-8080}}/healthz}"; \
        for url in $urls; do \
            python -c 'import sys, urllib.request as u; u.build_opener(u.ProxyHandler({})).open(sys.argv[1], timeout=3)' "$url" 2>/dev/null && exit 0; \
        done; \
        echo "no healthy answer from: $urls" >&2; exit 1
# Exec form: `docker run IMAGE serve` runs `genlab serve`; genlab is PID 1 and gets SIGTERM.
ENTRYPOINT ["genlab"]
# Serve the run at /models on the GPU, all interfaces, port 8000. On a cloud platform give
# `serve --device cuda` (no run: the platform's model folder is detected).
CMD ["serve", "--host", "0.0.0.0", "--port", "8000", "--device", "cuda", "/models"]
