"""Miscellaneous endpoints: /health, /version, server-info, the /ajax-api mirror, the Default experiment and
metrics/get-history-bulk-interval (the UI's downsampled chart endpoint)."""

import math

import pytest
from mlflow.entities import Metric

BULK = "metrics/get-history-bulk-interval"


def test_health(rest):
    status, body = rest("GET", "/health")
    assert status == 200
    assert isinstance(body, str) and body.strip() == "OK"


def test_version(rest):
    status, body = rest("GET", "/version")
    assert status == 200
    text = body if isinstance(body, str) else str(body)
    assert text.strip()[:1].isdigit(), text
    # The client refuses OTLP export below 3.4, so report an MLflow-compatible version.
    major, minor = (int(x) for x in text.strip().split(".")[:2])
    assert (major, minor) >= (3, 4), text


def test_server_info(rest):
    for prefix in ("/api/3.0/mlflow", "/ajax-api/3.0/mlflow"):
        status, body = rest("GET", prefix + "/server-info")
        assert status == 200
        assert isinstance(body, dict) and "error_code" not in body, body
        for flag in ("multipart_uploads_enabled", "multipart_downloads_enabled", "workspaces_enabled"):
            if flag in body:
                assert isinstance(body[flag], bool), (flag, body)


def test_default_experiment_exists(rest):
    status, body = rest("GET", "experiments/get", params={"experiment_id": "0"})
    assert status == 200
    exp = body["experiment"]
    assert exp["experiment_id"] == "0"
    assert exp["name"] == "Default"
    assert exp["artifact_location"] == "mlflow-artifacts:/0"
    status, body = rest("GET", "experiments/get-by-name", params={"experiment_name": "Default"})
    assert status == 200 and body["experiment"]["experiment_id"] == "0"


def test_ajax_api_mirrors_api(rest, client, experiment):
    run_id = client.create_run(experiment.experiment_id, run_name="ajax").info.run_id
    client.log_metric(run_id, "m", 1.5, timestamp=1000, step=2)

    s1, via_api = rest("GET", "runs/get", params={"run_id": run_id})
    s2, via_ajax = rest("GET", "/ajax-api/2.0/mlflow/runs/get", params={"run_id": run_id})
    assert s1 == s2 == 200
    assert via_ajax == via_api

    s1, exp_api = rest("GET", "experiments/get", params={"experiment_id": experiment.experiment_id})
    s2, exp_ajax = rest("GET", "/ajax-api/2.0/mlflow/experiments/get", params={"experiment_id": experiment.experiment_id})
    assert s1 == s2 == 200 and exp_ajax == exp_api

    # POST routes too, and writes through /ajax-api land in the same store.
    status, body = rest(
        "POST", "/ajax-api/2.0/mlflow/runs/set-tag", json={"run_id": run_id, "key": "via", "value": "ajax"}
    )
    assert status == 200 and body == {}
    assert client.get_run(run_id).data.tags["via"] == "ajax"
    status, body = rest(
        "POST", "/ajax-api/2.0/mlflow/runs/search", json={"experiment_ids": [experiment.experiment_id]}
    )
    assert status == 200
    assert [r["info"]["run_id"] for r in body["runs"]] == [run_id]

    # Errors are mirrored as well.
    status, body = rest("GET", "/ajax-api/2.0/mlflow/runs/get", params={"run_id": "0" * 32})
    assert status == 404 and body["error_code"] == "RESOURCE_DOES_NOT_EXIST"


def spike_series(n=1000, spike_step=537):
    return [(i, 1000.0 if i == spike_step else math.sin(i / 50.0)) for i in range(n)]


@pytest.fixture
def bulk_runs(client, experiment):
    """Run `long`: 1000 points at steps 0..999 (spike of 1000.0 at step 537); run `short`: 50 points at even steps."""
    long_id = client.create_run(experiment.experiment_id, run_name="long").info.run_id
    short_id = client.create_run(experiment.experiment_id, run_name="short").info.run_id
    client.log_batch(long_id, metrics=[Metric("loss", v, 10_000 + s, s) for s, v in spike_series()])
    client.log_batch(short_id, metrics=[Metric("loss", float(i), 10_000 + i, 2 * i) for i in range(50)])
    return {
        long_id: dict(spike_series()),
        short_id: {2 * i: float(i) for i in range(50)},
    }


def by_run(points):
    out = {}
    for p in points:
        out.setdefault(p["run_id"], []).append(p)
    return out


def test_bulk_interval_sampling(rest, bulk_runs):
    run_ids = list(bulk_runs)
    status, body = rest("GET", BULK, params={"run_ids": run_ids, "metric_key": "loss", "max_results": 100})
    assert status == 200, body
    grouped = by_run(body["metrics"])
    assert set(grouped) == set(run_ids)

    for run_id, logged in bulk_runs.items():
        points = grouped[run_id]
        steps = [int(p["step"]) for p in points]
        assert len(points) <= 100
        assert len(points) >= min(100, len(logged)) // 2
        assert steps == sorted(steps) and len(set(steps)) == len(steps)
        # Every point is a logged point, with its fields.
        for p in points:
            assert p["key"] == "loss"
            assert int(p["step"]) in logged
            assert float(p["value"]) == pytest.approx(logged[int(p["step"])])
            assert int(p["timestamp"]) >= 10_000
        # First and last steps are always kept.
        assert steps[0] == min(logged) and steps[-1] == max(logged)

    # The short run has fewer points than asked for: all of them come back.
    short_id = run_ids[1]
    assert sorted(int(p["step"]) for p in grouped[short_id]) == sorted(bulk_runs[short_id])


def test_bulk_interval_step_range(rest, bulk_runs):
    long_id = list(bulk_runs)[0]
    status, body = rest(
        "GET",
        BULK,
        params={"run_ids": [long_id], "metric_key": "loss", "max_results": 10, "start_step": 100, "end_step": 200},
    )
    assert status == 200, body
    steps = [int(p["step"]) for p in body["metrics"]]
    assert 0 < len(steps) <= 10
    assert all(100 <= s <= 200 for s in steps)
    assert steps[0] == 100 and steps[-1] == 200


def test_bulk_interval_bad_input(rest, bulk_runs):
    long_id = list(bulk_runs)[0]
    for params in (
        {"run_ids": [long_id], "metric_key": "loss", "max_results": 0},
        {"run_ids": [long_id], "metric_key": "loss", "max_results": 2501},
        {"run_ids": [long_id], "metric_key": "loss", "max_results": 10, "start_step": 5},  # end_step missing
        {"run_ids": [long_id], "metric_key": "loss", "max_results": 10, "start_step": 9, "end_step": 3},
        {"run_ids": [long_id], "max_results": 10},  # metric_key missing
    ):
        status, body = rest("GET", BULK, params=params)
        assert status == 400, (params, body)
        assert body["error_code"] == "INVALID_PARAMETER_VALUE"


def test_bulk_interval_absent_metric_is_empty(rest, bulk_runs):
    status, body = rest("GET", BULK, params={"run_ids": list(bulk_runs), "metric_key": "absent", "max_results": 10})
    assert status == 200
    assert not body.get("metrics")


@pytest.mark.cairn_only
def test_bulk_interval_keeps_spikes(rest, bulk_runs):
    """Cairn buckets the history and keeps each bucket's min and max, so a single spike always survives."""
    long_id = list(bulk_runs)[0]
    status, body = rest("GET", BULK, params={"run_ids": [long_id], "metric_key": "loss", "max_results": 100})
    assert status == 200
    points = {int(p["step"]): float(p["value"]) for p in body["metrics"]}
    assert len(points) <= 100
    assert points.get(537) == 1000.0
    # The global minimum survives as well.
    low_step = min(bulk_runs[long_id], key=bulk_runs[long_id].get)
    assert low_step in points


# ---- Helper routes of MLflow's own web app (MLflow serves them, outside /api/, for its UI) ----

AJAX = "/ajax-api/2.0/mlflow/"


def test_ajax_get_history_bulk(rest, client, experiment):
    eid = experiment.experiment_id
    runs = sorted(client.create_run(eid).info.run_id for _ in range(2))
    for n, run_id in enumerate(runs):
        client.log_batch(run_id, metrics=[Metric("loss", float(10 * n + i), 1000 + i, i) for i in range(3)])
    status, body = rest("GET", AJAX + "metrics/get-history-bulk", params={"run_id": list(reversed(runs)), "metric_key": "loss"})
    assert status == 200, body
    got = [(m["run_id"], m["key"], m["value"], m["timestamp"], m["step"]) for m in body["metrics"]]
    assert got == [(r, "loss", float(10 * n + i), 1000 + i, i) for n, r in enumerate(runs) for i in range(3)]
    status, body = rest("GET", AJAX + "metrics/get-history-bulk", params={"run_id": runs, "metric_key": "loss", "max_results": 4})
    assert status == 200 and [(m["run_id"], m["step"]) for m in body["metrics"]] == [(runs[0], 0), (runs[0], 1), (runs[0], 2), (runs[1], 0)]
    status, body = rest("GET", AJAX + "metrics/get-history-bulk", params={"run_id": runs, "metric_key": "absent"})
    assert status == 200 and body == {"metrics": []}
    for params, message in (
        ({"metric_key": "loss"}, "GetMetricHistoryBulk request must specify at least one run_id."),
        ({"run_id": runs}, "GetMetricHistoryBulk request must specify a metric_key."),
        ({"run_id": [f"{i:032x}" for i in range(101)], "metric_key": "loss"},
         "GetMetricHistoryBulk request cannot specify more than 100 run_ids. Received 101 run_ids."),
    ):
        status, body = rest("GET", AJAX + "metrics/get-history-bulk", params=params)
        assert status == 400 and body["error_code"] == "INVALID_PARAMETER_VALUE" and body["message"] == message, body


def test_ajax_search_datasets(rest, client, experiment):
    import mlflow
    import pandas as pd

    eid = experiment.experiment_id
    df = pd.DataFrame({"x": [1.0, 2.0], "y": [0.0, 1.0]})
    dataset = mlflow.data.from_pandas(df, source="/tmp/compat-data/ajax.csv", name="ajax-train", targets="y")
    with mlflow.start_run(experiment_id=eid):
        mlflow.log_input(dataset, context="training")
    status, body = rest("POST", AJAX + "experiments/search-datasets", json={"experiment_ids": [eid]})
    assert status == 200, body
    assert body["dataset_summaries"] == [{"experiment_id": eid, "name": "ajax-train", "digest": dataset.digest, "context": "training"}]
    other = client.create_experiment(f"compat-nodata-{eid}")
    assert rest("POST", AJAX + "experiments/search-datasets", json={"experiment_ids": [other]}) == (200, {})
    status, body = rest("POST", AJAX + "experiments/search-datasets", json={"experiment_ids": []})
    assert status == 400 and body["message"] == "SearchDatasets request must specify at least one experiment_id.", body
    status, body = rest("POST", AJAX + "experiments/search-datasets", json={"experiment_ids": [str(i) for i in range(21)]})
    assert status == 400 and body["message"] == "SearchDatasets request cannot specify more than 20 experiment_ids. Received 21 experiment_ids."


def test_get_artifact_routes(rest, client, experiment, server_uri):
    import requests
    from mlflow.entities import LoggedModelStatus

    run_id = client.create_run(experiment.experiment_id).info.run_id
    client.log_text(run_id, "hello from the run", "notes/hello.txt")
    resp = requests.get(server_uri + "/get-artifact", params={"path": "notes/hello.txt", "run_uuid": run_id}, timeout=120)
    assert resp.status_code == 200 and resp.text == "hello from the run"
    resp = requests.get(server_uri + "/get-artifact", params={"path": "notes/absent.txt", "run_uuid": run_id}, timeout=120)
    assert resp.status_code >= 400

    model = client.create_logged_model(experiment.experiment_id, name="model", source_run_id=run_id)
    proxy_path = model.artifact_location.split("mlflow-artifacts:", 1)[1].lstrip("/")
    status, _ = rest("PUT", f"/api/2.0/mlflow-artifacts/artifacts/{proxy_path}/MLmodel", data=b"flavors: {}\n")
    assert status == 200
    client.finalize_logged_model(model.model_id, LoggedModelStatus.READY)
    name = f"compat-getart-{model.model_id}"
    client.create_registered_model(name)
    client.create_model_version(name, f"models:/{model.model_id}", model_id=model.model_id)
    resp = requests.get(server_uri + "/model-versions/get-artifact", params={"path": "MLmodel", "name": name, "version": "1"},
                        timeout=120)
    assert resp.status_code == 200 and resp.text == "flavors: {}\n"


def test_a_missing_value_is_the_empty_value(rest, client, experiment):
    """MLflow stores a param or tag sent without `value` as the empty string (log-parameter,
    set-tag, set-experiment-tag and log-batch alike)."""
    run_id = client.create_run(experiment.experiment_id).info.run_id
    for path, body in [
        ("runs/log-parameter", {"run_id": run_id, "key": "p"}),
        ("runs/set-tag", {"run_id": run_id, "key": "t"}),
        ("experiments/set-experiment-tag", {"experiment_id": experiment.experiment_id, "key": "e"}),
        ("runs/log-batch", {"run_id": run_id, "params": [{"key": "q"}], "tags": [{"key": "u"}]}),
    ]:
        status, reply = rest("POST", path, json=body)
        assert (status, reply) == (200, {}), path
    data = client.get_run(run_id).data
    assert data.params == {"p": "", "q": ""}
    assert data.tags["t"] == "" and data.tags["u"] == ""
    assert client.get_experiment(experiment.experiment_id).tags["e"] == ""


def _logged_model_with_files(rest, client, experiment):
    model = client.create_logged_model(experiment.experiment_id, name="model")
    proxy_path = model.artifact_location.split("mlflow-artifacts:", 1)[1].lstrip("/")
    for path, data in (("MLmodel", b"flavors: {}\n"), ("sub/w.bin", b"\x00\x01")):
        status, _ = rest("PUT", f"/api/2.0/mlflow-artifacts/artifacts/{proxy_path}/{path}", data=data)
        assert status == 200
    return model


def test_logged_model_artifact_directories(rest, client, experiment):
    model = _logged_model_with_files(rest, client, experiment)
    mid, root = model.model_id, model.artifact_location
    for prefix in ("", AJAX):
        status, body = rest("GET", f"{prefix}logged-models/{mid}/artifacts/directories")
        assert status == 200, body
        assert body["root_uri"] == root
        assert sorted(body["files"], key=lambda f: f["path"]) == [
            {"path": "MLmodel", "is_dir": False, "file_size": 12}, {"path": "sub", "is_dir": True}]
    status, body = rest("GET", f"logged-models/{mid}/artifacts/directories", params={"artifact_directory_path": "sub"})
    assert (status, body) == (200, {"root_uri": root, "files": [{"path": "sub/w.bin", "is_dir": False, "file_size": 2}]})
    # A file or an absent folder lists as nothing, as in MLflow.
    for path in ("absent", "MLmodel"):
        assert rest("GET", f"logged-models/{mid}/artifacts/directories", params={"artifact_directory_path": path}) == (200, {"root_uri": root})
    status, body = rest("GET", f"logged-models/{mid}/artifacts/directories", params={"artifact_directory_path": "../x"})
    assert status == 400 and body["error_code"] == "INVALID_PARAMETER_VALUE", body
    status, body = rest("GET", "logged-models/m-0123456789abcdef0123456789abcdef/artifacts/directories")
    assert status == 404 and body["error_code"] == "RESOURCE_DOES_NOT_EXIST", body


def test_logged_model_artifact_files(rest, client, experiment, server_uri):
    import requests

    model = _logged_model_with_files(rest, client, experiment)
    files = f"{server_uri}{AJAX}logged-models/{model.model_id}/artifacts/files"
    resp = requests.get(files, params={"artifact_file_path": "MLmodel"}, timeout=120)
    assert resp.status_code == 200 and resp.content == b"flavors: {}\n"
    assert resp.headers["Content-Type"].startswith("text/plain")
    disposition = resp.headers["Content-Disposition"]
    assert disposition.startswith("attachment; filename=") and "MLmodel" in disposition, disposition
    resp = requests.get(files, params={"artifact_file_path": "sub/w.bin"}, timeout=120)
    assert resp.status_code == 200 and resp.content == b"\x00\x01"
    for params, status, code in (
        ({}, 400, "BAD_REQUEST"),
        ({"artifact_file_path": "absent"}, 404, "RESOURCE_DOES_NOT_EXIST"),
        ({"artifact_file_path": "sub"}, 400, "INVALID_PARAMETER_VALUE"),
        ({"artifact_file_path": "../x"}, 400, "INVALID_PARAMETER_VALUE"),
    ):
        resp = requests.get(files, params=params, timeout=120)
        assert (resp.status_code, resp.json()["error_code"]) == (status, code), (params, resp.text)
    resp = requests.get(files, params={}, timeout=120)
    assert resp.json()["message"] == 'Request must include the "artifact_file_path" query parameter.'
    assert resp.status_code == 400
    resp = requests.get(f"{server_uri}{AJAX}logged-models/m-0123456789abcdef0123456789abcdef/artifacts/files",
                        params={"artifact_file_path": "MLmodel"}, timeout=120)
    assert (resp.status_code, resp.json()["error_code"]) == (404, "RESOURCE_DOES_NOT_EXIST")


def test_ajax_upload_artifact(rest, client, experiment, server_uri):
    import requests

    run_id = client.create_run(experiment.experiment_id).info.run_id
    upload = f"{server_uri}{AJAX}upload-artifact"
    resp = requests.post(upload, params={"run_uuid": run_id, "path": "ui/note.txt"}, data=b"hello", timeout=120)
    assert resp.status_code == 200 and resp.content == b"", resp.text
    resp = requests.get(server_uri + "/get-artifact", params={"run_id": run_id, "path": "ui/note.txt"}, timeout=120)
    assert resp.status_code == 200 and resp.content == b"hello"
    assert [(f.path, f.is_dir) for f in client.list_artifacts(run_id)] == [("ui", True)]
    # Uploading again replaces the file, as in MLflow.
    assert requests.post(upload, params={"run_uuid": run_id, "path": "ui/note.txt"}, data=b"bye", timeout=120).status_code == 200
    assert requests.get(server_uri + "/get-artifact", params={"run_id": run_id, "path": "ui/note.txt"}, timeout=120).content == b"bye"

    for params, data, status, code, message in (
        ({"path": "a.txt"}, b"x", 400, "INVALID_PARAMETER_VALUE", "Request must specify run_uuid."),
        ({"run_id": run_id, "path": "a.txt"}, b"x", 400, "INVALID_PARAMETER_VALUE", "Request must specify run_uuid."),
        ({"run_uuid": run_id}, b"x", 400, "INVALID_PARAMETER_VALUE", "Request must specify path."),
        ({"run_uuid": run_id, "path": "a.txt"}, b"", 400, "INVALID_PARAMETER_VALUE", "Request must specify data."),
        ({"run_uuid": run_id, "path": "../a.txt"}, b"x", 400, "INVALID_PARAMETER_VALUE", None),
        ({"run_uuid": "0123456789abcdef0123456789abcdef", "path": "a.txt"}, b"x", 404, "RESOURCE_DOES_NOT_EXIST", None),
        ({"run_uuid": run_id, "path": "big.bin"}, b"x" * (10 * 1024 * 1024 + 1), 400, "INVALID_PARAMETER_VALUE",
         "Artifact size is too large. Max size is 10MB."),
    ):
        resp = requests.post(upload, params=params, data=data, timeout=120)
        assert (resp.status_code, resp.json()["error_code"]) == (status, code), (params, resp.text)
        if message:
            assert resp.json()["message"] == message
    assert [(f.path, f.is_dir) for f in client.list_artifacts(run_id)] == [("ui", True)]
    assert [f.path for f in client.list_artifacts(run_id, "ui")] == ["ui/note.txt"]


def test_ui_telemetry_is_off(rest):
    # MLflow's web app asks before sending usage records; nothing is ever sent from here.
    assert rest("GET", "/ajax-api/3.0/mlflow/ui-telemetry") == (
        200, {"disable_ui_events": [], "disable_ui_telemetry": True, "ui_rollout_percentage": 0})
    assert rest("POST", "/ajax-api/3.0/mlflow/ui-telemetry", json={"records": [{"event": "x"}]}) == (200, {"status": "disabled"})
