"""Issue 14: `cairn gc` never collects what a registered model version uses.

The reproduction, exactly as a new user hit it, with the real `mlflow` client: log a model's files as
run artifacts (`mlflow.log_artifacts(dir, "model")`), `mlflow.register_model("runs:/<run>/model", "m")`,
delete the run, run `cairn gc` on the data folder; `models:/m/1` must still download, byte for byte.
The run's other files are forgotten as before.

The test starts its own `cairn server` ($CAIRN_BINARY) on a data folder of its own, since `cairn gc`
works on the data folder, which the suite's server does not share.
"""

import json
import os
import subprocess

import pytest
import requests

import mlflow
from mlflow.tracking import MlflowClient

pytestmark = [
    pytest.mark.cairn_only,
    pytest.mark.single_server("runs a server of its own on its own data folder (cairn gc works on the folder); "
                              "the suite's servers are not involved, so it is the first pass again"),
]

BINARY = os.environ.get("CAIRN_BINARY", "").strip()


def gc(data, *flags):
    result = subprocess.run([BINARY, "gc", "--data-dir", data, *flags], capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


def test_gc_keeps_the_files_of_a_version_registered_from_a_deleted_run(own_server, tmp_path):
    uri, data = own_server
    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    model_dir = tmp_path / "model"
    model_dir.mkdir()
    files = {"MLmodel": "artifact_path: model\nflavors: {}\n", "weights.bin": "w" * 5000, "requirements.txt": "numpy\n"}
    for name, text in files.items():
        (model_dir / name).write_text(text)
    notes = tmp_path / "notes.txt"
    notes.write_text("only this run uses this file")

    experiment_id = client.create_experiment("gc-issue-14")
    with mlflow.start_run(experiment_id=experiment_id) as run:
        mlflow.log_artifacts(str(model_dir), "model")
        mlflow.log_artifact(str(notes))
    run_id = run.info.run_id
    root = f"{experiment_id}/{run_id}/artifacts"
    version = mlflow.register_model(f"runs:/{run_id}/model", "m")
    assert version.version == "1"

    # Deleting the run answers as MLflow does ({}); the run page's data says what keeps its files.
    deleted = requests.post(uri + "/api/2.0/mlflow/runs/delete", json={"run_id": run_id}, timeout=120)
    assert deleted.status_code == 200 and deleted.json() == {}, deleted.text
    listing = requests.get(uri + "/api/cairn/v1/artifacts", params={"run_id": run_id}, timeout=120).json()
    assert listing["kept_for"] == ["model m version 1"], listing

    preview = gc(data, "--dry-run")
    assert f"would forget  {root}/notes.txt" in preview, preview
    assert f"{root}/model/" not in preview, preview
    assert f"would keep  3 files of deleted run {run_id}: used by model m version 1" in preview, preview

    report = json.loads(gc(data, "--json"))
    assert report["forgotten_paths"] == [f"{root}/notes.txt"]
    assert report["kept"] == [{"run_id": run_id, "paths": [f"{root}/model/{name}" for name in sorted(files)],
                               "used_by": ["model m version 1"]}]

    # models:/m/1 still downloads, every file as logged; the run's other file is gone.
    downloaded = mlflow.artifacts.download_artifacts("models:/m/1", dst_path=str(tmp_path / "download"))
    # (registered_model_meta is written by the client itself when it downloads a models:/ URI.)
    assert sorted(set(os.listdir(downloaded)) - {"registered_model_meta"}) == sorted(files)
    for name, text in files.items():
        with open(os.path.join(downloaded, name)) as f:
            assert f.read() == text
    assert sorted(a.path for a in client.list_artifacts(run_id)) == ["model"]
    verify = subprocess.run([BINARY, "verify", "--data-dir", data], capture_output=True, text=True, timeout=600)
    assert verify.returncode == 0, verify.stdout + verify.stderr


def test_gc_and_retention_pass_over_versions_of_runs_on_another_server(own_server, tmp_path):
    # As MLflow allows, versions and a logged model name a run this server does not hold.
    uri, data = own_server
    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    remote = "0123456789abcdef0123456789abcdef"
    experiment_id = client.create_experiment("gc-remote-runs", tags={"cairn.retention": "keep_last=1"})
    client.create_registered_model("r")
    assert client.create_model_version("r", f"runs:/{remote}/model", run_id=remote).version == "1"
    model = client.create_logged_model(experiment_id, name="model", source_run_id=remote)
    proxy_path = model.artifact_location.split("mlflow-artifacts:", 1)[1].lstrip("/")
    put = requests.put(f"{uri}/api/2.0/mlflow-artifacts/artifacts/{proxy_path}/MLmodel", data=b"flavors: {}\n", timeout=120)
    assert put.status_code == 200, put.text
    version = client.create_model_version("r", f"models:/{model.model_id}", model_id=model.model_id)
    assert (version.version, version.run_id) == ("2", remote)
    local = []
    for i in range(2):
        with mlflow.start_run(experiment_id=experiment_id) as run:
            mlflow.log_text(f"run {i}", "notes.txt")
        local.append(run.info.run_id)
    client.delete_run(local[0])

    plan = subprocess.run([BINARY, "retention", "plan", "--data-dir", data], capture_output=True, text=True, timeout=300)
    assert plan.returncode == 0, plan.stdout + plan.stderr
    applied = subprocess.run([BINARY, "retention", "apply", "--data-dir", data], capture_output=True, text=True, timeout=300)
    assert applied.returncode == 0, applied.stdout + applied.stderr
    report = json.loads(gc(data, "--json"))
    assert report["forgotten_paths"] == [f"{experiment_id}/{local[0]}/artifacts/notes.txt"]
    assert report["kept"] == []
    verify = subprocess.run([BINARY, "verify", "--data-dir", data], capture_output=True, text=True, timeout=600)
    assert verify.returncode == 0, verify.stdout + verify.stderr
    # --progress: progress lines on stderr (also when it is not a terminal); stdout stays one JSON document.
    for command in [["verify"], ["gc", "--dry-run"], ["retention", "plan"]]:
        done = subprocess.run([BINARY, *command, "--json", "--progress", "--data-dir", data], capture_output=True, text=True, timeout=600)
        assert done.returncode == 0, done.stdout + done.stderr
        assert isinstance(json.loads(done.stdout), dict)
        assert done.stderr.startswith(command[0] + ": "), done.stderr

    # The versions and the logged model's files are untouched.
    assert [(v.version, v.run_id) for v in sorted(client.search_model_versions("name = 'r'"), key=lambda v: v.version)] == \
        [("1", remote), ("2", remote)]
    downloaded = mlflow.artifacts.download_artifacts(f"models:/{model.model_id}", dst_path=str(tmp_path / "download"))
    with open(os.path.join(downloaded, "MLmodel")) as f:
        assert f.read() == "flavors: {}\n"
    assert client.get_run(local[1]).info.lifecycle_stage == "active"


def test_gc_purges_the_metric_data_of_runs_deleted_longer_than_the_grace_but_not_of_registered_runs(own_server, tmp_path):
    uri, data = own_server
    client = MlflowClient(uri)
    exp = client.create_experiment("purge-" + os.urandom(4).hex())
    runs = []
    for _ in range(3):
        run = client.create_run(exp).info.run_id
        client.log_batch(run, metrics=[mlflow.entities.Metric("loss", 1.0 / (i + 1), 0, i) for i in range(100)],
                         params=[mlflow.entities.Param("lr", "0.1")])
        client.set_terminated(run)
        runs.append(run)
    purged, registered, live = runs
    client.create_registered_model("purge-kept")
    client.create_model_version("purge-kept", f"runs:/{registered}/model", run_id=registered)
    client.delete_run(purged)
    client.delete_run(registered)
    # Within the default grace (30 days) nothing is purged.
    assert json.loads(gc(data, "--json"))["purged_runs"] == []
    dry = json.loads(gc(data, "--older-than", "0s", "--dry-run", "--json"))
    assert dry["purged_runs"] == [purged] and dry["kept_deleted_runs"] == [registered]
    assert dry["purged_metric_points"] == 100 and dry["purged_rows"]["run_params"] == 1 and dry["purged_bytes"] > 0
    assert client.get_run(purged).data.metrics == {"loss": 0.01}  # a dry run changes nothing
    text = gc(data, "--older-than", "0s")
    assert f"purged  run {purged}" in text and "Purged 1 run deleted over 0s ago" in text
    gone = client.get_run(purged)
    assert gone.info.lifecycle_stage == "deleted" and gone.data.metrics == {} and gone.data.params == {}
    with pytest.raises(mlflow.exceptions.MlflowException) as refused:
        client.restore_run(purged)
    assert "purged" in str(refused.value)
    client.restore_run(registered)
    assert client.get_run(registered).data.metrics == {"loss": 0.01} and client.get_run(live).data.params == {"lr": "0.1"}
    assert client.get_metric_history(registered, "loss")[-1].step == 99
