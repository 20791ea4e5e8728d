"""gunicorn for `make run` and production.

gthread workers keep HTTP connections alive (a sync worker closes the
connection after every response, which costs a TCP and TLS handshake per call
behind a proxy that reuses connections).

Where it listens (issue 14): production's web and vault processes listen on a
Unix socket only (WEB_UNIX_SOCKET), behind nginx on the same host, so no other
local user or host can reach gunicorn around the TLS terminator; the socket is
0660 (`umask`), its group the process's own, which nginx's user joins
(deploy/README.md). `fintech.checks.process_bind_check` refuses a production web
or vault process that would also bind TCP. Dev keeps 127.0.0.1:$PORT, and binds
both when WEB_UNIX_SOCKET is set next to BIND_ADDRESS or PORT.
"""

import os

# Must be set before prometheus_client is imported anywhere in this process tree.
os.environ.setdefault("PROMETHEUS_MULTIPROC_DIR", "var/prometheus")


def binds(environ) -> list[str]:
    """The addresses to bind: the Unix socket when named, TCP when no socket is named or BIND_ADDRESS/PORT is set."""
    socket_path = environ.get("WEB_UNIX_SOCKET", "")
    tcp = f"{environ.get('BIND_ADDRESS') or '127.0.0.1'}:{environ.get('PORT') or '8000'}"
    if not socket_path:
        return [tcp]
    if environ.get("BIND_ADDRESS") or environ.get("PORT"):
        return [tcp, f"unix:{socket_path}"]
    return [f"unix:{socket_path}"]


bind = binds(os.environ)
# Files gunicorn creates, i.e. the socket: 0660 (owner and group read and write, nobody else).
umask = 0o117
workers = int(os.environ.get("WEB_CONCURRENCY", "2"))
worker_class = "gthread"
threads = int(os.environ.get("WEB_THREADS", "4"))
keepalive = 75
timeout = 30
graceful_timeout = 20
max_requests = 10_000
max_requests_jitter = 1_000
accesslog = None  # our middleware logs requests as JSON with the request id
errorlog = "-"
forwarded_allow_ips = os.environ.get("TRUSTED_PROXIES", "127.0.0.1")


def on_starting(server):
    path = os.environ["PROMETHEUS_MULTIPROC_DIR"]
    os.makedirs(path, exist_ok=True)
    for name in os.listdir(path):
        os.unlink(os.path.join(path, name))


def child_exit(server, worker):
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)
