"""Production's web and vault listen on a Unix socket only (issue 14): gunicorn's binds, the check, a real socket.

`fintech/gunicorn.conf.py` decides what gunicorn binds from the environment;
`fintech.checks.process_bind_check` refuses, at `check --deploy` (every unit's
ExecStartPre), a web or vault process that would bind TCP or whose socket
directory other users may enter. These tests hold the two to the same rule and
show a real gunicorn creating the socket 0660 and answering on it.
"""

from __future__ import annotations

import importlib.util
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import ROOT, stop_process, subprocess_env, wait_until
from fintech.checks import process_bind_check

GUNICORN_CONF = ROOT / "fintech" / "gunicorn.conf.py"


def gunicorn_binds(environ: dict[str, str]) -> list[str]:
    """`binds` of fintech/gunicorn.conf.py (a file gunicorn executes, not a module)."""
    spec = importlib.util.spec_from_file_location("gunicorn_conf", GUNICORN_CONF)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.binds(environ)


@pytest.fixture(autouse=True)
def _no_bind_variables(monkeypatch):
    # gunicorn.conf.py's setdefault must not leave a multiprocess directory in this process's environment.
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", os.environ.get("PROMETHEUS_MULTIPROC_DIR", "var/prometheus"))
    for name in ("BIND_ADDRESS", "PORT", "WEB_UNIX_SOCKET"):
        monkeypatch.delenv(name, raising=False)


def socket_directory(tmp_path: Path, mode: int) -> Path:
    directory = tmp_path / "run" / "fintech-web"
    directory.mkdir(parents=True)
    directory.chmod(mode)
    return directory


# --- what gunicorn binds ---------------------------------------------------------------------------


def test_gunicorn_binds_tcp_as_before_without_a_socket():
    assert gunicorn_binds({}) == ["127.0.0.1:8000"]
    assert gunicorn_binds({"BIND_ADDRESS": "127.0.0.2", "PORT": "9000"}) == ["127.0.0.2:9000"]


def test_gunicorn_binds_only_the_socket_when_it_is_named_alone():
    assert gunicorn_binds({"WEB_UNIX_SOCKET": "/run/fintech-web/web.sock"}) == ["unix:/run/fintech-web/web.sock"]


def test_gunicorn_binds_both_in_dev_when_a_port_is_named_too():
    environ = {"WEB_UNIX_SOCKET": "var/run/web.sock", "PORT": "8000"}

    assert gunicorn_binds(environ) == ["127.0.0.1:8000", "unix:var/run/web.sock"]


# --- the deploy check ------------------------------------------------------------------------------


@pytest.mark.parametrize("process", ["web", "vault"])
def test_a_socket_alone_in_a_closed_directory_passes(settings, monkeypatch, tmp_path, process):
    settings.FINTECH_PROCESS = process
    monkeypatch.setenv("WEB_UNIX_SOCKET", str(socket_directory(tmp_path, 0o750) / f"{process}.sock"))

    assert process_bind_check(None) == []
    assert gunicorn_binds(dict(os.environ)) == [f"unix:{os.environ['WEB_UNIX_SOCKET']}"]


@pytest.mark.parametrize(("process", "variable"), [("web", "PORT"), ("vault", "BIND_ADDRESS")])
def test_a_tcp_listener_next_to_the_socket_fails(settings, monkeypatch, tmp_path, process, variable):
    settings.FINTECH_PROCESS = process
    monkeypatch.setenv("WEB_UNIX_SOCKET", str(socket_directory(tmp_path, 0o750) / "web.sock"))
    monkeypatch.setenv(variable, "8000" if variable == "PORT" else "127.0.0.1")

    errors = process_bind_check(None)

    assert [error.id for error in errors] == ["fintech.E007"]
    assert f"{variable} set" in errors[0].msg and process in errors[0].msg
    assert any(bind.startswith("127.0.0.1:") for bind in gunicorn_binds(dict(os.environ)))  # what it refuses


@pytest.mark.parametrize("process", ["web", "vault"])
def test_no_socket_at_all_fails(settings, process):
    settings.FINTECH_PROCESS = process

    errors = process_bind_check(None)

    assert [error.id for error in errors] == ["fintech.E007"]
    assert "no WEB_UNIX_SOCKET" in errors[0].msg


@pytest.mark.parametrize("mode", [0o755, 0o751, 0o777])
def test_a_socket_directory_others_may_enter_fails(settings, monkeypatch, tmp_path, mode):
    settings.FINTECH_PROCESS = "web"
    directory = socket_directory(tmp_path, mode)
    monkeypatch.setenv("WEB_UNIX_SOCKET", str(directory / "web.sock"))

    errors = process_bind_check(None)

    assert [error.id for error in errors] == ["fintech.E008"]
    assert f"open to every user (mode {mode:04o})" in errors[0].msg


def test_a_missing_socket_directory_fails(settings, monkeypatch, tmp_path):
    settings.FINTECH_PROCESS = "vault"
    monkeypatch.setenv("WEB_UNIX_SOCKET", str(tmp_path / "absent" / "vault.sock"))

    assert [error.id for error in process_bind_check(None)] == ["fintech.E008"]


@pytest.mark.parametrize("process", ["", "worker", "certworker", "beat", "ops"])
def test_processes_that_serve_no_http_are_not_concerned(settings, monkeypatch, process):
    settings.FINTECH_PROCESS = process
    monkeypatch.setenv("PORT", "8000")

    assert process_bind_check(None) == []


# --- a real gunicorn on the socket -----------------------------------------------------------------


def http_get_over_unix_socket(path: Path, target: str) -> bytes:
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as client:
        client.settimeout(5)
        client.connect(str(path))
        client.sendall(f"GET {target} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n".encode())
        chunks = []
        while chunk := client.recv(65536):
            chunks.append(chunk)
    return b"".join(chunks)


def test_gunicorn_creates_the_socket_0660_and_serves_on_it(tmp_path):
    directory = socket_directory(tmp_path, 0o750)
    socket_path = directory / "web.sock"
    env = {**subprocess_env(), "WEB_UNIX_SOCKET": str(socket_path), "WEB_CONCURRENCY": "1"}
    env["PROMETHEUS_MULTIPROC_DIR"] = str(tmp_path / "prometheus")
    for name in ("BIND_ADDRESS", "PORT"):
        env.pop(name, None)
    log = tmp_path / "gunicorn.log"
    gunicorn = str(Path(sys.executable).parent / "gunicorn")
    process = subprocess.Popen(
        [gunicorn, "fintech.wsgi", "--config", str(GUNICORN_CONF), "--no-control-socket"],
        cwd=ROOT,
        env=env,
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
    )
    try:

        def listening() -> bool:
            if process.poll() is not None:
                pytest.fail(f"gunicorn exited: {log.read_text()[-2000:]}")
            return socket_path.is_socket()

        wait_until(listening, timeout_seconds=30)
        mode = socket_path.stat().st_mode & 0o777
        answer = http_get_over_unix_socket(socket_path, "/healthz")
    finally:
        stop_process(process)

    assert mode == 0o660
    assert answer.startswith(b"HTTP/1.1 200 ")
    listening_lines = [line for line in log.read_text().splitlines() if "Listening at:" in line]
    assert len(listening_lines) == 1 and f"unix:{socket_path}" in listening_lines[0]
