# compress-gate on CPU: installs the package with the [sparseml] extra's pinned stack and runs the embedded demo.
#   docker build -t compress-gate . && docker run --rm -v "$PWD/runs:/app/runs" compress-gate
FROM python:3.11-slim

ENV NM_DISABLE_ANALYTICS=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /app
COPY pyproject.toml README.md ./
COPY compress_gate ./compress_gate
COPY recipes ./recipes
RUN pip install ".[sparseml]"

CMD ["compress-gate", "sweep", "recipes/multilabel.yaml", "--sparsity", "0.5", "0.8", "0.95", "--release"]
