"""The deploy files: docker-compose.yml and deploy/k8s define what they use, pin their
images, and the init step they share really creates, applies and materializes a repo.

Validators run when installed (``docker compose config``, ``promtool``; ``.ci/run``
installs promtool); the structural checks here run everywhere.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tomllib
import uuid
from pathlib import Path

import pytest
import yaml

from featurestore import FeatureStore
from featurestore.config import load_config

ROOT = Path(__file__).resolve().parents[1]
COMPOSE = ROOT / "docker-compose.yml"
K8S = ROOT / "deploy" / "k8s" / "featurestore.yaml"


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load(COMPOSE.read_text())


@pytest.fixture(scope="module")
def k8s() -> list[dict]:
    return [doc for doc in yaml.safe_load_all(K8S.read_text()) if doc]


def pinned(image: str) -> bool:
    name, _, tag = image.rpartition(":")
    return bool(name) and "/" not in tag and tag not in ("", "latest")


def _compose_cli() -> list[str] | None:
    for command in (["docker", "compose"], ["docker-compose"]):
        if shutil.which(command[0]) and subprocess.run([*command, "version"], capture_output=True).returncode == 0:
            return command
    return None


def test_docker_compose_config_accepts_the_file():
    command = _compose_cli()
    if command is None:
        pytest.skip("neither the docker compose plugin nor docker-compose is installed")
    done = subprocess.run([*command, "-f", str(COMPOSE), "config", "--quiet"], capture_output=True, text=True,
                          cwd=ROOT, timeout=60)
    assert done.returncode == 0, done.stderr


def test_compose_services_are_pinned_and_defined(compose):
    services = compose["services"]
    assert {"redis", "init", "api", "scheduler", "stream", "prometheus", "grafana"} <= set(services)
    for name, service in services.items():
        assert pinned(service["image"]), f"{name}: pin the image version, not {service['image']!r}"
        needs = service.get("depends_on", {})
        assert set(needs) <= set(services) - {name}, name
        for volume in service.get("volumes", []):
            source = volume.replace("${REPO:-repo}", "repo").split(":")[0]  # the default: a named volume
            if not source.startswith((".", "/")):
                assert source in compose["volumes"], f"{name}: volume {source!r} is not declared"
            else:
                assert (ROOT / source).exists(), f"{name}: {source} does not exist"


def test_compose_runs_init_first_and_keeps_the_api_healthcheck_to_the_api(compose):
    services = compose["services"]
    for name in ("api", "scheduler", "stream"):
        assert services[name]["depends_on"]["init"] == {"condition": "service_completed_successfully"}, name
        assert services[name]["depends_on"]["redis"] == {"condition": "service_healthy"}, name
    for name in ("init", "scheduler", "stream"):
        assert services[name]["healthcheck"] == {"disable": True}, name
    assert "healthcheck" not in services["api"]  # the image's: GET /health
    assert "HEALTHCHECK" in (ROOT / "deploy" / "Dockerfile").read_text()


def test_the_image_installs_the_extras_the_monitors_import():
    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    installs = re.findall(r"pip install [^\n]*?\.\[([\w,-]+)\]", (ROOT / "deploy" / "Dockerfile").read_text())
    names = {extra for found in installs for extra in found.split(",")}
    assert names <= set(extras), f"the Dockerfile installs extras pyproject does not define: {names - set(extras)}"
    installed = {re.split(r"[<>=\[;]", req)[0] for name in names for req in extras[name]}
    # The libraries monitoring/ imports lazily (drift statistics, report plots).
    imported = {lib for lib in ("scipy", "matplotlib") for module in (ROOT / "monitoring").glob("*.py")
                if re.search(rf"^\s*(from|import) {lib}\b", module.read_text(), re.M)}
    assert imported == {"scipy", "matplotlib"} and imported <= installed, installed


def test_redis_is_not_published_on_the_host(compose):
    assert "ports" not in compose["services"]["redis"]
    for name, service in compose["services"].items():
        for port in service.get("ports", []):
            assert port.startswith("127.0.0.1:"), f"{name} publishes {port} on every interface"


def test_the_init_step_creates_applies_and_materializes_then_keeps_the_repo(compose, k8s, tmp_path, redis_url):
    command = compose["services"]["init"]["command"]
    [pod] = [d["spec"]["template"]["spec"] for d in k8s if d["kind"] == "Deployment" and d["metadata"]["name"] == "featurestore"]
    assert pod["initContainers"][0]["command"] == command  # one init step for both
    folder = tmp_path / f"repo_{uuid.uuid4().hex[:8]}"
    folder.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith("FEATURESTORE_")}
    env.update(compose["x-featurestore"]["environment"], FEATURESTORE_REDIS_URL=redis_url,
               PATH=f"{Path(sys.executable).parent}{os.pathsep}{env['PATH']}")
    try:
        for _ in range(2):  # a second start keeps the repo and its data
            done = subprocess.run(command, cwd=folder, env=env, capture_output=True, text=True, timeout=300)
            assert done.returncode == 0, done.stdout + done.stderr
        assert "Materialized" in done.stdout and "No changes" in done.stdout
        with FeatureStore(config=load_config(folder, env={"FEATURESTORE_REDIS_URL": redis_url})) as store:
            online = store.get_online_features(["driver_hourly_stats:conv_rate"], [{"driver_id": 1001}])
            assert online.to_dict()["conv_rate"][0] is not None
    finally:
        with FeatureStore(config=load_config(folder, env={"FEATURESTORE_REDIS_URL": redis_url})) as store:
            store.teardown()


def _by_kind(docs: list[dict], kind: str) -> dict[str, dict]:
    return {d["metadata"]["name"]: d for d in docs if d["kind"] == kind}


def test_k8s_manifests_define_everything_they_reference(k8s):
    claims, maps = _by_kind(k8s, "PersistentVolumeClaim"), _by_kind(k8s, "ConfigMap")
    deployments, services = _by_kind(k8s, "Deployment"), _by_kind(k8s, "Service")
    for name, deployment in deployments.items():
        pod = deployment["spec"]["template"]["spec"]
        for volume in pod.get("volumes", []):
            if "persistentVolumeClaim" in volume:
                claim = volume["persistentVolumeClaim"]["claimName"]
                assert claim in claims, f"{name}: claim {claim!r} is not defined"
                if "ReadWriteOnce" in claims[claim]["spec"]["accessModes"]:
                    assert deployment["spec"]["replicas"] == 1, f"{name} shares a ReadWriteOnce claim"
                    assert deployment["spec"]["strategy"] == {"type": "Recreate"}, name
        for container in pod.get("initContainers", []) + pod["containers"]:
            assert pinned(container["image"]), f"{name}/{container['name']}: pin the image"
            for source in container.get("envFrom", []):
                assert source["configMapRef"]["name"] in maps, name
        labels = deployment["spec"]["template"]["metadata"]["labels"]
        assert deployment["spec"]["selector"]["matchLabels"].items() <= labels.items(), name
    for name, service in services.items():
        selector = service["spec"]["selector"].items()
        assert any(selector <= d["spec"]["template"]["metadata"]["labels"].items() for d in deployments.values()), name
    redis_host = maps["featurestore"]["data"]["FEATURESTORE_REDIS_URL"].split("//")[1].split(":")[0]
    assert redis_host in services


def test_one_pod_opens_the_sqlite_registry(k8s):
    openers = [d for d in _by_kind(k8s, "Deployment").values()
               if any("featurestore" in " ".join(c.get("args", []) + c.get("command", []))
                      for c in d["spec"]["template"]["spec"]["containers"])]
    assert [d["metadata"]["name"] for d in openers] == ["featurestore"]
    assert openers[0]["spec"]["replicas"] == 1
    assert "network volume" in K8S.read_text()  # the file says why, and what to use instead


def test_prometheus_scrapes_compose_services_and_its_files_pass_promtool(compose, tmp_path):
    config = yaml.safe_load((ROOT / "deploy" / "prometheus.yml").read_text())
    for job in config["scrape_configs"]:
        for target in (t for c in job["static_configs"] for t in c["targets"]):
            assert target.split(":")[0] in compose["services"], target
    rules = yaml.safe_load((ROOT / "deploy" / "alerts.yml").read_text())
    assert all("alert" in r and "expr" in r for g in rules["groups"] for r in g["rules"])
    promtool = shutil.which("promtool")
    if promtool is None:
        pytest.skip("promtool is not installed (Debian package prometheus; .ci/run installs it)")
    alerts = tmp_path / "alerts.yml"
    shutil.copy(ROOT / "deploy" / "alerts.yml", alerts)
    local = tmp_path / "prometheus.yml"
    local.write_text(yaml.safe_dump({**config, "rule_files": [str(alerts)]}))
    for args in (["check", "config", str(local)], ["check", "rules", str(alerts)]):
        done = subprocess.run([promtool, *args], capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, done.stdout + done.stderr


def _exported_series() -> set[str]:
    """Every series name a /metrics scrape can carry: the server's own metrics and the
    families read from the registry or Redis at scrape time, with their sample suffixes."""
    from prometheus_client import REGISTRY

    import monitoring.metrics  # noqa: F401 - defines the server's metrics on REGISTRY
    from monitoring.jobs import JobMetricsCollector
    from monitoring.monitor_metrics import MonitorMetricsCollector
    from monitoring.rollout_metrics import RolloutDecisionsCollector
    from monitoring.streaming import StreamLagCollector

    families = [*REGISTRY.collect()]
    for collector in (JobMetricsCollector, MonitorMetricsCollector, RolloutDecisionsCollector, StreamLagCollector):
        families += collector._families() if hasattr(collector, "_families") else [collector._family()]
    suffixes = {"counter": ["_total"], "histogram": ["_bucket", "_sum", "_count"], "gauge": [""]}
    return {family.name + suffix for family in families for suffix in suffixes.get(family.type, [""])}


def test_the_dashboard_queries_name_only_metrics_we_export():
    import re

    dashboard = json.loads((ROOT / "deploy" / "grafana" / "dashboards" / "featurestore.json").read_text())
    exprs = [t["expr"] for p in dashboard["panels"] for t in p.get("targets", [])]
    named = {name for expr in exprs for name in re.findall(r"\bfeaturestore_[a-z_]+", expr)}
    exported = _exported_series()
    assert named and named <= exported, f"not exported: {sorted(named - exported)}"
    rollouts = [p for p in dashboard["panels"] if "Rollout" in p["title"]]
    drawn = " ".join(t["expr"] for p in rollouts for t in p.get("targets", []))
    for metric in ("featurestore_rollout_weight", "featurestore_rollout_failed_checks",
                   "featurestore_rollout_decisions_total"):
        assert metric in drawn, metric
    ids = [p["id"] for p in dashboard["panels"]]
    assert len(ids) == len(set(ids))
