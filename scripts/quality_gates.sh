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

echo "== check --deploy (production settings of both roles, throw-away values)"
throwaway_key=$(mktemp --suffix=.pem)
trap 'rm -f "$throwaway_key"' EXIT
vault_service_token=$($PY -c 'import secrets; print(secrets.token_urlsafe(64))')
$PY -c 'import sys; from cryptography.hazmat.primitives.asymmetric import rsa; from cryptography.hazmat.primitives import serialization as s; k = rsa.generate_private_key(public_exponent=65537, key_size=2048); open(sys.argv[1], "wb").write(k.private_bytes(s.Encoding.PEM, s.PrivateFormat.PKCS8, s.NoEncryption()))' "$throwaway_key"
DJANGO_SETTINGS_MODULE=fintech.settings.production \
DJANGO_SECRET_KEY="$($PY -c 'import secrets; print(secrets.token_urlsafe(64))')" \
DJANGO_ALLOWED_HOSTS=api.fintech.example \
DATABASE_URL=postgres://app@db.invalid:5432/fintech \
REDIS_URL=redis://redis.invalid:6379/0 \
AUDIT_SIGNING_KEY_PATH=/run/secrets/audit-signing-ed25519.pem \
AUDIT_VERIFY_KEY_PATHS=/run/secrets/audit-signing-ed25519.pub.pem \
STAFF_GRANT_SIGNING_KEY_PATH=/run/secrets/staff-grant-ed25519.pem \
OIDC_SIGNING_KEY_PATH="$throwaway_key" \
OAUTH_ISSUER_URL=https://api.fintech.example \
FIELD_KEK_DIR=/run/secrets/field-kek \
WEBHOOK_SIGNING_KEY="$($PY -c 'import secrets; print(secrets.token_urlsafe(64))')" \
VAULT_URL=https://vault.internal.example \
VAULT_SERVICE_TOKEN="$vault_service_token" \
  env -u VAULT_DATABASE_URL -u VAULT_KEK_DIR $PY manage.py check --deploy --fail-level WARNING
# The vault role (ADR 0012): only its own secrets; none of the API role's.
DJANGO_SETTINGS_MODULE=fintech.settings.vault \
FINTECH_ENV=production \
DJANGO_SECRET_KEY="$($PY -c 'import secrets; print(secrets.token_urlsafe(64))')" \
DJANGO_ALLOWED_HOSTS=vault.internal.example \
VAULT_AUDIT_DATABASE_URL=postgres://fintech_vault_audit@db.invalid:5432/fintech \
VAULT_DATABASE_URL=postgres://vault@vault-db.invalid:5432/fintech_vault \
VAULT_KEK_DIR=/run/secrets/vault-kek \
VAULT_SERVICE_TOKEN="$vault_service_token" \
STAFF_GRANT_VERIFY_KEY_PATH=/run/secrets/staff-grant-ed25519.pub.pem \
  env -u DATABASE_URL -u OIDC_SIGNING_KEY_PATH -u WEBHOOK_SIGNING_KEY -u FIELD_KEK_DIR $PY manage.py check --deploy --fail-level WARNING

echo "== bandit"
.venv/bin/bandit -q -c pyproject.toml -r fintech accounts ledger tokenvault audit -x '*/tests/*'
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
