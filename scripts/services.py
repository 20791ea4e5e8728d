#!/usr/bin/env python3
"""Makes sure PostgreSQL and Redis answer, and tells Django where they are.

For each service, in order:
1. the URL from the environment or `.env` (DATABASE_URL / REDIS_URL) when set;
2. the service on its standard local port when it answers;
3. a project-local instance under var/, started from the system's binaries,
   installing the Debian packages first when they are missing and we are root.
The chosen URLs are written to var/services.env, which the settings read.
Running it again reuses whatever is already up.

Usage: services.py up | down | status
"""

from __future__ import annotations

import glob
import hashlib
import os
import pwd
import shutil
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parent.parent
VAR = Path(os.environ.get("FINTECH_VAR_DIR", ROOT / "var"))
SERVICES_ENV = VAR / "services.env"
LOCAL_PG_PORT = int(os.environ.get("FINTECH_LOCAL_PG_PORT", "54329"))
LOCAL_REDIS_PORT = int(os.environ.get("FINTECH_LOCAL_REDIS_PORT", "63799"))
FORCE_LOCAL = os.environ.get("FINTECH_FORCE_LOCAL_SERVICES") == "1"
DATABASES = ("fintech", "fintech_vault")
# Migrations run as the owner; the web/worker processes connect as the runtime
# role, which is not the owner of any table (so it cannot disable triggers) and
# holds only INSERT/SELECT on write-once tables (see fintech/db_privileges.py).
# The vault role's main-database connection is a third role that may only append audit events
# (ADR 0012; granted after every migrate, settings.VAULT_AUDIT_DATABASE_ROLE).
OWNER_ROLE, RUNTIME_ROLE, VAULT_AUDIT_ROLE = "fintech_owner", "fintech_app", "fintech_vault_audit"
# The vault role's runtime login on the vault database (VAULT_DATABASE_URL): not the API's
# `fintech_app`, so the API credential cannot open the vault database (PCI segmentation, ADR 0012).
VAULT_RUNTIME_ROLE = "fintech_vault_app"
# Owns the ledger's SECURITY DEFINER functions and alone writes the money tables (ADR 0016): nobody logs in
# as it; the owner role is a member so that migrations can hand it the functions.
LEDGER_DEFINER_ROLE = "fintech_ledger"
# The audit sealer's login (the Celery worker, AUDIT_SEALER_DATABASE_URL): the only role that may INSERT checkpoints,
# seals, signing keys and verification results, which the runtime role may only read (issue 12, ADR 0005).
SEALER_ROLE = "fintech_sealer"
ROLES = (
    (OWNER_ROLE, "LOGIN CREATEDB"),
    (RUNTIME_ROLE, "LOGIN"),
    (VAULT_AUDIT_ROLE, "LOGIN"),
    (VAULT_RUNTIME_ROLE, "LOGIN"),
    (LEDGER_DEFINER_ROLE, "NOLOGIN"),
    (SEALER_ROLE, "LOGIN"),
)
# Who may connect to which database besides its owner; PUBLIC may connect to neither.
CONNECT = {"fintech": (RUNTIME_ROLE, VAULT_AUDIT_ROLE, SEALER_ROLE), "fintech_vault": (VAULT_RUNTIME_ROLE,)}


def say(message: str) -> None:
    print(f"[services] {message}", flush=True)


def dotenv_value(name: str) -> str | None:
    if os.environ.get(name):
        return os.environ[name]
    dotenv = ROOT / ".env"
    if dotenv.is_file():
        for line in dotenv.read_text().splitlines():
            key, _, value = line.partition("=")
            if key.strip() == name and value.strip():
                return value.strip().strip("'\"")
    return None


# --- PostgreSQL ----------------------------------------------------------------


def pg_answers(url: str) -> bool:
    import psycopg

    try:
        with psycopg.connect(url, connect_timeout=3) as connection:
            connection.execute("SELECT 1")
        return True
    except psycopg.Error:
        return False


def with_database(url: str, name: str) -> str:
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, f"/{name}", parts.query, ""))


def with_role(url: str, role: str) -> str:
    parts = urlsplit(url)
    host = parts.netloc.rsplit("@", 1)[-1]
    return urlunsplit((parts.scheme, f"{role}@{host}", parts.path, parts.query, ""))


def ensure_roles_and_databases(server_url: str) -> None:
    """As a superuser: the roles, databases owned by the owner role, and who may connect to which."""
    import psycopg

    with psycopg.connect(with_database(server_url, "postgres"), autocommit=True, connect_timeout=5) as connection:
        for role, options in ROLES:
            if not connection.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (role,)).fetchone():
                connection.execute(f'CREATE ROLE "{role}" {options}')
                say(f"created role {role}")
        connection.execute(f'GRANT "{LEDGER_DEFINER_ROLE}" TO "{OWNER_ROLE}"')
        for name in DATABASES:
            exists = connection.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone()
            if not exists:
                connection.execute(f'CREATE DATABASE "{name}" OWNER "{OWNER_ROLE}"')
                say(f"created database {name}")
        restrict_connect(connection)
    # Before this login existed the API's runtime role held the vault's tables; take that back.
    with psycopg.connect(with_database(server_url, "fintech_vault"), autocommit=True, connect_timeout=5) as vault:
        others = ", ".join(f'"{role}"' for role in (RUNTIME_ROLE, VAULT_AUDIT_ROLE, SEALER_ROLE))
        for kind in ("TABLES", "SEQUENCES"):
            vault.execute(f"REVOKE ALL ON ALL {kind} IN SCHEMA public FROM {others}")


def restrict_connect(connection) -> None:
    """Idempotent: CONNECT to each database only for its owner and the roles in CONNECT.

    A role's CONNECT privilege is checked at login, so `fintech_app` (the API)
    cannot even open the vault database, nor the vault's login the main one.
    """
    for database, allowed in CONNECT.items():
        connection.execute(f'REVOKE CONNECT ON DATABASE "{database}" FROM PUBLIC')
        for role in {role for role, _ in ROLES} - {OWNER_ROLE} - set(allowed):
            connection.execute(f'REVOKE CONNECT ON DATABASE "{database}" FROM "{role}"')
        for role in allowed:
            connection.execute(f'GRANT CONNECT ON DATABASE "{database}" TO "{role}"')


def apt_install(*packages: str) -> None:
    if os.geteuid() != 0 or not shutil.which("apt-get"):
        sys.exit(f"[services] {', '.join(packages)} missing and cannot be installed here (not root or no apt-get).")
    say(f"installing {' '.join(packages)} with apt-get")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    subprocess.run(["apt-get", "update", "-qq"], check=True, env=env)
    subprocess.run(["apt-get", "install", "-y", "-qq", *packages], check=True, env=env)


def pg_bindir() -> Path | None:
    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=lambda p: int(Path(p).parent.name))
    if candidates:
        return Path(candidates[-1])
    initdb = shutil.which("initdb")
    return Path(initdb).parent if initdb else None


def run_as_postgres_user(command: list[str]) -> None:
    """initdb and postgres refuse to run as root: use the system's postgres account."""
    if os.geteuid() == 0:
        user = pwd.getpwnam("postgres")
        subprocess.run(command, check=True, user=user.pw_uid, group=user.pw_gid, cwd="/")
    else:
        subprocess.run(command, check=True)


def local_postgres_home() -> Path:
    """Where the project-local cluster lives.

    As a normal user: var/postgres. As root, PostgreSQL must run as the
    `postgres` account, which often cannot traverse the checkout (a 0700 home
    or temp dir), so the cluster lives in that account's home, one per checkout.
    """
    if os.geteuid() != 0:
        return VAR / "postgres"
    checkout = hashlib.sha256(str(VAR.resolve()).encode()).hexdigest()[:12]
    return Path(pwd.getpwnam("postgres").pw_dir) / f"fintech-{checkout}"


def start_local_postgres() -> str:
    bindir = pg_bindir()
    if bindir is None:
        apt_install("postgresql")
        bindir = pg_bindir()
    home = local_postgres_home()
    data, run = home / "data", home / "run"
    for folder in (home, run):
        folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    if os.geteuid() == 0:
        user = pwd.getpwnam("postgres")
        for folder in (home, run):
            os.chown(folder, user.pw_uid, user.pw_gid)
    url = f"postgres://postgres@127.0.0.1:{LOCAL_PG_PORT}/postgres"
    if pg_answers(url):
        return url
    if not (data / "PG_VERSION").exists():
        say(f"initialising a project-local PostgreSQL in {data}")
        run_as_postgres_user(
            [
                str(bindir / "initdb"),
                "-D",
                str(data),
                "-U",
                "postgres",
                "--auth=trust",
                "-E",
                "UTF8",
                "--no-instructions",
            ]
        )
    options = (
        f"-c listen_addresses=127.0.0.1 -c port={LOCAL_PG_PORT} -c unix_socket_directories={run} -c max_connections=200"
    )
    say(f"starting project-local PostgreSQL on 127.0.0.1:{LOCAL_PG_PORT}")
    run_as_postgres_user(
        [str(bindir / "pg_ctl"), "-D", str(data), "-l", str(home / "postgres.log"), "-o", options, "-w", "start"]
    )
    if not pg_answers(url):
        sys.exit(f"[services] PostgreSQL did not come up; see {home / 'postgres.log'}")
    return url


def ensure_postgres() -> dict[str, str]:
    configured = dotenv_value("DATABASE_URL")
    if configured:
        say("PostgreSQL: using DATABASE_URL from the environment")
        if not pg_answers(configured):
            sys.exit("[services] DATABASE_URL is set but PostgreSQL does not answer there.")
        vault = dotenv_value("VAULT_DATABASE_URL") or with_database(
            configured, urlsplit(configured).path.strip("/") + "_vault"
        )
        return {"VAULT_DATABASE_URL": vault} if not dotenv_value("VAULT_DATABASE_URL") else {}
    standard = "postgres://postgres@127.0.0.1:5432/postgres"
    if not FORCE_LOCAL and pg_answers(standard):
        say("PostgreSQL: using the server on 127.0.0.1:5432")
        server = standard
    else:
        server = start_local_postgres()
    ensure_roles_and_databases(server)
    main, vault = with_database(server, "fintech"), with_database(server, "fintech_vault")
    return {
        "DATABASE_URL": with_role(main, RUNTIME_ROLE),
        "DATABASE_OWNER_URL": with_role(main, OWNER_ROLE),
        "VAULT_DATABASE_URL": with_role(vault, VAULT_RUNTIME_ROLE),
        "VAULT_DATABASE_OWNER_URL": with_role(vault, OWNER_ROLE),
        "VAULT_AUDIT_DATABASE_URL": with_role(main, VAULT_AUDIT_ROLE),
        "AUDIT_SEALER_DATABASE_URL": with_role(main, SEALER_ROLE),
    }


# --- Redis -----------------------------------------------------------------------


def redis_answers(url: str) -> bool:
    import redis

    try:
        return bool(redis.Redis.from_url(url, socket_connect_timeout=2, socket_timeout=2).ping())
    except redis.RedisError:
        return False


def start_local_redis() -> str:
    url = f"redis://127.0.0.1:{LOCAL_REDIS_PORT}/0"
    if redis_answers(url):
        return url
    if not shutil.which("redis-server"):
        apt_install("redis-server")
    home = VAR / "redis"
    home.mkdir(parents=True, exist_ok=True)
    say(f"starting project-local Redis on 127.0.0.1:{LOCAL_REDIS_PORT}")
    subprocess.run(
        [
            "redis-server",
            "--bind",
            "127.0.0.1",
            "--port",
            str(LOCAL_REDIS_PORT),
            "--daemonize",
            "yes",
            "--dir",
            str(home),
            "--pidfile",
            str(home / "redis.pid"),
            "--logfile",
            str(home / "redis.log"),
            "--appendonly",
            "yes",
            "--save",
            "",
        ],
        check=True,
    )
    for _ in range(50):
        if redis_answers(url):
            return url
        time.sleep(0.1)
    sys.exit(f"[services] Redis did not come up; see {home / 'redis.log'}")


def ensure_redis() -> dict[str, str]:
    configured = dotenv_value("REDIS_URL")
    if configured:
        say("Redis: using REDIS_URL from the environment")
        if not redis_answers(configured):
            sys.exit("[services] REDIS_URL is set but Redis does not answer there.")
        return {}
    standard = "redis://127.0.0.1:6379/0"
    if not FORCE_LOCAL and redis_answers(standard):
        say("Redis: using the server on 127.0.0.1:6379")
        return {"REDIS_URL": standard}
    return {"REDIS_URL": start_local_redis()}


# One ACL user per checkout (its var/ directory): two checkouts on one machine share the Redis server, and
# each must not reset the other's password.
VAULT_REDIS_USER = "fintech_vault_" + hashlib.sha256(str(VAR.resolve()).encode()).hexdigest()[:8]
VAULT_REDIS_PASSWORD_FILE = VAR / "keys" / "vault_redis_password"


def ensure_vault_redis_user(redis_url: str) -> dict[str, str]:
    """The vault role's own Redis login (ADR 0017): an ACL user that may touch only keys under a `-vault:` prefix.

    Dev and test only: the password is generated once into var/keys (0600). When the Redis we were given
    will not create users (no ACL, or a login without the right), the vault keeps using REDIS_URL under its
    own prefix, and this says so.
    """
    import secrets

    import redis

    if dotenv_value("VAULT_REDIS_URL"):
        say("Redis: the vault uses VAULT_REDIS_URL from the environment")
        return {}
    VAULT_REDIS_PASSWORD_FILE.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    if not VAULT_REDIS_PASSWORD_FILE.exists():
        VAULT_REDIS_PASSWORD_FILE.touch(mode=0o600)
        VAULT_REDIS_PASSWORD_FILE.write_text(secrets.token_urlsafe(32))
    password = VAULT_REDIS_PASSWORD_FILE.read_text().strip()
    try:
        redis.Redis.from_url(redis_url, socket_connect_timeout=2).execute_command(
            "ACL", "SETUSER", VAULT_REDIS_USER, "reset", "on", f">{password}", "~*-vault:*", "resetchannels",
            "+@all", "-@admin", "-@dangerous",
        )  # fmt: skip
    except redis.RedisError as error:
        say(f"Redis: no vault ACL user ({error}); the vault uses REDIS_URL under its own key prefix")
        return {}
    parts = urlsplit(redis_url)
    host = parts.hostname or "127.0.0.1"
    netloc = f"{VAULT_REDIS_USER}:{password}@{host}" + (f":{parts.port}" if parts.port else "")
    return {"VAULT_REDIS_URL": urlunsplit((parts.scheme, netloc, parts.path, "", ""))}


def ensure_nginx() -> None:
    """The TLS terminator's binary (issue 14, pki/terminator.py): installed when missing and we may; a machine
    without it runs everything else, and the terminator's tests say they skipped."""
    if shutil.which("nginx") or Path("/usr/sbin/nginx").exists():
        return
    if os.geteuid() != 0 or not shutil.which("apt-get"):
        say("nginx missing and not installable here: the TLS terminator's tests will skip")
        return
    apt_install("nginx-light")


# --- Commands -------------------------------------------------------------------


def up() -> None:
    VAR.mkdir(parents=True, exist_ok=True)
    ensure_nginx()
    chosen = {**ensure_postgres(), **ensure_redis()}
    chosen.update(ensure_vault_redis_user(chosen.get("REDIS_URL") or dotenv_value("REDIS_URL")))
    lines = ["# Written by scripts/services.py; environment variables and .env take precedence."]
    lines += [f"{key}={value}" for key, value in sorted(chosen.items())]
    # 0600: it may hold the vault's Redis password (a dev secret, but a secret).
    SERVICES_ENV.touch(mode=0o600)
    SERVICES_ENV.chmod(0o600)
    SERVICES_ENV.write_text("\n".join(lines) + "\n")
    say(f"wrote {SERVICES_ENV.relative_to(ROOT) if SERVICES_ENV.is_relative_to(ROOT) else SERVICES_ENV}")


def down() -> None:
    data = local_postgres_home() / "data"
    bindir = pg_bindir()
    if (data / "postmaster.pid").exists() and bindir:
        run_as_postgres_user([str(bindir / "pg_ctl"), "-D", str(data), "-m", "fast", "stop"])
    pidfile = VAR / "redis" / "redis.pid"
    if pidfile.exists():
        subprocess.run(["redis-cli", "-p", str(LOCAL_REDIS_PORT), "shutdown", "nosave"], check=False)
    say("project-local services stopped (shared services are left alone)")


def status() -> None:
    print(
        SERVICES_ENV.read_text() if SERVICES_ENV.exists() else "no var/services.env yet: run `make run` or `make test`"
    )


if __name__ == "__main__":
    {"up": up, "down": down, "status": status}[sys.argv[1] if len(sys.argv) > 1 else "up"]()
