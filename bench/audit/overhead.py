"""Rough cost of the audit log per write: N sequential set-tag requests (one transaction each, so
one event each) against a running server, wall time per request. Run it against a server built
from before the audit log and one after, on the same database engine, and compare:

    python3 bench/audit/overhead.py http://127.0.0.1:PORT [N]
"""

import sys
import time

import requests

uri, n = sys.argv[1].rstrip("/"), int(sys.argv[2]) if len(sys.argv) > 2 else 2000
s = requests.Session()
api = uri + "/api/2.0/mlflow/"
exp = s.post(api + "experiments/create", json={"name": f"audit-overhead-{time.time_ns()}"}).json()["experiment_id"]
run = s.post(api + "runs/create", json={"experiment_id": exp, "start_time": int(time.time() * 1000)}).json()["run"]["info"]["run_id"]
for i in range(100):  # warm up
    s.post(api + "runs/set-tag", json={"run_id": run, "key": f"w{i}", "value": "x"})
start = time.perf_counter()
for i in range(n):
    r = s.post(api + "runs/set-tag", json={"run_id": run, "key": f"k{i}", "value": "v"})
    assert r.status_code == 200, r.text
elapsed = time.perf_counter() - start
print(f"{n} set-tag requests, one after another: {elapsed / n * 1000:.3f} ms each")
