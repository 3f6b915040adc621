# compress-gate on CPU. Two images from one file; the install steps are docker/install.sh, which
# CI runs in a fresh virtual environment (`make test-install`), so they are tested without an image.
#
#   docker build --target core -t compress-gate:core .     the core (Python 3.13, no torch): gate,
#       docker run --rm -v "$PWD:/work" -w /work compress-gate:core gate --data ... --out gate-out
#   docker build -t compress-gate .                        the [sparseml] stack with torch's CPU build;
#       docker run --rm -v "$PWD/runs:/app/runs" compress-gate    runs the embedded demo
#
# torch comes from PyTorch's CPU wheel index (build arg TORCH_INDEX_URL), so a machine without a
# GPU never downloads the multi-GB CUDA build.

FROM python:3.13-slim AS core
ENV PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /app
COPY pyproject.toml README.md ./
COPY compress_gate ./compress_gate
COPY docker/install.sh ./docker/install.sh
RUN bash docker/install.sh core
ENTRYPOINT ["compress-gate"]
CMD ["--help"]

# The default (last) target: the demo's stack, Python 3.11 (the [sparseml] pins).
FROM python:3.11-slim AS sparseml
ARG TORCH_INDEX_URL=https://download.pytorch.org/whl/cpu
ENV NM_DISABLE_ANALYTICS=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /app
COPY pyproject.toml README.md ./
COPY compress_gate ./compress_gate
COPY recipes ./recipes
COPY docker/install.sh ./docker/install.sh
RUN TORCH_INDEX_URL="$TORCH_INDEX_URL" bash docker/install.sh sparseml
CMD ["compress-gate", "sweep", "recipes/multilabel.yaml", "--sparsity", "0.5", "0.8", "0.95", "--release"]
