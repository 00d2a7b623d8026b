#!/usr/bin/env python3
"""Runs `wharf --check-config` on the config file a rendered chart contains,
so the binary itself says whether it accepts what the chart writes.

    check_with_binary.py WHARF_BINARY RENDERED.yaml WORK_DIR [KNOWN_GAPS]

The paths the chart mounts (/etc/wharf/secrets/..., /var/lib/wharf) are moved
under WORK_DIR, and every secret file the config names is created there with
placeholder content, as the pod's mounted Secrets would be. Keys the binary
does not list in `--print-keys` are problems, except those in the KNOWN_GAPS
file (one key a line, `#` comments): keys the chart writes for a feature the
binary does not read yet. Those are removed before `--check-config` and
reported as gaps; a listed key the binary now knows is a problem (take it off
the list). Exit 0 when the binary accepts the config.
"""
import os
import re
import subprocess
import sys

import yaml

SECRETS = "/etc/wharf/secrets"
DATA = "/var/lib/wharf"
# Placeholder content per mounted file, by file name.
CONTENT = {"api-keys.yaml": "[]\n", "username": "wharf", "password": "placeholder"}


def flatten(value, path=""):
    if isinstance(value, dict):
        for k, v in value.items():
            if path.endswith("properties"):
                yield f"{path}.{k}", v  # librdkafka names contain dots
            else:
                yield from flatten(v, f"{path}.{k}" if path else k)
    elif isinstance(value, list):
        yield path, value
    else:
        yield path, value


def main(argv):
    if len(argv) not in (4, 5):
        print(__doc__, file=sys.stderr)
        return 2
    binary, rendered, work = argv[1:4]
    text = None
    with open(rendered, encoding="utf-8") as f:
        for doc in yaml.safe_load_all(f):
            if doc and doc.get("kind") == "ConfigMap" and "wharf.yaml" in (doc.get("data") or {}):
                text = doc["data"]["wharf.yaml"]
    if text is None:
        print(f"{rendered}: no ConfigMap with wharf.yaml", file=sys.stderr)
        return 1

    secrets_dir = os.path.join(work, "secrets")
    text = text.replace(SECRETS, secrets_dir).replace(DATA, os.path.join(work, "data"))
    os.makedirs(os.path.join(work, "data"), exist_ok=True)
    config = yaml.safe_load(text) or {}

    # Create every mounted file the config refers to.
    for _, value in flatten(config):
        if not isinstance(value, str):
            continue
        for path in re.findall(re.escape(secrets_dir) + r"/[^}\s\"']+", value):
            os.makedirs(os.path.dirname(path), exist_ok=True)
            with open(path, "w", encoding="utf-8") as f:
                f.write(CONTENT.get(os.path.basename(path), ""))

    known = subprocess.run([binary, "--print-keys"], capture_output=True, text=True, check=False)
    if known.returncode != 0:
        print(f"{binary} --print-keys failed: {known.stderr.strip()}", file=sys.stderr)
        return 1
    known_keys = {line.split(":", 1)[0].strip() for line in known.stdout.splitlines() if ":" in line}
    gaps = set()
    if len(argv) > 4:
        with open(argv[4], encoding="utf-8") as f:
            gaps = {line.split("#", 1)[0].strip() for line in f} - {""}
    problems = []
    for gap in sorted(gaps & known_keys):
        problems.append(f"{gap}: the binary knows this key now; take it off {argv[4]}")
    for key, _ in list(flatten(config)):
        generic = re.sub(r"\.properties\..*$", ".properties", key)
        if generic in gaps and generic not in known_keys:
            section, _, leaf = key.rpartition(".")
            parent = config
            for part in section.split("."):
                parent = parent[part]
            del parent[leaf]
            print(f"binary check: KNOWN GAP {key}: the binary does not read it yet, so the feature "
                  f"behind it does not work; checked without it")
            continue
        if generic not in known_keys:
            problems.append(f"{key}: the binary does not know this key (wharf --print-keys)")
    text = yaml.safe_dump(config, sort_keys=False)

    config_path = os.path.join(work, "wharf.yaml")
    with open(config_path, "w", encoding="utf-8") as f:
        f.write(text)
    run = subprocess.run([binary, "--check-config", "--config", config_path],
                         capture_output=True, text=True, check=False)
    output = (run.stdout + run.stderr).strip()
    if run.returncode != 0:
        problems.append(f"wharf --check-config exited {run.returncode}:\n{output}")
    for p in problems:
        print("binary check: " + p, file=sys.stderr)
    if not problems:
        print(f"binary check: {binary} accepts the config ({output.splitlines()[0] if output else 'ok'})")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
