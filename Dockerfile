# The fleetpipe image for the API and the workers (see docker-compose.yml).
FROM python:3.11-slim

ENV PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    UV_COMPILE_BYTECODE=1 \
    UV_LINK_MODE=copy \
    UV_PYTHON_DOWNLOADS=never \
    PATH="/app/.venv/bin:$PATH"

RUN pip install --no-cache-dir uv
WORKDIR /app

# Dependencies first, from the lock file alone, so a code change does not reinstall them.
COPY pyproject.toml uv.lock README.md ./
RUN uv sync --frozen --no-dev --no-install-project

COPY . .
RUN uv sync --frozen --no-dev \
    && useradd --system --uid 10001 --home-dir /app fleetpipe \
    && chown -R fleetpipe /app
USER fleetpipe

EXPOSE 8000
# The compose file gives each service its command; this default is the API.
CMD ["uvicorn", "api.app:app", "--host", "0.0.0.0", "--port", "8000"]
