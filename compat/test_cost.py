"""Cost (issue 14): a server started with --cost-model prices what runs recorded (wall and CPU
time, GPUs) per experiment and per effective run, and compares the total with cairn.budget."""

import json
import os
import subprocess
import tempfile

import pytest
import requests
from mlflow import MlflowClient

from conftest import cairn_binary, start_own_server, unique_name
from test_webhooks import Receiver

pytestmark = [pytest.mark.cairn_only, pytest.mark.single_server("starts its own server")]


_binary = cairn_binary


def test_cost_per_experiment_and_effective_run():
    data = tempfile.mkdtemp(prefix="cairn-cost.")
    prices = os.path.join(data, "prices.json")
    with open(prices, "w") as f:
        json.dump({"currency": "USD", "cpu_hour": 0.1, "gpu_hour": {"A100": 3.0, "*": 1.0}}, f)
    with open(os.path.join(data, "server.log"), "wb") as log:
        proc, uri = start_own_server(_binary(), os.path.join(data, "data"), log, "--cost-model", prices)
        try:
            client = MlflowClient(tracking_uri=uri)
            exp_id = client.create_experiment(unique_name("costly"), tags={"cairn.budget": "5"})
            for wall, cpu, gpus, status in [(3600, 7200, "NVIDIA A100-SXM4-40GB", "FINISHED"), (1800, 1800, "Tesla T4", "FAILED")]:
                run = client.create_run(exp_id, tags={"cairn.host.gpus": gpus}).info.run_id
                client.log_metric(run, "cairn.wall_time_s", wall)
                client.log_metric(run, "cairn.cpu_time_s", cpu)
                client.set_terminated(run, status)
            body = requests.get(uri + "/api/cairn/v1/cost", params={"experiment_id": exp_id}, timeout=60).json()
            (cost,) = body["experiments"]
            # 1 h of an A100 and 2 CPU hours: 3 + 0.2; half an hour of another GPU and half a CPU hour: 0.5 + 0.05.
            assert cost["currency"] == "USD" and cost["costed_runs"] == 2 and cost["finished_runs"] == 1
            assert cost["total"] == pytest.approx(3.75) and cost["cost_per_effective_run"] == pytest.approx(3.75)
            assert cost["budget"] == 5 and cost["over_budget"] is False
            dashboard = requests.get(uri + "/api/cairn/v1/dashboard", params={"experiment_id": exp_id}, timeout=60).json()
            assert dashboard["cost"]["cost_per_effective_run"] == pytest.approx(3.75) and dashboard["cost"]["over_budget"] == []
        finally:
            proc.terminate()
            proc.wait(timeout=60)


def test_a_server_without_cost_model_says_how_and_a_bad_file_stops_the_start(server_uri):
    status = requests.get(server_uri + "/api/cairn/v1/cost", timeout=60)
    assert status.status_code == 400 and "--cost-model" in status.json()["message"]
    data = tempfile.mkdtemp(prefix="cairn-cost.")
    bad = os.path.join(data, "bad.json")
    with open(bad, "w") as f:
        f.write('{"cpu_hour": "cheap"}')
    result = subprocess.run([_binary(), "server", "--data-dir", os.path.join(data, "d"), "--port", "0", "--cost-model", bad],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode != 0 and "--cost-model" in result.stderr and "not valid JSON" in result.stderr


def test_passing_the_budget_is_announced_once():
    data = tempfile.mkdtemp(prefix="cairn-cost.")
    prices = os.path.join(data, "prices.json")
    with open(prices, "w") as f:
        json.dump({"currency": "EUR", "cpu_hour": 1.0}, f)
    receiver = Receiver(failures=0)
    with open(os.path.join(data, "server.log"), "wb") as log:
        proc, uri = start_own_server(_binary(), os.path.join(data, "data"), log, "--cost-model", prices, "--webhooks-allow-private")
        try:
            reply = requests.post(uri + "/api/2.0/mlflow/webhooks", json={
                "name": "budget", "url": receiver.url, "events": [{"entity": "BUDGET_POLICY", "action": "EXCEEDED"}]}, timeout=60)
            assert reply.status_code == 200, reply.text
            client = MlflowClient(tracking_uri=uri)
            exp_id = client.create_experiment(unique_name("budgeted"), tags={"cairn.budget": "1.5"})
            runs = []
            for _ in range(3):  # 1 CPU hour each: the budget is passed by the second run
                run = client.create_run(exp_id).info.run_id
                client.log_metric(run, "cairn.cpu_time_s", 3600)
                client.set_terminated(run)
                runs.append(run)
            headers, body = receiver.wait_for(1)[0]
            payload = json.loads(body)
            assert (payload["entity"], payload["action"]) == ("budget_policy", "exceeded")
            assert payload["data"]["experiment_id"] == exp_id and payload["data"]["run_id"] == runs[1]
            assert payload["data"]["total"] == pytest.approx(2.0) and payload["data"]["currency"] == "EUR"
            assert "cairn.budget.exceeded_at" in client.get_experiment(exp_id).tags
            assert len(receiver.received) == 1  # the third run did not announce it again
        finally:
            proc.terminate()
            proc.wait(timeout=60)
            receiver.close()
