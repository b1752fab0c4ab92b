# Classmap: one shared instance for a team.  CPU image; on a GPU host torch's CUDA
# build (the PyPI default for torch==2.14.1) uses the GPU when the container has one.
# Stage 1 builds the wheel; stage 2 installs only that wheel (no checkout, no editable
# install) and makes the vendored browser scripts into the installed package.

FROM python:3.11-slim-bookworm AS build
ENV PIP_NO_CACHE_DIR=1
WORKDIR /src
COPY pyproject.toml setup.py README.md ./
COPY analysis ./analysis
COPY app ./app
COPY assets ./assets
RUN pip wheel --no-cache-dir --no-deps --wheel-dir /dist .

FROM python:3.11-slim-bookworm
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    CLASSMAP_CACHE_DIR=/var/cache/classmap \
    NUMBA_CACHE_DIR=/var/cache/classmap/numba \
    CLASSMAP_COMPRESS=1

# The service user owns the cache: diskcache pickles, so nobody else may write it.
# /etc/classmap holds the config file with the users (password hashes): private too.
RUN useradd --create-home --uid 10001 classmap \
    && mkdir -p /var/cache/classmap /etc/classmap \
    && chown classmap:classmap /var/cache/classmap /etc/classmap \
    && chmod 0700 /var/cache/classmap /etc/classmap

# The wheel and its dependencies (pyproject pins torch 2.14.1 / torchvision 0.29.1), with
# the hosting extra (gunicorn, Celery on Redis) that docker-compose.yml's web and workers use.
COPY --from=build /dist /dist
# DL3013: the package is the wheel just built (its dependencies are pinned in pyproject).
# hadolint ignore=DL3013
RUN for wheel in /dist/*.whl; do pip install --no-cache-dir "${wheel}[hosting]"; done \
    && rm -rf /dist
# The vendored browser scripts, made by npm ci from the lockfile the wheel carries
# (assets/npm) into the installed package; npm comes from the official Node image for
# this step only (a bind mount: no layer keeps it). Without them the dashboard sends
# Dash's stock scripts.
RUN --mount=type=bind,from=node:22-bookworm-slim,source=/usr/local,target=/opt/node \
    PATH="/opt/node/bin:$PATH" python -m classmap.app.browser_scripts --optional

USER 10001
WORKDIR /home/classmap
EXPOSE 8050
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8050/healthz', timeout=4)"]
# One process by default; docker-compose.yml runs gunicorn (--workers, --broker) and
# 'classmap worker' from this image instead.
# Refuses to start until the config has users and allowed_hosts (docs/operator-guide.md):
#   docker run … classmap user add alice --role operator --config /etc/classmap/classmap.toml
CMD ["classmap", "serve", "--host", "0.0.0.0", "--port", "8050", "--config", "/etc/classmap/classmap.toml"]
