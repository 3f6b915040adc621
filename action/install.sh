#!/usr/bin/env bash
# The Action's install step: compress-gate's core (and the extras asked for) into the current Python.
#   CG_PACKAGE  the compress-gate source (the action's checkout); default: this script's repository
#   CG_EXTRAS   comma-separated extras, e.g. "openvino"; empty: the core only
#   CG_PYTHON   the Python to install into; default: python
set -euo pipefail
package="${CG_PACKAGE:-$(cd "$(dirname "$0")/.." && pwd)}"
extras="$(echo "${CG_EXTRAS:-}" | tr -d '[:space:]')"
python="${CG_PYTHON:-python}"
target="$package"
if [ -n "$extras" ]; then
    target="$package[$extras]"
fi
"$python" -m pip install --quiet --upgrade "pip>=24"
"$python" -m pip install --quiet "$target"
"$python" -c "import compress_gate; print('installed compress-gate', compress_gate.__version__)"
