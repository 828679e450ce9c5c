# genlab's serving image (CPU, slim): `genlab serve` behind an exec-form entry point.
#
#   docker build -t genlab .
#   docker run --rm -p 8000:8000 -v "$PWD/runs/demo-vae:/models:ro" genlab
#
# Convention: the default command serves the ONE run directory mounted at /models (its model
# is named "models", after the folder). For several runs, or your own names, mount the runs
# folder and list them as arguments (the whole command is replaced, so repeat --host/--port):
#
#   docker run --rm -p 8000:8000 -v "$PWD/runs:/models:ro" genlab \
#       serve --host 0.0.0.0 --port 8000 /models/demo-vae gan=/models/dcgan-mnist
#
# Cloud platforms: give the container the arguments `serve` and nothing else. SageMaker does
# this itself (`docker run IMAGE serve`); with no run argument `genlab serve` detects the
# platform (SageMaker: /opt/ml/model or $SM_MODEL_DIR, port 8080; Vertex AI: $AIP_STORAGE_URI,
# $AIP_HTTP_PORT; Azure ML: $AZUREML_MODEL_DIR, port 8000) and serves every run it finds there.
# The image sets none of those variables and creates no /opt/ml, so detection is unaffected.
#
# Health check: Docker's HEALTHCHECK (below) asks GET /healthz on 127.0.0.1 with Python's
# urllib, bypassing any proxy (slim images have no curl). It tries $GENLAB_HEALTH_URL when set
# (set it when you pass another --port), else port 8000 (generic, Azure) and then
# $SAGEMAKER_BIND_TO_PORT / $AIP_HTTP_PORT / 8080 (SageMaker, Vertex); healthy when one answers
# 200. SageMaker and Vertex ignore Docker health checks and probe their own routes.
#
# Extras: serve (the HTTP server) and cloud (s3fs, gcsfs, adlfs: models from s3://, gs:// as
# Vertex AI's AIP_STORAGE_URI gives them, az://); `--build-arg EXTRAS=serve,cloud,tune` adds the
# tuning tools (optuna) to the same image.
# GPU: docker/gpu.Dockerfile.

# ---- build stage: a virtual environment with genlab and its dependencies ------------------------
# Pinned to a Python minor version and a Debian release (slim: no compilers, no curl).
FROM python:3.11-slim-bookworm AS build
# Which optional dependencies to install (pyproject.toml [project.optional-dependencies]).
ARG EXTRAS=serve,cloud
# No pip cache or version check in the layers. (pip still precompiles the installed packages'
# .pyc files: the runtime user cannot write them, and `import torch` starts faster with them.)
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1
# The virtual environment is copied whole into the runtime stage (same path, same Python).
RUN python -m venv /opt/venv
# Its python, pip and console scripts come first on PATH.
ENV PATH=/opt/venv/bin:$PATH
# The source is copied here; only the installed package reaches the runtime stage.
WORKDIR /src
# The pins first (torch==2.13.0): the torch layer below is rebuilt only when they change.
COPY constraints.txt ./
# torch alone from the CPU wheel index: the default PyPI wheel pulls gigabytes of CUDA libraries.
RUN pip install --index-url https://download.pytorch.org/whl/cpu -c constraints.txt torch
# What `pip install .` reads: the project metadata, its README (the long description), the code.
COPY pyproject.toml README.md ./
COPY src ./src
# genlab (not editable) with its extras; torch is already there and satisfies the pin.
RUN pip install -c constraints.txt --extra-index-url https://download.pytorch.org/whl/cpu \
        ".[${EXTRAS}]"

# ---- runtime stage: the virtual environment and an unprivileged user, nothing else ---------------
# The same base as the build stage, so the venv's interpreter links stay valid.
FROM python:3.11-slim-bookworm AS runtime
# Logs straight to `docker logs` (unbuffered); no .pyc writes into the read-only venv; the venv
# on PATH; matplotlib's cache in /tmp (writable even under an arbitrary --user).
ENV PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PATH=/opt/venv/bin:$PATH \
    MPLCONFIGDIR=/tmp/matplotlib
# A fixed, non-root user (uid/gid 10001) with a home folder; runs mounted at /models need only be
# readable by it (world-readable files are).
RUN groupadd --system --gid 10001 genlab \
    && useradd --system --uid 10001 --gid genlab --create-home --home-dir /home/genlab \
        --shell /usr/sbin/nologin genlab
# The installed environment from the build stage, owned by root (read-only for genlab).
COPY --from=build /opt/venv /opt/venv
# A writable working directory (relative paths, score.py from `genlab azure-score`).
WORKDIR /home/genlab
# Numeric, so Kubernetes' runAsNonRoot can check it.
USER 10001:10001
# 8000: the generic and Azure contracts; 8080: SageMaker and Vertex AI.
EXPOSE 8000 8080
# Liveness over HTTP with urllib (see the top of this file); `start-period` covers model loading.
HEALTHCHECK --interval=30s --timeout=10s --start-period=120s --retries=3 \
    CMD urls="${GENLAB_HEALTH_URL:-http://127.0.0.1:8000/healthz http://127.0.0.1:${SAGEMAKER_BIND_TO_PORT:-${AIP_HTTP_PORT:-8080}}/healthz}"; \
        for url in $urls; do \
            python -c 'import sys, urllib.request as u; u.build_opener(u.ProxyHandler({})).open(sys.argv[1], timeout=3)' "$url" 2>/dev/null && exit 0; \
        done; \
        echo "no healthy answer from: $urls" >&2; exit 1
# Exec form: the container's arguments go straight to genlab (`docker run IMAGE serve` runs
# `genlab serve`), and genlab is PID 1, so `docker stop`'s SIGTERM reaches the server.
ENTRYPOINT ["genlab"]
# The default arguments: serve the run at /models on all interfaces, port 8000.
CMD ["serve", "--host", "0.0.0.0", "--port", "8000", "/models"]
