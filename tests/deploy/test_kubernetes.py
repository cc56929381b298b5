"""deploy/kubernetes: every overlay renders with `kubectl kustomize`, every object is
valid (Kubernetes schemas through kubernetes-validate, Prometheus Operator CRDs through
their vendored schemas), and the properties operators rely on hold: every setting
reaches the pods, non-root read-only containers with limits, probes, a grace period that
covers the shutdown, migrations before the new pods, one pod per Socket.IO client."""

from __future__ import annotations

import os
import re
import secrets
import shlex
import socket
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import yaml
from pydantic import SecretStr

from lyceum.config import Settings
from lyceum.kit.embedded_pg import EmbeddedPostgres
from lyceum.kit.jobs import Queue
from tests.deploy.manifests import (
    KUBERNETES,
    OVERLAYS,
    Manifest,
    all_containers,
    crd_validator,
    find,
    named,
    pod_specs,
    read,
    render,
    validation_errors,
)
from tests.support.servers import REPO_ROOT

APP_WORKLOADS = ("lyceum-api", "lyceum-worker-user", "lyceum-worker-bulk")
USER_QUEUES = {"mail", "notifications", "certificates", "progress", "webhooks", "maintenance"}
BULK_QUEUES = {"indexing", "ai"}
# Variables the manifests pass that are no field of config.py: uvicorn's own, and the
# migration wait's (init container only).
NOT_SETTINGS = {"FORWARDED_ALLOW_IPS", "MIGRATION_WAIT_SECONDS"}
# Settings issue 21's contract names or its other branches add to config.py; until they
# are merged the manifests may pass them ahead of the code (Settings ignores unknown
# variables). Once merged, they are ordinary settings and this set is moot.
CONTRACT_SETTINGS = {
    "SHUTDOWN_GRACE_SECONDS",
    "WORKER_METRICS_PORT",
    "OTEL_EXPORTER_OTLP_ENDPOINT",
    "OTEL_SERVICE_NAME",
    "OTEL_SAMPLE_RATIO",
    "DATA_EXPORT_RATE_LIMIT",
}
CONTRACT_SHUTDOWN_GRACE_SECONDS = 30
# Secrets that are not SecretStr fields (they carry passwords or keys all the same).
SECRET_URLS = {"DATABASE_URL", "REDIS_URL", "STORAGE_S3_ACCESS_KEY_ID"}


def settings_variables() -> set[str]:
    return {name.upper() for name in Settings.model_fields}


def secret_settings() -> set[str]:
    """SecretStr fields, read from config.py when the test runs."""
    secret = {
        name.upper()
        for name, field in Settings.model_fields.items()
        if field.annotation is SecretStr or SecretStr in getattr(field.annotation, "__args__", ())
    }
    return secret | SECRET_URLS


def config_map(objects: list[Manifest]) -> dict[str, str]:
    data: dict[str, str] = find(objects, "ConfigMap", "lyceum-config")["data"]
    return data


def container_env(objects: list[Manifest], container: Manifest) -> dict[str, Manifest]:
    """The container's variables: its ConfigMaps' keys (envFrom), then `env` (which wins,
    as in Kubernetes), each as its `env` entry (`value` or `valueFrom`)."""
    variables: dict[str, Manifest] = {}
    for source in container.get("envFrom", []):
        maps = find(objects, "ConfigMap", source["configMapRef"]["name"])
        variables.update({key: {"name": key, "value": v} for key, v in maps["data"].items()})
    variables.update({entry["name"]: entry for entry in container.get("env", [])})
    return variables


def main_container(objects: list[Manifest], kind: str, name: str) -> Manifest:
    (container,) = find(objects, kind, name)["spec"]["template"]["spec"]["containers"]
    return container


@pytest.fixture(params=OVERLAYS)
def overlay(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def objects(overlay: str) -> list[Manifest]:
    return render(overlay)


# --- Schemas ------------------------------------------------------------------------


def test_every_rendered_object_is_valid(objects: list[Manifest]) -> None:
    kinds = {o["kind"] for o in objects}
    assert kinds == {
        "ConfigMap",
        "Deployment",
        "Job",
        "Service",
        "Ingress",
        "HorizontalPodAutoscaler",
        "PodDisruptionBudget",
        "NetworkPolicy",
        "ServiceMonitor",
        "PodMonitor",
        "PrometheusRule",
    }
    errors = [error for manifest in objects for error in validation_errors(manifest)]
    assert errors == []


def test_the_validation_refuses_what_a_cluster_would() -> None:
    """The check above can fail: a misspelt field, a wrong type, an unknown field in a
    CRD object are each an error."""
    objects = render("prod")
    deployment = find(objects, "Deployment", "lyceum-api")
    deployment["spec"]["replica"] = 3
    assert validation_errors(deployment)
    deployment = find(render("prod"), "Deployment", "lyceum-api")
    deployment["spec"]["template"]["spec"]["containers"][0]["ports"][0]["containerPort"] = "http"
    assert validation_errors(deployment)
    monitor = find(objects, "ServiceMonitor", "lyceum-api")
    monitor["spec"]["endpoints"][0]["intervall"] = "30s"
    assert validation_errors(monitor)
    rule = find(objects, "PrometheusRule", "lyceum")
    rule["spec"]["groups"][0]["rules"][0]["for"] = 5
    assert validation_errors(rule)


def test_the_validation_needs_no_network(monkeypatch: pytest.MonkeyPatch) -> None:
    """kubernetes-validate and the CRD schemas are read from disk: with every connection
    refused, the same objects validate the same way."""
    objects = render("prod")

    def refuse(*_: object, **__: object) -> None:
        raise OSError("no network in this test")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    crd_validator.cache_clear()
    assert [error for manifest in objects for error in validation_errors(manifest)] == []


# --- Settings -------------------------------------------------------------------------


def test_every_setting_reaches_every_lyceum_container(objects: list[Manifest]) -> None:
    """Like tests/test_settings_docs.py for the docs: a field added to config.py fails
    here until the ConfigMap has its key (or, for a secret, the Deployments its ref)."""
    wanted = settings_variables()
    for kind, name in [*(("Deployment", n) for n in APP_WORKLOADS), ("Job", "lyceum-migrate")]:
        variables = container_env(objects, main_container(objects, kind, name))
        assert sorted(wanted - set(variables)) == [], f"{kind}/{name} misses settings"
        unknown = set(variables) - wanted - NOT_SETTINGS - CONTRACT_SETTINGS
        assert sorted(unknown) == [], f"{kind}/{name} passes variables that are no setting"


def test_secrets_come_from_the_secret_and_only_from_it(objects: list[Manifest]) -> None:
    secret = secret_settings()
    assert sorted(secret & set(config_map(objects))) == [], "a secret in the ConfigMap"
    for kind, name in [*(("Deployment", n) for n in APP_WORKLOADS), ("Job", "lyceum-migrate")]:
        variables = container_env(objects, main_container(objects, kind, name))
        for variable in secret:
            reference = variables[variable].get("valueFrom", {}).get("secretKeyRef")
            assert reference == {
                "name": "lyceum-secrets",
                "key": variable,
                **({"optional": True} if "optional" in reference else {}),
            }, f"{kind}/{name}: {variable}"
        required = {
            v for v in secret if "optional" not in variables[v]["valueFrom"]["secretKeyRef"]
        }
        # What production cannot start or scale without; the rest are optional.
        assert required == {"SECRET_KEY", "DATABASE_URL", "REDIS_URL", "METRICS_TOKEN"}


def _load(objects: list[Manifest], monkeypatch: pytest.MonkeyPatch) -> Settings:
    for variable in settings_variables() | CONTRACT_SETTINGS:
        monkeypatch.delenv(variable, raising=False)
    for key, value in config_map(objects).items():
        monkeypatch.setenv(key, value)
    # What an operator puts in the Secret `lyceum-secrets` (generated, as in the docs).
    monkeypatch.setenv("SECRET_KEY", secrets.token_urlsafe(48))
    monkeypatch.setenv("METRICS_TOKEN", secrets.token_urlsafe(32))
    monkeypatch.setenv("DATABASE_URL", "postgresql://lyceum:pw@postgres:5432/lyceum")
    monkeypatch.setenv("REDIS_URL", "redis://redis:6379/0")
    return Settings(_env_file=None)


def test_the_config_map_is_a_valid_configuration(
    objects: list[Manifest], overlay: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = _load(objects, monkeypatch)
    assert settings.storage_backend.value == "s3", "pods share no disk: files go to S3"
    assert str(settings.data_dir) == "/var/lib/lyceum"
    assert settings.environment.value == ("production" if overlay == "prod" else "development")
    # Empty values fall back to Lyceum's defaults.
    assert settings.db_pool_size == Settings.model_fields["db_pool_size"].default


def test_public_base_url_is_the_ingress_host(objects: list[Manifest], overlay: str) -> None:
    url = urlsplit(config_map(objects)["PUBLIC_BASE_URL"])
    ingress = find(objects, "Ingress", "lyceum")
    assert [rule["host"] for rule in ingress["spec"]["rules"]] == [url.hostname]
    if overlay == "prod":
        assert url.scheme == "https"
        assert ingress["spec"]["tls"] == [{"hosts": [url.hostname], "secretName": "lyceum-tls"}]


# --- Pods -------------------------------------------------------------------------------


def test_every_container_is_unprivileged_read_only_and_limited(objects: list[Manifest]) -> None:
    pods = pod_specs(objects)
    assert set(pods) == {*(f"Deployment/{n}" for n in APP_WORKLOADS), "Job/lyceum-migrate"}
    for where, pod in pods.items():
        assert pod["securityContext"]["runAsNonRoot"] is True, where
        assert pod["securityContext"]["runAsUser"] != 0, where
        assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}, where
        assert pod["automountServiceAccountToken"] is False, where
        volumes = {volume["name"]: volume for volume in pod["volumes"]}
        for container in all_containers(pod):
            at = f"{where}: {container['name']}"
            context = container["securityContext"]
            assert context["readOnlyRootFilesystem"] is True, at
            assert context["allowPrivilegeEscalation"] is False, at
            assert context["capabilities"]["drop"] == ["ALL"], at
            assert "add" not in context["capabilities"], at
            assert context.get("runAsUser", pod["securityContext"]["runAsUser"]) != 0, at
            for bound in ("requests", "limits"):
                assert set(container["resources"][bound]) == {"cpu", "memory"}, at
            # A read-only root: the places it writes are volumes of their own.
            mounts = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
            assert "emptyDir" in volumes[mounts["/tmp"]], at


def test_the_data_dir_is_writable(objects: list[Manifest]) -> None:
    data_dir = config_map(objects)["LYCEUM_DATA_DIR"]
    for where, pod in pod_specs(objects).items():
        volumes = {volume["name"]: volume for volume in pod["volumes"]}
        for container in pod["containers"]:
            mounts = {m["mountPath"]: m for m in container["volumeMounts"]}
            assert "emptyDir" in volumes[mounts[data_dir]["name"]], where
            assert not mounts[data_dir].get("readOnly"), where


def _seconds_slept(command: list[str]) -> int:
    assert command[0] == "sleep", command
    return int(command[1])


def test_the_api_probes_and_drains(objects: list[Manifest]) -> None:
    deployment = find(objects, "Deployment", "lyceum-api")
    pod = deployment["spec"]["template"]["spec"]
    api = main_container(objects, "Deployment", "lyceum-api")
    assert api["command"] == shlex.split("lyceum serve --host 0.0.0.0 --port 8000 --proxy-headers")
    assert api["ports"] == [{"name": "http", "containerPort": 8000, "protocol": "TCP"}]
    for probe, path in [
        ("startupProbe", "/health/live"),
        ("livenessProbe", "/health/live"),
        ("readinessProbe", "/health/ready"),
    ]:
        assert api[probe]["httpGet"] == {"path": path, "port": "http"}, probe
    # Rolling out never drops below the wanted replicas.
    assert deployment["spec"]["strategy"]["rollingUpdate"]["maxUnavailable"] == 0

    # SIGTERM comes after preStop; the process then has SHUTDOWN_GRACE_SECONDS to finish
    # requests and streams: the kubelet's SIGKILL must come later than both.
    pre_stop = _seconds_slept(api["lifecycle"]["preStop"]["exec"]["command"])
    assert pre_stop == 5
    field = Settings.model_fields.get("shutdown_grace_seconds")
    configured = config_map(objects).get("SHUTDOWN_GRACE_SECONDS", "")
    grace = int(
        configured or (field.default if field is not None else CONTRACT_SHUTDOWN_GRACE_SECONDS)
    )
    assert pod["terminationGracePeriodSeconds"] >= grace + pre_stop
    assert pod["terminationGracePeriodSeconds"] == 45
    for name in APP_WORKLOADS[1:]:
        worker_pod = find(objects, "Deployment", name)["spec"]["template"]["spec"]
        assert worker_pod["terminationGracePeriodSeconds"] >= grace


def _queues(command: list[str]) -> set[str]:
    assert command[:2] == ["lyceum", "worker"]
    return set(command[command.index("--queues") + 1].split(","))


def test_workers_are_split_by_queue_and_export_metrics(objects: list[Manifest]) -> None:
    user = main_container(objects, "Deployment", "lyceum-worker-user")
    bulk = main_container(objects, "Deployment", "lyceum-worker-bulk")
    assert _queues(user["command"]) == USER_QUEUES
    assert _queues(bulk["command"]) == BULK_QUEUES
    # Every queue has a worker, and no queue two kinds of them.
    assert {queue.value for queue in Queue} == USER_QUEUES | BULK_QUEUES
    for worker in (user, bulk):
        variables = container_env(objects, worker)
        assert variables["WORKER_METRICS_PORT"]["value"] == "9100"
        assert {"name": "metrics", "containerPort": 9100, "protocol": "TCP"} in worker["ports"]
    # The API serves /metrics on its own port: no worker metrics server there.
    assert container_env(objects, main_container(objects, "Deployment", "lyceum-api"))[
        "WORKER_METRICS_PORT"
    ]["value"] in {"", None}


# --- Migrations before the new pods ------------------------------------------------------


def test_migrations_run_in_a_job_and_every_pod_waits_for_them(objects: list[Manifest]) -> None:
    job = find(objects, "Job", "lyceum-migrate")
    (migrate,) = job["spec"]["template"]["spec"]["containers"]
    assert migrate["command"] == ["lyceum", "migrate"]
    assert job["spec"]["template"]["spec"]["restartPolicy"] == "Never"
    scripts = named(objects, "ConfigMap", "lyceum-deploy-scripts")
    wait_script = (KUBERNETES / "base" / "wait_for_migrations.py").read_text(encoding="utf-8")
    assert scripts["data"]["wait_for_migrations.py"] == wait_script
    for name in APP_WORKLOADS:
        pod = find(objects, "Deployment", name)["spec"]["template"]["spec"]
        first = pod["initContainers"][0]
        assert first["name"] == "wait-for-migrations", name
        assert first["image"] == pod["containers"][0]["image"], "waits for its own release"
        mounts = {m["name"]: m["mountPath"] for m in first["volumeMounts"]}
        (script_volume,) = [v for v in pod["volumes"] if v["name"] in mounts and "configMap" in v]
        assert script_volume["configMap"]["name"] == scripts["metadata"]["name"]
        assert first["command"] == [
            "python",
            f"{mounts[script_volume['name']]}/wait_for_migrations.py",
        ]
        assert container_env(objects, first)["DATABASE_URL"]["valueFrom"]["secretKeyRef"] == {
            "name": "lyceum-secrets",
            "key": "DATABASE_URL",
        }


def _wait(database_url: str, seconds: float, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "DATABASE_URL": database_url,
        "MIGRATION_WAIT_SECONDS": str(seconds),
        "PYTHONPATH": str(REPO_ROOT / "src"),
    }
    return subprocess.run(
        [sys.executable, str(KUBERNETES / "base" / "wait_for_migrations.py")],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
        check=False,
    )


def test_the_wait_holds_pods_until_lyceum_migrate_has_run(
    embedded_pg: EmbeddedPostgres, tmp_path: Path
) -> None:
    """The real ordering on a real PostgreSQL: the init container's script refuses an
    empty database, and lets the pod start once the Job's command (`lyceum migrate`) ran."""
    url = embedded_pg.ensure_database("lyceum_k8s_migration_wait", fresh=True)
    waiting = _wait(url, 1, tmp_path)
    assert waiting.returncode == 1, waiting.stdout + waiting.stderr
    assert "gave up waiting for the migrate Job: database at none" in waiting.stderr

    env = {
        **{k: v for k, v in os.environ.items() if k.upper() not in settings_variables()},
        "DATABASE_URL": url,
        "LYCEUM_DATA_DIR": str(tmp_path / "data"),
        "PYTHONPATH": str(REPO_ROOT / "src"),
    }
    migrated = subprocess.run(
        [sys.executable, "-c", "from lyceum.cli import main; main()", "migrate"],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        cwd=tmp_path,
        check=False,
    )
    assert migrated.returncode == 0, migrated.stderr
    assert "database is current" in migrated.stderr
    started = _wait(url, 1, tmp_path)
    assert started.returncode == 0, started.stderr
    assert re.match(r"database at \['\w+'\]: starting", started.stdout)


# --- Traffic ------------------------------------------------------------------------------


def test_the_ingress_keeps_a_socketio_client_on_one_pod(
    objects: list[Manifest], overlay: str
) -> None:
    ingress = find(objects, "Ingress", "lyceum")
    annotations = ingress["metadata"]["annotations"]
    nginx = "nginx.ingress.kubernetes.io/"
    assert annotations[nginx + "affinity"] == "cookie"
    assert annotations[nginx + "affinity-mode"] == "persistent"
    assert annotations[nginx + "session-cookie-name"]
    assert annotations[nginx + "session-cookie-path"] == "/"  # /socket.io included
    secure = "false" if overlay == "dev" else "true"  # dev serves plain HTTP
    assert annotations[nginx + "session-cookie-secure"] == secure
    # An idle WebSocket outlives nginx's default 60 s timeout.
    assert int(annotations[nginx + "proxy-read-timeout"]) >= 3600
    assert ingress["spec"]["ingressClassName"] == "nginx"
    (rule,) = ingress["spec"]["rules"]
    (path,) = rule["http"]["paths"]
    assert (path["path"], path["pathType"]) == ("/", "Prefix")
    service = find(objects, "Service", path["backend"]["service"]["name"])
    assert path["backend"]["service"]["port"]["name"] in {
        p["name"] for p in service["spec"]["ports"]
    }
    api_labels = find(objects, "Deployment", "lyceum-api")["spec"]["template"]["metadata"]["labels"]
    assert service["spec"]["selector"].items() <= api_labels.items()
    workers = [find(objects, "Deployment", n) for n in APP_WORKLOADS[1:]]
    for worker in workers:
        labels = worker["spec"]["template"]["metadata"]["labels"]
        assert not service["spec"]["selector"].items() <= labels.items()


def test_autoscaling_and_disruption_budgets_cover_every_deployment(
    objects: list[Manifest], overlay: str
) -> None:
    for name in APP_WORKLOADS:
        deployment = find(objects, "Deployment", name)
        hpa = find(objects, "HorizontalPodAutoscaler", name)
        assert hpa["spec"]["scaleTargetRef"] == {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "name": name,
        }
        low, high = hpa["spec"]["minReplicas"], hpa["spec"]["maxReplicas"]
        assert 1 <= low <= deployment["spec"]["replicas"] <= high
        if overlay == "dev":
            assert low == high == deployment["spec"]["replicas"] == 1
        else:
            assert low >= 2 and high > low, name
        pdb = find(objects, "PodDisruptionBudget", name)
        labels = deployment["spec"]["template"]["metadata"]["labels"]
        assert pdb["spec"]["selector"]["matchLabels"].items() <= labels.items()
        assert pdb["spec"]["maxUnavailable"] == 1
    if overlay == "prod":
        assert find(objects, "HorizontalPodAutoscaler", "lyceum-api")["spec"]["minReplicas"] >= 3


def test_prometheus_scrapes_the_api_and_every_worker(objects: list[Manifest]) -> None:
    service = find(objects, "Service", "lyceum-api")
    monitor = find(objects, "ServiceMonitor", "lyceum-api")
    assert (
        monitor["spec"]["selector"]["matchLabels"].items() <= service["metadata"]["labels"].items()
    )
    (endpoint,) = monitor["spec"]["endpoints"]
    assert endpoint["port"] in {port["name"] for port in service["spec"]["ports"]}
    assert endpoint["path"] == "/metrics"
    # Production answers /metrics with 404 unless the scrape brings METRICS_TOKEN.
    assert endpoint["authorization"] == {
        "type": "Bearer",
        "credentials": {"name": "lyceum-secrets", "key": "METRICS_TOKEN"},
    }
    pods = find(objects, "PodMonitor", "lyceum-workers")
    (pod_endpoint,) = pods["spec"]["podMetricsEndpoints"]
    assert (pod_endpoint["port"], pod_endpoint["path"]) == ("metrics", "/metrics")
    selected = pods["spec"]["selector"]["matchLabels"].items()
    for name in APP_WORKLOADS:
        labels = find(objects, "Deployment", name)["spec"]["template"]["metadata"]["labels"]
        assert (selected <= labels.items()) == (name != "lyceum-api"), name


def test_images(objects: list[Manifest], overlay: str) -> None:
    images = {
        container["image"]
        for pod in pod_specs(objects).values()
        for container in all_containers(pod)
    }
    (image,) = images  # one release: API, workers, migration and the wait alike
    repository, _, tag = image.rpartition(":")
    if overlay == "prod":
        assert repository.endswith("/lyceum") and tag not in {"", "latest"}
        assert re.fullmatch(r"\d+\.\d+\.\d+|sha256:[0-9a-f]{64}", tag), "pin a release"
    else:
        assert image == "lyceum:dev"


def test_overlays_add_no_object_of_their_own(overlay: str) -> None:
    """The overlays patch the base's objects; the objects themselves are the base's."""
    kustomization = read(KUBERNETES / "overlays" / overlay / "kustomization.yaml")
    assert kustomization["bases"] == ["../../base"]
    assert "resources" not in kustomization
    base = read(KUBERNETES / "base" / "kustomization.yaml")
    in_base = {
        (document["kind"], document["metadata"]["name"])
        for name in base["resources"]
        for document in yaml.safe_load_all((KUBERNETES / "base" / name).read_text("utf-8"))
        if document
    } | {("ConfigMap", generator["name"]) for generator in base["configMapGenerator"]}
    generated = {generator["name"] for generator in base["configMapGenerator"]}
    rendered = set()
    for manifest in render(overlay):
        name = manifest["metadata"]["name"]
        if manifest["kind"] == "ConfigMap" and name.rsplit("-", 1)[0] in generated:
            name = name.rsplit("-", 1)[0]  # the content hash kustomize appends
        rendered.add((manifest["kind"], name))
    assert rendered == in_base


def test_only_the_ingress_controller_and_prometheus_pods_reach_lyceum(
    objects: list[Manifest], overlay: str
) -> None:
    """Each NetworkPolicy peer is a namespace AND pod labels, as rendered: kustomize's
    commonLabels rewrites a peer's podSelector.matchLabels (which would then admit no
    one), so the pod labels must survive the rendering."""

    def peers(policy: str) -> list[tuple[str, dict[str, list[str]]]]:
        spec = find(objects, "NetworkPolicy", policy)["spec"]
        return [
            (
                peer["namespaceSelector"]["matchLabels"]["kubernetes.io/metadata.name"],
                {
                    e["key"]: e["values"]
                    for e in peer["podSelector"].get("matchExpressions", [])
                    if e["operator"] == "In"
                }
                | {k: [v] for k, v in peer["podSelector"].get("matchLabels", {}).items()},
            )
            for rule in spec["ingress"]
            for peer in rule["from"]
        ]

    controller = {
        "app.kubernetes.io/name": ["ingress-nginx"],
        "app.kubernetes.io/component": ["controller"],
    }
    prometheus = {"app.kubernetes.io/name": ["prometheus"]}
    assert peers("lyceum-api") == [("ingress-nginx", controller), ("monitoring", prometheus)]
    assert peers("lyceum-workers") == [("monitoring", prometheus)]
    trusted = config_map(objects)["FORWARDED_ALLOW_IPS"]
    assert trusted == ("*" if overlay == "dev" else "10.0.0.0/8")
