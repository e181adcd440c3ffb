"""gunicorn settings for the console's web process: `gunicorn -c gunicorn.conf.py opsconsole.wsgi`.

Every value can be changed with an environment variable (GUNICORN_* below, or gunicorn's own
GUNICORN_CMD_ARGS). Access logs are off: the console logs each request itself, with its request id,
in the format LOG_FORMAT picks; gunicorn's own error log goes to stderr for the same collector.
"""

import multiprocessing
import os

bind = os.environ.get("GUNICORN_BIND", f"0.0.0.0:{os.environ.get('PORT', '8000')}")
# Sync workers: the pages and the API are short requests; live logs poll rather than stream.
workers = int(os.environ.get("GUNICORN_WORKERS", min(2 * multiprocessing.cpu_count() + 1, 8)))
threads = int(os.environ.get("GUNICORN_THREADS", "1"))
timeout = int(os.environ.get("GUNICORN_TIMEOUT", "60"))
graceful_timeout = int(os.environ.get("GUNICORN_GRACEFUL_TIMEOUT", "30"))
keepalive = int(os.environ.get("GUNICORN_KEEPALIVE", "5"))  # behind an ALB (idle timeout 60 s)
# Recycle workers now and then so a slow leak never becomes an outage; jitter avoids a stampede.
max_requests = int(os.environ.get("GUNICORN_MAX_REQUESTS", "2000"))
max_requests_jitter = int(os.environ.get("GUNICORN_MAX_REQUESTS_JITTER", "200"))
# Heartbeat files on tmpfs, not a possibly slow overlay filesystem (gunicorn's FAQ for containers).
worker_tmp_dir = "/dev/shm" if os.path.isdir("/dev/shm") else None
# The load balancer terminates TLS; trust X-Forwarded-* from it (see BEHIND_TLS_PROXY).
forwarded_allow_ips = os.environ.get("GUNICORN_FORWARDED_ALLOW_IPS", "*")
accesslog = None
errorlog = "-"
loglevel = os.environ.get("LOG_LEVEL", "INFO").lower()
# Import the app before forking: workers share its memory, and a bad setting fails the start.
preload_app = True
