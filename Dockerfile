# One image for every service; docker-compose.yml picks the module to run.
FROM python:3.11-slim
WORKDIR /app
COPY requirements.lock .
RUN pip install --no-cache-dir -r requirements.lock
COPY . .
RUN python tools/write_pth.py
RUN useradd --system --uid 10001 checkout
USER checkout
ENV GRPC_HOST=0.0.0.0 PYTHONUNBUFFERED=1
