#!/usr/bin/env bash
# The shell steps of the CI examples in this directory (github-actions.yml, gitlab-ci.yml,
# staging-github-actions.yml with staging.toml): run one scenario with rollcheck, leave junit.xml, summary.json
# and the report directory (report.html) in ARTIFACTS for the CI to publish, and exit with
# rollcheck's own code: 0 gate passed, 1 gate failed (requests dropped), 2 inconclusive,
# 64 invalid scenario, 130 interrupted. Copy it into your repository next to the workflow.
#
#   rollcheck-ci.sh SCENARIO [ARTIFACTS=rollcheck-artifacts]
#
# rollcheck is taken from ROLLCHECK_BIN, else from PATH. Secrets reach the scenario as
# environment variables (${VAR} in the scenario); rollcheck writes `${VAR}`, never their
# values, into the report.
set -euo pipefail
if [ $# -lt 1 ]; then
  echo "usage: $0 SCENARIO [ARTIFACTS]" >&2
  exit 64
fi
scenario=$1
artifacts=${2:-rollcheck-artifacts}
bin=${ROLLCHECK_BIN:-$(command -v rollcheck || true)}
if [ -z "$bin" ]; then
  echo "rollcheck is not on PATH; install it (see the workflow) or set ROLLCHECK_BIN" >&2
  exit 2
fi
mkdir -p "$artifacts"
code=0
ROLLCHECK_OUT="$artifacts/reports" "$bin" run "$scenario" \
  --progress plain \
  --junit "$artifacts/junit.xml" \
  --summary "$artifacts/summary.json" || code=$?
# The verdict from summary.json, as a script would read it.
if [ -f "$artifacts/summary.json" ] && command -v jq >/dev/null; then
  jq -r '"verdict: \(.verdict), dropped \(.requests.dropped) of \(.requests.total), p99 \(.latency_ms.p99) ms"' \
    "$artifacts/summary.json"
fi
exit "$code"
