#!/usr/bin/env python3
"""Checks that the operator's kit only uses metrics shipper exports (test_operator_kit.sh).

  kit_names.py check SCRAPE DASHBOARD.json RULES.yml
      SCRAPE is the text of shipper's /metrics. Every metric name in the dashboard's queries
      (targets and template variables) and in the rules' expressions must be exported: declared
      by a "# TYPE" line (a histogram NAME exports NAME_bucket, NAME_sum and NAME_count) or
      present as a sample. `up` is Prometheus's own. Every label a selector matches on
      (name{label=...}) must be one the family's samples carry, or a target label (instance,
      job). Also checks the dashboard's shape: datasource variable, instance variable, every
      query filtered by $instance. Prints what it found; exits 1 naming each problem.
"""
import json
import re
import sys

import yaml

PROMETHEUS_OWN = {"up"}
TARGET_LABELS = {"instance", "job"}
KEYWORDS = {"by", "without", "on", "ignoring", "group_left", "group_right", "bool", "and", "or",
            "unless", "offset", "inf", "nan"}


def strip_strings(e):
    return re.sub(r'"(?:\\.|[^"\\])*"|\'(?:\\.|[^\'\\])*\'|`[^`]*`', '""', e)


def selectors(expr):
    """(metric name, [label names matched]) for every vector selector in a PromQL expression."""
    e = re.sub(r"\$\{[^}]*\}|\$\w+", "0", expr)  # Grafana variables ($__rate_interval, ${x})
    e = strip_strings(e)
    matchers = []  # label names of each {...}, replaced by a placeholder

    def keep(m):
        matchers.append([x.strip() for x in re.findall(r"([A-Za-z_]\w*)\s*(?:=~|!~|!=|=)", m.group(0))])
        return "{#%d}" % (len(matchers) - 1)

    e = re.sub(r"\{[^}]*\}", keep, e)
    e = re.sub(r"\[[^\]]*\]", "[]", e)  # ranges and subqueries
    e = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", r"\1()", e)
    e = re.sub(r"(?<![\w:])\d[\w.]*", "0", e)  # numbers and durations (1e9, 0.8, 5m)
    out = []
    for m in re.finditer(r"[A-Za-z_:][\w:]*", e):
        tok, rest = m.group(0), e[m.end():].lstrip()
        if rest.startswith("(") or tok.lower() in KEYWORDS or re.match(r"(by|without)\s*\(", rest):
            continue  # a function, an operator keyword, an aggregation ("sum by (x) (...)")
        labels = []
        sel = re.match(r"\{#(\d+)\}", rest)
        if sel:
            labels = matchers[int(sel.group(1))]
        out.append((tok, labels))
    return out


def dashboard_queries(path, problems):
    d = json.load(open(path))
    qs = []
    tmpl = {v.get("name"): v for v in d.get("templating", {}).get("list", [])}
    ds = tmpl.get("DS_PROMETHEUS")
    if not ds or ds.get("type") != "datasource" or ds.get("query") != "prometheus":
        problems.append("dashboard: no datasource variable DS_PROMETHEUS (type datasource, query prometheus)")
    inst = tmpl.get("instance")
    if not inst or inst.get("type") != "query":
        problems.append("dashboard: no query variable 'instance'")
    for name, v in tmpl.items():
        if v.get("type") != "query":
            continue
        q = v.get("query")
        q = q.get("query", "") if isinstance(q, dict) else (q or "")
        m = re.fullmatch(r"\s*label_values\(\s*(.*?)\s*,\s*(\w+)\s*\)\s*", q)
        if not m:
            problems.append("dashboard: variable %s: query %r is not label_values(SELECTOR, LABEL)" % (name, q))
            continue
        qs.append(("dashboard variable " + name, m.group(1)))
    panels, ids = [], set()

    def walk(ps):
        for p in ps:
            panels.append(p)
            walk(p.get("panels", []))

    walk(d.get("panels", []))
    for p in panels:
        if p.get("type") == "row":
            continue
        title = p.get("title", "?")
        if p.get("id") in ids:
            problems.append("dashboard: panel id %s used twice" % p.get("id"))
        ids.add(p.get("id"))
        if "gridPos" not in p:
            problems.append("dashboard: panel %r has no gridPos" % title)
        if (p.get("datasource") or {}).get("uid") != "${DS_PROMETHEUS}":
            problems.append("dashboard: panel %r does not use ${DS_PROMETHEUS}" % title)
        if not p.get("targets"):
            problems.append("dashboard: panel %r has no queries" % title)
        for t in p.get("targets", []):
            expr = t.get("expr", "")
            if not expr:
                problems.append("dashboard: panel %r has a target without expr" % title)
                continue
            # Every selector of a shipper metric is narrowed to the chosen instances.
            for sel in re.findall(r"shipper_\w+(\{[^}]*\})?", expr):
                if 'instance=~"$instance"' not in sel:
                    problems.append("dashboard: panel %r: a selector without instance=~\"$instance\": %s" % (title, expr))
                    break
            qs.append(("dashboard panel " + repr(title), expr))
    return qs, sum(1 for p in panels if p.get("type") != "row")


def rules_queries(path, problems):
    doc = yaml.safe_load(open(path))
    qs, n = [], 0
    for g in doc.get("groups", []):
        for r in g.get("rules", []):
            n += 1
            what = r.get("alert") or r.get("record")
            qs.append(("rule " + str(what), r.get("expr", "")))
            if "alert" in r:
                if "for" not in r:
                    problems.append("rule %s: no for:" % what)
                if (r.get("labels") or {}).get("severity") not in ("critical", "warning", "info"):
                    problems.append("rule %s: no severity label (critical, warning or info)" % what)
                ann = r.get("annotations") or {}
                if not ann.get("summary") or not ann.get("description"):
                    problems.append("rule %s: summary and description annotations needed" % what)
    return qs, n


def exported(scrape):
    """{name: set of label names seen on its samples}, histogram series included."""
    names = {}
    for line in scrape.splitlines():
        m = re.match(r"# TYPE (\S+) (\S+)", line)
        if m:
            names.setdefault(m.group(1), set())
            if m.group(2) == "histogram":
                for s in ("_bucket", "_sum", "_count"):
                    names.setdefault(m.group(1) + s, set())
            continue
        if not line or line.startswith("#"):
            continue
        m = re.match(r"([A-Za-z_:][\w:]*)(\{[^}]*\})?\s", line)
        if m:
            labels = set(re.findall(r'([A-Za-z_]\w*)="', m.group(2) or ""))
            names.setdefault(m.group(1), set()).update(labels)
    return names


def main():
    if len(sys.argv) != 5 or sys.argv[1] != "check":
        print(__doc__)
        return 2
    scrape = open(sys.argv[2]).read()
    problems = []
    dq, npanels = dashboard_queries(sys.argv[3], problems)
    rq, nrules = rules_queries(sys.argv[4], problems)
    have = exported(scrape)
    used = set()
    for where, expr in dq + rq:
        sels = selectors(expr)
        if not sels:
            problems.append("%s: no metric in %r" % (where, expr))
        for name, labels in sels:
            used.add(name)
            if name in PROMETHEUS_OWN:
                continue
            if name not in have:
                problems.append("%s: %s is not exported by shipper (expr: %s)" % (where, name, expr))
                continue
            for l in labels:
                if l not in have[name] and l not in TARGET_LABELS:
                    problems.append("%s: %s has no label %r (its samples carry %s)"
                                    % (where, name, l, sorted(have[name]) or "none"))
    print("%d dashboard panels, %d rules; %d metric names used, all checked against %d exported"
          % (npanels, nrules, len(used), len(have)))
    print("used: " + " ".join(sorted(used)))
    for p in problems:
        print("PROBLEM: " + p)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
