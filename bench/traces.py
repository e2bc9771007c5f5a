#!/usr/bin/env python3
"""Trace search at scale: loads N traces into a running tracking server through OTLP (`POST /v1/traces`,
protobuf, 1,000 traces of 3 spans a request, as any OpenTelemetry exporter sends them), then times
`traces/search` (the call `mlflow.search_traces` makes) for a few typical filters and prints p50/p95.

    bench/traces.py --url http://127.0.0.1:5000 --traces 1000000

Needs `opentelemetry-proto` and `requests` (both come with `mlflow`). Not a test: figures depend on
the machine; the README's come from a release build on the 2-core machine described there.
"""

import argparse
import random
import statistics
import time

import requests
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.trace.v1.trace_pb2 import Status


def attr(key, value):
    if isinstance(value, str):
        return KeyValue(key=key, value=AnyValue(string_value=value))
    return KeyValue(key=key, value=AnyValue(int_value=value))


def load(url, experiment_id, traces, batch, seed):
    rng = random.Random(seed)
    session = requests.Session()
    start_ns = 1_700_000_000_000_000_000
    sent = 0
    t0 = time.perf_counter()
    while sent < traces:
        request = ExportTraceServiceRequest()
        scope = request.resource_spans.add().scope_spans.add()
        for i in range(sent, min(traces, sent + batch)):
            trace_id = rng.getrandbits(128).to_bytes(16, "big")
            begin = start_ns + i * 1_000_000_000
            duration = rng.randint(1, 5_000) * 1_000_000
            root_id = rng.getrandbits(64).to_bytes(8, "big")
            failed = rng.random() < 0.05
            for k in range(3):
                span = scope.spans.add()
                span.trace_id = trace_id
                span.span_id = root_id if k == 0 else rng.getrandbits(64).to_bytes(8, "big")
                if k:
                    span.parent_span_id = root_id
                span.name = ["chain", "retrieve", "llm"][k]
                span.start_time_unix_nano = begin + k * 1000
                span.end_time_unix_nano = begin + (duration if k == 0 else duration // 2)
                span.attributes.extend([attr("mlflow.spanType", ["CHAIN", "RETRIEVER", "LLM"][k]),
                                        attr("mlflow.spanInputs", f'{{"q": "question {i}"}}'), attr("user", f"u{i % 100}")])
                if k == 2:
                    # The model call: model, token usage and cost as the mlflow client writes them (JSON text).
                    tokens = rng.randint(10, 2_000)
                    span.attributes.extend([
                        attr("mlflow.llm.model", f'"model-{i % 3}"'),
                        attr("mlflow.chat.tokenUsage", f'{{"input_tokens": {tokens}, "output_tokens": 50, "total_tokens": {tokens + 50}}}'),
                        attr("mlflow.llm.cost", f'{{"input_cost": {tokens / 1e6}, "output_cost": 0.0001, "total_cost": {tokens / 1e6 + 0.0001}}}')])
                span.status.code = Status.STATUS_CODE_ERROR if failed and k == 0 else Status.STATUS_CODE_OK
        body = request.SerializeToString()
        r = session.post(url + "/v1/traces", data=body, headers={"Content-Type": "application/x-protobuf",
                                                                   "x-mlflow-experiment-id": experiment_id}, timeout=600)
        r.raise_for_status()
        sent = min(traces, sent + batch)
        if sent % (batch * 100) == 0 or sent == traces:
            rate = sent / (time.perf_counter() - t0)
            print(f"  loaded {sent:,} traces ({rate:,.0f} traces/s)", flush=True)
    return start_ns // 1_000_000


def time_search(url, experiment_id, body, repeat):
    session = requests.Session()
    body = {"locations": [{"type": "MLFLOW_EXPERIMENT", "mlflow_experiment": {"experiment_id": experiment_id}}], **body}
    times = []
    found = 0
    for _ in range(repeat):
        t = time.perf_counter()
        r = session.post(url + "/api/3.0/mlflow/traces/search", json=body, timeout=600)
        times.append((time.perf_counter() - t) * 1000)
        r.raise_for_status()
        found = len(r.json().get("traces", []))
    times.sort()
    return statistics.median(times), times[int(len(times) * 0.95) - 1], found


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--url", required=True)
    p.add_argument("--traces", type=int, default=100_000)
    p.add_argument("--batch", type=int, default=1000)
    p.add_argument("--repeat", type=int, default=30)
    p.add_argument("--seed", type=int, default=7)
    p.add_argument("--experiment-id", help="measure an experiment loaded before (with the same --traces) instead of loading a new one")
    args = p.parse_args()
    url = args.url.rstrip("/")
    if args.experiment_id:
        experiment_id = args.experiment_id
        first_ms = 1_700_000_000_000
    else:
        name = f"bench-traces-{int(time.time())}"
        r = requests.post(url + "/api/2.0/mlflow/experiments/create", json={"name": name}, timeout=60)
        r.raise_for_status()
        experiment_id = r.json()["experiment_id"]
        print(f"experiment {experiment_id}: loading {args.traces:,} traces of 3 spans")
        t0 = time.perf_counter()
        first_ms = load(url, experiment_id, args.traces, args.batch, args.seed)
        print(f"load: {time.perf_counter() - t0:.1f} s")
    middle = first_ms + (args.traces // 2) * 1000
    cases = [
        ("newest 100 (no filter)", {"max_results": 100}),
        ("status = 'ERROR', newest 100", {"filter": "status = 'ERROR'", "max_results": 100}),
        ("a 1,000-trace time window", {"filter": f"timestamp_ms >= {middle} AND timestamp_ms < {middle + 1_000_000}", "max_results": 100}),
        ("execution_time_ms > 4900, newest 100", {"filter": "execution_time_ms > 4900", "max_results": 100}),
        ("oldest 100 (order_by timestamp_ms ASC)", {"max_results": 100, "order_by": ["timestamp_ms ASC"]}),
        ("tags.`mlflow.trace.spansLocation` = 'TRACKING_STORE', newest 100",
         {"filter": "tags.`mlflow.trace.spansLocation` = 'TRACKING_STORE'", "max_results": 100}),
        ("span.type = 'LLM', newest 100", {"filter": "span.type = 'LLM'", "max_results": 100}),
        ("span.name = 'chain' AND span.status = 'ERROR', newest 100",
         {"filter": "span.name = 'chain' AND span.status = 'ERROR'", "max_results": 100}),
    ]
    print(f"| search ({args.traces:,} traces) | p50 ms | p95 ms | traces answered |")
    print("|---|---|---|---|")
    for label, body in cases:
        p50, p95, found = time_search(url, experiment_id, body, args.repeat)
        print(f"| {label} | {p50:.1f} | {p95:.1f} | {found} |", flush=True)
    # `traces/metrics` (MLflow's web app charts) over every trace of the experiment.
    last_ms = first_ms + args.traces * 1000
    count = {"aggregations": [{"aggregation_type": "COUNT"}]}
    metrics = [
        ("trace_count", {"view_type": "TRACES", "metric_name": "trace_count", **count}),
        ("trace_count by trace_status, daily", {"view_type": "TRACES", "metric_name": "trace_count", **count, "dimensions": ["trace_status"],
                                                "time_interval_seconds": 86400, "start_time_ms": first_ms, "end_time_ms": last_ms}),
        ("latency AVG and P50", {"view_type": "TRACES", "metric_name": "latency",
                                 "aggregations": [{"aggregation_type": "AVG"}, {"aggregation_type": "PERCENTILE", "percentile_value": 50}]}),
        ("total_tokens SUM (summed from the spans at ingest)", {"view_type": "TRACES", "metric_name": "total_tokens",
                                                                 "aggregations": [{"aggregation_type": "SUM"}]}),
        ("span_count by span_type", {"view_type": "SPANS", "metric_name": "span_count", **count, "dimensions": ["span_type"]}),
        ("span latency P50 by span_name", {"view_type": "SPANS", "metric_name": "latency", "dimensions": ["span_name"],
                                           "aggregations": [{"aggregation_type": "PERCENTILE", "percentile_value": 50}]}),
        ("total_cost SUM by span_model_name, daily", {"view_type": "SPANS", "metric_name": "total_cost", "dimensions": ["span_model_name"],
                                                      "aggregations": [{"aggregation_type": "SUM"}], "time_interval_seconds": 86400,
                                                      "start_time_ms": first_ms, "end_time_ms": last_ms}),
    ]
    print(f"| traces/metrics ({args.traces:,} traces) | p50 ms | p95 ms | data points |")
    print("|---|---|---|---|")
    session = requests.Session()
    for label, body in metrics:
        times = []
        for _ in range(max(3, args.repeat // 10)):
            t = time.perf_counter()
            r = session.post(url + "/api/3.0/mlflow/traces/metrics", json={"experiment_ids": [experiment_id], **body}, timeout=600)
            times.append((time.perf_counter() - t) * 1000)
            r.raise_for_status()
        times.sort()
        print(f"| {label} | {statistics.median(times):.0f} | {times[int(len(times) * 0.95) - 1]:.0f} | {len(r.json().get('data_points', []))} |", flush=True)


if __name__ == "__main__":
    main()
