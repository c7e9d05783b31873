# One image per service, each with only what it runs: the runtime lock (requirements.lock: no
# test, lint, code-generation or embedded-server packages), the plumbing (common/), the generated
# stubs (gen/), the migration trees, the health probe, and that one service's package.
#
#   docker build --target service --build-arg SERVICE=cart_svc -t checkout/cart_svc .
#   docker build --target migrate -t checkout/migrate .     # python -m common.migrations setup
#
# docker-compose.yml builds all five; tests/unit/deploy/test_docker_compose.py checks both files.

FROM python:3.11-slim AS runtime
WORKDIR /app
ENV PYTHONPATH=/app:/app/gen \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    GRPC_HOST=0.0.0.0
COPY requirements.lock ./
RUN pip install --no-cache-dir --disable-pip-version-check -r requirements.lock
RUN useradd --system --uid 10001 --no-create-home checkout
COPY common/ common/
COPY gen/ gen/
COPY migrations/ migrations/
COPY tools/__init__.py tools/grpc_health.py tools/

# The one-shot migration job: each service's role and schema, then each service's tree as its role.
FROM runtime AS migrate
USER checkout
CMD ["python", "-m", "common.migrations", "setup"]

# A service: cart_svc, order_svc, payment_svc or enrollment_svc (no other package is copied in).
FROM runtime AS service
ARG SERVICE
RUN case "$SERVICE" in cart_svc|order_svc|payment_svc|enrollment_svc) ;; \
      *) echo "build with --build-arg SERVICE=<cart_svc|order_svc|payment_svc|enrollment_svc>" >&2; exit 1 ;; esac
COPY ${SERVICE}/ ${SERVICE}/
ENV SERVICE=${SERVICE}
USER checkout
CMD ["sh", "-c", "exec python -m \"$SERVICE\""]
