#!/usr/bin/env python3
"""What pricing costs on a large store: seeds one `cairn server` (started here with a cost model)
with --runs runs over --experiments experiments, each with the figures `cairn run` records
(metrics cairn.wall_time_s and cairn.cpu_time_s, tag cairn.host.gpus) and a few other metrics,
params and tags, then times GET /api/cairn/v1/cost (every experiment) and
GET /api/cairn/v1/dashboard (the overview, which prices every run as well), --repeats times
each, one keep-alive connection, and prints the median and the slowest answer.

usage: bench/cost.py [--binary .build/release/cairn] [--runs 10000] [--experiments 10] [--repeats 7]
Standard library only."""
from __future__ import annotations

import argparse
import http.client
import json
import os
import socket
import statistics
import subprocess
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor

API = "/api/2.0/mlflow"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--binary", default=".build/release/cairn")
    parser.add_argument("--runs", type=int, default=10_000)
    parser.add_argument("--experiments", type=int, default=10)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--writers", type=int, default=8, help="client threads that seed the runs")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as data:
        prices = os.path.join(data, "prices.json")
        with open(prices, "w") as f:
            json.dump({"currency": "USD", "cpu_hour": 0.04, "gpu_hour": {"A100": 2.9, "T4": 0.35, "*": 1.0}}, f)
        port = free_port()
        proc = subprocess.Popen([args.binary, "server", "--host", "127.0.0.1", "--port", str(port), "--data-dir", os.path.join(data, "d"),
                                 "--cost-model", prices, "--log-level", "warning"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            conn = None
            for _ in range(600):
                try:
                    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=600)
                    conn.request("GET", "/health")
                    if conn.getresponse().read() is not None:
                        break
                except OSError:
                    time.sleep(0.1)

            local = threading.local()

            def call(method: str, path: str, body=None):
                if threading.current_thread() is not threading.main_thread():
                    if not hasattr(local, "conn"):
                        local.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=600)
                    c = local.conn
                else:
                    c = conn
                c.request(method, path, body=json.dumps(body) if body is not None else None, headers={"Content-Type": "application/json"})
                resp = c.getresponse()
                payload = resp.read()
                if resp.status != 200:
                    raise SystemExit(f"{method} {path}: {resp.status} {payload[:200]!r}")
                return json.loads(payload) if payload else {}

            experiments = [call("POST", f"{API}/experiments/create", {"name": f"cost-bench-{i}"})["experiment_id"] for i in range(args.experiments)]
            start = time.monotonic()

            def seed(i: int) -> None:
                run = call("POST", f"{API}/runs/create", {"experiment_id": experiments[i % len(experiments)], "start_time": 1_700_000_000_000 + i})
                run_id = run["run"]["info"]["run_id"]
                call("POST", f"{API}/runs/log-batch", {"run_id": run_id, "metrics": [
                    {"key": "cairn.wall_time_s", "value": 60 + i % 600, "timestamp": 1, "step": 0},
                    {"key": "cairn.cpu_time_s", "value": 50 + i % 500, "timestamp": 1, "step": 0},
                    {"key": "loss", "value": 1 / (1 + i), "timestamp": 1, "step": 0},
                    {"key": "accuracy", "value": 0.5, "timestamp": 1, "step": 0},
                ], "params": [{"key": "lr", "value": "0.01"}, {"key": "seed", "value": str(i)}],
                    "tags": [{"key": "cairn.host.gpus", "value": ["A100", "T4", "none"][i % 3]}, {"key": "team", "value": "a"}]})
                call("POST", f"{API}/runs/update", {"run_id": run_id, "status": "FINISHED" if i % 5 else "FAILED", "end_time": 1_700_000_100_000 + i})

            with ThreadPoolExecutor(args.writers) as pool:
                list(pool.map(seed, range(args.runs)))
            seeded = time.monotonic() - start

            def timed(path: str) -> list[float]:
                call("GET", path)  # warm-up
                times = []
                for _ in range(args.repeats):
                    t = time.monotonic()
                    call("GET", path)
                    times.append((time.monotonic() - t) * 1000)
                return times

            cost = timed("/api/cairn/v1/cost")
            dashboard = timed("/api/cairn/v1/dashboard?window=week")
            total = sum(e["total"] for e in call("GET", "/api/cairn/v1/cost")["experiments"])
            print(f"{args.runs} runs in {args.experiments} experiments (seeded in {seeded:.0f} s), total cost {total:.2f} USD")
            for name, times in (("GET /api/cairn/v1/cost", cost), ("GET /api/cairn/v1/dashboard", dashboard)):
                print(f"{name}: median {statistics.median(times):.1f} ms, slowest {max(times):.1f} ms over {len(times)} calls")
        finally:
            proc.terminate()
            proc.wait(timeout=60)


if __name__ == "__main__":
    main()
