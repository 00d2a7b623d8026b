#!/usr/bin/env python3
"""Checks that the Wharf config files a rendered chart contains use only keys
that exist in config/config.h, with the right shape (section, list, map).

    check_config_keys.py CONFIG_H MANIFESTS.yaml [...]
    check_config_keys.py CONFIG_H --schema values.schema.json

Reads every ConfigMap with a `wharf.yaml` key and every Secret-held
`api-keys.yaml` (a list of http_api_key entries) in the given multi-document
manifests. Exit 1, naming each unknown key with its path, when one is found.
config.h is the source of truth: a key the chart writes that the binary does
not know would stop the node at start-up.

With --schema, compares the `config` subtree of the chart's values schema with
config.h both ways: a key only in the schema is a typo the node would refuse,
a key only in config.h is a valid setting the schema would reject.
"""
import json
import base64
import re
import sys

import yaml

STRUCT_RE = re.compile(r"^struct\s+(\w+)\s*\{(.*?)^\};", re.S | re.M)
FIELD_RE = re.compile(r"^\s*([\w:<>, ]+?)\s+(\w+)\s*(?:=[^;]*)?;", re.M)


def parse_structs(text):
    """{struct name: {field name: C++ type}} for every plain struct."""
    structs = {}
    for name, body in STRUCT_RE.findall(text):
        fields = {}
        for line in body.splitlines():
            line = line.split("//", 1)[0]
            m = FIELD_RE.match(line)
            if not m or "(" in line:
                continue
            ctype, field = m.group(1).strip(), m.group(2)
            if ctype in ("return", "using"):
                continue
            fields[field] = ctype
        structs[name] = fields
    return structs


def unwrap(ctype):
    """('struct'|'list'|'map'|'leaf', inner type)."""
    for wrapper, kind in (("std::optional<", None), ("std::vector<", "list"), ("std::map<", "map")):
        if ctype.startswith(wrapper) and ctype.endswith(">"):
            inner = ctype[len(wrapper):-1].strip()
            if kind is None:
                return unwrap(inner)
            return kind, inner
    return "type", ctype


def check(value, ctype, structs, path, errors):
    kind, inner = unwrap(ctype)
    if kind == "map":
        if not isinstance(value, dict):
            errors.append(f"{path}: expected a map, got {type(value).__name__}")
        return
    if kind == "list":
        if not isinstance(value, list):
            errors.append(f"{path}: expected a list, got {type(value).__name__}")
            return
        for i, item in enumerate(value):
            check(item, inner, structs, f"{path}[{i}]", errors)
        return
    if inner in structs:
        if not isinstance(value, dict):
            errors.append(f"{path}: expected a section ({inner}), got {type(value).__name__}")
            return
        for key, sub in value.items():
            if key not in structs[inner]:
                known = ", ".join(sorted(structs[inner]))
                errors.append(f"{path}.{key}: no such key in {inner} (known: {known})")
                continue
            check(sub, structs[inner][key], structs, f"{path}.{key}", errors)
        return
    if isinstance(value, (dict, list)):
        errors.append(f"{path}: expected a single value ({inner}), got {type(value).__name__}")


def compare_schema(schema, ctype, structs, path, errors):
    """Walks the schema's `config` subtree beside the config structs."""
    kind, inner = unwrap(ctype)
    if kind == "list":
        items = schema.get("items")
        if isinstance(items, dict) and items.get("properties") is not None:
            compare_schema(items, inner, structs, path + "[]", errors)
        return
    if kind == "map" or inner not in structs:
        return
    props = schema.get("properties")
    if props is None:
        errors.append(f"{path}: the schema does not describe section {inner}")
        return
    for key in props:
        if key not in structs[inner]:
            errors.append(f"{path}.{key}: in the schema but not in config.h ({inner})")
    for key, sub_type in structs[inner].items():
        if key == "source" and inner == "config":
            continue  # set by the loader, not a YAML key
        if key not in props:
            errors.append(f"{path}.{key}: in config.h ({inner}) but the schema would reject it")
            continue
        compare_schema(props[key], sub_type, structs, f"{path}.{key}", errors)


def main(argv):
    if len(argv) == 4 and argv[2] == "--schema":
        structs = parse_structs(open(argv[1], encoding="utf-8").read())
        schema = json.load(open(argv[3], encoding="utf-8"))
        errors = []
        compare_schema(schema["properties"]["config"], "config", structs, "config", errors)
        for e in errors:
            print("schema/config.h check: " + e, file=sys.stderr)
        print(f"schema/config.h check: {len(errors)} problem(s)")
        return 1 if errors else 0
    if len(argv) < 3:
        print(__doc__, file=sys.stderr)
        return 2
    structs = parse_structs(open(argv[1], encoding="utf-8").read())
    if "config" not in structs:
        print(f"{argv[1]}: no 'struct config' found", file=sys.stderr)
        return 2
    errors = []
    seen = 0
    for manifest in argv[2:]:
        with open(manifest, encoding="utf-8") as f:
            docs = [d for d in yaml.safe_load_all(f) if d]
        for doc in docs:
            name = f"{manifest}:{doc.get('kind')}/{doc.get('metadata', {}).get('name')}"
            if doc.get("kind") == "ConfigMap" and "wharf.yaml" in (doc.get("data") or {}):
                cfg = yaml.safe_load(doc["data"]["wharf.yaml"]) or {}
                check(cfg, "config", structs, name + ":wharf.yaml", errors)
                seen += 1
            if doc.get("kind") == "Secret" and "api-keys.yaml" in (doc.get("data") or {}):
                keys = yaml.safe_load(base64.b64decode(doc["data"]["api-keys.yaml"]))
                check(keys, "std::vector<http_api_key>", structs, name + ":api-keys.yaml", errors)
    for e in errors:
        print("config key check: " + e, file=sys.stderr)
    if seen == 0:
        print("config key check: no ConfigMap with wharf.yaml found", file=sys.stderr)
        return 1
    print(f"config key check: {seen} config file(s), {len(errors)} problem(s)")
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
