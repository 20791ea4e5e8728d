# The two commands a new user needs: `make run` and `make test`.
PY := .venv/bin/python
PORT ?= 8000
# The vault role (Procfile `vault:`) listens on loopback here; the web process's VAULT_URL points at it.
VAULT_PORT ?= 8001
export PORT VAULT_PORT

.PHONY: run test bench bootstrap venv services services-down migrate demo gates lint clean

run: bootstrap migrate
	$(PY) manage.py collectstatic --noinput --verbosity 0
	$(PY) manage.py demo_seed
	@echo "Token vault role (internal API only): http://127.0.0.1:$(VAULT_PORT)/readyz"
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
