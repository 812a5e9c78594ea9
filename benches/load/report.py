#!/usr/bin/env python3
"""Prints the Markdown tables of a benches/compare.sh results file.

Usage: report.py RESULTS_FILE

The results file has one record per line, as space-separated key=value pairs (values with
spaces in double quotes); lines starting with `#` are comments. Ratios are portcullis
divided by nginx from the same run, so above 1 means portcullis has more of that quantity.
More requests/s is better. More latency, CPU time, system calls or memory is worse.
"""

import shlex
import sys

SCENARIOS = {
    "direct": "direct to the upstream stub (ceiling)",
    "plain": "plain proxy",
    "auth": "session check",
    "denied": "invalid session (denied)",
    "cached": "session check, portcullis cache on",
    "auth-c1": "session check, 1 connection",
    "auth-c1024": "session check, 1,024 connections",
    "auth-w2": "session check, 2 workers",
}

CONTENDERS = {
    "direct": "upstream stub",
    "portcullis": "portcullis",
    "portcullis-pipelined": "portcullis, pipelined",
    "portcullis-cache": "portcullis (cache)",
    "portcullis-cache-pipelined": "portcullis (cache), pipelined",
    "nginx": "nginx",
    "nginx-get": "nginx auth_request, GET",
    "nginx-best": "nginx auth_request, best",
}

# (label, scenario and contender of portcullis, scenario and contender of nginx)
COMPARISONS = [
    ("plain proxy", ("plain", "portcullis"), ("plain", "nginx")),
    ("plain proxy, pipelined", ("plain", "portcullis-pipelined"), ("plain", "nginx")),
    ("session check vs auth_request GET", ("auth", "portcullis"), ("auth", "nginx-get")),
    ("session check vs auth_request best", ("auth", "portcullis"), ("auth", "nginx-best")),
    ("session check, pipelined, vs auth_request best", ("auth", "portcullis-pipelined"), ("auth", "nginx-best")),
    ("denied vs auth_request best", ("denied", "portcullis"), ("denied", "nginx-best")),
    ("cache on vs auth_request best (no cache)", ("cached", "portcullis-cache"), ("auth", "nginx-best")),
    ("cache on, pipelined, vs auth_request best (no cache)", ("cached", "portcullis-cache-pipelined"), ("auth", "nginx-best")),
    ("session check, 1 connection", ("auth-c1", "portcullis"), ("auth-c1", "nginx-best")),
    ("session check, 1 connection, pipelined", ("auth-c1", "portcullis-pipelined"), ("auth-c1", "nginx-best")),
    ("session check, 1,024 connections", ("auth-c1024", "portcullis"), ("auth-c1024", "nginx-best")),
    ("session check, 1,024 connections, pipelined", ("auth-c1024", "portcullis-pipelined"), ("auth-c1024", "nginx-best")),
    ("session check, 2 workers", ("auth-w2", "portcullis"), ("auth-w2", "nginx-best")),
    ("session check, 2 workers, pipelined", ("auth-w2", "portcullis-pipelined"), ("auth-w2", "nginx-best")),
]

# Contender names of portcullis's two configurations, the default service and the one with
# `pipeline_depth = 16`, without and with the session cache.
CONFIGURATIONS = [
    ("default", "portcullis", "portcullis-cache"),
    ("pipelined", "portcullis-pipelined", "portcullis-cache-pipelined"),
]


def read_records(path):
    records = []
    with open(path, encoding="utf-8") as results:
        for line in results:
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            record = {}
            for pair in shlex.split(line):
                key, _, value = pair.partition("=")
                record[key] = value
            records.append(record)
    return records


def ratio(numerator, denominator):
    try:
        return "%.2f" % (float(numerator) / float(denominator))
    except (ValueError, ZeroDivisionError):
        return "-"


def milliseconds(microseconds):
    return "%.2f" % (int(microseconds) / 1000)


def main():
    if len(sys.argv) != 2:
        sys.exit("usage: report.py RESULTS_FILE")
    records = read_records(sys.argv[1])
    meta = next((r for r in records if r.get("kind") == "meta"), {})
    load = [r for r in records if r.get("kind") == "load"]
    syscalls = [r for r in records if r.get("kind") == "syscalls"]
    memory = [r for r in records if r.get("kind") == "memory"]

    print("Run %s, commit `%s`, %s cores (%s), %s, wrk %s; %s s per run after %s s of warm-up, "
          "%s connections unless stated, %s session cookies in rotation."
          % (meta.get("date", "?"), meta.get("commit", "?"), meta.get("nproc", "?"),
             meta.get("cpu_model", "?"), meta.get("nginx", "?"), meta.get("wrk", "?"),
             meta.get("duration_s", "?"), meta.get("warmup_s", "?"),
             meta.get("connections", "?"), meta.get("sessions", "?")))
    print()
    print("| Scenario | Contender | Workers | Connections | Requests/s | p50 (ms) | p99 (ms) | CPU per request (µs) | Socket errors | Other load (%) |")
    print("| --- | --- | --: | --: | --: | --: | --: | --: | --: | --: |")
    for r in load:
        print("| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |" % (
            SCENARIOS.get(r["scenario"], r["scenario"]),
            CONTENDERS.get(r["contender"], r["contender"]),
            r["workers"], r["connections"], r["rps"],
            milliseconds(r["p50_us"]), milliseconds(r["p99_us"]),
            r["cpu_us_per_request"], r["socket_errors"], r.get("other_load_pct", "-")))
    print()
    print("CPU per request is the utime + stime of the proxy processes (of the upstream stub in the direct row) over the run, divided by the requests completed. Other load is the share of both cores used during the run by processes other than the proxy, the stubs and wrk.")
    print()
    print("Load average at start and end: %s; %s." % (meta.get("load_average_start", "?"), meta.get("load_average_end", "?")))

    by_key = {(r["scenario"], r["contender"]): r for r in load}
    rows = []
    for label, ours, theirs in COMPARISONS:
        if ours in by_key and theirs in by_key:
            a, b = by_key[ours], by_key[theirs]
            rows.append("| %s | %s | %s | %s |" % (
                label, ratio(a["rps"], b["rps"]), ratio(a["p99_us"], b["p99_us"]),
                ratio(a["cpu_us_per_request"], b["cpu_us_per_request"])))
    if rows:
        print()
        print("Ratios portcullis / nginx:")
        print()
        print("| Comparison | Requests/s | p99 latency | CPU per request |")
        print("| --- | --: | --: | --: |")
        print("\n".join(rows))

    if syscalls:
        counted = {(r["scenario"], r["contender"]): r for r in syscalls}
        print()
        print("System calls per request (strace -c -f over a short run; strace slows the proxy, so these are counts, not times):")
        print()
        print("| Scenario | portcullis | nginx | Ratio |")
        print("| --- | --: | --: | --: |")
        for scenario, theirs in (("plain", "nginx"), ("auth", "nginx-best")):
            for _, ours, _ in CONFIGURATIONS:
                a = counted.get((scenario, ours))
                b = counted.get((scenario, theirs))
                if a and b:
                    print("| %s | %s | %s | %s |" % (
                        SCENARIOS[scenario]
                        + (", pipelined" if ours != "portcullis" else "")
                        + (" (vs auth_request best)" if scenario == "auth" else ""),
                        a["syscalls_per_request"], b["syscalls_per_request"],
                        ratio(a["syscalls_per_request"], b["syscalls_per_request"])))

    if memory:
        by_contender = {r["contender"]: r for r in memory}
        print()
        print("Resident memory (VmRSS, summed over the proxy's processes) before and after opening idle keep-alive connections, one request each:")
        print()
        print("| Contender | Idle connections | RSS before (MiB) | RSS after (MiB) | Bytes per connection |")
        print("| --- | --: | --: | --: | --: |")
        for name in ("portcullis", "nginx"):
            r = by_contender.get(name)
            if r:
                print("| %s | %s | %.1f | %.1f | %s |" % (
                    name, r["idle_connections"], int(r["rss_before_kib"]) / 1024,
                    int(r["rss_after_kib"]) / 1024, r["bytes_per_connection"]))
        if "portcullis" in by_contender and "nginx" in by_contender:
            print()
            print("Bytes per idle connection, portcullis / nginx: %s." % ratio(
                by_contender["portcullis"]["bytes_per_connection"],
                by_contender["nginx"]["bytes_per_connection"]))

    print_targets(by_key, counted if syscalls else {}, {r["contender"]: r for r in memory})


def check(label, value, met):
    """Formats one row of the targets table. VALUE is None when the run lacks a row it needs."""
    if value is None:
        return "| %s | - | not measured |" % label
    return "| %s | %s | %s |" % (label, value, "yes" if met else "no")


def print_targets(load, syscalls, memory):
    """Prints each performance target of BENCHMARKS.md, checked against this run, for both configurations."""
    print()
    print("Targets, checked against this run:")
    print()
    print("| Target | Configuration | Value | Met |")
    print("| --- | --- | --: | --- |")

    def number(record, key):
        return float(record[key]) if record else None

    for name, ours, cached in CONFIGURATIONS:
        auth, best = load.get(("auth", ours)), load.get(("auth", "nginx-best"))
        plain, nginx_plain = load.get(("plain", ours)), load.get(("plain", "nginx"))
        cache = load.get(("cached", cached))
        rows = []
        if auth and best:
            cpu = number(auth, "cpu_us_per_request") / number(best, "cpu_us_per_request")
            rps = number(auth, "rps") / number(best, "rps")
            p99 = number(auth, "p99_us") / number(best, "p99_us")
            rows.append(check("session check CPU per request <= 0.6 x auth_request best", "%.2f" % cpu, cpu <= 0.6))
            rows.append(check("session check requests/s >= 1.3 x auth_request best", "%.2f" % rps, rps >= 1.3))
            rows.append(check("session check p99 <= auth_request best", "%.2f" % p99, p99 <= 1.0))
        if plain and nginx_plain:
            cpu = number(plain, "cpu_us_per_request") / number(nginx_plain, "cpu_us_per_request")
            rows.append(check("plain proxy CPU per request <= 0.8 x nginx", "%.2f" % cpu, cpu <= 0.8))
        if cache and plain:
            share = number(cache, "rps") / number(plain, "rps")
            rows.append(check("cache on requests/s >= 0.85 x plain proxy", "%.2f" % share, share >= 0.85))
        if name == "default":
            denied = load.get(("denied", "portcullis"))
            if denied and auth:
                a, b = number(denied, "cpu_us_per_request"), number(auth, "cpu_us_per_request")
                rows.append(check("denied CPU per request < allowed", "%.1f vs %.1f µs" % (a, b), a < b))
            if "portcullis" in memory and "nginx" in memory:
                a = int(memory["portcullis"]["rss_after_kib"]) / 1024
                b = int(memory["nginx"]["rss_after_kib"]) / 1024
                rows.append(check("RSS with idle connections <= nginx", "%.1f vs %.1f MiB" % (a, b), a <= b))
        for scenario, theirs in (("plain", "nginx"), ("auth", "nginx-best")):
            a, b = syscalls.get((scenario, ours)), syscalls.get((scenario, theirs))
            if a and b:
                share = float(a["syscalls_per_request"]) / float(b["syscalls_per_request"])
                rows.append(check("%s system calls per request <= nginx" % SCENARIOS[scenario], "%.2f" % share, share <= 1.0))
        for row in rows:
            label, rest = row[2:].split(" | ", 1)
            print("| %s | %s | %s" % (label, name, rest))


if __name__ == "__main__":
    main()
