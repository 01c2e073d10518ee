# User-code image of the podpod_scraping code location.
# Build: docker build -t podpod-scraping .
# It serves the code location over gRPC; dagster-webserver and dagster-daemon (same
# dagster version, see pyproject.toml) load it through workspace.yaml's grpc_server entry.
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

USER dagster
EXPOSE 4000

CMD ["dagster", "api", "grpc", "-m", "podpod_scraping.definitions", "-h", "0.0.0.0", "-p", "4000"]
