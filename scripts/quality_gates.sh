#!/usr/bin/env bash
# Static gates run by `make test` before pytest: lint, migrations, deploy
# checks, security lint and a dependency audit. Any failure stops the run.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=.venv/bin/python

echo "== ruff"
.venv/bin/ruff check .

echo "== makemigrations --check"
$PY manage.py makemigrations --check --dry-run

echo "== OpenAPI schema (valid, no generator warnings)"
schema_out=$(mktemp --suffix=.yaml)
$PY manage.py spectacular --validate --fail-on-warn --file "$schema_out"
rm -f "$schema_out"

echo "== check --deploy (production settings of every process: web, worker, certworker, beat, vault, ops; throw-away values)"
# Each process gets only its own keys' variables (fintech/process_keys.py); a key it does not need fails.
$PY scripts/deploy_checks.py

echo "== bandit"
.venv/bin/bandit -q -c pyproject.toml -r fintech accounts ledger tokenvault audit pki -x '*/tests/*'
# The bootstrap script's whole job is to run fixed local commands (initdb, pg_ctl,
# redis-server, apt-get) with arguments it builds itself: skip only those checks there.
.venv/bin/bandit -q -c pyproject.toml -r scripts --skip B404,B603,B607

echo "== pip-audit (pinned requirements)"
set +e
audit_output=$(.venv/bin/pip-audit --requirement requirements.txt --no-deps --disable-pip --progress-spinner off 2>&1)
audit_status=$?
set -e
pinned=$(grep -cE '^[A-Za-z0-9_.-]+==' requirements.txt)
unaudited=$(grep -c 'could not be audited' <<<"$audit_output" || true)
if grep -qE '^Found [0-9]+ known vulnerabilit' <<<"$audit_output"; then
  echo "$audit_output"
  echo "!! pip-audit found vulnerable pinned dependencies" >&2
  exit 1
elif [ $audit_status -ne 0 ]; then
  echo "$audit_output" | tail -5
  echo "!! pip-audit could NOT reach its vulnerability source: dependencies were NOT audited in this run."
elif [ "$unaudited" -gt 0 ]; then
  echo "!! pip-audit: the vulnerability source had no data for $unaudited of $pinned pinned packages:"
  echo "!! those were NOT audited in this run (no silent pass). Audited: $((pinned - unaudited))."
else
  echo "pip-audit: all $pinned pinned packages audited, no known vulnerabilities."
fi
