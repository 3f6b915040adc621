#!/usr/bin/env bash
# compress-gate's install steps: the Dockerfile runs them, and CI runs them in a fresh virtual
# environment (`make test-install`), so the image's steps are tested where no image is built.
#
#   docker/install.sh core       the core: gate, predict, bench on ONNX Runtime, the reports (no torch)
#   docker/install.sh sparseml   torch's CPU build first, then .[sparseml] (the demo's stack)
#
#   PYTHON            the interpreter to install into (default: python)
#   SOURCE            the compress-gate source (default: the repository holding this script)
#   TORCH_INDEX_URL   where torch comes from (default: PyTorch's CPU wheel index, so pip never
#                     pulls the multi-GB CUDA build); empty: pip's configured index
#   PIP_INSTALL_ARGS  more arguments for every `pip install` (CI: --dry-run for the sparseml target)
set -euo pipefail
target="${1:?usage: docker/install.sh core|sparseml}"
python="${PYTHON:-python}"
source_dir="${SOURCE:-$(cd "$(dirname "$0")/.." && pwd)}"
torch_index="${TORCH_INDEX_URL-https://download.pytorch.org/whl/cpu}"
read -r -a extra <<< "${PIP_INSTALL_ARGS:-}"

"$python" -m pip install --quiet --upgrade "pip>=24"
case "$target" in
    core)
        "$python" -m pip install --quiet "${extra[@]}" "$source_dir"
        ;;
    sparseml)
        # the torch pin of the [sparseml] extra, read from pyproject.toml (one place for the version)
        torch_pin="$("$python" - "$source_dir/pyproject.toml" <<'PY'
import sys, tomllib
extras = tomllib.load(open(sys.argv[1], "rb"))["project"]["optional-dependencies"]["sparseml"]
print(next(req for req in extras if req.replace(" ", "").startswith("torch==")))
PY
)"
        index=()
        if [ -n "$torch_index" ]; then
            index=(--index-url "$torch_index")
        fi
        "$python" -m pip install --quiet "${extra[@]}" "${index[@]}" "$torch_pin"
        "$python" -m pip install --quiet "${extra[@]}" "$source_dir[sparseml]"
        ;;
    *)
        echo "docker/install.sh: unknown target '$target' (core or sparseml)" >&2
        exit 2
        ;;
esac
