"""The fresh-machine path of `scripts/services.py`: no services on standard ports.

FINTECH_FORCE_LOCAL_SERVICES makes it ignore the shared servers, so it must
initialise and start a PostgreSQL and a Redis of its own under the var dir,
create the databases, and write their URLs for the settings.
"""

from __future__ import annotations

import glob
import hashlib
import os
import pwd
import shutil
import subprocess
import sys
from pathlib import Path

import psycopg
import pytest
import redis

from conftest import free_port

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_services_script_starts_project_local_postgres_and_redis(tmp_path):
    if not (glob.glob("/usr/lib/postgresql/*/bin/initdb") and shutil.which("redis-server")):
        pytest.skip("PostgreSQL/Redis server binaries are not installed on this machine")
    var_dir = tmp_path / "var"
    env = {
        **{k: v for k, v in os.environ.items() if k not in {"DATABASE_URL", "VAULT_DATABASE_URL", "REDIS_URL"}},
        "FINTECH_VAR_DIR": str(var_dir),
        "FINTECH_FORCE_LOCAL_SERVICES": "1",
        "FINTECH_LOCAL_PG_PORT": str(free_port()),
        "FINTECH_LOCAL_REDIS_PORT": str(free_port()),
    }
    script = [sys.executable, str(ROOT / "scripts" / "services.py")]
    try:
        first = subprocess.run([*script, "up"], env=env, capture_output=True, text=True, timeout=120)
        assert first.returncode == 0, first.stdout + first.stderr
        second = subprocess.run([*script, "up"], env=env, capture_output=True, text=True, timeout=120)
        assert second.returncode == 0, second.stdout + second.stderr
        assert "initialising" not in second.stdout  # the second run reuses what is up

        written = dict(
            line.split("=", 1) for line in (var_dir / "services.env").read_text().splitlines() if "=" in line
        )
        assert written["DATABASE_URL"].endswith(f":{env['FINTECH_LOCAL_PG_PORT']}/fintech")
        with psycopg.connect(written["VAULT_DATABASE_URL"]) as connection:
            assert connection.execute("SELECT current_database()").fetchone() == ("fintech_vault",)
        assert redis.Redis.from_url(written["REDIS_URL"]).ping()
    finally:
        subprocess.run([*script, "down"], env=env, capture_output=True, timeout=60)
        if os.geteuid() == 0:  # the cluster lived in the postgres account's home; remove it
            checkout = hashlib.sha256(str(var_dir.resolve()).encode()).hexdigest()[:12]
            shutil.rmtree(Path(pwd.getpwnam("postgres").pw_dir) / f"fintech-{checkout}", ignore_errors=True)
