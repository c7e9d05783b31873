"""The edge's view of the settings (common/settings.py): ports, upstream addresses, EDGE_* knobs.

What the EDGE_* variables mean (their defaults are in common/settings.py):

    EDGE_LISTEN_HOST        address the REST listener binds (default 127.0.0.1)
    EDGE_MAX_BODY_BYTES     request body cap, 413 past it (default 1048576 = 1 MiB)
    EDGE_RATE_LIMIT_RPS     per-client (remote address) requests per second (default 100)
    EDGE_RATE_LIMIT_BURST   per-client bucket size (default = EDGE_RATE_LIMIT_RPS)
    EDGE_XFF_TRUSTED_HOPS   proxies in front of the edge whose X-Forwarded-For is trusted for the
                            client address (default 0: the TCP peer is the client)
    EDGE_CORS_ORIGINS       comma-separated exact origins allowed by CORS (default: any
                            http(s)://localhost / 127.0.0.1 / [::1] origin, any port)
    EDGE_DOMAIN             the dedicated hosts are cart.<domain> (catalog and cart routes only)
                            and pay.<domain> (order, payment and webhook routes only); default
                            interns.localhost. Any other host is the main one, with every route.
    EDGE_CART_CORS_ORIGINS  CORS origins of cart.<domain> (default: as the main host)
    EDGE_PAY_CORS_ORIGINS   CORS origins of pay.<domain> (default: as the main host)
    EDGE_CSP                Content-Security-Policy (default: CSP_TEMPLATE below, allowing
                            RAZORPAY_CHECKOUT_JS_URL's script and its checkout modal's frame)
    EDGE_TLS_PORT           the HTTPS listener (default 8443), on when EDGE_TLS_CERT_FILE and
                            EDGE_TLS_KEY_FILE name its certificate and key (edge/tls.py)
    EDGE_REQUIRE_TLS        the plain port redirects (308) every request to HTTPS but /healthz and
                            /readyz (default: on when ENVIRONMENT=production)
    EDGE_HSTS_MAX_AGE       seconds; > 0 adds Strict-Transport-Security to every HTTPS answer,
                            never to a plain-HTTP one (default one year in production, 300 s in
                            development; the docker variant: one year)
    TLS_CA_FILE, TLS_CERT_FILE, TLS_KEY_FILE
                            the edge's own identity (spiffe://interns/edge) towards the services'
                            mutual TLS, and the CA bundle it checks them against; GRPC_PLAINTEXT=1
                            (development only) talks to them in plaintext
    EDGE_ROUTE_TIMEOUT_MS   upstream timeout per request (default 15000)
    EDGE_HEALTH_INTERVAL_MS active gRPC health check interval (default 1000)
    EDGE_HEALTHZ_CLUSTERS   comma-separated clusters /healthz requires (default: all of cart,
                            order, payment, enrollment)
    EDGE_WEB_ROOT           directory Envoy reads the checkout page's files from (default: web/
                            of this checkout; "none" serves no page)

Tracing: the edge's spans go over OTLP/HTTP to OTEL_EXPORTER_OTLP_ENDPOINT, else to the local
receiver of `make run` (127.0.0.1:TRACE_RECEIVER_PORT); TRACING_SAMPLE_RATIO samples new traces
(TRACING=0: none, but every answer still has its x-trace-id).

The checkout page's dev-only login form is enabled exactly when JWT_SECRET is the development
default (common/settings.py), and then the page is given that public default, never another secret.
"""

from __future__ import annotations

import dataclasses
import pathlib
from urllib.parse import urlsplit

from common.settings import RAZORPAY_CHECKOUT_JS, Settings, load_settings

ROOT = pathlib.Path(__file__).resolve().parent.parent
DESCRIPTOR_PATH = ROOT / "gen" / "checkout.pb"
DOCKER_DESCRIPTOR_PATH = "/etc/envoy/checkout.pb"
WEB_DIR = ROOT / "web"  # the checkout page (static files), served by the edge at /
DOCKER_WEB_ROOT = "/etc/envoy/web"  # compose mounts ./web here
DOCKER_SECRETS = "/run/secrets"  # compose's secrets: the certificates and keys

# The gateways' webhooks (gRPC paths), which edge/config.py's webhooks_cluster() serves when payment's
# Upstream names webhook_ports; a test keeps the list equal to the methods on /api/v1/webhooks/.
WEBHOOK_PATHS = ("/checkout.v1.PaymentService/RazorpayWebhook", "/checkout.v1.PaymentService/StripeWebhook")
WEBHOOKS_UPSTREAM = "payment"
# Which checkout.v1 services each cluster (process) serves. Every service in the descriptor set
# must appear here exactly once: rendering fails otherwise, so a new service cannot go unrouted.
CLUSTER_SERVICES: dict[str, tuple[str, ...]] = {
    "cart": ("CatalogService", "CartService", "AdminService"),
    "order": ("OrderService",),
    "payment": ("PaymentService", "RefundService"),
    "enrollment": ("EnrollmentService",),
}
# The dedicated hosts (CONTRACT.md "Hosts"): `<prefix>.<EDGE_DOMAIN>` serves only these services'
# REST routes (the webhooks are PaymentService methods). Every name must be in the descriptor set:
# rendering fails otherwise. Each host has its own CORS origins and its own rate-limit buckets.
HOST_SERVICES: dict[str, tuple[str, ...]] = {
    "cart": ("CatalogService", "CartService"),
    "pay": ("OrderService", "PaymentService"),
}
DEFAULT_DOMAIN = "interns.localhost"
DOCKER_METRICS_PORT = 9902  # Prometheus scrapes Envoy here in docker-compose  # *.localhost resolves to this machine (browsers do it themselves)

# compose's trace collector (Jaeger, OTLP/HTTP)
DOCKER_TRACE_COLLECTOR_ENDPOINT = "http://jaeger:4318"

# docker-compose service names, one per cluster
DOCKER_HOSTS: dict[str, str] = {
    "cart": "cart_svc",
    "order": "order_svc",
    "payment": "payment_svc",
    "enrollment": "enrollment_svc",
}

# Kubernetes Service names, one per cluster (deploy/k8s/base: DNS names cannot hold "_")
KUBERNETES_HOSTS: dict[str, str] = {name: f"{name}-svc" for name in DOCKER_HOSTS}

# The gateways' webhooks go to payment_svc's SERVICE_ROLE=workers processes, on the gRPC port of
# payment's (each process in a container of its own): compose's service payment_svc_workers, the
# Kubernetes Service payment-webhooks (deploy/k8s/base/payment-svc.yaml)
DOCKER_WEBHOOKS_HOST = "payment_svc_workers"
KUBERNETES_WEBHOOKS_HOST = "payment-webhooks"

# A static page plus same-origin API calls, and Razorpay Standard Checkout: its script
# (RAZORPAY_CHECKOUT_JS_URL) and the modal it opens in an iframe, from the script's origin (the
# emulator) or, for Razorpay's own script, from api.razorpay.com. Stripe Checkout is a page of
# Stripe's the browser navigates to: nothing to allow. EDGE_CSP replaces the whole policy.
CSP_TEMPLATE = (
    "default-src 'none'; script-src 'self' {scripts}; style-src 'self'; img-src 'self' data:; "
    "font-src 'self'; connect-src 'self'; frame-src {frames}; form-action 'self'; "
    "frame-ancestors 'none'; base-uri 'none'"
)
RAZORPAY_FRAME_ORIGINS = {"checkout.razorpay.com": ("https://api.razorpay.com",)}
DEV_CHECKOUT_JS_URL = "http://127.0.0.1:8090/v1/checkout.js"  # common.settings' default (the emulator)
LOCALHOST_ORIGIN_REGEX = r"^https?://(localhost|127\.0\.0\.1|\[::1\])(:[0-9]{1,5})?$"


@dataclasses.dataclass(frozen=True)
class Upstream:
    host: str
    port: int
    ops_port: int = 0  # the service's metrics port: /readyz (0: none; /readyz then says so)
    replicas: int = 1  # replica i listens on port + i * port_step (and ops_port + i * port_step)
    port_step: int = 0
    # processes that answer the gateways' webhooks instead of `ports` (SPLIT_WORKERS: payment_svc's
    # workers, so that a webhook never waits behind the students' calls); empty: `ports`
    webhook_ports: tuple[int, ...] = ()
    # where those are (compose and Kubernetes: a name of their own); empty: `host`
    webhook_host: str = ""

    @property
    def ports(self) -> list[int]:
        return [self.port + i * self.port_step for i in range(self.replicas)]

    @property
    def ops_ports(self) -> list[int]:
        return [self.ops_port + i * self.port_step for i in range(self.replicas)] if self.ops_port else []


@dataclasses.dataclass(frozen=True)
class UpstreamTls:
    """The edge's client certificate towards the services and the CA bundle it trusts."""

    ca_file: str
    cert_file: str
    key_file: str


@dataclasses.dataclass(frozen=True)
class Collector:
    """Where the edge sends its spans: an OTLP/HTTP collector."""

    host: str = "127.0.0.1"
    port: int = 54318
    path: str = "/v1/traces"
    tls: bool = False

    @property
    def url(self) -> str:
        return f"{'https' if self.tls else 'http'}://{self.host}:{self.port}{self.path}"

    @classmethod
    def from_endpoint(cls, endpoint: str) -> Collector:
        """OTEL_EXPORTER_OTLP_ENDPOINT (a base URL such as http://jaeger:4318) → its /v1/traces."""
        parts = urlsplit(endpoint.strip())
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise SystemExit(f"setting OTEL_EXPORTER_OTLP_ENDPOINT is not an http(s) URL: {endpoint!r}")
        tls = parts.scheme == "https"
        path = parts.path.rstrip("/")
        return cls(parts.hostname, parts.port or (443 if tls else 80),
                   path if path.endswith("/v1/traces") else f"{path}/v1/traces", tls)


@dataclasses.dataclass(frozen=True)
class EdgeSettings:
    listen_host: str = "127.0.0.1"
    port: int = 8080
    admin_host: str = "127.0.0.1"
    admin_port: int = 9901
    # A listener serving only the admin's /stats/prometheus (0: none; the docker variant's 9902,
    # since there the admin stays on the container's loopback)
    metrics_port: int = 0
    upstreams: dict[str, Upstream] = dataclasses.field(
        default_factory=lambda: {
            "cart": Upstream("127.0.0.1", 50051, 9101),
            "order": Upstream("127.0.0.1", 50052, 9102),
            "payment": Upstream("127.0.0.1", 50053, 9103),
            "enrollment": Upstream("127.0.0.1", 50054, 9104),
        }
    )
    descriptor_path: str = str(DESCRIPTOR_PATH)
    max_body_bytes: int = 1024 * 1024
    max_response_bytes: int = 8 * 1024 * 1024
    rate_limit_rps: int = 100
    rate_limit_burst: int = 0  # 0: same as rate_limit_rps
    xff_trusted_hops: int = 0
    cors_origins: tuple[str, ...] = ()  # empty: localhost origins
    domain: str = DEFAULT_DOMAIN  # the dedicated hosts are cart.<domain> and pay.<domain>
    cart_cors_origins: tuple[str, ...] = ()  # empty: as cors_origins
    pay_cors_origins: tuple[str, ...] = ()  # empty: as cors_origins
    csp: str = ""  # empty: default_csp(razorpay_checkout_js_url)
    hsts_max_age: int = 365 * 24 * 3600
    # HTTPS: a listener on tls_port when both files are given; require_tls makes the plain port
    # redirect to it. upstream_tls None: plaintext gRPC to the services (GRPC_PLAINTEXT).
    tls_port: int = 8443
    tls_cert_file: str = ""
    tls_key_file: str = ""
    require_tls: bool = False
    upstream_tls: UpstreamTls | None = None
    route_timeout_ms: int = 15000
    health_interval_ms: int = 1000
    # clusters whose health /healthz requires; None: every cluster
    healthz_clusters: tuple[str, ...] | None = None
    access_log: bool = True
    # The checkout page: the directory Envoy reads its files from ("" = no page), and whether the
    # page offers the dev-only login form (JWT_SECRET is the development default), with the
    # issuer and audience its tokens must carry.
    web_root: str = str(WEB_DIR)
    trace_collector: Collector = Collector()
    trace_sample_percent: float = 100.0
    dev_login: bool = True
    razorpay_checkout_js_url: str = DEV_CHECKOUT_JS_URL
    jwt_issuer: str = "interns-platform"
    jwt_audience: str = "checkout"

    def with_(self, **changes: object) -> EdgeSettings:
        return dataclasses.replace(self, **changes)  # type: ignore[arg-type]

    @property
    def content_security_policy(self) -> str:
        return self.csp or default_csp(self.razorpay_checkout_js_url)

    @property
    def burst(self) -> int:
        return self.rate_limit_burst or self.rate_limit_rps

    def host(self, prefix: str) -> str:
        """A dedicated host's name, e.g. host("cart") -> "cart.interns.localhost"."""
        return f"{prefix}.{self.domain}"

    def host_cors_origins(self, prefix: str) -> tuple[str, ...]:
        own = {"cart": self.cart_cors_origins, "pay": self.pay_cors_origins}[prefix]
        return own or self.cors_origins

    @property
    def https(self) -> bool:
        return bool(self.tls_cert_file and self.tls_key_file)

    @property
    def required_clusters(self) -> tuple[str, ...]:
        return tuple(self.upstreams) if self.healthz_clusters is None else self.healthz_clusters


def _webhook_ports(common: Settings, name: str) -> tuple[int, ...]:
    if name != WEBHOOKS_UPSTREAM or not common.split_workers:
        return ()
    return tuple(grpc_port for grpc_port, _ in common.workers_ports(name))


def from_env(base: Settings | None = None) -> EdgeSettings:
    """From `base`, or the environment as it is now (the edge renders once per process)."""
    common = base or load_settings()
    host = common.grpc_host
    _https(common)
    unknown = [n for n in common.edge_healthz_clusters if n not in CLUSTER_SERVICES]
    if unknown:
        raise SystemExit(f"setting EDGE_HEALTHZ_CLUSTERS names unknown clusters {unknown}; known: {sorted(CLUSTER_SERVICES)}")
    return EdgeSettings(
        listen_host=common.edge_listen_host or "127.0.0.1",
        port=common.edge_port,
        admin_port=common.edge_admin_port,
        upstreams={name: Upstream(host, common.grpc_port(name), common.metrics_port(name), common.service_replicas,
                                  common.replica_port_step, _webhook_ports(common, name)) for name in CLUSTER_SERVICES},
        max_body_bytes=common.edge_max_body_bytes,
        rate_limit_rps=common.edge_rate_limit_rps,
        rate_limit_burst=common.edge_rate_limit_burst,
        xff_trusted_hops=common.edge_xff_trusted_hops,
        cors_origins=common.edge_cors_origins,
        domain=_domain(common.edge_domain),
        cart_cors_origins=common.edge_cart_cors_origins,
        pay_cors_origins=common.edge_pay_cors_origins,
        csp=common.edge_csp,
        hsts_max_age=int(common.edge_hsts_max_age or 0),
        tls_port=common.edge_tls_port,
        tls_cert_file=common.edge_tls_cert_file,
        tls_key_file=common.edge_tls_key_file,
        require_tls=bool(common.edge_require_tls),
        upstream_tls=_upstream_tls(common),
        route_timeout_ms=common.edge_route_timeout_ms,
        health_interval_ms=common.edge_health_interval_ms,
        healthz_clusters=common.edge_healthz_clusters or None,
        web_root=_web_root(common.edge_web_root),
        trace_collector=(Collector.from_endpoint(common.otel_exporter_otlp_endpoint)
                         if common.otel_exporter_otlp_endpoint else Collector("127.0.0.1", common.trace_receiver_port)),
        trace_sample_percent=common.tracing_sample_ratio * 100 if common.tracing else 0.0,
        dev_login=common.jwt_secret_is_dev_default,
        jwt_issuer=common.jwt_issuer,
        jwt_audience=common.jwt_audience,
        razorpay_checkout_js_url=common.razorpay_checkout_js_url,
    )


def _upstream_tls(common: Settings) -> UpstreamTls | None:
    if common.grpc_plaintext:
        return None
    files = {"TLS_CA_FILE": common.tls_ca_file, "TLS_CERT_FILE": common.tls_cert_file,
             "TLS_KEY_FILE": common.tls_key_file}
    unset = [name for name, value in files.items() if not value]
    if unset:
        raise SystemExit(f"the edge reaches the services over mutual TLS: set {', '.join(unset)}, "
                         "or GRPC_PLAINTEXT=1 for development only")
    return UpstreamTls(common.tls_ca_file, common.tls_cert_file, common.tls_key_file)


def _https(common: Settings) -> None:
    given = [bool(common.edge_tls_cert_file), bool(common.edge_tls_key_file)]
    if any(given) and not all(given):
        raise SystemExit("settings EDGE_TLS_CERT_FILE and EDGE_TLS_KEY_FILE go together")
    if common.edge_require_tls and not all(given):
        raise SystemExit("setting EDGE_REQUIRE_TLS needs the HTTPS listener: set EDGE_TLS_CERT_FILE and "
                         "EDGE_TLS_KEY_FILE")


def default_csp(checkout_js_url: str) -> str:
    """The page's policy with Razorpay Standard Checkout's script and modal allowed."""
    parts = urlsplit(checkout_js_url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise SystemExit(f"setting RAZORPAY_CHECKOUT_JS_URL is not an http(s) URL: {checkout_js_url!r}")
    origin = f"{parts.scheme}://{parts.netloc}"
    frames = (origin, *RAZORPAY_FRAME_ORIGINS.get(parts.hostname, ()))
    return CSP_TEMPLATE.format(scripts=origin, frames=" ".join(frames))


def _domain(raw: str) -> str:
    domain = raw.strip().strip(".").lower()
    labels = domain.split(".")
    if not domain or any(not label or not all(c.isalnum() or c == "-" for c in label) for label in labels):
        raise SystemExit(f"setting EDGE_DOMAIN is not a domain name: {raw!r}")
    return domain


def _web_root(raw: str) -> str:
    raw = raw.strip()
    if raw.lower() in ("none", "off"):
        return ""
    return raw or str(WEB_DIR)


def _deployed(name: str, up: Upstream, host: str, webhooks_host: str) -> Upstream:
    """A cluster of compose or Kubernetes: the service's name, its usual ports (one process per
    container, replicated by the orchestrator) and, for payment, its workers for the webhooks."""
    if name != WEBHOOKS_UPSTREAM:
        return Upstream(host, up.port, up.ops_port)
    return Upstream(host, up.port, up.ops_port, webhook_ports=(up.port,), webhook_host=webhooks_host)


DOCKER_TRACE_COLLECTOR = Collector.from_endpoint(DOCKER_TRACE_COLLECTOR_ENDPOINT)
KUBERNETES_TRACE_COLLECTOR = Collector.from_endpoint("http://otel-collector:4318")


def docker(domain: str = DEFAULT_DOMAIN) -> EdgeSettings:
    """The docker-compose variant: fixed defaults (never the caller's environment), so the
    committed edge/envoy.docker.yaml is reproducible. Compose mounts gen/checkout.pb at
    DOCKER_DESCRIPTOR_PATH, the certificates as secrets, and publishes both listeners (the plain
    one redirects to HTTPS); the admin stays on the container's loopback. A deployment on its
    own domain renders its copy with `--domain`."""
    defaults = EdgeSettings()
    return defaults.with_(
        # compose mounts its secrets (docker-compose.yml) at /run/secrets/<name>
        tls_cert_file=f"{DOCKER_SECRETS}/edge_https_cert", tls_key_file=f"{DOCKER_SECRETS}/edge_https_key",
        require_tls=True,
        upstream_tls=UpstreamTls(f"{DOCKER_SECRETS}/internal_ca", f"{DOCKER_SECRETS}/edge_cert",
                                 f"{DOCKER_SECRETS}/edge_key"),
        domain=_domain(domain),
        listen_host="0.0.0.0",
        upstreams={name: _deployed(name, up, DOCKER_HOSTS[name], DOCKER_WEBHOOKS_HOST)
                   for name, up in defaults.upstreams.items()},
        descriptor_path=DOCKER_DESCRIPTOR_PATH,
        web_root=DOCKER_WEB_ROOT,
        trace_collector=DOCKER_TRACE_COLLECTOR,
        dev_login=False,  # compose requires a real JWT_SECRET
        razorpay_checkout_js_url=RAZORPAY_CHECKOUT_JS,  # compose talks to Razorpay's API
        metrics_port=DOCKER_METRICS_PORT,
    )


def kubernetes(domain: str = DEFAULT_DOMAIN) -> EdgeSettings:
    """The Kubernetes variant (deploy/k8s/base/edge/config.yaml, a ConfigMap with the descriptor
    set): as docker(), with the Services' names, no page (the API only), its spans to an OTLP
    collector Service `otel-collector` (port 4318) that the cluster provides (none: they are dropped),
    and the certificates where deploy/k8s/base/edge/edge.yaml mounts cert-manager's secrets."""
    return docker(domain).with_(web_root="", trace_collector=KUBERNETES_TRACE_COLLECTOR, upstreams={
        name: _deployed(name, up, KUBERNETES_HOSTS[name], KUBERNETES_WEBHOOKS_HOST)
        for name, up in EdgeSettings().upstreams.items()},
        # cert-manager's secrets edge-https and edge-mtls (deploy/k8s/base/tls.yaml), mounted there
        tls_cert_file="/etc/tls/https/tls.crt", tls_key_file="/etc/tls/https/tls.key",
        upstream_tls=UpstreamTls("/etc/tls/mtls/ca.crt", "/etc/tls/mtls/tls.crt", "/etc/tls/mtls/tls.key"))
