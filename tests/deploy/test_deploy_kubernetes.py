"""deploy/kubernetes: schema validation offline (kubernetes-validate bundles the schemas) and the
wiring between master, workers, Service and NetworkPolicy."""

from __future__ import annotations

import pytest
from deploy_helpers import K8S_DIR, REPO, deploy_python, require_tool, run

MANIFESTS = sorted(p for p in K8S_DIR.glob("*.yaml") if p.name != "kustomization.yaml")
K8S_VERSIONS = ["1.29.0", "1.33.0"]


@pytest.fixture(scope="module")
def docs() -> dict[str, dict]:
    parsed = deploy_python(
        """
        import json, sys, yaml
        out = []
        for path in sys.argv[1:]:
            with open(path) as f:
                out += [doc for doc in yaml.safe_load_all(f) if doc]
        print(json.dumps(out))
        """,
        *map(str, MANIFESTS),
    )
    return {f"{d['kind']}/{d['metadata']['name']}": d for d in parsed}


@pytest.mark.parametrize("version", K8S_VERSIONS)
def test_manifests_validate_against_schemas(version):
    validate = require_tool("kubernetes-validate")
    proc = run([validate, "--strict", "-k", version, *MANIFESTS], check=False, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_validator_rejects_a_bad_manifest(tmp_path):
    validate = require_tool("kubernetes-validate")
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: x}\n"
        "spec: {replicas: five, selector: {}, template: {spec: {containers: []}}}\n"
    )
    proc = run([validate, "--strict", "-k", K8S_VERSIONS[-1], bad], check=False)
    assert proc.returncode != 0


def test_kustomization_lists_every_manifest():
    names = set(
        deploy_python(
            """
        import json, sys, yaml
        print(json.dumps(yaml.safe_load(open(sys.argv[1]))["resources"]))
        """,
            str(K8S_DIR / "kustomization.yaml"),
        )
    )
    assert names == {p.name for p in MANIFESTS}


def test_master_service_and_ports(docs):
    service = docs["Service/loadgen-master"]
    assert {p["port"] for p in service["spec"]["ports"]} == {5557, 8089}
    master = docs["Deployment/loadgen-master"]
    assert service["spec"]["selector"].items() <= master["spec"]["template"]["metadata"]["labels"].items()
    container = master["spec"]["template"]["spec"]["containers"][0]
    assert {p["containerPort"] for p in container["ports"]} == {5557, 8089}
    assert "loadgen master -f /scripts/script.py" in container["args"][0]
    assert "--bind 0.0.0.0:5557" in container["args"][0]
    assert "--web 0.0.0.0:8089" in container["args"][0]
    assert container["resources"]["requests"]["cpu"]
    mounts = {m["name"]: m["mountPath"] for m in container["volumeMounts"]}
    assert mounts["script"] == "/scripts"
    volumes = {v["name"]: v for v in master["spec"]["template"]["spec"]["volumes"]}
    assert volumes["script"]["configMap"]["name"] == "loadgen-script"
    assert "script.py" in docs["ConfigMap/loadgen-script"]["data"]
    assert "constant_throughput(1)" in docs["ConfigMap/loadgen-script"]["data"]["script.py"]


def test_workers(docs):
    worker = docs["Deployment/loadgen-worker"]
    assert worker["spec"]["replicas"] == 5
    container = worker["spec"]["template"]["spec"]["containers"][0]
    args = container["args"]
    assert args[0] == "worker"
    assert args[args.index("--master") + 1] == "loadgen-master.loadgen.svc.cluster.local:5557"
    assert "--processes" in args
    assert container["resources"]["requests"]["cpu"] and container["resources"]["requests"]["memory"]
    test_params = docs["ConfigMap/loadgen-test"]["data"]
    assert test_params["LOADGEN_EXPECT_WORKERS"] == str(worker["spec"]["replicas"])


def test_network_policy_mirrors_security_groups(docs):
    policy = docs["NetworkPolicy/loadgen-master-ingress"]
    assert policy["spec"]["podSelector"]["matchLabels"]["app.kubernetes.io/component"] == "master"
    (rule,) = policy["spec"]["ingress"]
    assert rule["ports"] == [{"protocol": "TCP", "port": 5557}]
    (source,) = rule["from"]
    assert source["podSelector"]["matchLabels"]["app.kubernetes.io/component"] == "worker"


def test_every_object_in_the_namespace(docs):
    for key, doc in docs.items():
        if doc["kind"] != "Namespace":
            assert doc["metadata"].get("namespace") == "loadgen", key


def test_deploy_doc_exists():
    text = (REPO / "docs" / "deploy.md").read_text()
    assert "## 9. Sizing and costs" in text and "make bench" in text  # sizing from measured figures
    assert "terraform destroy" in text and "run-test.yml" in text
