"""`cairn export DIR` and `cairn import cairn DIR`: a `cairn server` of the test's own is populated through the real
`mlflow` client; the real `cairn` binary ($CAIRN_BINARY) exports its data folder; pandas/pyarrow read every table
without Cairn and find the documented columns, types and values (the metric rows equal `get_metric_history`, NaN
and infinities included); the export is imported into a new data folder, a server on it answers the same through
the client, and exporting it again gives tables with the same SHA-256s.

Cairn-only, and it starts servers of its own (single_server).
"""

import hashlib
import json
import math
import os
import subprocess
import time

# Traces are written before the traced call returns (read before mlflow is imported).
os.environ["MLFLOW_ENABLE_ASYNC_TRACE_LOGGING"] = "false"

import pandas as pd  # noqa: E402
import pyarrow as pa  # noqa: E402
import pyarrow.parquet as pq  # noqa: E402
import pytest  # noqa: E402
from mlflow.entities import Metric  # noqa: E402
from mlflow.tracking import MlflowClient  # noqa: E402

from conftest import fluent_uris, start_own_server  # noqa: E402

pytestmark = [
    pytest.mark.cairn_only,
    pytest.mark.single_server("starts its own cairn servers and exports between them"),
]

BINARY = os.environ.get("CAIRN_BINARY", "").strip()
SPECIAL = [float("nan"), float("inf"), float("-inf"), -0.0, 0.1 + 0.2, 5e-324]

TS = pa.timestamp("ms", tz="UTC")
# The documented schema (README.md, "Export format"), for the tables this test fills.
SCHEMAS = {
    "experiments": [("experiment_id", pa.int64()), ("name", pa.string()), ("artifact_location", pa.string()),
                    ("lifecycle_stage", pa.string()), ("creation_time", TS), ("last_update_time", TS)],
    "runs": [("run_id", pa.string()), ("experiment_id", pa.int64()), ("run_name", pa.string()), ("user_id", pa.string()),
             ("status", pa.string()), ("start_time", TS), ("end_time", TS), ("artifact_uri", pa.string()),
             ("lifecycle_stage", pa.string())],
    "params": [("run_id", pa.string()), ("key", pa.string()), ("value", pa.string())],
    "tags": [("run_id", pa.string()), ("key", pa.string()), ("value", pa.string())],
    "metrics": [("run_id", pa.string()), ("key", pa.string()), ("step", pa.int64()), ("timestamp", TS), ("value", pa.float64())],
    "datasets": [("experiment_id", pa.int64()), ("name", pa.string()), ("digest", pa.string()), ("source_type", pa.string()),
                 ("source", pa.string()), ("schema", pa.string()), ("profile", pa.string())],
    "registered_models": [("name", pa.string()), ("description", pa.string()), ("user_id", pa.string()),
                          ("creation_timestamp", TS), ("last_updated_timestamp", TS)],
    "model_versions": [("name", pa.string()), ("version", pa.int64()), ("creation_timestamp", TS), ("last_updated_timestamp", TS),
                       ("user_id", pa.string()), ("current_stage", pa.string()), ("description", pa.string()), ("source", pa.string()),
                       ("run_id", pa.string()), ("run_link", pa.string()), ("status", pa.string()), ("status_message", pa.string()),
                       ("model_id", pa.string())],
    "registered_model_aliases": [("name", pa.string()), ("alias", pa.string()), ("version", pa.int64())],
    "traces": [("trace_id", pa.string()), ("experiment_id", pa.int64()), ("request_time", TS), ("execution_duration", pa.int64()),
               ("state", pa.string()), ("request_preview", pa.string()), ("response_preview", pa.string()),
               ("client_request_id", pa.string())],
    "trace_spans": [("trace_id", pa.string()), ("position", pa.int64()), ("span", pa.string())],
    "trace_assessments": [("trace_id", pa.string()), ("assessment_id", pa.string()), ("name", pa.string()), ("create_time", TS),
                          ("last_update_time", TS), ("body", pa.string())],
    "evaluation_datasets": [("dataset_id", pa.string()), ("name", pa.string()), ("schema", pa.string()), ("profile", pa.string()),
                            ("digest", pa.string()), ("created_time", TS), ("last_update_time", TS), ("created_by", pa.string()),
                            ("last_updated_by", pa.string())],
    "evaluation_dataset_records": [("dataset_id", pa.string()), ("record_id", pa.string()), ("input_key", pa.string()),
                                   ("body", pa.string()), ("created_time", TS), ("last_update_time", TS)],
    "audit_events": [("seq", pa.int64()), ("time", TS), ("actor", pa.string()), ("authenticated", pa.bool_()),
                     ("client_address", pa.string()), ("request_id", pa.string()), ("action", pa.string()), ("target", pa.string()),
                     ("digest", pa.string()), ("details", pa.string()), ("previous_hash", pa.string()), ("hash", pa.string())],
}


def audit_hashes_hold(table):
    """Recomputes every event's hash from the table's columns alone (README "Tamper evidence"), without Cairn."""
    previous = "0" * 64
    rows = table.to_pylist()
    times = table.column("time").cast(pa.int64()).to_pylist()
    for row, ms in zip(rows, times):
        fields = ["cairn-audit-v1", str(row["seq"]), str(ms), "-" if row["actor"] is None else "u" + row["actor"],
                  "1" if row["authenticated"] else "0", row["client_address"], row["request_id"], row["action"], row["target"],
                  row["digest"], row["details"]]
        canonical = "".join(f"{len(f.encode())}:{f}" for f in fields)
        if row["previous_hash"] != previous or hashlib.sha256((previous + canonical).encode()).hexdigest() != row["hash"]:
            return False
        previous = row["hash"]
    return True


def cairn(*args):
    result = subprocess.run([BINARY, *args], capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout + result.stderr
    return result


def populate(uri, tmp):
    import mlflow
    from mlflow.data.pandas_dataset import from_pandas

    client = MlflowClient(uri)
    exp = client.create_experiment("export-alpha", tags={"team": "nlp", "ünïcode": "✓"})
    run = client.create_run(exp, run_name="first ü")
    run_id = run.info.run_id
    client.log_param(run_id, "lr", "0.01")
    client.set_tag(run_id, "mlflow.note.content", "a note ✓\nsecond line")
    now = int(time.time() * 1000)
    values = SPECIAL + [math.sin(i) for i in range(200)]
    client.log_batch(run_id, metrics=[Metric("loss", v, now + i, i) for i, v in enumerate(values)])
    client.log_batch(run_id, metrics=[Metric("acc", 0.5 + i / 100, now + i, i) for i in range(10)])
    with fluent_uris(uri):
        dataset = from_pandas(pd.DataFrame({"x": [1, 2, 3]}), source="/data/x.csv", name="tiny")
        client.log_inputs(run_id, datasets=[mlflow.entities.DatasetInput(dataset._to_mlflow_entity(), tags=[])])
    path = os.path.join(tmp, "weights.bin")
    with open(path, "wb") as f:
        f.write(bytes(range(256)) * 100)
    client.log_artifact(run_id, path)
    client.set_terminated(run_id)
    second = client.create_run(exp, run_name="second")
    client.log_metric(second.info.run_id, "loss", 1.5, step=0)
    client.delete_run(second.info.run_id)
    client.create_registered_model("export-model", description="digits")
    version = client.create_model_version("export-model", f"runs:/{run_id}/weights.bin", run_id=run_id)
    client.set_registered_model_alias("export-model", "champion", version.version)
    trace_id, dataset_id = populate_traces(uri, exp)
    return exp, run_id, second.info.run_id, trace_id, dataset_id


def populate_traces(uri, exp):
    """A trace with nested spans (attributes of several types, an exception event), feedback and an expectation,
    and an evaluation dataset with records, all through the real client."""
    import mlflow
    from mlflow.entities import AssessmentSource
    from mlflow.genai.datasets import create_dataset

    with fluent_uris(uri):
        mlflow.set_experiment(experiment_id=exp)

        @mlflow.trace(span_type="LLM", attributes={"k": 3, "ratio": 0.1 + 0.2, "ünï": "✓"})
        def inner(x):
            return {"answer": x * 2, "tiny": 5e-324}

        @mlflow.trace(name="outer")
        def outer(x):
            return inner(x)

        outer(21)
        trace_id = mlflow.get_last_active_trace_id()
        source = AssessmentSource(source_type="HUMAN", source_id="reviewer")
        mlflow.log_feedback(trace_id=trace_id, name="correct", value=True, source=source, rationale="fine ✓")
        mlflow.log_expectation(trace_id=trace_id, name="expected", value={"answer": 42}, source=source)
        dataset = create_dataset(name="golden", experiment_id=[exp], tags={"team": "nlp"})
        dataset.merge_records([{"inputs": {"q": "a"}, "expectations": {"answer": 1}}, {"inputs": {"q": "b"}}])
        return trace_id, dataset.dataset_id


def manifest(directory):
    with open(os.path.join(directory, "manifest.json")) as f:
        return json.load(f)


@pytest.mark.skipif(not BINARY, reason="set CAIRN_BINARY to the cairn binary to test export")
def test_export_reads_in_pandas_and_imports_exactly(tmp_path):
    tmp = str(tmp_path)
    data = os.path.join(tmp, "source-data")
    with open(os.path.join(tmp, "source.log"), "w") as log:
        proc, uri = start_own_server(BINARY, data, log)
        try:
            exp, run_id, deleted_id, trace_id, dataset_id = populate(uri, tmp)
            client = MlflowClient(uri)
            histories = {key: client.get_metric_history(run_id, key) for key in ("loss", "acc")}
            trace_before = client.get_trace(trace_id).to_dict()
            # The server keeps running: the export reads the SQLite store beside it.
            out = os.path.join(tmp, "export")
            cairn("export", "--data-dir", data, out)
        finally:
            proc.terminate()
            proc.wait(timeout=60)

    first = manifest(out)
    assert first["format"] == "cairn-export" and first["format_version"] == 2
    assert first["counts"]["runs"] == 2 and first["counts"]["artifact_files"] == 1

    for name, schema in SCHEMAS.items():
        table = pq.read_table(os.path.join(out, "tables", f"{name}.parquet"))
        assert [(f.name, f.type) for f in table.schema] == schema, name
    for entry in first["tables"]:
        frame = pd.read_parquet(os.path.join(out, entry["file"]))
        assert len(frame) == entry["rows"], entry["name"]

    runs = pd.read_parquet(os.path.join(out, "tables", "runs.parquet")).set_index("run_id")
    assert runs.loc[run_id, "run_name"] == "first ü" and runs.loc[run_id, "status"] == "FINISHED"
    assert runs.loc[deleted_id, "lifecycle_stage"] == "deleted"
    assert str(runs["start_time"].dtype) == "datetime64[ms, UTC]"
    metrics = pd.read_parquet(os.path.join(out, "tables", "metrics.parquet"))
    for key, history in histories.items():
        rows = metrics[(metrics.run_id == run_id) & (metrics.key == key)]
        got = sorted(zip(rows.step, rows.timestamp.astype("int64"), rows.value), key=lambda p: (p[0], p[1]))
        want = sorted(((m.step, m.timestamp, m.value) for m in history), key=lambda p: (p[0], p[1]))
        assert len(got) == len(want), key
        for (gs, gt, gv), (ws, wt, wv) in zip(got, want):
            assert (gs, gt) == (ws, wt)
            assert (math.isnan(gv) and math.isnan(wv)) or (gv == wv and math.copysign(1, gv) == math.copysign(1, wv))
    params = pd.read_parquet(os.path.join(out, "tables", "params.parquet"))
    assert params[params.run_id == run_id].set_index("key").value.to_dict() == {"lr": "0.01"}
    datasets = pd.read_parquet(os.path.join(out, "tables", "datasets.parquet"))
    assert list(datasets.name) == ["tiny"]
    aliases = pd.read_parquet(os.path.join(out, "tables", "registered_model_aliases.parquet"))
    assert aliases.to_dict("records") == [{"name": "export-model", "alias": "champion", "version": 1}]
    traces = pd.read_parquet(os.path.join(out, "tables", "traces.parquet"))
    assert list(traces.trace_id) == [trace_id] and traces.state[0] == "OK"
    spans = pd.read_parquet(os.path.join(out, "tables", "trace_spans.parquet"))
    assert list(spans.position) == [0, 1] and all(json.loads(s)["trace_id"] for s in spans.span)
    assessments = pd.read_parquet(os.path.join(out, "tables", "trace_assessments.parquet"))
    assert sorted(assessments.name) == ["correct", "expected"]
    records = pd.read_parquet(os.path.join(out, "tables", "evaluation_dataset_records.parquet"))
    assert list(records.dataset_id) == [dataset_id, dataset_id]
    assert [json.loads(b)["inputs"] for b in records.body] == [{"q": "a"}, {"q": "b"}]
    artifact = first["artifacts"][0]
    with open(os.path.join(out, "artifacts", artifact["path"]), "rb") as f:
        assert f.read() == bytes(range(256)) * 100
    audit = pq.read_table(os.path.join(out, "tables", "audit_events.parquet"))
    assert audit.num_rows > 10 and audit.column("seq").to_pylist() == list(range(1, audit.num_rows + 1))
    assert "run.create" in audit.column("action").to_pylist()
    assert audit_hashes_hold(audit)

    # Into a new data folder; a server there answers the same; a second export has the same tables.
    target = os.path.join(tmp, "target-data")
    cairn("import", "cairn", out, "--data-dir", target)
    again = os.path.join(tmp, "export-again")
    cairn("export", "--data-dir", target, again)
    second = manifest(again)
    # Every table is the same; the audit log is the source's, followed by the import's own events, one chain.
    assert [(t["name"], t["rows"], t["sha256"]) for t in second["tables"] if t["name"] != "audit_events"] == \
        [(t["name"], t["rows"], t["sha256"]) for t in first["tables"] if t["name"] != "audit_events"]
    assert second["artifacts"] == first["artifacts"]
    audit_again = pq.read_table(os.path.join(again, "tables", "audit_events.parquet"))
    assert audit_again.slice(0, audit.num_rows).equals(audit)
    assert audit_again.column("action")[audit.num_rows].as_py() == "import.audit_log"
    assert audit_hashes_hold(audit_again)
    verified = cairn("audit", "verify", "--data-dir", target)
    assert "OK" in verified.stdout, verified.stdout
    with open(os.path.join(tmp, "target.log"), "w") as log:
        proc, uri = start_own_server(BINARY, target, log)
        try:
            client = MlflowClient(uri)
            run = client.get_run(run_id)
            assert run.info.run_name == "first ü" and run.data.params == {"lr": "0.01"}
            assert run.data.tags["mlflow.note.content"] == "a note ✓\nsecond line"
            assert len(client.get_metric_history(run_id, "loss")) == len(histories["loss"])
            assert client.get_run(deleted_id).info.lifecycle_stage == "deleted"
            assert client.get_model_version_by_alias("export-model", "champion").run_id == run_id
            # The trace comes back as it was: spans, inputs, outputs and attributes bit for bit, and its assessments.
            assert client.get_trace(trace_id).to_dict() == trace_before
            with fluent_uris(uri):
                from mlflow.genai.datasets import get_dataset
                assert len(get_dataset(dataset_id=dataset_id).to_df()) == 2
            local = client.download_artifacts(run_id, "weights.bin", tmp)
            with open(local, "rb") as f:
                assert f.read() == bytes(range(256)) * 100
        finally:
            proc.terminate()
            proc.wait(timeout=60)


@pytest.mark.skipif(not BINARY, reason="set CAIRN_BINARY to the cairn binary to test export")
def test_damaged_export_and_busy_folder_are_refused(tmp_path):
    tmp = str(tmp_path)
    data = os.path.join(tmp, "data")
    with open(os.path.join(tmp, "server.log"), "w") as log:
        proc, uri = start_own_server(BINARY, data, log)
        try:
            populate(uri, tmp)
        finally:
            proc.terminate()
            proc.wait(timeout=60)
    out = os.path.join(tmp, "export")
    cairn("export", "--data-dir", data, out)
    busy = subprocess.run([BINARY, "export", "--data-dir", data, out], capture_output=True, text=True, timeout=600)
    assert busy.returncode == 1 and "not empty" in busy.stderr and "--force" in busy.stderr
    cairn("export", "--data-dir", data, out, "--force")

    path = os.path.join(out, "tables", "metrics.parquet")
    with open(path, "r+b") as f:
        f.seek(20)
        byte = f.read(1)
        f.seek(20)
        f.write(bytes([byte[0] ^ 0xFF]))
    target = os.path.join(tmp, "target")
    result = subprocess.run([BINARY, "import", "cairn", out, "--data-dir", target], capture_output=True, text=True, timeout=600)
    assert result.returncode == 1
    assert "damaged" in result.stderr and "tables/metrics.parquet" in result.stderr and "nothing was imported" in result.stderr
