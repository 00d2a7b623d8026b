#!/usr/bin/env python3
"""Checks that every PromQL expression of the chart's dashboard and alert
rules parses, that every wharf_* metric they query is listed in
docs/metrics.md, and that the dashboard is valid JSON with unique panel ids.

    check_metric_names.py docs/metrics.md dashboards/wharf.json RENDERED.yaml

RENDERED.yaml is a `helm template` output that contains the PrometheusRule.
A dashboard or alert on a metric the node does not export shows nothing and
never fires; docs/metrics.md is the list the exporters are held to.
"""
import json
import re
import sys

import promql_parser
import yaml

METRIC_RE = re.compile(r"\bwharf_[a-z0-9_]+")
# Series suffixes Prometheus adds to histograms.
SUFFIXES = ("_bucket", "_sum", "_count")


def base_name(name, documented):
    if name in documented:
        return name
    for suffix in SUFFIXES:
        if name.endswith(suffix) and name[: -len(suffix)] in documented:
            return name[: -len(suffix)]
    return None


def parse_error(expr):
    """None when `expr` is valid PromQL. Grafana's variables are replaced by
    values of the right kind first."""
    expr = expr.replace("$__rate_interval", "5m").replace("$__interval", "1m")
    try:
        promql_parser.parse(expr)
    except ValueError as e:
        return str(e)
    return None


def main(argv):
    if len(argv) != 4:
        print(__doc__, file=sys.stderr)
        return 2
    docs_path, dashboard_path, rendered_path = argv[1:]
    documented = set()
    for line in open(docs_path, encoding="utf-8"):
        # Table rows name the metric in back-quotes in the first column.
        m = re.match(r"^\|\s*`(wharf_[a-z0-9_]+)", line)
        if m:
            documented.add(m.group(1))
    errors = []
    if not documented:
        errors.append(f"{docs_path}: no metric table rows found")

    dashboard = json.load(open(dashboard_path, encoding="utf-8"))
    ids = [p["id"] for p in dashboard.get("panels", [])]
    if len(ids) != len(set(ids)):
        errors.append(f"{dashboard_path}: duplicate panel ids")
    used = {}
    for panel in dashboard.get("panels", []):
        for target in panel.get("targets", []):
            expr = target.get("expr", "")
            err = parse_error(expr)
            if err:
                errors.append(f"dashboard panel '{panel['title']}': PromQL does not parse ({err}): {expr}")
            for name in METRIC_RE.findall(expr):
                used.setdefault(name, f"dashboard panel '{panel['title']}'")

    rules = 0
    with open(rendered_path, encoding="utf-8") as f:
        for doc in yaml.safe_load_all(f):
            if not doc or doc.get("kind") != "PrometheusRule":
                continue
            for group in doc["spec"]["groups"]:
                for rule in group["rules"]:
                    rules += 1
                    err = parse_error(rule["expr"])
                    if err:
                        errors.append(f"alert {rule['alert']}: PromQL does not parse ({err}): {rule['expr']}")
                    for name in METRIC_RE.findall(rule["expr"]):
                        used.setdefault(name, f"alert {rule['alert']}")
    if rules == 0:
        errors.append(f"{rendered_path}: no PrometheusRule rules found")

    for name, where in sorted(used.items()):
        if base_name(name, documented) is None:
            errors.append(f"{where} uses {name}, which docs/metrics.md does not list")
    for e in errors:
        print("metric name check: " + e, file=sys.stderr)
    print(f"metric name check: {len(used)} metric(s) used by the dashboard and {rules} alert(s), "
          f"{len(documented)} documented, {len(errors)} problem(s)")
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
