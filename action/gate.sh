#!/usr/bin/env bash
# The Action's gate step: run `compress-gate gate`, append the Markdown summary to
# $GITHUB_STEP_SUMMARY, set the outputs (outcome, verdict, report, dir) in $GITHUB_OUTPUT,
# and exit with the gate's exit code (0 pass, 1 refused, 2 bad input, 3 runtime failure).
#   CG_DATA, CG_TEACHER, CG_STUDENT (one per line), CG_LIMITS (may be empty), CG_OUT;
#   CG_PYTHON (default: python) reads report.json for the outputs.
# Teacher and students ending in .onnx are models scored with ONNX Runtime; anything else is
# a predictions file. The summary and outputs are written whatever the gate decided.
set -uo pipefail
: "${CG_DATA:?the data input is required}" "${CG_TEACHER:?the teacher input is required}"
: "${CG_STUDENT:?the student input is required}"
out="${CG_OUT:-compress-gate-report}"
summary="${RUNNER_TEMP:-${TMPDIR:-/tmp}}/compress-gate-summary.$$.md"

kind="--teacher"; skind="--student"
case "$CG_TEACHER" in *.onnx) kind="--teacher-model"; skind="--student-model" ;; esac
args=(gate --data "$CG_DATA" "$kind" "$CG_TEACHER" --out "$out" --summary-md "$summary")
while IFS= read -r student; do
    student="$(echo "$student" | sed 's/^[[:space:]]*//; s/[[:space:]]*$//')"
    [ -n "$student" ] && args+=("$skind" "$student")
done <<< "$CG_STUDENT"
if [ -n "${CG_LIMITS:-}" ]; then
    args+=(--limits "$CG_LIMITS")
fi

compress-gate "${args[@]}"
code=$?

if [ -f "$summary" ] && [ -n "${GITHUB_STEP_SUMMARY:-}" ]; then
    cat "$summary" >> "$GITHUB_STEP_SUMMARY"
fi
rm -f "$summary"
if [ -n "${GITHUB_OUTPUT:-}" ]; then
    echo "exit-code=$code" >> "$GITHUB_OUTPUT"
    if [ -f "$out/report.json" ] && [ "$code" -le 1 ]; then
        "${CG_PYTHON:-python}" - "$out/report.json" >> "$GITHUB_OUTPUT" <<'PY'
import json, sys
report = json.load(open(sys.argv[1], encoding="utf-8"))
print(f"outcome={report['outcome']}")
print(f"verdict={report['verdict']}")
print(f"report={sys.argv[1]}")
PY
        echo "dir=$out" >> "$GITHUB_OUTPUT"
    fi
fi
exit "$code"
