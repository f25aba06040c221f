# One image, two roles: the API (default command) and the workers (`aidline worker`).
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 PORT=8000
RUN useradd --create-home --uid 10001 aidline
WORKDIR /app

# the same install as `make run`: the package and its dependencies from pyproject.toml
COPY pyproject.toml README.md ./
COPY service ./service
COPY worker ./worker
RUN pip install --upgrade pip && pip install .

USER aidline
EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=3s CMD python -c "import urllib.request,os; urllib.request.urlopen(f'http://127.0.0.1:{os.environ[\"PORT\"]}/healthz')"
CMD ["sh", "-c", "exec gunicorn --bind 0.0.0.0:${PORT} --workers 2 --threads 4 --limit-request-line 0 --no-control-socket 'service:create_app()'"]
