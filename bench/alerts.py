#!/usr/bin/env python3
"""What metric alerts cost on the log path: sequential single-point log-metric calls on one
keep-alive connection against a `cairn server` started here, with the experiment's alert rules
(`cairn.alert`) absent, or naming the logged key with a threshold that is never crossed (every
point is checked against the rule), or naming only another key. Reports the server's CPU time
per request (utime + stime from /proc) and the client-side median latency.

usage: bench/alerts.py [--binary .build/release/cairn] [--calls 3000] [--rule none|logged|other]
Standard library only; Linux (/proc)."""
from __future__ import annotations

import argparse
import http.client
import json
import os
import socket
import statistics
import subprocess
import tempfile
import time

API = "/api/2.0/mlflow"
RULES = {"none": None, "logged": "metric=val_loss>1e300", "other": "metric=accuracy<0"}


def cpu_seconds(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--binary", default=".build/release/cairn")
    parser.add_argument("--calls", type=int, default=3000)
    parser.add_argument("--rule", choices=sorted(RULES), default="logged")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as data:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        proc = subprocess.Popen([args.binary, "server", "--host", "127.0.0.1", "--port", str(port), "--data-dir", data, "--log-level", "warning"],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            for _ in range(600):
                try:
                    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
                    conn.request("GET", "/health")
                    conn.getresponse().read()
                    break
                except OSError:
                    time.sleep(0.1)

            def call(path, body):
                conn.request("POST", API + path, body=json.dumps(body), headers={"Content-Type": "application/json"})
                resp = conn.getresponse()
                payload = resp.read()
                if resp.status != 200:
                    raise SystemExit(f"{path}: {resp.status} {payload[:200]!r}")
                return json.loads(payload)

            tags = [{"key": "cairn.alert", "value": RULES[args.rule]}] if RULES[args.rule] else []
            exp = call("/experiments/create", {"name": "alerts-bench", "tags": tags})["experiment_id"]
            run = call("/runs/create", {"experiment_id": exp})["run"]["info"]["run_id"]
            for i in range(300):  # warm-up
                call("/runs/log-metric", {"run_id": run, "key": "val_loss", "value": 1.0, "timestamp": 1, "step": i})
            before = cpu_seconds(proc.pid)
            latencies = []
            for i in range(args.calls):
                t = time.monotonic()
                call("/runs/log-metric", {"run_id": run, "key": "val_loss", "value": 1.0 / (i + 1), "timestamp": 2, "step": 300 + i})
                latencies.append((time.monotonic() - t) * 1000)
            cpu = cpu_seconds(proc.pid) - before
            print(f"rule {args.rule}: {cpu / args.calls * 1000:.3f} ms CPU per log-metric, median latency {statistics.median(latencies):.2f} ms over {args.calls} calls")
        finally:
            proc.terminate()
            proc.wait(timeout=60)


if __name__ == "__main__":
    main()
