#!/usr/bin/env python3
"""Prints the markdown table of every value in helm/wharf/values.yaml (key,
default, description from the `# --` comment above it), or checks that the
chart's README carries the current table.

    values_table.py helm/wharf/values.yaml               # print the table
    values_table.py helm/wharf/values.yaml README.md      # check README
    values_table.py helm/wharf/values.yaml README.md --write

The table sits in README.md between `<!-- values:begin -->` and
`<!-- values:end -->`. Leaves are scalars, lists and empty maps; the
`config` subtree is listed too (the chart's defaults for the node's config).
"""
import json
import re
import sys

import yaml

BEGIN = "<!-- values:begin -->"
END = "<!-- values:end -->"


def comments_by_path(text):
    """Maps dotted key paths to the `# --` description just above them."""
    out = {}
    stack = []  # (indent, key)
    pending = []
    for line in text.splitlines():
        stripped = line.strip()
        if re.match(r"^# -+$", stripped):  # a section rule, not a description
            pending = []
            continue
        if stripped.startswith("# --"):
            pending = [stripped[4:].strip()]
            continue
        if pending and stripped.startswith("#") and not stripped.startswith("#  -"):
            pending.append(stripped[1:].strip())
            continue
        m = re.match(r"^(\s*)([A-Za-z0-9_.-]+):", line)
        if not m or stripped.startswith("#") or stripped.startswith("- "):
            if stripped and not stripped.startswith("#"):
                pending = []
            continue
        indent = len(m.group(1))
        while stack and stack[-1][0] >= indent:
            stack.pop()
        stack.append((indent, m.group(2)))
        if pending:
            out[".".join(k for _, k in stack)] = " ".join(pending)
            pending = []
    return out


def leaves(value, path=""):
    if isinstance(value, dict) and value:
        for k, v in value.items():
            yield from leaves(v, f"{path}.{k}" if path else k)
    else:
        yield path, value


def render(values_path):
    text = open(values_path, encoding="utf-8").read()
    values = yaml.safe_load(text)
    notes = comments_by_path(text)
    rows = ["| Key | Default | Description |", "| --- | --- | --- |"]
    last_noted = {}  # parent path -> last sibling with a description
    for path, value in leaves(values):
        default = json.dumps(value, separators=(", ", ": "))
        desc = notes.get(path, "")
        parent_path = path.rsplit(".", 1)[0] if "." in path else ""
        if desc:
            last_noted[parent_path] = path
        elif parent_path in last_noted:
            desc = f"(see `{last_noted[parent_path]}`)"
        if not desc:
            # A description on a parent section covers its keys.
            parts = path.split(".")
            for i in range(len(parts) - 1, 0, -1):
                parent = ".".join(parts[:i])
                if parent in notes:
                    desc = f"(see `{parent}`)"
                    break
        desc = desc.replace("|", "\\|")
        rows.append(f"| `{path}` | `{default}` | {desc} |")
    return "\n".join(rows) + "\n"


def main(argv):
    if len(argv) < 2:
        print(__doc__, file=sys.stderr)
        return 2
    table = render(argv[1])
    if len(argv) == 2:
        sys.stdout.write(table)
        return 0
    readme_path = argv[2]
    readme = open(readme_path, encoding="utf-8").read()
    if BEGIN not in readme or END not in readme:
        print(f"{readme_path}: markers {BEGIN} / {END} missing", file=sys.stderr)
        return 1
    head, rest = readme.split(BEGIN, 1)
    current, tail = rest.split(END, 1)
    wanted = head + BEGIN + "\n" + table + END + tail
    if len(argv) > 3 and argv[3] == "--write":
        open(readme_path, "w", encoding="utf-8").write(wanted)
        return 0
    if wanted != readme:
        print(f"{readme_path}: the values table is out of date with values.yaml; "
              f"run tests/chart/values_table.py {argv[1]} {readme_path} --write", file=sys.stderr)
        return 1
    print(f"values table: {table.count(chr(10)) - 2} values listed in {readme_path}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
