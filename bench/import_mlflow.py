#!/usr/bin/env python3
"""How fast `cairn import mlflow` moves a large MLflow installation (issue 16): a real `mlflow server` (SQLite store,
proxied artifacts) holding RUNS runs × METRICS metrics × POINTS points plus ARTIFACT_BYTES of artifact files is
imported into a fresh Cairn data folder, through the server's REST API (`--from`) and through its files
(`--from-store sqlite:///… --artifacts …`). Reports wall time, points/s, artifact MiB/s, Cairn's CPU time and peak
memory, and the MLflow server's CPU time during the REST import (whose share shows who limits the speed).

The source is filled quickly, not through MLflow's API: the runs are created with the mlflow client, then their
metric points are written straight into MLflow's own tables (`metrics`, `latest_metrics`, as MLflow writes them)
and the artifact files into the server's --artifacts-destination folder, where its proxy serves them.

usage: bench/import_mlflow.py [--binary .build/release/cairn] [--scale small|full] [--runs N --metrics M --points P
       --artifact-mib A] [--workers W] [--keep]
  --scale full is the issue's load: 1,000 runs × 10 metrics × 10,000 points (100 M points) + 1 GiB of artifacts.
  --scale small (default): 100 runs × 10 metrics × 1,000 points (1 M points) + 100 MiB.
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

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SCALES = {"small": (100, 10, 1000, 100), "full": (1000, 10, 10000, 1024)}


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
    run_ids = []
    for i in range(runs):
        run = client.create_run(experiment, run_name=f"run-{i}")
        client.log_param(run.info.run_id, "seed", str(i))
        client.set_terminated(run.info.run_id)
        run_ids.append(run.info.run_id)
    db = sqlite3.connect(os.path.join(tmp, "mlflow.db"))
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
    before_children = resource.getrusage(resource.RUSAGE_CHILDREN)
    server_before = tree_cpu_seconds(mlflow_pid) if mlflow_pid else 0.0
    started = time.monotonic()
    done = subprocess.run([binary, "import", "mlflow", *args, "--data-dir", target, "--json"], capture_output=True, text=True)
    seconds = time.monotonic() - started
    after_children = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode != 0:
        sys.exit(f"the import failed ({done.returncode}):\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}")
    report = json.loads(done.stdout)
    return {
        "seconds": round(seconds, 2),
        "points": report["written_points"],
        "files": report["written_files"],
        "bytes": report["written_bytes"],
        "verified": report["verified"],
        "cairn_cpu_seconds": round((after_children.ru_utime - before_children.ru_utime) + (after_children.ru_stime - before_children.ru_stime), 2),
        "cairn_peak_rss_mib": round(after_children.ru_maxrss / 1024, 1),
        "mlflow_cpu_seconds": round(tree_cpu_seconds(mlflow_pid) - server_before, 2) if mlflow_pid else None,
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
    args = parser.parse_args()
    runs, metrics, points, mib = SCALES[args.scale]
    runs, metrics, points, mib = args.runs or runs, args.metrics or metrics, args.points or points, args.artifact_mib or mib
    tmp = tempfile.mkdtemp(prefix="cairn-import-bench-")
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
        rate = r["points"] / r["seconds"] if r["seconds"] else 0
        print(f"{name:28} {r['seconds']:8.1f} s  {rate:10.0f} points/s  {r['bytes'] / (1 << 20) / max(r['seconds'], 1e-9):7.1f} MiB/s  "
              f"cairn CPU {r['cairn_cpu_seconds']} s, peak {r['cairn_peak_rss_mib']} MiB"
              + (f"; mlflow server CPU {r['mlflow_cpu_seconds']} s" if r["mlflow_cpu_seconds"] is not None else "")
              + ("" if r["verified"] else "  NOT VERIFIED"))


if __name__ == "__main__":
    main()
