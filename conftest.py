"""Fixtures shared by every app's tests. Everything here talks to real services."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
import redis as redis_lib

ROOT = Path(__file__).resolve().parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_until(predicate, *, timeout_seconds: float = 15.0, interval_seconds: float = 0.1):
    """Poll `predicate` until it returns a truthy value; fail the test on timeout."""
    deadline = time.monotonic() + timeout_seconds
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval_seconds)
    pytest.fail(f"condition not met within {timeout_seconds}s: {predicate}")


class RedisServer:
    """A throw-away redis-server of our own, so a test can stop and restart it."""

    def __init__(self) -> None:
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.directory = tempfile.mkdtemp(prefix="fintech-redis-")
        self.process: subprocess.Popen | None = None

    def start(self) -> None:
        self.process = subprocess.Popen(
            [
                "redis-server",
                "--bind",
                "127.0.0.1",
                "--port",
                str(self.port),
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                self.directory,
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        client = redis_lib.Redis.from_url(self.url, socket_connect_timeout=0.5)

        def answers() -> bool:
            try:
                return bool(client.ping())
            except redis_lib.RedisError:
                return False

        wait_until(answers, timeout_seconds=10)

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            self.process.wait(timeout=10)
            self.process = None


@pytest.fixture(autouse=True)
def rate_limit_buckets_fresh():
    """Each test starts with full buckets (real limits, real Redis): one test's requests are not the next's.

    Only this run's keys (REDIS_KEY_PREFIX carries TEST_DATABASE_SUFFIX), only the limiter's."""
    from django.conf import settings

    try:
        client = redis_lib.Redis.from_url(settings.REDIS_URL, socket_connect_timeout=0.5)
        for pattern in (f"{settings.REDIS_KEY_PREFIX}:rl:*", f"{settings.REDIS_KEY_PREFIX}:rl-audit:*"):
            keys = list(client.scan_iter(match=pattern, count=1000))
            if keys:
                client.delete(*keys)
    except redis_lib.RedisError:
        pass  # a test that needs Redis says so itself
    yield


@pytest.fixture
def runtime_connection():
    """A connection as the runtime role, the way web and worker processes connect, in autocommit."""
    import psycopg
    from django.conf import settings
    from django.db import connection

    if settings.DATABASE_RUNTIME_ROLES["default"] == connection.settings_dict["USER"]:
        pytest.skip("single-role database: no separate runtime role to test")
    with psycopg.connect(database_url("default"), autocommit=True) as login:
        yield login


@pytest.fixture
def runtime():
    """A psycopg connection as the runtime role (the login a leaked DATABASE_URL gives), in a transaction:
    the insider of issue 12 (ADR 0016). Skips on a single-role database."""
    import psycopg
    from django.conf import settings
    from django.db import connection

    if settings.DATABASE_RUNTIME_ROLES["default"] == connection.settings_dict["USER"]:
        pytest.skip("single-role database: no separate runtime role to test")
    with psycopg.connect(database_url("default")) as login:
        yield login


@pytest.fixture
def redis_server():
    if not shutil.which("redis-server"):
        pytest.skip("redis-server binary not installed: cannot start a Redis of our own to stop")
    server = RedisServer()
    server.start()
    yield server
    server.stop()
    shutil.rmtree(server.directory, ignore_errors=True)


def database_url(alias: str, *, role: str | None = None) -> str:
    """The URL of the test database (pytest-django's test_* copy), as the runtime role (or `role`).

    Child processes (workers, servers) connect the way production processes do,
    so a missing grant fails a test instead of a deployment.
    """
    from django.conf import settings
    from django.db import connections

    params = connections[alias].settings_dict
    runtime_role = role or settings.DATABASE_RUNTIME_ROLES[alias]
    auth = (
        runtime_role
        if runtime_role != params["USER"]
        else params["USER"] + (f":{params['PASSWORD']}" if params["PASSWORD"] else "")
    )
    return f"postgres://{auth}@{params['HOST'] or '127.0.0.1'}:{params['PORT'] or 5432}/{params['NAME']}"


def database_dump(alias: str) -> str:
    """`pg_dump` of one test database as text: what an attacker holding a backup would read."""
    from django.db import connections

    binary = shutil.which("pg_dump")
    if binary is None:
        pytest.fail("pg_dump ships with the PostgreSQL client tools the project installs; it is missing")
    params = connections[alias].settings_dict
    completed = subprocess.run(
        [binary, "--host", params["HOST"] or "127.0.0.1", "--port", str(params["PORT"] or 5432),
         "--username", params["USER"], "--no-password", params["NAME"]],
        capture_output=True,
        check=True,
        env={"PGPASSWORD": params["PASSWORD"] or "", "PATH": "/usr/bin:/bin"},
    )  # fmt: skip
    return completed.stdout.decode("utf-8", errors="replace")


def subprocess_env() -> dict[str, str]:
    """Environment for a child process (worker, server) that must see the test databases."""
    return {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "fintech.settings.test",
        "DATABASE_URL": database_url("default"),
        "VAULT_DATABASE_URL": database_url("vault"),
        # Test settings connect as the owner; point that at the runtime role too.
        "DATABASE_OWNER_URL": database_url("default"),
        "VAULT_DATABASE_OWNER_URL": database_url("vault"),
    }


def audit_sealer_database_url() -> str:
    """The test main database as the audit sealer's login, which must exist (scripts/services.py up creates it)."""
    import psycopg
    from django.conf import settings

    role = settings.AUDIT_SEALER_DATABASE_ROLE
    with psycopg.connect(database_url("default")) as connection:
        if connection.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", [role]).fetchone() is None:
            pytest.fail(f"database role {role} is missing: run `scripts/services.py up` (make test does)")
    return database_url("default", role=role)


@pytest.fixture
def celery_worker_process(settings, django_db_setup):
    """A real `celery worker` process consuming the test's default queue from the real broker.

    It is the audit sealer, as the Procfile's worker is: it seals through the sealer's own login.
    """
    env = {
        **subprocess_env(),
        "FINTECH_PROCESS": "worker",  # its keys only, as in production (fintech/process_keys.py)
        "AUDIT_SEALER_PROCESS": "1",
        "AUDIT_SEALER_DATABASE_URL": audit_sealer_database_url(),
    }
    process = celery_worker_start(env, queue=settings.CELERY_TASK_DEFAULT_QUEUE)
    yield process
    stop_process(process)


@pytest.fixture
def cert_worker_process(settings, django_db_setup):
    """A real `celery worker` process as the cert worker: the test's `cert` queue only, with the issuing key alone.

    The Procfile's `certworker` (ADR 0018): the only process that signs certificates and the CRL.
    """
    env = {**subprocess_env(), "FINTECH_PROCESS": "certworker"}  # its keys only (fintech/process_keys.py)
    process = celery_worker_start(env, queue=settings.PKI_CERT_QUEUE)
    yield process
    stop_process(process)


def celery_worker_start(env: dict[str, str], *, queue: str) -> subprocess.Popen:
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "celery",
            "--app",
            "fintech",
            "worker",
            "--queues",
            queue,
            "--concurrency",
            "1",
            "--pool",
            "solo",
            "--without-gossip",
            "--without-mingle",
            "--without-heartbeat",
            "--loglevel",
            "WARNING",
        ],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )


def stop_process(process: subprocess.Popen) -> None:
    """Ask a child process to stop; kill it if it has not within 15 s."""
    process.terminate()
    try:
        process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        process.kill()


class GunicornServer:
    """gunicorn serving `fintech.wsgi` on a free port; a subclass builds the environment (settings, roles)."""

    ready_path = "/healthz"

    def __init__(self, directory: Path, log_name: str):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = directory / log_name

    def start(self, env: dict[str, str], *extra_args: str) -> None:
        """Start gunicorn with `env` and wait until `ready_path` answers 200 (fail at once if it exits).

        `extra_args`: more gunicorn options, e.g. `--bind unix:PATH` besides the TCP port it is probed on."""
        # No control socket: every gunicorn of this user would otherwise share ~/.gunicorn/gunicorn.ctl.
        gunicorn = str(Path(sys.executable).parent / "gunicorn")
        self.process = subprocess.Popen(
            [gunicorn, "fintech.wsgi", "--config", "fintech/gunicorn.conf.py", "--no-control-socket", *extra_args],
            cwd=ROOT,
            env={**env, "PORT": str(self.port)},
            stdout=self.log.open("wb"),
            stderr=subprocess.STDOUT,
        )
        import requests

        def ready() -> bool:
            if self.process.poll() is not None:
                pytest.fail(f"gunicorn exited: {self.log.read_text()[-2000:]}")
            try:
                return requests.get(f"{self.url}{self.ready_path}", timeout=1).status_code == 200
            except requests.RequestException:
                return False

        wait_until(ready, timeout_seconds=30)

    def stop(self) -> None:
        stop_process(self.process)


class LiveServer(GunicornServer):
    """The real stack: gunicorn serving the project on a free port, as the runtime database role.

    `unix_socket`: also listen there, as production does behind the TLS terminator (ADR 0018)."""

    def __init__(self, tmp_path: Path, *, unix_socket: Path | None = None, env: dict[str, str] | None = None):
        super().__init__(tmp_path, "gunicorn.log")
        binds = ("--bind", f"127.0.0.1:{self.port}", "--bind", f"unix:{unix_socket}") if unix_socket else ()
        self.start(
            {
                **subprocess_env(),
                "WEB_CONCURRENCY": "1",
                "WEB_THREADS": "4",
                "OAUTH_ISSUER_URL": self.url,
                "PROMETHEUS_MULTIPROC_DIR": str(tmp_path / "prometheus"),
                **(env or {}),
            },
            *binds,
        )


@pytest.fixture
def live_server_process(django_db_setup, tmp_path):
    server = LiveServer(tmp_path)
    yield server
    server.stop()


# --- The token vault role as a real process (ADR 0012) ----------------------------------


def vault_audit_database_url() -> str:
    """The test main database as the vault role's audit-append role, which must exist (scripts/services.py up)."""
    import psycopg
    from django.conf import settings

    role = settings.VAULT_AUDIT_DATABASE_ROLE
    with psycopg.connect(database_url("default")) as connection:  # also from session fixtures, outside django_db
        if connection.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", [role]).fetchone() is None:
            pytest.fail(f"database role {role} is missing: run `scripts/services.py up` (make test does)")
    return database_url("default", role=role)


def vault_database_url() -> str:
    """The test vault database as the vault role's own login, never the API's (scripts/services.py up creates it)."""
    from django.conf import settings

    role, api_role = settings.DATABASE_RUNTIME_ROLES["vault"], settings.DATABASE_RUNTIME_ROLES["default"]
    if role == api_role:
        pytest.fail(
            f"VAULT_DATABASE_URL logs in as the API's {api_role}: run `scripts/services.py up` (make test does)"
        )
    return database_url("vault")


class VaultServer(GunicornServer):
    """The vault role (`fintech.settings.vault`) under gunicorn, against the test databases.

    It runs as the vault's own login on `vault` (not the API's) and as the
    audit-append role on `default`, as in production, and commits its own rows (vault records in
    `vault`, audit rows in `default`): they do not roll back with a test's
    transaction.
    """

    ready_path = "/readyz"

    def __init__(self, directory: Path, *, workers: int = 1, threads: int = 8):
        import secrets

        super().__init__(directory, "vault-gunicorn.log")
        self.service_token = secrets.token_urlsafe(48)
        self.kek_dir = directory / "vault-kek"
        self.start(
            {
                **subprocess_env(),
                "DJANGO_SETTINGS_MODULE": "fintech.settings.vault",
                "FINTECH_ENV": "test",
                "BIND_ADDRESS": "127.0.0.1",
                "WEB_CONCURRENCY": str(workers),  # benchmarks/vault_ops.py asks for more
                "WEB_THREADS": str(threads),
                "VAULT_SERVICE_TOKEN": self.service_token,
                "VAULT_KEK_DIR": str(self.kek_dir),
                "VAULT_DATABASE_URL": vault_database_url(),
                "VAULT_AUDIT_DATABASE_URL": vault_audit_database_url(),
                "PROMETHEUS_MULTIPROC_DIR": str(directory / "prometheus"),
            }
        )

    def log_mark(self) -> None:
        """Start `log_text` here: the log is shared by every test of the session."""
        self._log_offset = self.log.stat().st_size if self.log.exists() else 0

    def log_text(self) -> str:
        """What the vault process logged since the current test began (`vault_live` marks it)."""
        with self.log.open("rb") as log:
            log.seek(getattr(self, "_log_offset", 0))
            return log.read().decode(errors="replace")


@pytest.fixture(scope="session")
def vault_process(django_db_setup, tmp_path_factory):
    """One vault role process per test session (it is slow to start); stopped before the test databases go."""
    server = VaultServer(tmp_path_factory.mktemp("vault-role"))
    yield server
    server.stop()


@pytest.fixture
def vault_live(request, settings, vault_process):
    """Points this process's vault client (settings VAULT_URL, VAULT_SERVICE_TOKEN) at the real vault process.

    The vault commits its rows, so the test must be transactional
    (`@pytest.mark.django_db(transaction=True, databases=["default", "vault"])`):
    the flush at its end removes what the vault wrote, and later tests never see
    it. Assert on rows by the tokens the test created, never on table counts.
    """
    marker = request.node.get_closest_marker("django_db")
    if marker is None or not marker.kwargs.get("transaction") or "vault" not in marker.kwargs.get("databases", ()):
        pytest.fail('vault_live needs @pytest.mark.django_db(transaction=True, databases=["default", "vault"])')
    vault_process.log_mark()
    settings.VAULT_URL = vault_process.url
    settings.VAULT_SERVICE_TOKEN = vault_process.service_token
    # Tests that also call vault services in-process must use the vault process's keys.
    settings.VAULT_KEK_DIR = str(vault_process.kek_dir)
    settings.VAULT_KEK_GENERATE = True
    return vault_process


@pytest.fixture
def vault_down(settings):
    """The vault client pointed at a closed port: every call fails to connect."""
    settings.VAULT_URL = f"http://127.0.0.1:{free_port()}"
    settings.VAULT_SERVICE_TOKEN = "vault-down-" + "x" * 40
    return settings.VAULT_URL
