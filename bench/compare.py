#!/usr/bin/env python3
"""Turns the raw trackbench and cairn-load JSONs written by bench/run into results.json and results.md.

Reads, in --out DIR, for each server (mlflow, cairn = Cairn at --durability normal, cairn-full =
Cairn at --durability full, noop / noop-swift = the Python and the compiled no-op servers):
<server>.json (trackbench --json), <server>.load.json (cairn-load --json), <server>.server.json
(start-up time, bytes on disk, written by bench/run) and <server>.rawhttp.json (bench/rawhttp.py).
Any server may be missing (bench/run --only/--durability); its column is then left out or empty.

Standard library only.
"""
from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import subprocess
import sys
from typing import Any, Callable

SERVERS = ("mlflow", "cairn", "cairn-full", "noop", "noop-swift")
NOOPS = ("noop", "noop-swift")

# (id, scenario, label, unit, higher_is_better (None: informational, no ratio), getter over one
# trackbench JSON + server JSON)
Getter = Callable[[dict[str, Any], dict[str, Any]], Any]


def scen(doc: dict[str, Any], sid: str) -> dict[str, Any] | None:
    for rec in doc.get("scenarios", []):
        if rec.get("scenario") == sid and "aborted" not in rec and "skipped" not in rec:
            return rec
    return None


def dig(cur: Any, keys: tuple[str, ...]) -> Any:
    """The number at `keys` inside nested dicts, or None."""
    for k in keys:
        if not isinstance(cur, dict):
            return None
        cur = cur.get(k)
    return cur if isinstance(cur, (int, float)) and not isinstance(cur, bool) else None


def path(sid: str, *keys: str) -> Getter:
    return lambda doc, _srv: dig(scen(doc, sid), keys)


def server_field(key: str) -> Getter:
    def get(_doc: dict[str, Any], srv: dict[str, Any]) -> Any:
        v = srv.get(key)
        return v if isinstance(v, (int, float)) else None
    return get


def raw(*keys: str) -> Getter:
    """A figure of <server>.rawhttp.json (passed in the server JSON under "rawhttp")."""
    return lambda _doc, srv: dig(srv.get("rawhttp"), keys)


def disk(key: str) -> Getter:
    return lambda _doc, srv: dig(srv.get("disk"), (key,))


def cpu_per_request(sid: str, count_key: str) -> Getter:
    """Milliseconds of the server process tree's CPU (`server_cpu_s`) per request of scenario
    `sid`, over the requests it counts under `count_key`. The client-bound write scenarios are
    judged by these, not by their rates, which the harness caps. (A database server's own CPU
    is not in them: trackbench reports it only to 0.1 s, under other_host_cpu_s.)"""
    def get(doc: dict[str, Any], _srv: dict[str, Any]) -> Any:
        rec = scen(doc, sid)
        if not rec:
            return None
        cpu, count = dig(rec, ("server_cpu_s",)), dig(rec, (count_key,))
        return round(1000 * cpu / count, 3) if cpu is not None and count else None
    return get


def load(phase: str, *keys: str) -> Getter:
    """A figure of one cairn-load phase ("s1 create_runs", "writers log_batch_10") in <server>.load.json."""
    scenario, name = phase.split(" ")

    def get(_doc: dict[str, Any], srv: dict[str, Any]) -> Any:
        for rec in (srv.get("load") or {}).get("scenarios", []):
            if rec.get("scenario") == scenario and rec.get("name") == name:
                return dig(rec, keys)
        return None
    return get


def writers_failed(_doc: dict[str, Any], srv: dict[str, Any]) -> Any:
    """Failed requests of both writers phases (creating the runs, then logging); None if they did not run."""
    recs = [r for r in (srv.get("load") or {}).get("scenarios", []) if r.get("scenario") == "writers"]
    return sum(r.get("failed", 0) for r in recs) if recs else None


def s6_procs(doc: dict[str, Any], _srv: dict[str, Any]) -> Any:
    rec = scen(doc, "s6")
    return rec.get("procs_before") if rec else None


METRICS: list[tuple[str, str, str, str, bool | None, Getter]] = [
    ("startup_s", "start-up", "time to first /health answer", "s", False, server_field("startup_s")),
    ("s1_runs_per_s", "s1 create_runs", "runs created / s (sequential)", "runs/s", True,
     path("s1", "runs_per_s")),
    ("s1_p50_ms", "s1 create_runs", "create-run latency p50", "ms", False, path("s1", "latency", "p50_ms")),
    ("s1_server_cpu_ms", "s1 create_runs", "server CPU per created run", "ms", False, cpu_per_request("s1", "created")),
    ("s2_points_per_s", "s2 log_batch", "metric points ingested / s (4 clients, 1000-pt batches)",
     "points/s", True, path("s2", "points_per_s")),
    ("s2_p99_ms", "s2 log_batch", "log-batch latency p99", "ms", False, path("s2", "latency", "p99_ms")),
    ("s2_server_cpu_ms", "s2 log_batch", "server CPU per 1000-point log-batch", "ms", False, cpu_per_request("s2", "ok_requests")),
    ("s3_req_per_s", "s3 log_metric", "single-point log-metric requests / s", "req/s", True,
     path("s3", "requests_per_s")),
    ("s3_p50_ms", "s3 log_metric", "log-metric latency p50", "ms", False, path("s3", "latency", "p50_ms")),
    ("s3_server_cpu_ms", "s3 log_metric", "server CPU per log-metric", "ms", False, cpu_per_request("s3", "ok")),
    ("s4_ingest_s", "s4 get_history", "ingest time for the history (untimed in the figure below)", "s",
     False, path("s4", "ingest_s")),
    ("s4_history_p50_ms", "s4 get_history", "full get-history p50 (default page size)", "ms", False,
     path("s4", "get_history", "p50_ms")),
    ("s4_history_25k_p50_ms", "s4 get_history", "full get-history p50 (max_results=25000 pages)", "ms",
     False, path("s4", "get_history_paged_25k", "p50_ms")),
    ("s4_bulk320_p50_ms", "s4 get_history", "get-history-bulk-interval (320) p50", "ms", False,
     path("s4", "bulk_interval", "max_results_320", "p50_ms")),
    ("raw_history_p50_ms", "s4 raw HTTP", "full get-history p50, bytes received, not parsed", "ms", False,
     raw("get_history", "p50_ms")),
    ("raw_bulk320_p50_ms", "s4 raw HTTP", "get-history-bulk-interval (320) p50", "ms", False,
     raw("bulk_320", "p50_ms")),
    ("raw_bulk2500_p50_ms", "s4 raw HTTP", "get-history-bulk-interval (2500) p50", "ms", False,
     raw("bulk_2500", "p50_ms")),
    ("s5_populate_runs_per_s", "s5 search_runs", "populate: runs (+log-batch) / s, 4 threads", "runs/s",
     True, path("s5", "populate_runs_per_s")),
    ("s5_filtered_p50_ms", "s5 search_runs", "filtered + ordered search (max 100) p50", "ms", False,
     path("s5", "filtered_search", "p50_ms")),
    ("s5_unfiltered_p50_ms", "s5 search_runs", "unfiltered search (max 1000) p50", "ms", False,
     path("s5", "unfiltered_search_1000", "p50_ms")),
    ("s6_idle_before_mib", "s6 memory", "server RSS idle, before load (process tree)", "MiB", False,
     path("s6", "idle_before_mib")),
    ("s6_peak_mib", "s6 memory", "server RSS peak during load", "MiB", False,
     path("s6", "peak_during_load_mib")),
    ("s6_idle_after_mib", "s6 memory", "server RSS idle, after load", "MiB", False,
     path("s6", "idle_after_mib")),
    ("s6_idle_after_pss_mib", "s6 memory", "server PSS idle, after load", "MiB", False,
     path("s6", "idle_after_pss_mib")),
    ("s6_procs", "s6 memory", "server processes (for information)", "", None, s6_procs),
    ("load_s1_runs_per_s", "cairn-load s1", "runs created / s (4 connections)", "runs/s", True,
     load("s1 create_runs", "operations_per_s")),
    ("load_s1_p99_ms", "cairn-load s1", "create-run latency p99", "ms", False, load("s1 create_runs", "latency", "p99_ms")),
    ("load_s1_server_cpu_ms", "cairn-load s1", "server CPU per created run", "ms", False,
     load("s1 create_runs", "server_cpu_ms_per_operation")),
    ("load_s2_points_per_s", "cairn-load s2", "metric points / s (4 connections, 1000-pt log-batch)", "points/s", True,
     load("s2 log_batch", "points_per_s")),
    ("load_s2_p99_ms", "cairn-load s2", "log-batch latency p99", "ms", False, load("s2 log_batch", "latency", "p99_ms")),
    ("load_s2_server_cpu_ms", "cairn-load s2", "server CPU per 1000-point log-batch", "ms", False,
     load("s2 log_batch", "server_cpu_ms_per_operation")),
    ("load_s3_req_per_s", "cairn-load s3", "single-point log-metric requests / s (4 connections)", "req/s", True,
     load("s3 log_metric", "operations_per_s")),
    ("load_s3_p99_ms", "cairn-load s3", "log-metric latency p99", "ms", False, load("s3 log_metric", "latency", "p99_ms")),
    ("load_s3_server_cpu_ms", "cairn-load s3", "server CPU per log-metric", "ms", False,
     load("s3 log_metric", "server_cpu_ms_per_operation")),
    ("load_s4_history_p50_ms", "cairn-load s4", "full get-history p50 (default page size, pages followed)", "ms", False,
     load("s4 get_history", "latency", "p50_ms")),
    ("load_s4_bulk320_p50_ms", "cairn-load s4", "get-history-bulk-interval (320) p50", "ms", False,
     load("s4 bulk_interval_320", "latency", "p50_ms")),
    ("load_s4_bulk2500_p50_ms", "cairn-load s4", "get-history-bulk-interval (2500) p50", "ms", False,
     load("s4 bulk_interval_2500", "latency", "p50_ms")),
    ("load_s5_populate_runs_per_s", "cairn-load s5", "populate: runs (+log-batch) / s (4 connections)", "runs/s", True,
     load("s5 populate", "operations_per_s")),
    ("load_s5_populate_server_cpu_ms", "cairn-load s5", "server CPU per populated run (create + log-batch)", "ms", False,
     load("s5 populate", "server_cpu_ms_per_operation")),
    ("load_s5_filtered_p50_ms", "cairn-load s5", "filtered + ordered search (max 100) p50", "ms", False,
     load("s5 filtered_search", "latency", "p50_ms")),
    ("load_s5_filtered_server_cpu_ms", "cairn-load s5", "server CPU per filtered + ordered search", "ms", False,
     load("s5 filtered_search", "server_cpu_ms_per_operation")),
    ("load_s5_unfiltered_p50_ms", "cairn-load s5", "unfiltered search (max 1000) p50", "ms", False,
     load("s5 unfiltered_search_1000", "latency", "p50_ms")),
    ("load_writers_start_p99_ms", "cairn-load writers", "all writers create their run at once: latency p99", "ms", False,
     load("writers create_run", "latency", "p99_ms")),
    ("load_writers_req_per_s", "cairn-load writers", "all writers log together (10-metric log-batch, each writer "
     "once a second at scales small and full): requests / s", "req/s",
     True, load("writers log_batch_10", "operations_per_s")),
    ("load_writers_p50_ms", "cairn-load writers", "log-batch latency p50", "ms", False,
     load("writers log_batch_10", "latency", "p50_ms")),
    ("load_writers_p99_ms", "cairn-load writers", "log-batch latency p99 (target ≤ 100 ms)", "ms", False,
     load("writers log_batch_10", "latency", "p99_ms")),
    ("load_writers_max_ms", "cairn-load writers", "log-batch latency max", "ms", False,
     load("writers log_batch_10", "latency", "max_ms")),
    ("load_writers_failed", "cairn-load writers", "failed requests, creating runs and logging (target 0)", "", False,
     writers_failed),
    ("load_writers_server_cpu_ms", "cairn-load writers", "server CPU per log-batch", "ms", False,
     load("writers log_batch_10", "server_cpu_ms_per_operation")),
    ("load_writers_rss_peak_mib", "cairn-load writers", "server RSS peak (target ≤ 300 MiB)", "MiB", False,
     load("writers log_batch_10", "server_rss_peak_mib")),
    ("disk_bytes", "disk", "data folder after the run (database + artifacts)", "bytes", False,
     server_field("data_dir_bytes")),
    ("disk_bytes_per_point", "disk", "bytes per metric point (pages of the points table and its indexes / points)",
     "B", False, disk("bytes_per_point")),
]


def load_json(p: str) -> dict[str, Any] | None:
    try:
        with open(p) as f:
            return json.load(f)
    except FileNotFoundError:
        return None


def machine(repo: str) -> dict[str, Any]:
    info: dict[str, Any] = {"cores": os.cpu_count(), "platform": platform.platform(),
                            "python": platform.python_version()}
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemTotal:"):
                    info["memory_bytes"] = int(line.split()[1]) * 1024
                    break
    except OSError:
        pass
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.lower().startswith("model name"):
                    info["cpu_model"] = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return info


def git(repo: str, *args: str) -> str | None:
    try:
        return subprocess.run(["git", "-C", repo, *args], capture_output=True, text=True,
                              check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return None


def fmt(v: Any, unit: str) -> str:
    if v is None:
        return "n/a"
    if unit == "bytes":
        n = float(v)
        for u in ("B", "KiB", "MiB", "GiB"):
            if n < 1024 or u == "GiB":
                return f"{n:,.0f} {u}" if u == "B" else f"{n:,.1f} {u}"
            n /= 1024
    if isinstance(v, int) or (isinstance(v, float) and v.is_integer() and abs(v) >= 100):
        s = f"{v:,.0f}"
    elif abs(v) >= 100:
        s = f"{v:,.0f}"
    elif abs(v) >= 10:
        s = f"{v:.1f}"
    else:
        s = f"{v:.1f}" if unit == "ms" and v >= 1 else f"{v:.3g}"
    return f"{s} {unit}".strip()


def ratio_of(m: Any, c: Any, higher: bool) -> tuple[float | None, str]:
    """'better' factor (>1 means Cairn is better) and a plain-words phrase."""
    if m is None or c is None:
        return None, "n/a"
    if m == 0 and c == 0:
        return 1.0, "same"
    if higher:
        if m == 0:
            return None, "Cairn > 0, MLflow 0"
        better = c / m if c else 0.0
    else:
        if c == 0:
            return None, "Cairn 0 (MLflow > 0)"
        better = m / c
    if better == 0:
        return 0.0, "Cairn got none"
    def x(f: float) -> str:
        return f"{f:,.0f}×" if f >= 100 else f"{f:.3g}×"
    if abs(better - 1) < 0.05:
        return better, f"about the same ({x(better)})"
    if better >= 1:
        return better, f"Cairn {x(better)} better"
    return better, f"Cairn {x(1 / better)} worse"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--out", required=True)
    ap.add_argument("--scale", default="?")
    ap.add_argument("--build", default="?")
    ap.add_argument("--mlflow-version", default="3.17.2")
    ap.add_argument("--repo", default=os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    args = ap.parse_args()

    docs = {s: load_json(os.path.join(args.out, f"{s}.json")) for s in SERVERS}
    srvs = {s: load_json(os.path.join(args.out, f"{s}.server.json")) or {} for s in SERVERS}
    for s in SERVERS:
        srvs[s]["rawhttp"] = load_json(os.path.join(args.out, f"{s}.rawhttp.json"))
        srvs[s]["disk"] = load_json(os.path.join(args.out, f"{s}.disk.json"))
        srvs[s]["load"] = load_json(os.path.join(args.out, f"{s}.load.json"))
    present = [s for s in SERVERS if docs[s] is not None]
    if not present:
        print(f"compare.py: no mlflow.json or cairn.json in {args.out}", file=sys.stderr)
        return 1

    rows = []
    for mid, sc, label, unit, higher, get in METRICS:
        vals = {s: (get(docs[s], srvs[s]) if docs[s] is not None else None) for s in SERVERS}
        if all(v is None for v in vals.values()):
            continue
        if higher is None:
            (better, phrase), (better_full, phrase_full) = (None, "—"), (None, "—")
        else:
            better, phrase = ratio_of(vals["mlflow"], vals["cairn"], higher)
            better_full, phrase_full = ratio_of(vals["mlflow"], vals["cairn-full"], higher)
        rows.append({"id": mid, "scenario": sc, "what": label, "unit": unit,
                     "better": None if higher is None else ("higher" if higher else "lower"),
                     "mlflow": vals["mlflow"], "cairn": vals["cairn"], "cairn_full": vals["cairn-full"],
                     "noop": vals["noop"], "noop_swift": vals["noop-swift"],
                     "cairn_better_factor": round(better, 4) if better is not None else None,
                     "cairn_full_better_factor": round(better_full, 4) if better_full is not None else None,
                     "verdict": phrase, "verdict_full": phrase_full})

    errors = {s: sum(e.get("count", 0) for e in (docs[s] or {}).get("errors", [])) for s in present}
    load_errors = {s: sum(r.get("failed", 0) for r in (srvs[s].get("load") or {}).get("scenarios", [])) for s in present}
    load_timed_out = {s: [f"{r['scenario']} {r['name']}" for r in (srvs[s].get("load") or {}).get("scenarios", [])
                          if r.get("timed_out")] for s in present}
    disturbed = {}
    for s in present:
        for rec in docs[s].get("scenarios", []):
            o = rec.get("other_host_cpu_cores")
            if isinstance(o, (int, float)) and o > 0.15:
                disturbed.setdefault(s, {})[rec["scenario"]] = o
    aborted = {s: [r["scenario"] for r in docs[s].get("scenarios", []) if "aborted" in r] for s in present}

    commit = git(args.repo, "rev-parse", "HEAD")
    dirty = bool(git(args.repo, "status", "--porcelain", "--untracked-files=no"))
    first = docs[present[0]]["meta"]
    result = {
        "date_utc": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "scale": args.scale, "trackbench_scale": first.get("scale"),
        "trackbench_scale_params": first.get("scale_params"), "scenarios": first.get("scenarios"),
        "cairn_build": args.build, "git_commit": commit, "git_dirty": dirty,
        "machine": machine(args.repo),
        "servers": {s: {"version": (args.mlflow_version if s == "mlflow" else srvs[s].get("version")),
                        "server": srvs[s], "errors": errors.get(s), "cairn_load_failed": load_errors.get(s),
                        "aborted_scenarios": aborted.get(s),
                        "settle_wait_s": (docs[s] or {}).get("meta", {}).get("settle_wait_s"),
                        "idle_cpu_pct": (docs[s] or {}).get("meta", {}).get("server_idle_cpu_pct")}
                    for s in present},
        "other_host_load": disturbed,
        "rows": rows,
    }
    with open(os.path.join(args.out, "results.json"), "w") as f:
        json.dump(result, f, indent=2)

    m = result["machine"]
    mem = f"{m['memory_bytes'] / 2**30:.1f} GiB" if "memory_bytes" in m else "?"
    cver = (srvs["cairn"].get("version") or srvs["cairn-full"].get("version") or "?").removeprefix("cairn ")
    with_mlflow = docs["mlflow"] is not None
    with_full = docs["cairn-full"] is not None
    with_noop = docs["noop"] is not None
    with_noop_swift = docs["noop-swift"] is not None
    ratio_header, ratio_rule = (" | ratio", "|---") if with_mlflow else ("", "")
    lines = [
        f"# Cairn vs MLflow {args.mlflow_version}" if with_mlflow else "# Cairn",
        "",
        f"{result['date_utc']} · scale **{args.scale}** · Cairn {cver} ({args.build} build) · "
        f"commit {(commit or '?')[:10]}{' (dirty)' if dirty else ''} · "
        f"{m.get('cpu_model', '?')}, {m.get('cores')} cores, {mem} RAM · loopback, "
        + ("a new PostgreSQL database and S3 prefix each" if first.get("backend") == "postgres" else "fresh SQLite store each"),
        "",
        "| scenario" + (f" | MLflow {args.mlflow_version}" if with_mlflow else "")
        + (" | Cairn (durability normal)" + ratio_header if docs["cairn"] is not None else "")
        + (" | Cairn (durability full)" + ratio_header if with_full else "")
        + (" | ceiling: no-op server (Python)" if with_noop else "")
        + (" | ceiling: no-op server (compiled)" if with_noop_swift else "") + " |",
        "|---" + ("|---:" if with_mlflow else "") + ("|---:" + ratio_rule if docs["cairn"] is not None else "")
        + ("|---:" + ratio_rule if with_full else "") + ("|---:" if with_noop else "")
        + ("|---:" if with_noop_swift else "") + "|",
    ]
    for r in rows:
        notes = [x for x in (r["unit"], r["better"] and f"{r['better']} is better") if x]
        what = f"{r['scenario']}: {r['what']}" + (f" ({', '.join(notes)})" if notes else "")
        line = f"| {what}"
        if with_mlflow:
            line += f" | {fmt(r['mlflow'], r['unit'])}"
        for key, verdict, shown in (("cairn", "verdict", docs["cairn"] is not None), ("cairn_full", "verdict_full", with_full)):
            if shown:
                line += f" | {fmt(r[key], r['unit'])}" + (f" | {r[verdict]}" if with_mlflow else "")
        ceiling_row = r["id"].removeprefix("load_")[:2] in ("s1", "s2", "s3")
        if with_noop:
            line += f" | {fmt(r['noop'], r['unit']) if ceiling_row else ''}"
        if with_noop_swift:
            line += f" | {fmt(r['noop_swift'], r['unit']) if ceiling_row else ''}"
        lines.append(line + " |")
    lines.append("")
    for s in present:
        name = {"mlflow": "MLflow", "cairn": "Cairn (durability normal)", "cairn-full": "Cairn (durability full)",
                "noop": "The Python no-op server", "noop-swift": "The compiled no-op server"}[s]
        notes = [f"trackbench: {errors[s]} rejected/failed request(s)" if errors[s] else "trackbench: no failed requests"]
        if srvs[s].get("load"):
            notes.append(f"cairn-load: {load_errors[s]} rejected/failed request(s)" if load_errors[s]
                         else "cairn-load: no failed requests")
        if load_timed_out[s]:
            notes.append("cairn-load hit its time bound in " + ", ".join(load_timed_out[s]))
        for scenario, why in ((srvs[s].get("load") or {}).get("aborted") or {}).items():
            notes.append(f"cairn-load {scenario} aborted ({why})")
        if aborted[s]:
            notes.append(f"aborted: {', '.join(aborted[s])}")
        if s in disturbed:
            notes.append("other load on the host during " +
                         ", ".join(f"{k} ({v} cores)" for k, v in disturbed[s].items()))
        lines.append(f"- {name}: " + "; ".join(notes) + ".")
    if args.build != "release":
        lines.append(f"- Cairn was a **{args.build}** build: these figures say nothing about its speed.")
    if args.scale == "tiny":
        lines.append("- Scale tiny is a smoke run: too little load for the figures to mean anything.")
    if with_noop or with_noop_swift:
        lines.append("- The ceilings: both tools against a server that answers at once and stores nothing "
                     "(bench/noop_server.py in Python, `cairn-load noop-server` compiled; s1-s3 only). No server can be "
                     "measured faster by that tool on this machine; cairn-load's rate over trackbench's is how much "
                     "further the compiled generator sees.")
    if any(srvs[s].get("load") for s in present):
        lines.append("- cairn-load rows: the compiled load generator (Sources/CairnLoad), fixed request counts over "
                     "keep-alive connections; its writers scenario opens --writers connections (1,000 at scales "
                     "small and full) that each create a run and then log at once. Raw data: <server>.load.json.")
    lines.append("- \"s4 raw HTTP\" re-reads the s4 series with bench/rawhttp.py: the time until every byte of the "
                 "answer arrived, without Python's JSON parsing (which trackbench's s4 figures include).")
    lines.append("- Measurements on one machine, not pass/fail thresholds. Raw data: <server>.json, "
                 "<server>.rawhttp.json.")
    with open(os.path.join(args.out, "results.md"), "w") as f:
        f.write("\n".join(lines) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
