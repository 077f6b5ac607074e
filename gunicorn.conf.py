"""gunicorn's settings wherever the console is served (make run, Docker): gunicorn reads
this file from the working directory. Command-line options override it."""

from __future__ import annotations

import os

# Threads as well as processes: a run page's status request may wait up to 15 s for the
# worker's next step, and must not hold a whole process while it does.
worker_class = "gthread"
workers = int(os.environ.get("WEB_CONCURRENCY", "2"))
threads = int(os.environ.get("SEI_WEB_THREADS", "8"))
# The page's requests follow each other on one connection; keep it open between them.
keepalive = 5
timeout = 60
# One machine may serve several consoles (and their tests); a shared control socket in
# the home directory would make them trip over each other, and nothing here uses it.
control_socket_disable = True
# No access log (gunicorn's default): a request line holds the path, and the path of a
# password-reset or invitation link holds its one-time token, which must not end up in
# log files or log collectors. Errors still go to the error log; pass --access-logfile to
# gunicorn for a log of requests, knowing what it will contain.
# A run page's status request may be waiting (up to 15 s) when web is asked to stop; it is
# cut rather than waited for, since the page asks again. honcho (make run) kills what is
# still running after 5 s, docker after its grace period.
graceful_timeout = 4


def post_worker_init(worker: object) -> None:
    # A stopped Celery worker (or beat) cannot alert about itself: each web process watches
    # their heartbeats too (alerting/watch.py); occurrence keys make the alert go once.
    from alerting import watch

    watch.start()
