# User-code image of the podpod_scraping code location.
# Build: docker build -t podpod-scraping .
# It serves the code location over gRPC; dagster-webserver and dagster-daemon (same
# dagster version, see pyproject.toml) load it through a grpc_server workspace entry
# (deploy/compose/workspace.yaml). The image also carries dagster-docker and dagster-k8s,
# so the same image serves as the run worker of DockerRunLauncher and K8sRunLauncher.
FROM python:3.11-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    UV_COMPILE_BYTECODE=1 \
    UV_LINK_MODE=copy \
    UV_PROJECT_ENVIRONMENT=/opt/venv \
    PATH=/opt/venv/bin:$PATH \
    DAGSTER_HOME=/opt/dagster/dagster_home

RUN pip install --no-cache-dir "uv==0.13.9" \
    && useradd --create-home --uid 10001 dagster \
    && mkdir -p /opt/dagster/app /opt/dagster/dagster_home \
    && chown -R dagster /opt/dagster

WORKDIR /opt/dagster/app

# Dependencies first (cached layer), exactly as locked, without dev tools.
COPY pyproject.toml uv.lock README.md ./
RUN uv sync --frozen --no-dev --no-install-project

COPY podpod_scraping ./podpod_scraping
COPY dagster.yaml workspace.yaml /opt/dagster/dagster_home/
RUN uv sync --frozen --no-dev

# By uid, so that Kubernetes' runAsNonRoot can verify it.
USER 10001
EXPOSE 4000
# The scraper config is not baked in: mount it (compose volume, Kubernetes ConfigMap) and
# point PODPOD_SCRAPER_CONFIG at it, e.g. /opt/dagster/config/scraper.yaml.

CMD ["dagster", "api", "grpc", "-m", "podpod_scraping.definitions", "-h", "0.0.0.0", "-p", "4000"]
