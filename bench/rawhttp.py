#!/usr/bin/env python3
"""Times the history reads of trackbench's s4 series over raw HTTP, after trackbench ran.

trackbench times a full get-history including Python's json.loads of every page, which for a
100k-point series costs more than either server spends answering. This measures what the
server does: request sent, every byte of the answer received, nothing parsed (the series and
its next_page_token are found with a byte search). Same code, same connection reuse, for both
servers. Standard library only.

usage: rawhttp.py URL OUT.json [CALLS]
"""
from __future__ import annotations

import http.client
import json
import statistics
import sys
import time
import urllib.parse

API = "/api/2.0/mlflow"


def main() -> int:
    url, out = sys.argv[1], sys.argv[2]
    calls = int(sys.argv[3]) if len(sys.argv) > 3 else 5
    parts = urllib.parse.urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=600)

    def call(method: str, path: str, body: dict | None = None) -> bytes:
        data = None if body is None else json.dumps(body).encode()
        conn.request(method, path, body=data, headers={"Content-Type": "application/json"})
        reply = conn.getresponse()
        payload = reply.read()
        if reply.status != 200:
            raise SystemExit(f"rawhttp.py: {method} {path} -> {reply.status}: {payload[:200]!r}")
        return payload

    found = json.loads(call("POST", API + "/experiments/search",
                            {"filter": "name LIKE 'trackbench-s4-%'", "max_results": 10}))
    experiments = found.get("experiments", [])
    if not experiments:
        json.dump({"skipped": "no trackbench s4 experiment on the server"}, open(out, "w"))
        return 0
    runs = json.loads(call("POST", API + "/runs/search",
                           {"experiment_ids": [experiments[0]["experiment_id"]], "max_results": 1}))
    run_id = runs["runs"][0]["info"]["run_id"]

    def timed(path_of_page) -> dict:
        times, size = [], 0
        for _ in range(calls):
            token, size = None, 0
            start = time.perf_counter()
            while True:
                payload = call("GET", path_of_page(token))
                size += len(payload)
                marker = payload.rfind(b'"next_page_token"')
                if marker < 0:
                    break
                rest = payload[marker:].split(b'"')
                token = rest[3].decode() if len(rest) > 3 and rest[3] else None
                if not token:
                    break
            times.append(time.perf_counter() - start)
        return {"p50_ms": round(statistics.median(times) * 1000, 2),
                "min_ms": round(min(times) * 1000, 2), "bytes": size, "calls": calls}

    def history(token: str | None) -> str:
        query = {"run_id": run_id, "metric_key": "loss"}
        if token:
            query["page_token"] = token
        return API + "/metrics/get-history?" + urllib.parse.urlencode(query)

    def bulk(points: int):
        return lambda _token: ("/ajax-api/2.0/mlflow/metrics/get-history-bulk-interval?"
                               + urllib.parse.urlencode({"run_ids": run_id, "metric_key": "loss",
                                                         "max_results": points}))

    result = {"run_id": run_id, "get_history": timed(history),
              "bulk_320": timed(bulk(320)), "bulk_2500": timed(bulk(2500))}
    with open(out, "w") as f:
        json.dump(result, f, indent=2)
    print(f"[raw http] get-history p50 {result['get_history']['p50_ms']} ms "
          f"({result['get_history']['bytes'] / 1e6:.1f} MB); bulk-interval 320 p50 "
          f"{result['bulk_320']['p50_ms']} ms, 2500 p50 {result['bulk_2500']['p50_ms']} ms")
    return 0


if __name__ == "__main__":
    sys.exit(main())
