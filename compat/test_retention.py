"""Retention (issue 14) as a server operator uses it: rules as experiment tags, applied on a
schedule by the server (--retention-interval, --retention-default), and by hand with
`cairn retention plan/apply`; registered and unfinished runs are never deleted."""

import os
import subprocess
import tempfile
import time

import pytest
from mlflow import MlflowClient

from conftest import cairn_binary, environment, start_own_server, unique_name

pytestmark = [pytest.mark.cairn_only, pytest.mark.single_server("starts its own server")]


_binary = cairn_binary


def _runs(client, exp_id, count):
    ids = []
    for i in range(count):
        run = client.create_run(exp_id, start_time=1_700_000_000_000 + i * 1000, run_name=f"r{i}")
        client.log_metric(run.info.run_id, "val_acc", 0.5 + i / 100)
        client.set_terminated(run.info.run_id)
        ids.append(run.info.run_id)
    return ids


def test_server_applies_retention_on_schedule_and_spares_registered_runs():
    data = tempfile.mkdtemp(prefix="cairn-retention.")
    with open(os.path.join(data, "server.log"), "wb") as log:
        proc, uri = start_own_server(_binary(), os.path.join(data, "data"), log,
                                     "--retention-interval", "1s", "--retention-default", "keep_last=1")
        try:
            client = MlflowClient(tracking_uri=uri, registry_uri=uri)
            exp_id = client.create_experiment(unique_name("retained"))
            ids = _runs(client, exp_id, 4)
            client.create_registered_model("kept-by-registry")
            client.create_model_version("kept-by-registry", f"runs:/{ids[0]}/model", run_id=ids[0])
            untouched = client.create_experiment(unique_name("own-rule"), tags={"cairn.retention": "keep_last=10"})
            own = _runs(client, untouched, 3)
            deadline = time.monotonic() + 120  # hang protection only: waits for the server's pass
            while client.get_run(ids[1]).info.lifecycle_stage != "deleted":
                assert time.monotonic() < deadline, "the scheduled retention pass never deleted anything"
                time.sleep(0.2)
            stages = {i: client.get_run(i).info.lifecycle_stage for i in ids}
            # The newest is kept by the rule, the oldest by its registered version.
            assert stages == {ids[0]: "active", ids[1]: "deleted", ids[2]: "deleted", ids[3]: "active"}
            assert client.get_run(ids[1]).data.tags["cairn.deleted_by"] == "retention"
            assert all(client.get_run(i).info.lifecycle_stage == "active" for i in own)
        finally:
            proc.terminate()
            proc.wait(timeout=60)


def test_plan_then_apply_by_hand():
    data = tempfile.mkdtemp(prefix="cairn-retention.")
    with open(os.path.join(data, "server.log"), "wb") as log:
        proc, uri = start_own_server(_binary(), os.path.join(data, "data"), log)
        try:
            client = MlflowClient(tracking_uri=uri)
            exp_id = client.create_experiment(unique_name("by-hand"), tags={"cairn.retention": "keep_top=1:val_acc; keep_last=1"})
            ids = _runs(client, exp_id, 4)
            client.set_tag(ids[1], "keep", "true")
            cli = [_binary(), "retention"]
            plan = subprocess.run(cli + ["plan", "--data-dir", os.path.join(data, "data")], capture_output=True, text=True, timeout=300)
            assert plan.returncode == 0, plan.stderr
            assert "would delete 2 runs" in plan.stdout and ids[0] in plan.stdout and ids[2] in plan.stdout, plan.stdout
            assert client.get_run(ids[0]).info.lifecycle_stage == "active"  # plan changes nothing
            applied = subprocess.run(cli + ["apply", "--data-dir", os.path.join(data, "data")], capture_output=True, text=True, timeout=300)
            assert applied.returncode == 0, applied.stderr
            assert "Deleted 2 runs" in applied.stdout
            assert [client.get_run(i).info.lifecycle_stage for i in ids] == ["deleted", "active", "deleted", "active"]
            bad = subprocess.run(cli + ["plan", "--data-dir", os.path.join(data, "data"), "--default", "keep_forever"], capture_output=True, text=True, timeout=300)
            assert bad.returncode == 1 and "has no '='" in bad.stderr
        finally:
            proc.terminate()
            proc.wait(timeout=60)


def _audit(uri, headers, **params):
    import requests
    resp = requests.get(uri + "/api/cairn/v1/audit", headers=headers, params={"max_results": 1000, **params}, timeout=60)
    assert resp.status_code == 200, resp.text
    return resp.json().get("events", [])


def test_retention_deletions_are_audited_as_retention_or_as_the_cli_user_with_accounts_on():
    import base64
    admin_password = "admin-secret-1"
    admin = {"Authorization": "Basic " + base64.b64encode(f"admin:{admin_password}".encode()).decode()}
    data = tempfile.mkdtemp(prefix="cairn-retention.")
    with open(os.path.join(data, "server.log"), "wb") as log:
        proc, uri = start_own_server(_binary(), os.path.join(data, "data"), log, "--auth",
                                     "--retention-interval", "1s", "--retention-default", "keep_last=1",
                                     env={"CAIRN_ADMIN_PASSWORD": admin_password})
        try:
            with environment(MLFLOW_TRACKING_USERNAME="admin", MLFLOW_TRACKING_PASSWORD=admin_password):
                client = MlflowClient(tracking_uri=uri)
                scheduled = client.create_experiment(unique_name("scheduled"))
                ids = _runs(client, scheduled, 3)
                deadline = time.monotonic() + 120  # hang protection only: waits for the server's pass
                while client.get_run(ids[1]).info.lifecycle_stage != "deleted":
                    assert time.monotonic() < deadline, "the scheduled retention pass never deleted anything"
                    time.sleep(0.2)
                deletes = [e for e in _audit(uri, admin, action="run.delete") if e["target"] == f"run:{ids[1]}"]
                assert len(deletes) == 1
                assert deletes[0]["actor"] == "retention" and deletes[0]["client_address"] == "internal"
                assert deletes[0]["details"]["via"] == "retention"
                summaries = _audit(uri, admin, action="retention.apply", actor="retention")
                assert summaries and summaries[-1]["details"]["experiments"].get(scheduled, 0) >= 1

                # By hand (the server again, without its schedule): the OS user who ran the command.
                proc.terminate()
                proc.wait(timeout=60)
                proc, uri = start_own_server(_binary(), os.path.join(data, "data"), log, "--auth")
                client = MlflowClient(tracking_uri=uri)
                by_hand = client.create_experiment(unique_name("by-hand"), tags={"cairn.retention": "keep_last=1"})
                hand_ids = _runs(client, by_hand, 2)
                applied = subprocess.run([_binary(), "retention", "apply", "--data-dir", os.path.join(data, "data"), "--experiment", by_hand],
                                         capture_output=True, text=True, timeout=300, env={**os.environ, "USER": "ops-alice"})
                assert applied.returncode == 0, applied.stderr
                deletes = [e for e in _audit(uri, admin, action="run.delete") if e["target"] == f"run:{hand_ids[0]}"]
                assert len(deletes) == 1, deletes
                assert deletes[0]["actor"] == "ops-alice" and deletes[0]["client_address"] == "local"
                assert deletes[0]["details"]["via"] == "retention"
                summary = [e for e in _audit(uri, admin, action="retention.apply", actor="ops-alice")]
                assert len(summary) == 1 and summary[0]["details"]["experiments"] == {by_hand: 1}
        finally:
            proc.terminate()
            proc.wait(timeout=60)
