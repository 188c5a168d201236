# complaintcore's container image: the wheel built from this tree and its dependencies at the
# versions of requirements.lock, installed from a wheelhouse with no network during the build (an
# intranet's build hosts have none), run as a non-root user; the entrypoint applies the migrations,
# then serves the API on 0.0.0.0:8000. No embedded PostgreSQL: DATABASE_URL is required (and, for
# `serve`, COMPLAINTCORE_MASTER_KEY_FILE, a file mounted from outside the image).
# docs/deployment.md ("Container image") says how to run it; `make image` builds and smoke-tests it.
#
# The wheelhouse first (the only network use, through the host's own index or mirror):
#   uv build --wheel --out-dir build/image/wheels
#   pip download --only-binary=:all: --dest build/image/wheels \
#       --constraint requirements.lock build/image/wheels/complaintcore-*.whl
# then the image (buildah, podman or docker):
#   buildah bud --format docker -t complaintcore .
#   podman run -e DATABASE_URL=postgresql://... \
#       -e COMPLAINTCORE_MASTER_KEY_FILE=/run/secrets/master.key \
#       -v /etc/complaintcore/master.key:/run/secrets/master.key:ro -p 8000:8000 complaintcore
#
# Arguments after the image name go to `serve` (`--workers 4`); another command of the CLI runs
# with `--entrypoint complaintcore` (`... --entrypoint complaintcore complaintcore tokens list`).
#
# BASE_IMAGE: any Debian-like image with `python3.11` on PATH, its `venv` module and `useradd`.
# The default is the official one; a bank's intranet registry mirrors it under its own name.
# `make image` builds one from Debian's packages (mmdebstrap) where no image registry is reachable.
ARG BASE_IMAGE=docker.io/library/python:3.11-slim-bookworm

FROM ${BASE_IMAGE} AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1 PYTHONDONTWRITEBYTECODE=1
COPY requirements.lock /build/requirements.lock
COPY build/image/wheels/ /build/wheels/
# Only the wheel's declared dependencies, at the versions of the lock (which also pins the dev
# extras: a constraint does not install them), from the wheelhouse alone.
RUN python3.11 -m venv /opt/complaintcore \
    && /opt/complaintcore/bin/pip install --no-index --find-links /build/wheels \
        --constraint /build/requirements.lock complaintcore \
    && /opt/complaintcore/bin/complaintcore --version

FROM ${BASE_IMAGE}
RUN groupadd --gid 10001 complaintcore \
    && useradd --uid 10001 --gid complaintcore --home-dir /nonexistent --no-create-home \
        --no-log-init --shell /usr/sbin/nologin complaintcore
COPY --from=build /opt/complaintcore /opt/complaintcore
ENV PATH=/opt/complaintcore/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    COMPLAINTCORE_HOST=0.0.0.0 \
    COMPLAINTCORE_PORT=8000 \
    COMPLAINTCORE_LOG_FORMAT=json
# An empty folder of its own: the settings also read a `.env` file in the working directory.
WORKDIR /srv/complaintcore
USER 10001:10001
EXPOSE 8000
# A liveness probe for engines that use it (Docker; podman with --format docker); orchestrators
# probe /healthz and /readyz themselves.
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s \
    CMD ["python3.11", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/healthz' % os.environ.get('COMPLAINTCORE_PORT', '8000'), timeout=4)"]
# Refuse to start without DATABASE_URL (the CLI would otherwise start an embedded PostgreSQL in
# the container), apply the migrations, then replace the shell with `serve`, which gets the
# signals (SIGTERM: a graceful stop).
ENTRYPOINT ["/bin/sh", "-c", "if [ -z \"$DATABASE_URL\" ]; then echo 'complaintcore: set DATABASE_URL (this image has no embedded PostgreSQL)' >&2; exit 1; fi; complaintcore migrate && exec complaintcore serve --host 0.0.0.0 \"$@\"", "complaintcore-entrypoint"]
CMD []
