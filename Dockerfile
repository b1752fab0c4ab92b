# Classmap: one shared instance for a team.  CPU image; on a GPU host torch's CUDA
# build (the PyPI default for torch==2.14.1) uses the GPU when the container has one.
FROM python:3.11-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    CLASSMAP_CACHE_DIR=/var/cache/classmap \
    NUMBA_CACHE_DIR=/var/cache/classmap/numba \
    CLASSMAP_COMPRESS=1

# The service user owns the cache: diskcache pickles, so nobody else may write it.
RUN useradd --create-home --uid 10001 classmap \
    && mkdir -p /var/cache/classmap \
    && chown classmap:classmap /var/cache/classmap \
    && chmod 0700 /var/cache/classmap

WORKDIR /opt/classmap
COPY pyproject.toml README.md ./
COPY analysis ./analysis
COPY app ./app
COPY assets ./assets
# The same install steps as `make install` (pyproject pins torch 2.14.1 / torchvision 0.29.1).
# Editable, so the app finds assets/ beside app/ as in a checkout. npm comes from the
# official Node image for one step only (a bind mount: no layer keeps it) and fetches
# the vendored browser scripts into assets/vendor/ (app/browser_scripts.py).
RUN pip install --no-cache-dir -e .
RUN --mount=type=bind,from=node:22-bookworm-slim,source=/usr/local,target=/opt/node \
    PATH="/opt/node/bin:$PATH" python -m classmap.app.browser_scripts --optional

USER 10001
EXPOSE 8050
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8050/', timeout=4)"]
CMD ["classmap", "serve", "--host", "0.0.0.0", "--port", "8050"]
