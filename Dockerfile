# syntax=docker/dockerfile:1
# walletpass: the web app (default command), the outbox worker and the CLI in one image.
#
#   docker build -t walletpass .
#   docker compose up            # PostgreSQL, migrations, web and a worker (compose.yaml)
#
# Two stages: the first builds wheels, the second installs them into a virtualenv.
# Nothing from the build stage reaches the final image but the installed packages, so no
# compiler, build backend or source tree is left in it.

# 3.11: the oldest Python pyproject allows, and the one CI tests on.
ARG PYTHON_VERSION=3.11

# ---------------------------------------------------------------------------- build stage
FROM python:${PYTHON_VERSION}-slim AS build

ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_COLOR=1

WORKDIR /src
# Only what the wheel is built from. README.md is pyproject's `readme`; LICENSE goes into
# the wheel's metadata (setuptools picks it up by name). The package itself carries
# everything it reads at run time: migrations, page and pass templates, webhook schemas
# and Apple's public certificates (pyproject's package-data).
COPY pyproject.toml README.md LICENSE ./
COPY walletpass ./walletpass

# A wheel for walletpass and for every dependency, so the runtime stage installs offline
# exactly what was resolved here. All current dependencies publish binary wheels for
# Linux (amd64 and arm64), so no compiler is needed; should one ever need building from
# source, install build-essential in this stage only.
RUN --mount=type=cache,target=/root/.cache/pip \
    pip wheel --wheel-dir /wheels .

# -------------------------------------------------------------------------- runtime stage
FROM python:${PYTHON_VERSION}-slim AS runtime

LABEL org.opencontainers.image.title="walletpass" \
      org.opencontainers.image.description="Loyalty cards and coupons in Apple Wallet and Google Wallet" \
      org.opencontainers.image.licenses="AGPL-3.0-or-later"

# PYTHONDONTWRITEBYTECODE: the venv is owned by root and read-only to the service user, so
#   Python must not try to write .pyc files at run time (pip compiles them at install).
# PYTHONUNBUFFERED: logs reach `docker logs` line by line, not when a buffer fills.
# PATH: the venv first, so `walletpass`, `gunicorn` and `python` are the installed ones.
# WALLETPASS_HOME=/data: certificates (and, without WALLETPASS_DATABASE_URL, the SQLite
#   file and the generated secret key) live on the volume, not in the container layer.
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    VIRTUAL_ENV=/opt/venv \
    PATH=/opt/venv/bin:$PATH \
    WALLETPASS_HOME=/data

# A fixed, unprivileged uid/gid (10001, outside the range distributions hand out), so the
# volume's owner is the same in every container and on every host, and orchestrators
# that check `runAsNonRoot` can verify it from the numeric USER below. Its home is not
# /data: gunicorn (25.1+) puts its control socket in $HOME/.gunicorn, which must stay
# per container rather than on a volume that several containers share.
RUN groupadd --system --gid 10001 walletpass \
    && useradd --system --uid 10001 --gid walletpass --create-home \
       --home-dir /home/walletpass --shell /usr/sbin/nologin walletpass \
    && install -d -o walletpass -g walletpass -m 0750 /data

# The wheels are bind-mounted from the build stage for this one step, so they never
# become a layer of the final image. --no-index: nothing is fetched that the build stage
# did not resolve.
RUN --mount=type=bind,from=build,source=/wheels,target=/wheels \
    python -m venv "$VIRTUAL_ENV" \
    && "$VIRTUAL_ENV/bin/pip" install --no-cache-dir --no-index --find-links /wheels walletpass \
    && walletpass --version

# Declared after /data is created and chowned: Docker copies the image's /data (owner
# and mode included) into an empty named volume the first time it is mounted, so the
# service user can write certificates there. Changes to /data after VOLUME would be lost.
VOLUME ["/data"]
WORKDIR /data

USER 10001:10001

EXPOSE 8000

# slim images have no curl: ask Python. urlopen raises on a non-2xx answer (503 while
# the database is unreachable or its schema is behind), so any failure exits non-zero.
# Services of this image that do not serve HTTP (the worker, migrations) turn it off
# (compose.yaml: healthcheck: disable).
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=4)"]

# A shell expands ${WEB_CONCURRENCY:-2} (the exec form would pass it literally); `exec`
# then replaces the shell with gunicorn, so gunicorn is PID 1 and gets SIGTERM from
# `docker stop` for a graceful shutdown. --threads 4 makes gunicorn use gthread workers.
# WALLETPASS_EMBEDDED_WORKER keeps the app's default (true: an outbox worker thread in
# each web process) for a single `docker run`; compose.yaml sets it to false and runs
# `walletpass worker` in containers of its own.
CMD ["/bin/sh", "-c", "exec gunicorn -b 0.0.0.0:8000 -w \"${WEB_CONCURRENCY:-2}\" --threads 4 --access-logfile - --logger-class walletpass.web.accesslog.AccessLog 'walletpass.app:create_app()'"]
