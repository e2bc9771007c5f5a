#!/usr/bin/env python3
"""How fast `cairn import mlflow` moves a large MLflow installation (issue 16): a real `mlflow server` (SQLite store,
proxied artifacts) holding RUNS runs × METRICS metrics × POINTS points plus ARTIFACT_BYTES of artifact files is
imported into a fresh Cairn data folder, through the server's REST API (`--from`) and through its files
(`--from-store sqlite:///… --artifacts …`). Reports wall time, points/s, artifact MiB/s, Cairn's CPU time and peak
memory, and the MLflow server's CPU time during the REST import (whose share shows who limits the speed).

The source is filled quickly, not through MLflow's API: the experiment and the first run are created with the mlflow
client (so MLflow makes its schema and its own rows), the other runs are copies of that run's rows (`runs`, `tags`,
`params`) with their own ids, the metric points are written straight into MLflow's own tables (`metrics`,
`latest_metrics`, as MLflow writes them), and the artifact files into the server's --artifacts-destination folder,
where its proxy serves them.

usage: bench/import_mlflow.py [--binary .build/release/cairn] [--scale small|tenth|full] [--runs N --metrics M --points P
       --artifact-mib A] [--workers W] [--keep]
  --scale full is the issue's load: 1,000 runs × 10 metrics × 10,000 points (100 M points) + 1 GiB of artifacts.
  --scale tenth: the same runs, metrics and artifacts with 1,000 points per metric (10 M points).
  --scale small (default): 100 runs × 10 metrics × 1,000 points (1 M points) + 100 MiB.
Each import's figures: wall time; entities (experiments, runs, logged and registered models), points and artifact bytes
per second; the CPU seconds of Cairn (the import process) and of the MLflow server (its process tree, from /proc) and
how many cores each kept busy on average (CPU seconds / wall): the one near its ceiling (a single-worker MLflow server
is one Python process, at most about one core) is the limit. The load average before and after is printed too.
Needs the test venv (.venv-test: mlflow 3.17.2). Linux (/proc)."""
from __future__ import annotations

import argparse
import json
import math
import os
import resource
import shutil
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
import uuid

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# runs, metrics per run, points per metric, MiB of artifacts
SCALES = {"small": (100, 10, 1000, 100), "tenth": (1000, 10, 1000, 1024), "full": (1000, 10, 10000, 1024)}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def tree_cpu_seconds(pid: int) -> float:
    """utime + stime of `pid` and its descendants (uvicorn workers), from /proc."""
    total, stack = 0.0, [pid]
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as f:
                    fields = f.read().rsplit(")", 1)[1].split()
                children.setdefault(int(fields[1]), []).append(int(entry))
            except OSError:
                pass
    while stack:
        p = stack.pop()
        try:
            with open(f"/proc/{p}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
        except OSError:
            pass
        stack += children.get(p, [])
    return total


def start_mlflow(tmp: str, workers: int):
    import requests

    port = free_port()
    mlflow_bin = os.path.join(os.path.dirname(sys.executable), "mlflow")
    log = open(os.path.join(tmp, "mlflow.log"), "w")
    proc = subprocess.Popen([mlflow_bin, "server", "--backend-store-uri", f"sqlite:///{tmp}/mlflow.db", "--artifacts-destination",
                             f"{tmp}/mlartifacts", "--host", "127.0.0.1", "--port", str(port), "--workers", str(workers)],
                            stdout=log, stderr=subprocess.STDOUT, env=dict(os.environ, MLFLOW_DISABLE_TELEMETRY="true"),
                            start_new_session=True)
    uri = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        try:
            if requests.get(uri + "/health", timeout=5).status_code == 200:
                return proc, uri
        except requests.RequestException:
            pass
        if proc.poll() is not None:
            sys.exit("mlflow server exited at start; see " + os.path.join(tmp, "mlflow.log"))
        time.sleep(0.3)
    sys.exit("mlflow server did not answer /health")


def populate(uri: str, tmp: str, runs: int, metrics: int, points: int, artifact_bytes: int) -> None:
    from mlflow.tracking import MlflowClient

    client = MlflowClient(uri)
    experiment = client.create_experiment("import-bench")
    # The first run through the client; the others are copies of its rows (MLflow's own values for every column),
    # each with its own id, name, seed and times: creating 1,000 runs through the REST API takes a quarter of an
    # hour on a loaded 2-core machine.
    first = client.create_run(experiment, run_name="run-0")
    client.log_param(first.info.run_id, "seed", "0")
    client.set_terminated(first.info.run_id)
    run_ids = [first.info.run_id]
    db = sqlite3.connect(os.path.join(tmp, "mlflow.db"))
    # This connection only: a large page cache and no fsync per commit, else MLflow's metrics index makes the
    # inserts disk-bound (about 5,000 rows/s on this machine).
    db.execute("PRAGMA cache_size = -2000000")
    db.execute("PRAGMA synchronous = OFF")
    db.row_factory = sqlite3.Row
    template = dict(db.execute("SELECT * FROM runs WHERE run_uuid = ?", (first.info.run_id,)).fetchone())
    tags = [dict(row) for row in db.execute("SELECT * FROM tags WHERE run_uuid = ?", (first.info.run_id,))]
    for i in range(1, runs):
        run_id = uuid.uuid4().hex
        row = dict(template, run_uuid=run_id, name=f"run-{i}", start_time=template["start_time"] + i,
                   end_time=(template["end_time"] or template["start_time"]) + i,
                   artifact_uri=template["artifact_uri"].replace(first.info.run_id, run_id))
        db.execute(f"INSERT INTO runs ({', '.join(row)}) VALUES ({', '.join('?' * len(row))})", list(row.values()))
        for tag in tags:
            tag = dict(tag, run_uuid=run_id, value=f"run-{i}" if tag["key"] == "mlflow.runName" else tag["value"])
            db.execute(f"INSERT INTO tags ({', '.join(tag)}) VALUES ({', '.join('?' * len(tag))})", list(tag.values()))
        db.execute("INSERT INTO params (key, value, run_uuid) VALUES ('seed', ?, ?)", (str(i), run_id))
        run_ids.append(run_id)
    db.commit()
    start = int(time.time() * 1000)
    for n, run_id in enumerate(run_ids):
        rows = []
        for m in range(metrics):
            key = f"metric_{m}"
            rows += [(key, math.sin(s * 0.001 + m + n), start + s, run_id, s, 0) for s in range(points)]
            db.execute("INSERT INTO latest_metrics (key, value, timestamp, step, is_nan, run_uuid) VALUES (?, ?, ?, ?, 0, ?)",
                       (key, rows[-1][1], rows[-1][2], points - 1, run_id))
        db.executemany("INSERT INTO metrics (key, value, timestamp, run_uuid, step, is_nan) VALUES (?, ?, ?, ?, ?, ?)", rows)
        db.commit()
        if (n + 1) % 100 == 0:
            print(f"  metric points of {n + 1} runs written", flush=True)
    db.close()
    per_run = artifact_bytes // max(1, runs)
    block = os.urandom(1 << 20)
    for run_id in run_ids:
        folder = os.path.join(tmp, "mlartifacts", experiment, run_id, "artifacts")
        os.makedirs(folder, exist_ok=True)
        with open(os.path.join(folder, "model.bin"), "wb") as f:
            left = per_run
            while left > 0:
                f.write(block[:min(left, len(block))])
                left -= min(left, len(block))
        with open(os.path.join(folder, "notes.txt"), "w") as f:
            f.write(f"run {run_id}\n")


def timed_import(binary: str, target: str, args: list[str], mlflow_pid: int | None) -> dict:
    load_before = os.getloadavg()[0]
    before_children = resource.getrusage(resource.RUSAGE_CHILDREN)
    server_before = tree_cpu_seconds(mlflow_pid) if mlflow_pid else 0.0
    started = time.monotonic()
    done = subprocess.run([binary, "import", "mlflow", *args, "--data-dir", target, "--json"], capture_output=True, text=True)
    seconds = time.monotonic() - started
    after_children = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode != 0:
        sys.exit(f"the import failed ({done.returncode}):\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}")
    report = json.loads(done.stdout)
    cairn_cpu = (after_children.ru_utime - before_children.ru_utime) + (after_children.ru_stime - before_children.ru_stime)
    mlflow_cpu = tree_cpu_seconds(mlflow_pid) - server_before if mlflow_pid else None
    return {
        "seconds": round(seconds, 2),
        "entities": sum(report["created"].values()) + sum(report["unchanged"].values()) + sum(report["merged"].values()),
        "load_before_after": [load_before, os.getloadavg()[0]],
        "cairn_cores": round(cairn_cpu / seconds, 2),
        "mlflow_cores": round(mlflow_cpu / seconds, 2) if mlflow_cpu is not None else None,
        "points": report["written_points"],
        "files": report["written_files"],
        "bytes": report["written_bytes"],
        "verified": report["verified"],
        "cairn_cpu_seconds": round(cairn_cpu, 2),
        "cairn_peak_rss_mib": round(after_children.ru_maxrss / 1024, 1),
        "mlflow_cpu_seconds": round(mlflow_cpu, 2) if mlflow_cpu is not None else None,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--binary", default=os.path.join(ROOT, ".build", "release", "cairn"))
    parser.add_argument("--scale", choices=sorted(SCALES), default="small")
    parser.add_argument("--runs", type=int)
    parser.add_argument("--metrics", type=int)
    parser.add_argument("--points", type=int)
    parser.add_argument("--artifact-mib", type=int)
    parser.add_argument("--workers", type=int, default=1, help="uvicorn workers of the MLflow server (default 1)")
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder")
    parser.add_argument("--tmp", help="where to make the temporary folder (default: the system's)")
    args = parser.parse_args()
    runs, metrics, points, mib = SCALES[args.scale]
    runs, metrics, points, mib = args.runs or runs, args.metrics or metrics, args.points or points, args.artifact_mib or mib
    tmp = tempfile.mkdtemp(prefix="cairn-import-bench-", dir=args.tmp)
    print(f"{tmp}: {shutil.disk_usage(tmp).free / 2**30:.1f} GiB free; load average {os.getloadavg()}", flush=True)
    proc, uri = start_mlflow(tmp, args.workers)
    try:
        t = time.monotonic()
        populate(uri, tmp, runs, metrics, points, mib << 20)
        print(f"source: {runs} runs × {metrics} metrics × {points} points + {mib} MiB, filled in {time.monotonic() - t:.0f} s", flush=True)
        rest = timed_import(args.binary, os.path.join(tmp, "via-api"), ["--from", uri], proc.pid)
        direct = timed_import(args.binary, os.path.join(tmp, "via-store"),
                              ["--from-store", f"sqlite:///{tmp}/mlflow.db", "--artifacts", f"{tmp}/mlartifacts"], None)
        again = timed_import(args.binary, os.path.join(tmp, "via-api"), ["--from", uri], proc.pid)
    finally:
        os.killpg(proc.pid, 15)
        proc.wait(timeout=60)
        if not args.keep:
            shutil.rmtree(tmp, ignore_errors=True)
    result = {"runs": runs, "metrics": metrics, "points_per_metric": points, "artifact_mib": mib, "mlflow_workers": args.workers,
              "binary": args.binary, "rest": rest, "from_store": direct, "rest_again": again}
    print(json.dumps(result, indent=2))
    for name, r in (("--from (REST)", rest), ("--from-store sqlite", direct), ("--from again (nothing new)", again)):
        wall = max(r["seconds"], 1e-9)
        print(f"{name:28} {r['seconds']:8.1f} s  {r['entities'] / wall:7.1f} entities/s  {r['points'] / wall:10.0f} points/s  "
              f"{r['bytes'] / (1 << 20) / wall:7.1f} MiB/s  cairn CPU {r['cairn_cpu_seconds']} s ({r['cairn_cores']} cores), "
              f"peak {r['cairn_peak_rss_mib']} MiB"
              + (f"; mlflow server CPU {r['mlflow_cpu_seconds']} s ({r['mlflow_cores']} cores)" if r["mlflow_cpu_seconds"] is not None else "")
              + f"; load {r['load_before_after'][0]:.1f} -> {r['load_before_after'][1]:.1f}"
              + ("" if r["verified"] else "  NOT VERIFIED"))


if __name__ == "__main__":
    main()
