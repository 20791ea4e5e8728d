# The two commands a new user needs: `make run` and `make test`.
PY := .venv/bin/python
PORT ?= 8000
# The vault role (Procfile `vault:`) listens on loopback here, plain HTTP, behind its TLS terminator
# (Procfile `terminator:`, nginx) on VAULT_TLS_PORT; the web process's VAULT_URL points at the terminator.
VAULT_PORT ?= 8001
VAULT_TLS_PORT ?= 8443
# The terminator's listener for partners' certificates (RFC 8705), in front of the web role's Unix socket.
API_MTLS_PORT ?= 8444
export PORT VAULT_PORT VAULT_TLS_PORT API_MTLS_PORT

.PHONY: run test bench bootstrap venv services services-down migrate demo gates lint clean

run: bootstrap migrate
	$(PY) manage.py collectstatic --noinput --verbosity 0
	$(PY) manage.py demo_seed
	$(PY) manage.py tls_dev_certificates
	@echo "Token vault role (internal API only, mutual TLS): https://localhost:$(VAULT_TLS_PORT)/readyz"
	@echo "  curl --cacert var/tls/ca.pem --cert var/tls/api-client.pem --key var/tls/api-client.key https://localhost:$(VAULT_TLS_PORT)/readyz"
	@echo "Partners with a pinned certificate (RFC 8705, mutual TLS): https://localhost:$(API_MTLS_PORT)/o/token/"
	@mkdir -p var/run
	exec .venv/bin/honcho --no-colour -f Procfile start --port $(PORT)

test: bootstrap
	scripts/quality_gates.sh
	$(PY) -m pytest

bench: bootstrap
	$(PY) benchmarks/ledger_http.py
	$(PY) benchmarks/audit_cost.py
	$(PY) benchmarks/vault_ops.py
	$(PY) benchmarks/rate_limiter.py
	$(PY) benchmarks/terminator.py

bootstrap: venv services

venv:
	@scripts/venv.sh

services: venv
	@$(PY) scripts/services.py up

services-down:
	@$(PY) scripts/services.py down

migrate: bootstrap
	FINTECH_DATABASE_ROLE=owner $(PY) manage.py migrate --noinput
	FINTECH_DATABASE_ROLE=owner $(PY) manage.py migrate --noinput --database vault

demo: migrate
	$(PY) manage.py demo_seed

gates: bootstrap
	scripts/quality_gates.sh

lint: venv
	.venv/bin/ruff check .

clean: services-down
	rm -rf var .venv
