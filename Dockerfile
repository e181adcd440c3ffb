# syntax=docker/dockerfile:1
# The ops console image: one image, three processes (web, worker, beat; see Procfile).
#   docker build -t opsconsole .
#   docker run --env-file console.env opsconsole                     # web (gunicorn) on :8000
#   docker run --env-file console.env opsconsole python manage.py run_worker
# No secret is baked in: SECRET_KEY, DATABASE_URL, REDIS_URL (or their *_FILE forms) come from
# the environment at run time. See docs/operations.md.

ARG PYTHON_IMAGE=python:3.11-slim-trixie

# --- build: the locked dependencies in a virtualenv, the source, collected static files -------
FROM ${PYTHON_IMAGE} AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1 PYTHONDONTWRITEBYTECODE=1
RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH
WORKDIR /app
# Dependencies first, so a code change does not reinstall them. The console itself is not
# pip-installed: it runs from /app, where settings.BASE_DIR finds templates/ and terraform/.
COPY pyproject.toml constraints.txt ./
RUN python -c "import tomllib; print(*tomllib.load(open('pyproject.toml', 'rb'))['project']['dependencies'], sep='\n')" \
      > /tmp/requirements.txt \
 && pip install -c constraints.txt -r /tmp/requirements.txt
COPY . .
# Settings need these to load; they exist for this one command and are not kept in the image.
RUN SECRET_KEY=build-time-only-collectstatic-not-a-secret-0000 ALLOWED_HOSTS=build \
    DATABASE_URL=sqlite:////tmp/build.sqlite3 REDIS_URL=redis://build:6379/0 \
    OPSCONSOLE_VAR_DIR=/tmp/var STATIC_ROOT=/app/staticfiles \
    python manage.py collectstatic --noinput \
 && rm -rf /tmp/var /tmp/build.sqlite3

# --- runtime: the virtualenv and /app, PostgreSQL client programs, a non-root user -----------
FROM ${PYTHON_IMAGE} AS runtime
# pg_dump/pg_restore for backups and restore verification: their major version must be at least
# the server's (trixie ships 17).
RUN apt-get update \
 && apt-get install -y --no-install-recommends postgresql-client \
 && rm -rf /var/lib/apt/lists/* \
 && groupadd --system --gid 10001 opsconsole \
 && useradd --system --uid 10001 --gid opsconsole --home-dir /var/lib/opsconsole --create-home opsconsole
COPY --from=build /opt/venv /opt/venv
# Owned by root and read-only to the console: only /var/lib/opsconsole (OPSCONSOLE_VAR_DIR) is writable.
COPY --from=build /app /app
WORKDIR /app
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    DJANGO_SETTINGS_MODULE=opsconsole.settings \
    OPSCONSOLE_VAR_DIR=/var/lib/opsconsole \
    STATIC_ROOT=/app/staticfiles \
    LOG_FORMAT=json \
    PORT=8000
USER opsconsole:opsconsole
EXPOSE 8000
# No HEALTHCHECK here: the load balancer (or compose) probes /healthz with a Host header that is
# in ALLOWED_HOSTS; a probe from inside the container would be refused by that very check.
CMD ["gunicorn", "-c", "gunicorn.conf.py", "opsconsole.wsgi"]
