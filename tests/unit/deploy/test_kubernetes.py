"""deploy/k8s: the base and both overlays render (tools/kustomize.py) to objects that Kubernetes
1.34 accepts (kubernetes-validate, strict: unknown fields refused) and that CloudNativePG accepts
(its CRD schemas, vendored in deploy/k8s/schemas); and they say what the issue asks of them."""

from __future__ import annotations

import base64
import json
import pathlib

import jsonschema
import kubernetes_validate
import pytest

from edge.config import KUBERNETES_CONFIG, kubernetes_config_is_current
from tools.kustomize import render

ROOT = pathlib.Path(__file__).resolve().parents[3]
K8S = ROOT / "deploy" / "k8s"
KUBERNETES_VERSION = "1.34.0"
VARIANTS = {"base": K8S / "base", "dev": K8S / "overlays" / "dev", "prod": K8S / "overlays" / "prod"}
SERVICES = {"cart-svc": (50051, 9101), "order-svc": (50052, 9102), "payment-svc": (50053, 9103),
            "enrollment-svc": (50054, 9104)}
CRD_SCHEMAS = {(path.stem.split("_")[1], path.stem.split("_")[2]): json.loads(path.read_text())
               for path in (K8S / "schemas").glob("*.json")}
CRD_VALIDATORS = {key: jsonschema.validators.validator_for(schema)(schema) for key, schema in CRD_SCHEMAS.items()}


def _objects(variant: str) -> list[dict]:
    return render(VARIANTS[variant])


def _one(objects: list[dict], kind: str, name: str) -> dict:
    [found] = [o for o in objects if o["kind"] == kind and o["metadata"]["name"] == name]
    return found


# cert-manager's kinds: no CRD schema is vendored here, so a structural check of our own (the
# fields cert-manager.io/v1 requires and the ones this project relies on)
CERTIFICATE_SPEC = {"secretName", "issuerRef", "commonName", "dnsNames", "uris", "usages", "duration", "renewBefore",
                    "privateKey", "isCA"}
USAGES = {"digital signature", "server auth", "client auth", "cert sign"}


def check_cert_manager(obj: dict) -> None:
    assert obj["apiVersion"] == "cert-manager.io/v1" and obj["kind"] in ("Issuer", "Certificate"), obj
    spec = obj["spec"]
    if obj["kind"] == "Issuer":
        assert len(spec) == 1 and (spec == {"selfSigned": {}} or set(spec["ca"]) == {"secretName"}), spec
        return
    assert set(spec) <= CERTIFICATE_SPEC and spec["secretName"], spec
    assert set(spec["issuerRef"]) == {"name", "kind", "group"} and spec["issuerRef"]["kind"] == "Issuer", spec
    assert spec.get("dnsNames") or spec.get("uris") or spec.get("commonName"), spec
    assert set(spec.get("usages", [])) <= USAGES, spec
    assert spec["privateKey"]["algorithm"] == "ECDSA" and spec["privateKey"]["size"] == 256, spec
    for duration in ("duration", "renewBefore"):
        assert spec[duration].endswith("h") and int(spec[duration][:-1]) > 0, spec
    assert int(spec["renewBefore"][:-1]) < int(spec["duration"][:-1]), spec


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_every_object_validates(variant: str) -> None:
    objects = _objects(variant)
    assert objects
    for obj in objects:
        group_version = obj["apiVersion"]
        if group_version.startswith("postgresql.cnpg.io/"):
            CRD_VALIDATORS[(group_version.split("/")[1], obj["kind"])].validate(obj)
        elif group_version.startswith("cert-manager.io/"):
            check_cert_manager(obj)
        else:
            kubernetes_validate.validate(obj, KUBERNETES_VERSION, strict=True)


def test_each_process_has_its_own_certificate_mounted_and_named_in_its_settings() -> None:
    objects = _objects("prod")
    certificates = {o["metadata"]["name"]: o["spec"] for o in objects if o["kind"] == "Certificate"}
    for name in (*SERVICES, "edge"):
        identity = name.replace("-", "_")
        assert certificates[f"{name}-mtls"]["uris"] == [f"spiffe://interns/{identity}"], name
        assert certificates[f"{name}-mtls"]["issuerRef"]["name"] == "checkout-internal"
        assert certificates[f"{name}-mtls"]["secretName"] == f"{name}-mtls"
    for name in SERVICES:
        assert certificates[f"{name}-mtls"]["dnsNames"] == [name]  # what its clients check
        pod = _one(objects, "Deployment", name)["spec"]["template"]["spec"]
        [container] = pod["containers"]
        assert pod["volumes"] == [{"name": "mtls", "secret": {"secretName": f"{name}-mtls", "defaultMode": 0o440}}]
        assert container["volumeMounts"] == [{"name": "mtls", "mountPath": "/etc/checkout/tls", "readOnly": True}]
        env = {item["name"]: item.get("value") for item in container["env"]}
        assert (env["TLS_CA_FILE"], env["TLS_CERT_FILE"], env["TLS_KEY_FILE"]) == (
            "/etc/checkout/tls/ca.crt", "/etc/checkout/tls/tls.crt", "/etc/checkout/tls/tls.key")
        assert "GRPC_PLAINTEXT" not in env and pod["securityContext"]["fsGroup"] == pod["securityContext"]["runAsUser"]
    assert _one(objects, "Issuer", "checkout-internal")["spec"] == {"ca": {"secretName": "checkout-internal-ca"}}
    assert certificates["checkout-internal-ca"]["isCA"] is True
    edge = _one(objects, "Deployment", "edge")["spec"]["template"]["spec"]
    mounts = {m["name"]: m["mountPath"] for m in edge["containers"][0]["volumeMounts"]}
    assert mounts == {"config": "/etc/envoy", "https": "/etc/tls/https", "mtls": "/etc/tls/mtls"}
    envoy = _one(objects, "ConfigMap", "edge-envoy")["data"]["envoy.yaml"]
    for path in ("/etc/tls/https/tls.crt", "/etc/tls/mtls/tls.crt", "/etc/tls/mtls/ca.crt"):
        assert path in envoy, path
    assert 'san_type: "URI"' in envoy and "spiffe://interns/payment_svc" in envoy


@pytest.mark.parametrize(("variant", "namespace"), [("base", "interns-checkout"), ("dev", "interns-checkout-dev"),
                                                    ("prod", "interns-checkout")])
def test_everything_lives_in_the_variants_namespace(variant: str, namespace: str) -> None:
    objects = _objects(variant)
    assert _one(objects, "Namespace", namespace)
    assert {o["metadata"].get("namespace") for o in objects if o["kind"] != "Namespace"} == {namespace}


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_each_service_has_its_deployment_service_autoscaler_and_disruption_budget(variant: str) -> None:
    objects = _objects(variant)
    for name, (grpc, metrics) in SERVICES.items():
        deployment = _one(objects, "Deployment", name)
        [container] = deployment["spec"]["template"]["spec"]["containers"]
        # the native gRPC probe cannot present a client certificate: /healthz on the metrics port,
        # and at start-up an exec probe over mutual TLS with the pod's own certificate
        assert container["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "metrics"}
        assert container["startupProbe"]["exec"]["command"] == [
            "python", "-m", "tools.grpc_health", f"127.0.0.1:{grpc}", name.removesuffix("-svc")]
        assert container["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "metrics"}
        assert {p["containerPort"] for p in container["ports"]} == {grpc, metrics}
        assert container["resources"]["requests"]["cpu"] and container["resources"]["limits"]["memory"]
        assert container["securityContext"]["readOnlyRootFilesystem"] is True
        assert deployment["spec"]["template"]["spec"]["securityContext"]["runAsNonRoot"] is True
        assert _one(objects, "Service", name)["spec"]["ports"][0]["port"] == grpc
        assert _one(objects, "HorizontalPodAutoscaler", name)["spec"]["scaleTargetRef"]["name"] == name
        assert _one(objects, "PodDisruptionBudget", name)["spec"]["minAvailable"] == 1


def test_the_overlays_size_the_stack() -> None:
    dev, prod = _objects("dev"), _objects("prod")
    assert _one(dev, "Deployment", "payment-svc")["spec"]["replicas"] == 1
    assert _one(dev, "Cluster", "checkout-pg")["spec"]["instances"] == 1
    assert _one(dev, "ConfigMap", "checkout-config")["data"]["ENVIRONMENT"] == "development"
    payment = _one(prod, "Deployment", "payment-svc")
    assert payment["spec"]["replicas"] == 3
    [container] = payment["spec"]["template"]["spec"]["containers"]
    assert container["resources"]["requests"]["cpu"] == "500m" and container["readinessProbe"]  # merged, not replaced
    assert _one(prod, "Cluster", "checkout-pg")["spec"]["instances"] == 3
    assert _one(prod, "ConfigMap", "checkout-config")["data"]["ENVIRONMENT"] == "production"
    assert not [o for o in prod if o["kind"] == "Secret"]  # production secrets come from the cluster


def test_payment_svc_is_reached_only_by_the_edge_and_order_svc() -> None:
    policy = _one(_objects("prod"), "NetworkPolicy", "payment-svc-ingress")
    grpc_rule = next(rule for rule in policy["spec"]["ingress"] if rule["ports"] == [{"port": 50053}])
    callers = {peer["podSelector"]["matchLabels"]["app.kubernetes.io/name"] for peer in grpc_rule["from"]}
    assert callers == {"edge", "order-svc"}
    assert _one(_objects("prod"), "NetworkPolicy", "default-deny-ingress")["spec"] == {
        "podSelector": {}, "policyTypes": ["Ingress"]}


def test_nats_is_a_three_node_jetstream_cluster_and_streams_are_replicated() -> None:
    objects = _objects("prod")
    assert _one(objects, "StatefulSet", "nats")["spec"]["replicas"] == 3
    conf = _one(objects, "ConfigMap", "nats-config")["data"]["nats.conf"]
    assert "jetstream" in conf and all(f"nats-{i}.nats:6222" in conf for i in range(3))
    assert _one(objects, "ConfigMap", "checkout-config")["data"]["NATS_REPLICAS"] == "3"


def test_postgres_has_a_replica_and_backups() -> None:
    objects = _objects("prod")
    cluster = _one(objects, "Cluster", "checkout-pg")
    assert cluster["spec"]["instances"] >= 2 and cluster["spec"]["backup"]["barmanObjectStore"]["wal"]
    assert _one(objects, "ScheduledBackup", "checkout-pg-daily")["spec"]["cluster"] == {"name": "checkout-pg"}


def test_the_edges_bootstrap_is_generated_by_the_same_code_and_current() -> None:
    assert kubernetes_config_is_current(), f"{KUBERNETES_CONFIG} is stale: .venv/bin/python -m edge render --kubernetes"
    config = _one(_objects("prod"), "ConfigMap", "edge-envoy")
    assert all(f'address: "{name}"' in config["data"]["envoy.yaml"] for name in SERVICES)
    assert base64.b64decode(config["binaryData"]["checkout.pb"]) == (ROOT / "gen" / "checkout.pb").read_bytes()
    deployment = _one(_objects("prod"), "Deployment", "edge")
    assert deployment["spec"]["template"]["spec"]["volumes"] == [
        {"name": "config", "configMap": {"name": "edge-envoy"}},
        {"name": "https", "secret": {"secretName": "edge-https", "defaultMode": 0o440}},
        {"name": "mtls", "secret": {"secretName": "edge-mtls", "defaultMode": 0o440}}]


def test_the_crd_validation_is_not_a_formality() -> None:
    cluster = _one(_objects("prod"), "Cluster", "checkout-pg")
    broken = {**cluster, "spec": {**cluster["spec"], "instances": "two"}}
    with pytest.raises(jsonschema.ValidationError):
        CRD_VALIDATORS[("v1", "Cluster")].validate(broken)
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate({**_one(_objects("prod"), "Service", "edge"), "spek": {}}, KUBERNETES_VERSION,
                                     strict=True)


# -- SERVICE_ROLE: each service as two Deployments ---------------------------------------------------
def _pod_labels(objects: list[dict], deployment: str) -> dict[str, str]:
    return _one(objects, "Deployment", deployment)["spec"]["template"]["metadata"]["labels"]


def _selects(match_labels: dict[str, str], labels: dict[str, str]) -> bool:
    return all(labels.get(key) == value for key, value in match_labels.items())


def _without_role(container: dict) -> dict:
    return {**container, "env": [item for item in container["env"] if item["name"] != "SERVICE_ROLE"]}


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_each_service_runs_as_an_api_deployment_and_a_workers_deployment_of_the_same_pod(variant: str) -> None:
    objects = _objects(variant)
    for name, (_grpc, metrics) in SERVICES.items():
        api, workers = _one(objects, "Deployment", name), _one(objects, "Deployment", f"{name}-workers")
        [api_container] = api["spec"]["template"]["spec"]["containers"]
        [workers_container] = workers["spec"]["template"]["spec"]["containers"]
        roles = [{item["name"]: item.get("value") for item in c["env"]}["SERVICE_ROLE"]
                 for c in (api_container, workers_container)]
        assert roles == ["api", "workers"], name
        # the same image, settings, certificate (identity) and probes; only the requests may differ
        assert ({**_without_role(workers_container), "resources": None}
                == {**_without_role(api_container), "resources": None}), name
        assert workers["spec"]["template"]["spec"]["volumes"] == api["spec"]["template"]["spec"]["volumes"]
        assert workers_container["resources"]["requests"]["cpu"] and workers_container["resources"]["limits"]["memory"]
        labels = _pod_labels(objects, f"{name}-workers")
        assert labels["checkout/tier"] == "service"  # NATS and PostgreSQL let it in
        annotations = workers["spec"]["template"]["metadata"]["annotations"]
        assert (annotations["prometheus.io/scrape"], annotations["prometheus.io/port"]) == ("true", str(metrics))
        # nothing meant for the api processes reaches or counts the workers: Service, autoscaler, budget
        assert not _selects(api["spec"]["selector"]["matchLabels"], labels)
        assert not _selects(_one(objects, "Service", name)["spec"]["selector"], labels)
        assert not _selects(_one(objects, "PodDisruptionBudget", name)["spec"]["selector"]["matchLabels"], labels)
        assert not _selects(workers["spec"]["selector"]["matchLabels"], _pod_labels(objects, name))
        # relays take leader locks and consumers share a durable: a fixed count, no CPU autoscaling
        assert not [o for o in objects if o["kind"] == "HorizontalPodAutoscaler"
                    and o["spec"]["scaleTargetRef"]["name"] == f"{name}-workers"]
        budget = _one(objects, "PodDisruptionBudget", f"{name}-workers")["spec"]
        assert budget["maxUnavailable"] == 1 and _selects(budget["selector"]["matchLabels"], labels)
        assert workers["spec"]["replicas"] == (1 if variant == "dev" else 2)


def test_the_gateways_webhooks_reach_payment_svcs_workers_through_their_own_service() -> None:
    objects = _objects("prod")
    service = _one(objects, "Service", "payment-webhooks")["spec"]
    assert service["ports"] == [{"name": "grpc", "port": 50053, "targetPort": "grpc", "appProtocol": "grpc"}]
    pods = {o["metadata"]["name"]: o["spec"]["template"]["metadata"]["labels"]
            for o in objects if o["kind"] == "Deployment"}
    assert [name for name, labels in pods.items() if _selects(service["selector"], labels)] == ["payment-svc-workers"]
    envoy = _one(objects, "ConfigMap", "edge-envoy")["data"]["envoy.yaml"]
    assert 'address: "payment-webhooks"' in envoy and 'cluster: "payment_webhooks"' in envoy


def _ingress(objects: list[dict], labels: dict[str, str]) -> set[tuple[str, int]]:
    """(who, port) pairs the NetworkPolicies let in to a pod with `labels`: who is a pod's
    app.kubernetes.io/name or `ns:<label>` for a namespace selector."""
    allowed = set()
    for policy in (o for o in objects if o["kind"] == "NetworkPolicy"):
        if not _selects(policy["spec"]["podSelector"].get("matchLabels", {}), labels):
            continue
        for rule in policy["spec"].get("ingress", []):
            peers = [(peer["podSelector"]["matchLabels"]["app.kubernetes.io/name"] if "podSelector" in peer
                      else "ns:" + ",".join(peer["namespaceSelector"]["matchLabels"])) for peer in rule.get("from", [])]
            allowed |= {(peer, port["port"]) for peer in peers or ["anyone"] for port in rule["ports"]}
    return allowed


def test_nothing_reaches_the_workers_but_prometheus_and_the_edge_for_payments_webhooks() -> None:
    objects = _objects("prod")
    for name, (grpc, metrics) in SERVICES.items():
        allowed = _ingress(objects, _pod_labels(objects, f"{name}-workers"))
        webhooks = {("edge", grpc)} if name == "payment-svc" else set()
        assert allowed == {("ns:checkout/monitoring", metrics)} | webhooks, name
    # as clients the workers are their service: order's placement recovery releases carts, cart's sweeper uses Redis
    assert ("order-svc-workers", 50051) in _ingress(objects, _pod_labels(objects, "cart-svc"))
    assert ("cart-svc-workers", 6379) in _ingress(objects, {"app.kubernetes.io/name": "redis"})
    assert ("order-svc-workers", 50053) not in _ingress(objects, _pod_labels(objects, "payment-svc"))
