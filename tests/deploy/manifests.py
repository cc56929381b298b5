"""Rendering and validating deploy/kubernetes: shared by the tests of tests/deploy."""

from __future__ import annotations

import shutil
import subprocess
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import pytest
import yaml

from tests.support.servers import REPO_ROOT

KUBERNETES = REPO_ROOT / "deploy" / "kubernetes"
OVERLAYS = ("dev", "prod")
# The Kubernetes release the manifests are checked against: the oldest still widely
# run that has every API they use (autoscaling/v2, policy/v1, networking.k8s.io/v1).
# kubernetes-validate ships its schemas; nothing is fetched.
KUBERNETES_VERSION = "1.30.0"
CRD_DIR = REPO_ROOT / "tests" / "support" / "vendor" / "prometheus-operator"
CRD_FILES = {
    "ServiceMonitor": "monitoring.coreos.com_servicemonitors.yaml",
    "PodMonitor": "monitoring.coreos.com_podmonitors.yaml",
    "PrometheusRule": "monitoring.coreos.com_prometheusrules.yaml",
}

Manifest = dict[str, Any]


def kubectl() -> str:
    path = shutil.which("kubectl")
    if path is None:
        pytest.fail(
            "kubectl is needed to render deploy/kubernetes: scripts/test and .ci/run "
            "install it (ensure_kubectl: Debian's kubernetes-client)"
        )
    return path


@cache
def _render(overlay: str) -> str:
    done = subprocess.run(
        [kubectl(), "kustomize", str(KUBERNETES / "overlays" / overlay)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def render(overlay: str) -> list[Manifest]:
    """The overlay's objects, as `kubectl kustomize` renders them (a fresh copy)."""
    return [doc for doc in yaml.safe_load_all(_render(overlay)) if doc]


def find(objects: list[Manifest], kind: str, name: str) -> Manifest:
    matches = [o for o in objects if o["kind"] == kind and o["metadata"]["name"] == name]
    assert len(matches) == 1, f"{kind}/{name}: {len(matches)} found"
    return matches[0]


def named(objects: list[Manifest], kind: str, prefix: str) -> Manifest:
    """The one object of `kind` whose name starts with `prefix` (generated names end
    with a content hash)."""
    matches = [o for o in objects if o["kind"] == kind and o["metadata"]["name"].startswith(prefix)]
    assert len(matches) == 1, f"{kind}/{prefix}*: {len(matches)} found"
    return matches[0]


def _closed(schema: Any) -> Any:
    """The CRD schema with unknown fields refused wherever it lists the known ones (the
    API server prunes unknown fields silently: a misspelt one would be lost)."""
    if isinstance(schema, dict):
        closed = {key: _closed(value) for key, value in schema.items()}
        if (
            "properties" in schema
            and "additionalProperties" not in schema
            and not schema.get("x-kubernetes-preserve-unknown-fields")
        ):
            closed["additionalProperties"] = False
        return closed
    if isinstance(schema, list):
        return [_closed(item) for item in schema]
    return schema


@cache
def crd_validator(kind: str) -> jsonschema.Draft7Validator:
    crd = yaml.safe_load((CRD_DIR / CRD_FILES[kind]).read_text(encoding="utf-8"))
    (version,) = [v for v in crd["spec"]["versions"] if v["name"] == "v1"]
    schema = _closed(version["schema"]["openAPIV3Schema"])
    # metadata is the API server's to check (kubernetes-validate does for core kinds).
    schema["properties"]["metadata"] = {"type": "object"}
    return jsonschema.Draft7Validator(schema)


def validation_errors(manifest: Manifest) -> list[str]:
    """Why `manifest` is not a valid object: core kinds against the Kubernetes schemas
    (strict: unknown fields are errors), Prometheus Operator kinds against their CRDs."""
    kind = manifest.get("kind", "?")
    name = manifest.get("metadata", {}).get("name", "?")
    if kind in CRD_FILES:
        return [
            f"{kind}/{name}: {'.'.join(map(str, error.absolute_path))}: {error.message}"
            for error in crd_validator(kind).iter_errors(manifest)
        ]
    try:
        kubernetes_validate.validate(manifest, KUBERNETES_VERSION, strict=True)
    except kubernetes_validate.ValidationError as error:
        return [f"{kind}/{name}: {error}"]
    except kubernetes_validate.SchemaNotFoundError as error:
        return [f"{kind}/{name}: no schema: {error}"]
    return []


def pod_specs(objects: list[Manifest]) -> dict[str, Manifest]:
    """Every pod template: Deployments and Jobs, by `Kind/name`."""
    return {
        f"{o['kind']}/{o['metadata']['name']}": o["spec"]["template"]["spec"]
        for o in objects
        if o["kind"] in {"Deployment", "Job"}
    }


def all_containers(pod: Manifest) -> list[Manifest]:
    return [*pod.get("initContainers", []), *pod["containers"]]


def read(path: Path) -> Any:
    return yaml.safe_load(path.read_text(encoding="utf-8"))
