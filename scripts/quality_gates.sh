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

echo "== check --deploy (production settings, throw-away values)"
DJANGO_SETTINGS_MODULE=fintech.settings.production \
DJANGO_SECRET_KEY="$($PY -c 'import secrets; print(secrets.token_urlsafe(64))')" \
DJANGO_ALLOWED_HOSTS=api.fintech.example \
DATABASE_URL=postgres://app@db.invalid:5432/fintech \
VAULT_DATABASE_URL=postgres://vault@vault-db.invalid:5432/fintech_vault \
REDIS_URL=redis://redis.invalid:6379/0 \
  $PY manage.py check --deploy --fail-level WARNING

echo "== bandit"
.venv/bin/bandit -q -c pyproject.toml -r fintech accounts ledger tokenvault audit scripts -x '*/tests/*'

echo "== pip-audit (pinned requirements)"
set +e
audit_output=$(.venv/bin/pip-audit --requirement requirements.txt --no-deps --disable-pip --progress-spinner off 2>&1)
audit_status=$?
set -e
echo "$audit_output"
if [ $audit_status -ne 0 ]; then
  if grep -qiE 'connection|resolve|timed out|network|unreachable|HTTPSConnectionPool|Max retries' <<<"$audit_output" \
     && ! grep -qE '^Found [0-9]+ known vulnerabilit' <<<"$audit_output"; then
    echo "!! pip-audit could NOT reach its vulnerability source: dependencies were NOT audited in this run."
  else
    echo "!! pip-audit found vulnerable pinned dependencies" >&2
    exit 1
  fi
fi
