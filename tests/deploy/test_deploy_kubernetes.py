"""deploy/kubernetes: schema validation offline (kubernetes-validate bundles the schemas), the
wiring between master, workers, Service and NetworkPolicy, and the CURVE keys: the kustomization
built for real (with keys from `loadgen keys`) and the generated Secrets loaded as the pods would."""

from __future__ import annotations

import base64
import json
import re
import shutil
import sys
from pathlib import Path

import pytest
from deploy_helpers import K8S_DIR, REPO, deploy_python, require_tool, run

MANIFESTS = sorted(p for p in K8S_DIR.glob("*.yaml") if p.name != "kustomization.yaml")
K8S_VERSIONS = ["1.29.0", "1.33.0"]
KEY_SECRETS = {"loadgen-master-keys", "loadgen-allowed-workers", "loadgen-worker-keys"}
PARSE = """
import json, sys, yaml
out = []
for path in sys.argv[1:]:
    with open(path) as f:
        out += [doc for doc in yaml.safe_load_all(f) if doc]
print(json.dumps(out))
"""


@pytest.fixture(scope="module")
def docs() -> dict[str, dict]:
    parsed = deploy_python(PARSE, *map(str, MANIFESTS))
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
    assert "loadgen keys deploy/kubernetes/keys" in text and "security.md" in text


# --- CURVE in the manifests ---------------------------------------------------------------------


def _pod(doc: dict) -> dict:
    return doc["spec"]["template"]["spec"]


def _flag(container: dict, flag: str) -> str | None:
    """The value of ``flag`` on a container's command line (an argv list or a shell script)."""
    found = re.findall(rf"(?:^|\s){re.escape(flag)}[\s=]+(\S+)", " ".join(container.get("args", [])))
    assert len(found) <= 1, f"{flag} given twice"
    return found[0] if found else None


def _secret_behind(pod: dict, container: dict, path: str) -> tuple[dict, dict]:
    """The (mount, secret volume) a path in the container (a file, or the mount itself) lies in."""
    mounts = [
        m for m in container["volumeMounts"] if (path + "/").startswith(m["mountPath"].rstrip("/") + "/")
    ]
    assert len(mounts) == 1, f"{path}: not under exactly one mount"
    (volume,) = [v for v in pod["volumes"] if v["name"] == mounts[0]["name"]]
    assert "secret" in volume, f"{path} is not on a Secret volume"
    return mounts[0], volume


CURVE_FLAGS = {
    "master": ("--curve-secret-key", "--curve-allow"),
    "worker": ("--curve-secret-key", "--curve-master-key"),
}


@pytest.mark.parametrize("component", ["master", "worker"])
def test_every_peer_runs_with_curve_keys_from_secrets(docs, component):
    doc = docs[f"Deployment/loadgen-{component}"]
    pod = _pod(doc)
    (container,) = pod["containers"]
    for flag in CURVE_FLAGS[component]:
        path = _flag(container, flag)
        assert path, f"{component} has no {flag}"
        mount, volume = _secret_behind(pod, container, path)
        assert mount["readOnly"] is True, mount
        assert volume["secret"]["defaultMode"] == 0o400, volume
    assert _flag(container, "--keys") is None, "explicit key files, so LOADGEN_INSECURE_NO_AUTH is refused"


def test_master_keys_and_allow_list(docs):
    pod = _pod(docs["Deployment/loadgen-master"])
    (container,) = pod["containers"]
    assert _flag(container, "--curve-secret-key") == "/keys/master/master.key_secret"
    assert _flag(container, "--curve-allow") == "/keys/allowed"
    secrets = {v["name"]: v["secret"]["secretName"] for v in pod["volumes"] if "secret" in v}
    assert secrets == {"master-keys": "loadgen-master-keys", "allowed-workers": "loadgen-allowed-workers"}


def test_workers_stay_and_never_see_the_masters_secret(docs):
    pod = _pod(docs["Deployment/loadgen-worker"])
    (container,) = pod["containers"]
    assert "--stay" in container["args"]
    assert _flag(container, "--curve-secret-key") == "/keys/worker/worker.key_secret"
    assert _flag(container, "--curve-master-key") == "/keys/worker/master.key"
    secrets = {v["secret"]["secretName"] for v in pod["volumes"] if "secret" in v}
    assert not [v for v in pod["volumes"] if "projected" in v], "a projected volume could carry any Secret"
    assert secrets == {"loadgen-worker-keys"}
    assert "envFrom" not in container and all(
        "valueFrom" not in e or "secretKeyRef" not in e["valueFrom"] for e in container.get("env", [])
    )


@pytest.mark.parametrize("component", ["master", "worker"])
def test_key_files_are_readable_by_the_non_root_user_only(docs, component):
    pod = _pod(docs[f"Deployment/loadgen-{component}"])
    context = pod["securityContext"]
    # 0400 files are root-owned: only fsGroup (kubelet adds group read) lets uid 10001 read them.
    assert context["runAsNonRoot"] is True and context["runAsUser"] != 0
    assert context["fsGroup"] == context["runAsGroup"]
    assert pod["automountServiceAccountToken"] is False
    for volume in pod["volumes"]:
        if "secret" in volume:
            assert volume["secret"]["defaultMode"] == 0o400, volume["name"]


def test_nothing_turns_curve_off(docs):
    for path in K8S_DIR.iterdir():
        if path.is_file():
            text = "\n".join(
                line for line in path.read_text().splitlines() if not line.lstrip().startswith("#")
            )
            assert "--insecure-no-auth" not in text and "INSECURE_NO_AUTH" not in text, path
    for key, doc in docs.items():
        if doc["kind"] == "ConfigMap":
            assert not [k for k in doc["data"] if k.startswith(("LOADGEN_KEYS", "LOADGEN_CURVE"))], key


def test_the_key_files_stay_out_of_git():
    keys = K8S_DIR / "keys" / "master" / "master.key_secret"
    proc = run(["git", "check-ignore", "-q", "--no-index", keys], cwd=REPO, check=False)
    assert proc.returncode == 0, "deploy/kubernetes/keys/ must be ignored by git"


# --- The kustomization built for real ----------------------------------------------------------


def _kustomize(directory: Path) -> list[str]:
    if shutil.which("kustomize"):
        return ["kustomize", "build", str(directory)]
    if shutil.which("kubectl"):
        return ["kubectl", "kustomize", str(directory)]
    # neither is in Debian or on PyPI: the stand-in builds what this kustomization uses
    return [sys.executable, str(Path(__file__).with_name("kustomize_lite.py")), str(directory)]


def _project_python() -> str:
    """The interpreter with loadgen installed: the repository's .venv, else this one."""
    venv = REPO / ".venv" / "bin" / "python"
    return str(venv if venv.exists() else sys.executable)


def _copy_manifests(dest: Path) -> Path:
    shutil.copytree(K8S_DIR, dest, ignore=shutil.ignore_patterns("keys"))
    return dest


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> dict:
    """deploy/kubernetes with a fresh `loadgen keys keys/`, built by kustomize and parsed."""
    root = _copy_manifests(tmp_path_factory.mktemp("kustomize") / "kubernetes")
    run([_project_python(), "-m", "loadgen", "keys", root / "keys"], cwd=root)
    proc = run(_kustomize(root), cwd=root)
    out = root / "rendered.yaml"
    out.write_text(proc.stdout)
    objects = deploy_python(PARSE, str(out))
    return {"root": root, "out": out, "objects": {f"{d['kind']}/{d['metadata']['name']}": d for d in objects}}


def _generated(built: dict, name: str) -> dict:
    (secret,) = [d for k, d in built["objects"].items() if re.fullmatch(rf"Secret/{name}-[a-z0-9]+", k)]
    return secret


def test_kustomize_refuses_to_build_without_keys(tmp_path):
    root = _copy_manifests(tmp_path / "kubernetes")
    proc = run(_kustomize(root), cwd=root, check=False)
    assert proc.returncode != 0 and "master.key_secret" in proc.stderr, proc.stderr


def test_generated_secrets_hold_the_fleets_keys(built):
    keys = built["root"] / "keys"
    expected = {
        "loadgen-master-keys": {
            "master.key_secret": "master/master.key_secret",
            "master.key": "master/master.key",
        },
        "loadgen-allowed-workers": {"worker.key": "master/allowed/worker.key"},
        "loadgen-worker-keys": {
            "worker.key_secret": "worker/worker.key_secret",
            "worker.key": "worker/worker.key",
            "master.key": "worker/master.key",
        },
    }
    for name, files in expected.items():
        secret = _generated(built, name)
        assert secret["metadata"]["namespace"] == "loadgen" and secret["type"] == "Opaque"
        data = {k: base64.b64decode(v) for k, v in secret["data"].items()}
        assert data == {k: (keys / rel).read_bytes() for k, rel in files.items()}, name
    master_secret = (keys / "master" / "master.key_secret").read_bytes()
    worker_data = _generated(built, "loadgen-worker-keys")["data"].values()
    assert all(base64.b64decode(v) != master_secret for v in worker_data)


def test_deployments_mount_the_generated_secrets(built):
    names = {_generated(built, n)["metadata"]["name"]: n for n in KEY_SECRETS}
    used = {
        component: {
            v["secret"]["secretName"]
            for v in _pod(built["objects"][f"Deployment/loadgen-{component}"])["volumes"]
            if "secret" in v
        }
        for component in ("master", "worker")
    }
    assert {names[n] for n in used["master"]} == {"loadgen-master-keys", "loadgen-allowed-workers"}
    assert {names[n] for n in used["worker"]} == {"loadgen-worker-keys"}


@pytest.mark.parametrize("version", K8S_VERSIONS)
def test_built_kustomization_validates(built, version):
    validate = require_tool("kubernetes-validate")
    proc = run([validate, "--strict", "-k", version, built["out"]], check=False, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr


LOAD_KEYS = """
import json, sys
from zmq.utils import z85
from loadgen.fleet.security import CurveKeys

master = CurveKeys.for_master(sys.argv[1], sys.argv[2])
worker = CurveKeys.for_worker(sys.argv[3], sys.argv[4])
print(json.dumps({"trusted": worker.server_public == master.public,
                  "allowed": z85.decode(worker.public) in master.allowed, "allow_list": len(master.allowed)}))
"""


def _materialize(built: dict, component: str, root: Path) -> dict[str, str]:
    """Lay out a pod's Secret volumes under ``root`` as kubelet does (files behind a ``..data`` link) and
    return its --curve-* flags pointing there."""
    pod = _pod(built["objects"][f"Deployment/loadgen-{component}"])
    (container,) = pod["containers"]
    flags = {}
    for flag in CURVE_FLAGS[component]:
        path = _flag(container, flag)
        mount, volume = _secret_behind(pod, container, path)
        (secret,) = [
            d for d in built["objects"].values() if d["metadata"]["name"] == volume["secret"]["secretName"]
        ]
        directory = root / mount["mountPath"].lstrip("/")
        if not directory.exists():
            (directory / "..2026_01_01").mkdir(parents=True)
            (directory / "..data").symlink_to("..2026_01_01")
            for key, value in secret["data"].items():
                (directory / "..2026_01_01" / key).write_bytes(base64.b64decode(value))
                (directory / key).symlink_to(f"..data/{key}")
        flags[flag] = str(root / path.lstrip("/"))
    return flags


def test_pods_load_their_keys_and_trust_each_other(built, tmp_path):
    """The master's Secrets and the workers' Secret, as mounted, make a master and a worker that accept
    each other, and nothing else in the master's allow-list."""
    master = _materialize(built, "master", tmp_path / "master-pod")
    worker = _materialize(built, "worker", tmp_path / "worker-pod")
    args = [master["--curve-secret-key"], master["--curve-allow"]]
    args += [worker["--curve-secret-key"], worker["--curve-master-key"]]
    loaded = json.loads(run([_project_python(), "-c", LOAD_KEYS, *args], cwd=tmp_path).stdout)
    assert loaded == {"trusted": True, "allowed": True, "allow_list": 1}
