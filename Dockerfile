FROM python:3.12-slim
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1
WORKDIR /app
COPY pyproject.toml README.md ./
COPY switchyard ./switchyard
COPY releases ./releases
COPY strategies ./strategies
COPY integrations ./integrations
RUN pip install --no-cache-dir .
COPY . .
EXPOSE 8000
# uvicorn runs this many worker processes (it reads WEB_CONCURRENCY): see docs/serving.md
ENV WEB_CONCURRENCY=4
CMD ["uvicorn", "switchyard.asgi:application", "--host", "0.0.0.0", "--port", "8000", "--lifespan", "off", "--ws-per-message-deflate", "false"]
