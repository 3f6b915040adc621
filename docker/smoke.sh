#!/usr/bin/env bash
# CI's check of the image and Action install steps where no container runs (`make test-install`):
# a fresh virtual environment gets the core through docker/install.sh, then action/install.sh
# (the Action's install step), and the Action's gate step judges a biased student there with
# the GITHUB_* files set: exit 1 (refused), the summary appended, the outputs set, the three files.
#   PYTHON: the interpreter for the fresh environment (default python3); the sparseml target is
#   resolved with pip's --dry-run on SPARSEML_PYTHON (default python3.11; installing torch and
#   SparseML again would cost minutes).
set -euo pipefail
cd "$(dirname "$0")/.."
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
"${PYTHON:-python3}" -m venv "$work/venv"
venv_python="$work/venv/bin/python"

PYTHON="$venv_python" bash docker/install.sh core
CG_PYTHON="$venv_python" bash action/install.sh
sparseml_python="${SPARSEML_PYTHON:-python3.11}"
if "$sparseml_python" -c pass 2>/dev/null; then     # the sparseml target resolves (not installed)
    "$sparseml_python" -m venv "$work/venv311"
    PYTHON="$work/venv311/bin/python" TORCH_INDEX_URL="" PIP_INSTALL_ARGS="--dry-run" \
        bash docker/install.sh sparseml
fi

"$venv_python" - "$work" <<'PY'
import sys
from pathlib import Path
sys.path.insert(0, "tests")
from _gate_data import LIMITS_YAML, write_files
work = Path(sys.argv[1])
write_files(work, biased=True)
(work / "limits.yaml").write_text(LIMITS_YAML)
PY
: > "$work/summary.md"; : > "$work/output"
set +e
(cd "$work" && PATH="$work/venv/bin:$PATH" CG_PYTHON="$venv_python" GITHUB_STEP_SUMMARY="$work/summary.md" \
    GITHUB_OUTPUT="$work/output" RUNNER_TEMP="$work" CG_DATA=data.npz CG_TEACHER=teacher.npz \
    CG_STUDENT=student_0.npz CG_LIMITS=limits.yaml CG_OUT=gate-out bash "$OLDPWD/action/gate.sh")
code=$?
set -e
test "$code" -eq 1 || { echo "smoke: the gate step exited $code, expected 1 (refused)"; exit 1; }
grep -q "^## compress-gate: REFUSED" "$work/summary.md"
grep -qx "outcome=fail" "$work/output"
for name in report.json report.html junit.xml; do test -s "$work/gate-out/$name"; done
echo "smoke: image and Action install steps work in a fresh environment (gate refused the biased student, as it should)"
