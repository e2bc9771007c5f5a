"""Runs workflow (MLFLOW-API.md §5a, §5f): experiments, runs, params, metrics, tags, lifecycle.

Every test reads values back: the client ignores missing response fields, so "no exception" proves nothing.
"""

import math
import re
import time

import mlflow
import pytest
from mlflow.entities import Metric, Param, RunTag, ViewType
from mlflow.exceptions import MlflowException

from conftest import unique_name

HEX32 = re.compile(r"^[0-9a-f]{32}$")
MAX_DOUBLE = 1.7976931348623157e308


def now_ms():
    return int(time.time() * 1000)


def test_set_experiment_creates_then_returns_it(client):
    name = unique_name("compat-setexp")
    assert client.get_experiment_by_name(name) is None

    exp = mlflow.set_experiment(name)
    assert exp.name == name
    assert exp.experiment_id.isdigit()
    assert exp.lifecycle_stage == "active"
    assert exp.artifact_location == f"mlflow-artifacts:/{exp.experiment_id}"

    fetched = client.get_experiment_by_name(name)
    assert fetched is not None and fetched.experiment_id == exp.experiment_id
    assert client.get_experiment(exp.experiment_id).name == name

    again = mlflow.set_experiment(name)  # exists now: returned, not re-created
    assert again.experiment_id == exp.experiment_id

    # start_run without an explicit experiment uses the active one.
    with mlflow.start_run() as run:
        pass
    assert client.get_run(run.info.run_id).info.experiment_id == exp.experiment_id


def test_start_run_fields_and_end_finished(client, experiment, rest):
    before = now_ms()
    with mlflow.start_run(experiment_id=experiment.experiment_id, run_name="basic") as active:
        run_id = active.info.run_id
        running = client.get_run(run_id)
        assert running.info.status == "RUNNING"
        assert running.info.end_time is None
    after = now_ms()

    run = client.get_run(run_id)
    info = run.info
    assert HEX32.match(info.run_id), info.run_id
    assert info.experiment_id == experiment.experiment_id
    assert info.run_name == "basic"
    assert run.data.tags["mlflow.runName"] == "basic"
    assert info.user_id and info.user_id == run.data.tags["mlflow.user"]
    assert run.data.tags["mlflow.source.type"] == "LOCAL"
    assert info.artifact_uri.startswith("mlflow-artifacts:/")
    assert run_id in info.artifact_uri
    assert info.artifact_uri == f"mlflow-artifacts:/{experiment.experiment_id}/{run_id}/artifacts"
    assert info.lifecycle_stage == "active"
    assert info.status == "FINISHED"
    assert before - 5000 <= info.start_time <= after + 5000
    assert info.end_time is not None and info.end_time >= info.start_time

    # Raw wire form: run_uuid mirrors run_id, ints are JSON numbers.
    status, body = rest("GET", "runs/get", params={"run_id": run_id})
    assert status == 200
    wire = body["run"]["info"]
    assert wire["run_id"] == run_id
    assert wire["run_uuid"] == run_id
    assert wire["status"] == "FINISHED"
    assert int(wire["start_time"]) == info.start_time
    assert int(wire["end_time"]) == info.end_time


def test_exception_in_with_block_marks_run_failed(client, experiment):
    with pytest.raises(RuntimeError):
        with mlflow.start_run(experiment_id=experiment.experiment_id) as active:
            run_id = active.info.run_id
            raise RuntimeError("boom")
    run = client.get_run(run_id)
    assert run.info.status == "FAILED"
    assert run.info.end_time is not None and run.info.end_time >= run.info.start_time
    assert mlflow.active_run() is None


def test_explicit_end_run_status(client, experiment):
    mlflow.start_run(experiment_id=experiment.experiment_id)
    run_id = mlflow.active_run().info.run_id
    mlflow.end_run(status="KILLED")
    assert client.get_run(run_id).info.status == "KILLED"

    run = client.create_run(experiment.experiment_id)
    client.set_terminated(run.info.run_id, status="FAILED", end_time=run.info.start_time + 1234)
    got = client.get_run(run.info.run_id)
    assert got.info.status == "FAILED"
    assert got.info.end_time == run.info.start_time + 1234


def test_nested_runs(client, experiment):
    # Nested start_run() calls take the *active* experiment (not the parent's), so set it.
    mlflow.set_experiment(experiment_id=experiment.experiment_id)
    with mlflow.start_run(run_name="parent") as parent:
        with mlflow.start_run(run_name="child-1", nested=True) as c1:
            pass
        with mlflow.start_run(run_name="child-2", nested=True) as c2:
            pass
        # Children are finished while the parent is still running.
        assert client.get_run(c1.info.run_id).info.status == "FINISHED"
        assert client.get_run(parent.info.run_id).info.status == "RUNNING"

    parent_id = parent.info.run_id
    for child in (c1, c2):
        got = client.get_run(child.info.run_id)
        assert got.data.tags["mlflow.parentRunId"] == parent_id
        assert got.info.experiment_id == experiment.experiment_id
    assert "mlflow.parentRunId" not in client.get_run(parent_id).data.tags

    children = client.search_runs(
        [experiment.experiment_id], filter_string=f"tags.mlflow.parentRunId = '{parent_id}'"
    )
    assert sorted(r.info.run_id for r in children) == sorted([c1.info.run_id, c2.info.run_id])
    assert {r.info.run_name for r in children} == {"child-1", "child-2"}


def test_params_are_stringified(client, experiment):
    with mlflow.start_run(experiment_id=experiment.experiment_id) as active:
        mlflow.log_param("lr", 0.1)
        mlflow.log_param("epochs", 10)
        mlflow.log_params({"flag": True, "name": "resnet", "none": None, "layers": [1, 2], "ratio": 1e-05})
    params = client.get_run(active.info.run_id).data.params
    assert params == {
        "lr": "0.1",
        "epochs": "10",
        "flag": "True",
        "name": "resnet",
        "none": "None",
        "layers": "[1, 2]",
        "ratio": "1e-05",
    }


def test_param_relog_same_value_ok_different_value_rejected(client, experiment):
    run_id = client.create_run(experiment.experiment_id).info.run_id
    client.log_param(run_id, "lr", "0.1")
    client.log_param(run_id, "lr", "0.1")  # identical value: accepted
    client.log_batch(run_id, params=[Param("lr", "0.1")])  # also accepted through log-batch

    with pytest.raises(MlflowException) as err:
        client.log_param(run_id, "lr", "0.2")
    assert err.value.error_code == "INVALID_PARAMETER_VALUE"

    with pytest.raises(MlflowException) as err:
        client.log_batch(run_id, params=[Param("lr", "0.3")])
    assert err.value.error_code == "INVALID_PARAMETER_VALUE"

    assert client.get_run(run_id).data.params == {"lr": "0.1"}


def test_log_metric_with_step_and_timestamp(client, experiment):
    before = now_ms()
    with mlflow.start_run(experiment_id=experiment.experiment_id) as active:
        mlflow.log_metric("loss", 0.5, step=3, timestamp=1_700_000_000_123)
        mlflow.log_metric("plain", 7)  # step defaults to 0, timestamp to now
        mlflow.log_metrics({"a": 1.0, "b": 2}, step=4, timestamp=1_700_000_000_456)
    run_id = active.info.run_id
    after = now_ms()

    (loss,) = client.get_metric_history(run_id, "loss")
    assert (loss.key, loss.value, loss.step, loss.timestamp) == ("loss", 0.5, 3, 1_700_000_000_123)
    (plain,) = client.get_metric_history(run_id, "plain")
    assert plain.value == 7 and plain.step == 0
    assert before <= plain.timestamp <= after  # the client stamps it with this machine's clock

    for key, value in (("a", 1.0), ("b", 2.0)):
        (m,) = client.get_metric_history(run_id, key)
        assert (m.value, m.step, m.timestamp) == (value, 4, 1_700_000_000_456)

    metrics = client.get_run(run_id).data.metrics
    assert metrics == {"loss": 0.5, "plain": 7.0, "a": 1.0, "b": 2.0}


def test_non_finite_metrics_round_trip(client, experiment, rest):
    with mlflow.start_run(experiment_id=experiment.experiment_id) as active:
        mlflow.log_metric("nan", float("nan"), step=1)
        mlflow.log_metric("pinf", float("inf"), step=1)
        mlflow.log_metric("ninf", float("-inf"), step=1)
        mlflow.log_metrics({"bnan": float("nan"), "bpinf": float("inf"), "bninf": float("-inf")})
    run_id = active.info.run_id

    def is_pinf(v):
        return math.isinf(v) and v > 0 or v >= 1.79e308

    def is_ninf(v):
        return math.isinf(v) and v < 0 or v <= -1.79e308

    metrics = client.get_run(run_id).data.metrics
    for prefix in ("", "b"):
        assert math.isnan(metrics[prefix + "nan"])
        assert is_pinf(metrics[prefix + "pinf"])
        assert is_ninf(metrics[prefix + "ninf"])
        (h_nan,) = client.get_metric_history(run_id, prefix + "nan")
        (h_pinf,) = client.get_metric_history(run_id, prefix + "pinf")
        (h_ninf,) = client.get_metric_history(run_id, prefix + "ninf")
        assert math.isnan(h_nan.value)
        assert is_pinf(h_pinf.value)
        assert is_ninf(h_ninf.value)

    # On the wire NaN is the JSON string "NaN" (protobuf JSON), never a bare NaN token or null.
    status, body = rest("GET", "runs/get", params={"run_id": run_id})
    assert status == 200
    wire = {m["key"]: m["value"] for m in body["run"]["data"]["metrics"]}
    assert wire["nan"] == "NaN"
    assert wire["pinf"] in ("Infinity", MAX_DOUBLE)
    assert wire["ninf"] in ("-Infinity", -MAX_DOUBLE)


def test_latest_metric_rule(client, experiment):
    run_id = client.create_run(experiment.experiment_id).info.run_id
    # Highest step wins even though it was logged first.
    client.log_metric(run_id, "by_step", 10.0, timestamp=1000, step=5)
    client.log_metric(run_id, "by_step", 20.0, timestamp=2000, step=1)
    # Equal step: the higher timestamp wins, whatever the logging order.
    client.log_metric(run_id, "by_ts", 1.0, timestamp=2000, step=2)
    client.log_metric(run_id, "by_ts", 2.0, timestamp=1000, step=2)
    # Equal step and timestamp: the higher value wins.
    client.log_metric(run_id, "by_value", 7.0, timestamp=1000, step=1)
    client.log_metric(run_id, "by_value", 3.0, timestamp=1000, step=1)
    client.log_metric(run_id, "by_value", 5.0, timestamp=1000, step=1)
    # Same rule through log-batch, where all points arrive in one request.
    client.log_batch(
        run_id,
        metrics=[
            Metric("batch", 1.0, 3000, 9),
            Metric("batch", 2.0, 4000, 3),
            Metric("batch", 3.0, 2000, 9),
        ],
    )

    metrics = client.get_run(run_id).data.metrics
    assert metrics == {"by_step": 10.0, "by_ts": 1.0, "by_value": 7.0, "batch": 1.0}

    # search_runs exposes the same latest values.
    (found,) = client.search_runs([experiment.experiment_id])
    assert found.data.metrics == metrics


def test_metric_history_returns_every_point(client, experiment):
    run_id = client.create_run(experiment.experiment_id).info.run_id
    points = [(0.9, 1000, 0), (0.8, 1001, 1), (0.7, 1002, 2), (0.75, 1003, 2), (0.6, 999, 3)]
    for value, ts, step in points:
        client.log_metric(run_id, "loss", value, timestamp=ts, step=step)
    client.log_batch(run_id, metrics=[Metric("loss", 0.5, 1010, 4), Metric("loss", 0.4, 1011, 5)])
    points += [(0.5, 1010, 4), (0.4, 1011, 5)]

    history = client.get_metric_history(run_id, "loss")
    assert all(m.key == "loss" for m in history)
    got = sorted((m.step, m.timestamp, m.value) for m in history)
    assert got == sorted((step, ts, value) for value, ts, step in points)
    assert client.get_metric_history(run_id, "absent") == []


def test_tags_set_delete_and_note(client, experiment):
    with mlflow.start_run(experiment_id=experiment.experiment_id) as active:
        mlflow.set_tag("team", "vision")
        mlflow.set_tags({"a": "1", "b": 2, "c": "to-delete"})
        mlflow.set_tag("mlflow.note.content", "# Notes\nmulti-line *markdown* ✓")
        mlflow.set_tag("team", "nlp")  # tags are mutable: last write wins
        mlflow.delete_tag("c")
    run_id = active.info.run_id

    tags = client.get_run(run_id).data.tags
    assert tags["team"] == "nlp"
    assert tags["a"] == "1"
    assert tags["b"] == "2"
    assert "c" not in tags
    assert tags["mlflow.note.content"] == "# Notes\nmulti-line *markdown* ✓"

    client.set_tag(run_id, "late", "after-end")  # writes to a finished run are allowed
    client.delete_tag(run_id, "a")
    tags = client.get_run(run_id).data.tags
    assert tags["late"] == "after-end"
    assert "a" not in tags

    with pytest.raises(MlflowException) as err:
        client.delete_tag(run_id, "never-set")
    assert err.value.error_code == "RESOURCE_DOES_NOT_EXIST"


def test_delete_and_restore_run(client, experiment):
    run_id = client.create_run(experiment.experiment_id, run_name="doomed").info.run_id
    client.log_metric(run_id, "m", 1.0)
    client.delete_run(run_id)

    deleted = client.get_run(run_id)  # deleted runs stay readable
    assert deleted.info.lifecycle_stage == "deleted"
    assert deleted.data.metrics == {"m": 1.0}
    assert client.search_runs([experiment.experiment_id], run_view_type=ViewType.ACTIVE_ONLY) == []
    (only_deleted,) = client.search_runs([experiment.experiment_id], run_view_type=ViewType.DELETED_ONLY)
    assert only_deleted.info.run_id == run_id

    client.restore_run(run_id)
    restored = client.get_run(run_id)
    assert restored.info.lifecycle_stage == "active"
    assert restored.info.run_name == "doomed"
    assert [r.info.run_id for r in client.search_runs([experiment.experiment_id])] == [run_id]


def test_run_without_name_gets_generated_name(client, experiment):
    created = client.create_run(experiment.experiment_id)
    run = client.get_run(created.info.run_id)
    assert run.info.run_name
    assert run.data.tags["mlflow.runName"] == run.info.run_name
    assert created.info.run_name == run.info.run_name

    with mlflow.start_run(experiment_id=experiment.experiment_id) as active:
        pass
    fluent_run = client.get_run(active.info.run_id)
    assert fluent_run.info.run_name
    assert fluent_run.data.tags["mlflow.runName"] == fluent_run.info.run_name


def test_rename_run_updates_tag(client, experiment):
    run_id = client.create_run(experiment.experiment_id, run_name="before").info.run_id
    client.update_run(run_id, name="after")
    run = client.get_run(run_id)
    assert run.info.run_name == "after"
    assert run.data.tags["mlflow.runName"] == "after"
    assert run.info.status == "RUNNING"


def test_create_run_with_tags_and_start_time(client, experiment):
    run = client.create_run(
        experiment.experiment_id, start_time=1_600_000_000_000, tags={"k": "v", "empty": ""}, run_name="tagged"
    )
    got = client.get_run(run.info.run_id)
    assert got.info.start_time == 1_600_000_000_000
    assert got.data.tags["k"] == "v"
    assert got.data.tags["empty"] == ""
    assert got.data.tags["mlflow.runName"] == "tagged"


def test_log_batch_mixed(client, experiment):
    run_id = client.create_run(experiment.experiment_id).info.run_id
    client.log_batch(
        run_id,
        metrics=[Metric("m1", 1.5, 1000, 0), Metric("m1", 2.5, 1001, 1), Metric("m2", -3.0, 1000, 0)],
        params=[Param("p1", "x"), Param("p2", "y")],
        tags=[RunTag("t1", "a"), RunTag("t2", "b")],
    )
    run = client.get_run(run_id)
    assert run.data.metrics == {"m1": 2.5, "m2": -3.0}
    assert run.data.params == {"p1": "x", "p2": "y"}
    assert run.data.tags["t1"] == "a" and run.data.tags["t2"] == "b"
    assert len(client.get_metric_history(run_id, "m1")) == 2


def test_replayed_log_batch_leaves_no_duplicates(client, experiment, rest):
    # The client retries writes whose answer it lost; a replay must not duplicate points.
    run_id = client.create_run(experiment.experiment_id).info.run_id
    body = {
        "run_id": run_id,
        "metrics": [{"key": "m", "value": float(i), "timestamp": 1000 + i, "step": i} for i in range(3)],
        "params": [{"key": "p", "value": "1"}],
    }
    for _ in range(2):
        status, reply = rest("POST", "runs/log-batch", json=body)
        assert status == 200, reply
    history = sorted((m.step, m.timestamp, m.value) for m in client.get_metric_history(run_id, "m"))
    assert history == [(0, 1000, 0.0), (1, 1001, 1.0), (2, 1002, 2.0)]
    assert client.get_run(run_id).data.params == {"p": "1"}
