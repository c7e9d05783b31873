"""Metric names: those the services export (every module of the services and common/ imported, then
read from prometheus_client's registry), those of Envoy the rules and dashboards use (checked
against a real Envoy by tests/e2e/test_edge_metrics.py), and those a PromQL expression reads."""

from __future__ import annotations

import importlib
import pkgutil
import re

import prometheus_client

PACKAGES = ("common", "cart_svc", "order_svc", "payment_svc", "enrollment_svc")

# Envoy's (1.40) that deploy/prometheus/alerts.yml and deploy/grafana/dashboards/ read, as its
# /stats/prometheus spells them (histograms: the _bucket/_count/_sum series).
ENVOY_METRICS = frozenset({
    "envoy_http_downstream_rq_total",
    "envoy_http_downstream_rq_xx",
    "envoy_http_downstream_rq_time_bucket", "envoy_http_downstream_rq_time_count", "envoy_http_downstream_rq_time_sum",
    "envoy_cluster_upstream_rq_time_bucket", "envoy_cluster_upstream_rq_time_count", "envoy_cluster_upstream_rq_time_sum",
    "envoy_cluster_upstream_rq_xx",
    "envoy_cluster_membership_healthy",
})
# Prometheus's own series about each scrape.
SCRAPE_METRICS = frozenset({"up", "scrape_duration_seconds", "scrape_samples_scraped"})

_SUFFIXES = {"counter": ("_total", "_created"), "gauge": ("",), "histogram": ("_bucket", "_count", "_sum", "_created"),
             "summary": ("_count", "_sum", "_created"), "info": ("_info",)}


def service_metrics() -> frozenset[str]:
    """Every series name the services' processes can export (a labelled metric shows no sample
    before its first use, so names come from each family's type)."""
    for package in PACKAGES:
        module = importlib.import_module(package)
        for info in pkgutil.walk_packages(module.__path__, f"{package}."):
            if not info.name.endswith("__main__"):
                importlib.import_module(info.name)
    names: set[str] = set()
    for family in prometheus_client.REGISTRY.collect():
        names.update(f"{family.name}{suffix}" for suffix in _SUFFIXES.get(family.type, ("",)))
        names.update(sample.name for sample in family.samples)
    return frozenset(names)


_KEYWORDS = {"and", "or", "unless", "by", "without", "on", "ignoring", "group_left", "group_right", "bool", "offset",
             "inf", "nan"}


def metric_names(expr: str) -> set[str]:
    """The series names a PromQL expression reads (recording rules included, by their name)."""
    text = re.sub(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'', '""', expr)  # strings
    text = re.sub(r"\{[^}]*\}", " ", text)  # label matchers
    text = re.sub(r"\[[^\]]*\]", " ", text)  # ranges, Grafana's $__rate_interval
    text = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", " ", text)
    names = set()
    for match in re.finditer(r"(?<![\w.$])([A-Za-z_:][A-Za-z0-9_:]*)(\s*\()?", text):
        name, call = match.group(1), match.group(2)
        if call or name.lower() in _KEYWORDS:
            continue
        names.add(name)
    return names
