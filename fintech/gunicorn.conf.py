"""gunicorn for `make run` and production.

gthread workers keep HTTP connections alive (a sync worker closes the
connection after every response, which costs a TCP and TLS handshake per call
behind a proxy that reuses connections).
"""

import os

# Must be set before prometheus_client is imported anywhere in this process tree.
os.environ.setdefault("PROMETHEUS_MULTIPROC_DIR", "var/prometheus")

bind = f"{os.environ.get('BIND_ADDRESS', '127.0.0.1')}:{os.environ.get('PORT', '8000')}"
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
