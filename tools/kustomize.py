"""Render a kustomization the way `kubectl kustomize` does, for the subset deploy/k8s uses:
`resources` (files and directories), `namespace`, `labels` (metadata only) and `patches` (by path;
strategic merge: maps merge, lists of named items merge by `name`, other lists are replaced).

Why our own: the kustomize binary is not available where the tests run (no network, no PyPI
wheel), and the tests must render the overlays to validate them. The files stay plain kustomize:
`kubectl apply -k deploy/k8s/overlays/prod` renders them the same way.

    python -m tools.kustomize deploy/k8s/overlays/prod    # the rendered objects as YAML on stdout
"""

from __future__ import annotations

import copy
import pathlib
import sys
from typing import Any

import yaml

CLUSTER_SCOPED = {"Namespace", "ClusterRole", "ClusterRoleBinding", "CustomResourceDefinition", "PersistentVolume",
                  "StorageClass", "PriorityClass"}
SUPPORTED = {"apiVersion", "kind", "resources", "namespace", "labels", "patches"}

Obj = dict[str, Any]


def render(directory: pathlib.Path) -> list[Obj]:
    spec = yaml.safe_load((directory / "kustomization.yaml").read_text())
    unsupported = set(spec) - SUPPORTED
    if unsupported:
        raise ValueError(f"{directory}: kustomization fields not supported here: {sorted(unsupported)}")
    objects: list[Obj] = []
    for entry in spec.get("resources", []):
        path = directory / entry
        objects += render(path) if path.is_dir() else _documents(path)
    for patch in spec.get("patches", []):
        for change in _documents(directory / patch["path"]):
            target = _find(objects, change)
            merged = _merge(target, change)
            target.clear()
            target.update(merged)
    for obj in objects:
        metadata = obj.setdefault("metadata", {})
        for group in spec.get("labels", []):
            metadata.setdefault("labels", {}).update(group.get("pairs", {}))
        if "namespace" in spec:
            if obj["kind"] == "Namespace":
                metadata["name"] = spec["namespace"]
            elif obj["kind"] not in CLUSTER_SCOPED:
                metadata["namespace"] = spec["namespace"]
    return objects


def _documents(path: pathlib.Path) -> list[Obj]:
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc]


def _find(objects: list[Obj], change: Obj) -> Obj:
    key = (change["kind"], change["metadata"]["name"])
    for obj in objects:
        if (obj["kind"], obj["metadata"]["name"]) == key:
            return obj
    raise ValueError(f"patch target {key} not found")


def _merge(base: Any, change: Any) -> Any:
    if isinstance(base, dict) and isinstance(change, dict):
        merged = copy.deepcopy(base)
        for key, value in change.items():
            merged[key] = _merge(base[key], value) if key in base else copy.deepcopy(value)
        return merged
    if isinstance(base, list) and isinstance(change, list) and _named(base) and _named(change):
        merged_list = copy.deepcopy(base)
        for item in change:
            at = next((i for i, old in enumerate(merged_list) if old["name"] == item["name"]), None)
            if at is None:
                merged_list.append(copy.deepcopy(item))
            else:
                merged_list[at] = _merge(merged_list[at], item)
        return merged_list
    return copy.deepcopy(change)


def _named(items: list[Any]) -> bool:
    return all(isinstance(item, dict) and "name" in item for item in items)


def main(argv: list[str] | None = None) -> int:
    args = argv if argv is not None else sys.argv[1:]
    if len(args) != 1:
        print(__doc__, file=sys.stderr)
        return 2
    yaml.safe_dump_all(render(pathlib.Path(args[0])), sys.stdout, sort_keys=False)
    return 0


if __name__ == "__main__":
    sys.exit(main())
