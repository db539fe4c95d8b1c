"""A stand-in for ``kustomize build`` on machines without kustomize or kubectl (neither is in Debian or on
PyPI), covering what deploy/kubernetes/kustomization.yaml uses: resources, generatorOptions labels and a
secretGenerator of files, its names suffixed with a hash of the contents, and Secret references in pods
rewritten to those names. A missing key file fails the build, as kustomize does."""

from __future__ import annotations

import base64
import hashlib
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml


def build(directory: Path) -> subprocess.CompletedProcess[str]:
    """What ``kustomize build DIRECTORY`` prints (and its exit status and error)."""
    spec = yaml.safe_load((directory / "kustomization.yaml").read_text())
    objects: list[dict[str, Any]] = []
    for resource in spec.get("resources", []):
        objects += [d for d in yaml.safe_load_all((directory / resource).read_text()) if d]
    labels = spec.get("generatorOptions", {}).get("labels", {})
    renamed: dict[str, str] = {}
    for generator in spec.get("secretGenerator", []):
        data = {}
        for item in generator.get("files", []):
            key, _, path = item.partition("=")
            source = directory / path
            if not source.is_file():
                return subprocess.CompletedProcess([], 1, "", f"Error: evalsymlink failure on '{source}': "
                                                   f"lstat {source}: no such file or directory")
            data[key] = base64.b64encode(source.read_bytes()).decode()
        digest = hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()[:10]
        name = renamed[generator["name"]] = f"{generator['name']}-{digest}"
        objects.append({"apiVersion": "v1", "kind": "Secret", "type": generator.get("type", "Opaque"),
                        "metadata": {"name": name, "namespace": generator.get("namespace"), "labels": labels},
                        "data": data})
    for obj in objects:
        for volume in obj.get("spec", {}).get("template", {}).get("spec", {}).get("volumes", []):
            secret = volume.get("secret")
            if secret and secret.get("secretName") in renamed:
                secret["secretName"] = renamed[secret["secretName"]]
    return subprocess.CompletedProcess([], 0, yaml.safe_dump_all(objects, sort_keys=False), "")


if __name__ == "__main__":
    done = build(Path(sys.argv[1]))
    sys.stdout.write(done.stdout)
    sys.stderr.write(done.stderr)
    sys.exit(done.returncode)
