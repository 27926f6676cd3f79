# Custom worker container for affectzoo on Beam's distributed runners (Dataflow, Flink, Spark with
# --environment_type=DOCKER). Commands: docs/runners.md.
#
#   docker build -t REGISTRY/affectzoo-worker:0.1.0 .
#   docker build --build-arg EXTRA_WEIGHTS=my_weights -t REGISTRY/affectzoo-worker:0.1.0 .
#
# Base: Apache Beam's Python 3.11 SDK image of the same Beam version as requirements.lock (its
# ENTRYPOINT, /opt/apache/beam/boot, starts the SDK harness: do not override it).
ARG BEAM_VERSION=2.77.0
FROM apache/beam_python3.11_sdk:${BEAM_VERSION}

# Folder (inside the build context) with user-supplied weights that may not ship with affectzoo
# (dbfaceSmallH.pth, dbface.pth, body_pose_model.pth, ...); default: the shipped weights/ only.
ARG EXTRA_WEIGHTS=weights

ENV AFFECTZOO_WEIGHTS=/opt/affectzoo/weights \
    AFFECTZOO_OFFLINE=1 \
    PIP_NO_CACHE_DIR=1 \
    PYTHONDONTWRITEBYTECODE=1

WORKDIR /opt/affectzoo/src

# 1. Pinned dependencies. The Linux x86_64 torch / torchvision wheels of requirements.lock are the
#    CUDA builds (cuda-bindings and cuda-toolkit are pinned beside them); the NVIDIA driver comes
#    from the host (Dataflow: worker_accelerator=...;install-nvidia-driver). apache-beam is pinned
#    to the base image's version, so pip keeps the SDK harness as it is.
COPY requirements.lock pyproject.toml ./
RUN pip install -r requirements.lock

# 2. The repository (code, corpus cards, shipped sample clips), installed without touching the pins.
COPY extractors ./extractors
COPY pipelines ./pipelines
COPY schemas ./schemas
COPY zoo ./zoo
COPY datasets ./datasets
COPY README.md THIRD_PARTY_NOTICES.md ./
RUN pip install --no-deps --no-build-isolation -e .

# 3. Weights into the cache folder the registry searches first ($AFFECTZOO_WEIGHTS), then a
#    sha256 check of every file present (missing optional files are listed, not fatal).
COPY weights/ ${AFFECTZOO_WEIGHTS}/
COPY ${EXTRA_WEIGHTS}/ ${AFFECTZOO_WEIGHTS}/
RUN python -m extractors.weights list && \
    python -c "import torch, decord, cv2, apache_beam; print('torch', torch.__version__, 'cuda', torch.version.cuda, 'beam', apache_beam.__version__)"
