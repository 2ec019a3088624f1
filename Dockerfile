# modelport serving the Iris example, trained at build time from scikit-learn's bundled data.
#   docker build -t modelport-iris .
#   docker run --rm -p 8000:8000 modelport-iris
# To serve your own models, `modelport build REPO -t NAME` writes a build context for them.
ARG PYTHON_IMAGE=python:3.11-slim

FROM ${PYTHON_IMAGE} AS builder
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1
RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH
WORKDIR /src
COPY pyproject.toml README.md ./
COPY src ./src
RUN pip install . && modelport examples train iris --repo /models

FROM ${PYTHON_IMAGE} AS runtime
ARG VERSION=0.1.0
ARG SOURCE=unknown
LABEL org.opencontainers.image.title="modelport-iris" \
      org.opencontainers.image.source="${SOURCE}" \
      org.opencontainers.image.description="modelport serving the Iris example" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.licenses="Apache-2.0"
RUN useradd --uid 10001 --user-group --no-create-home --shell /usr/sbin/nologin modelport
COPY --from=builder /opt/venv /opt/venv
COPY --from=builder --chown=10001:10001 /models /models
# the trusted pins, outside the served tree and not writable by the server's user
COPY --from=builder /modelport.lock /modelport.lock
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    MODELPORT_MODELS=/models \
    PORT=8000 \
    WEB_CONCURRENCY=2
USER 10001
WORKDIR /models
EXPOSE 8000
STOPSIGNAL SIGTERM
HEALTHCHECK --interval=10s --timeout=3s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/ready' % os.environ.get('PORT', '8000'), timeout=2)"]
CMD ["modelport", "serve"]
