#!/usr/bin/env python3
"""What accounts cost per request: the same single-point log-metric calls against three `cairn
server`s of one binary, started here: without accounts, with --auth and HTTP Basic credentials
(what the mlflow client sends with MLFLOW_TRACKING_USERNAME/PASSWORD) of an administrator, with a
Bearer token, and with Basic credentials of a user who holds an EDIT grant on the experiment (the
permission is then checked on every call). Reports the server's CPU time per request (utime + stime of its process, from
/proc) and the client-side latency percentiles. One keep-alive connection, sequential calls, so
the figures are the server's own cost, not concurrency. The first call with new credentials pays
bcrypt once (a quarter of a second by design); the warm-up calls absorb it.

usage: bench/auth.py [--binary .build/release/cairn] [--calls 3000]
Standard library only; Linux (/proc)."""
from __future__ import annotations

import argparse
import base64
import http.client
import json
import os
import socket
import statistics
import subprocess
import tempfile
import time

API = "/api/2.0/mlflow"
ADMIN, PASSWORD = "bench", "bench-password-1"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def cpu_seconds(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def start(binary: str, data: str, auth: bool) -> tuple[subprocess.Popen, int]:
    port = free_port()
    args = [binary, "server", "--host", "127.0.0.1", "--port", str(port), "--data-dir", data, "--log-level", "warning"]
    env = dict(os.environ)
    if auth:
        args.append("--auth")
        env.update(CAIRN_ADMIN_USER=ADMIN, CAIRN_ADMIN_PASSWORD=PASSWORD)
    proc = subprocess.Popen(args, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    for _ in range(600):
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
            conn.request("GET", "/health")
            if conn.getresponse().status == 200:
                return proc, port
        except OSError:
            time.sleep(0.1)
    raise SystemExit("the server did not start")


def measure(port: int, pid: int, headers: dict, calls: int) -> dict:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)

    def call(path: str, body: dict) -> dict:
        conn.request("POST", API + path, body=json.dumps(body), headers={"Content-Type": "application/json", **headers})
        reply = conn.getresponse()
        payload = reply.read()
        if reply.status != 200:
            raise SystemExit(f"{path} -> {reply.status}: {payload[:200]!r}")
        return json.loads(payload)

    run = call("/runs/create", {"experiment_id": "0"})["run"]["info"]["run_id"]
    for step in range(200):  # warm-up: bcrypt once, statement caches, connection
        call("/runs/log-metric", {"run_id": run, "key": "warm", "value": 1.0, "timestamp": 1, "step": step})
    latencies = []
    before = cpu_seconds(pid)
    for step in range(calls):
        t = time.perf_counter()
        call("/runs/log-metric", {"run_id": run, "key": "loss", "value": 0.5, "timestamp": 1, "step": step})
        latencies.append(time.perf_counter() - t)
    cpu = cpu_seconds(pid) - before
    latencies.sort()
    return {"cpu_ms_per_request": 1000 * cpu / calls, "p50_ms": 1000 * statistics.median(latencies),
            "p99_ms": 1000 * latencies[int(0.99 * len(latencies)) - 1]}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--binary", default=".build/release/cairn")
    ap.add_argument("--calls", type=int, default=3000)
    args = ap.parse_args()
    results = {}
    with tempfile.TemporaryDirectory() as folder:
        proc, port = start(args.binary, os.path.join(folder, "plain"), auth=False)
        try:
            results["no accounts"] = measure(port, proc.pid, {}, args.calls)
        finally:
            proc.terminate(); proc.wait()
        proc, port = start(args.binary, os.path.join(folder, "auth"), auth=True)
        try:
            basic = {"Authorization": "Basic " + base64.b64encode(f"{ADMIN}:{PASSWORD}".encode()).decode()}
            results["--auth, Basic"] = measure(port, proc.pid, basic, args.calls)
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
            conn.request("POST", "/api/cairn/v1/tokens", body=json.dumps({"name": "bench"}),
                         headers={"Content-Type": "application/json", **basic})
            secret = json.loads(conn.getresponse().read())["secret"]
            results["--auth, Bearer token"] = measure(port, proc.pid, {"Authorization": "Bearer " + secret}, args.calls)
            # A user who is not an administrator: the run's experiment and the grant are checked.
            for path, body in [("/api/2.0/mlflow/users/create", {"username": "writer", "password": "writer-password"}),
                               ("/api/3.0/mlflow/users/permissions/grant", {"username": "writer", "resource_type": "experiment",
                                                                         "resource_id": "0", "permission": "EDIT"})]:
                conn.request("POST", path, body=json.dumps(body), headers={"Content-Type": "application/json", **basic})
                assert conn.getresponse().read() is not None
            writer = {"Authorization": "Basic " + base64.b64encode(b"writer:writer-password").decode()}
            results["--auth, Basic, EDIT grant"] = measure(port, proc.pid, writer, args.calls)
        finally:
            proc.terminate(); proc.wait()
    print(f"{'server':26} {'CPU/request':>12} {'p50':>9} {'p99':>9}   ({args.calls} single-point log-metric calls, one connection)")
    for name, r in results.items():
        print(f"{name:26} {r['cpu_ms_per_request']:9.3f} ms {r['p50_ms']:6.3f} ms {r['p99_ms']:6.3f} ms")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
