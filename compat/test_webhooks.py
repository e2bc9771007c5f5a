"""Webhooks with the real mlflow client: `MlflowClient().create_webhook(...)` and friends against a
`cairn server` of its own (from $CAIRN_BINARY) started with --webhooks-allow-private, and a local
receiver (python http.server) that fails first and then recovers. The receiver checks the
HMAC-SHA256 signature exactly as MLflow documents it for receivers.
"""

import base64
import hashlib
import hmac
import json
import os
import signal
import shutil
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import requests
from mlflow import MlflowClient
from mlflow.entities import Metric
from mlflow.entities.webhook import WebhookEvent, WebhookStatus
from mlflow.exceptions import MlflowException

from conftest import cairn_binary, free_port, start_own_server, unique_name

pytestmark = [
    pytest.mark.cairn_only,
    pytest.mark.single_server("starts servers of its own (with and without --webhooks-allow-private) and a local receiver"),
]

SECRET = "receiver-shared-secret"


class Receiver:
    """Answers 503 to its first `failures` POSTs, then 200; keeps (headers, body) of each."""

    def __init__(self, failures, port=0):
        self.failures = failures
        self.received = []
        self.changed = threading.Condition()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                with receiver.changed:
                    receiver.received.append((dict(self.headers), body))
                    count = len(receiver.received)
                    receiver.changed.notify_all()
                self.send_response(503 if count <= receiver.failures else 200)
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def wait_for(self, count, timeout=120):  # hang protection only, not a timing assertion
        with self.changed:
            assert self.changed.wait_for(lambda: len(self.received) >= count, timeout), \
                f"the receiver got {len(self.received)} of {count} requests"
            return list(self.received)

    def close(self):
        self.server.shutdown()
        self.server.server_close()


def verify_signature(headers, body, secret):
    """The receiver side of MLflow's scheme: v1,base64(HMAC-SHA256(secret, "<id>.<timestamp>.<body>"))."""
    delivery_id = headers["X-MLflow-Delivery-Id"]
    timestamp = headers["X-MLflow-Timestamp"]
    signed = f"{delivery_id}.{timestamp}.{body.decode('utf-8')}".encode("utf-8")
    expected = "v1," + base64.b64encode(hmac.new(secret.encode("utf-8"), signed, hashlib.sha256).digest()).decode("ascii")
    return hmac.compare_digest(expected, headers["X-MLflow-Signature"])


_binary = cairn_binary


def _own_server(*args):
    data = tempfile.mkdtemp(prefix="cairn-webhooks.")
    log = open(os.path.join(data, "server.log"), "wb")
    proc, uri = start_own_server(_binary(), os.path.join(data, "data"), log, *args)
    return proc, uri, data, log


def _stop(proc, data, log):
    proc.terminate()
    proc.wait(timeout=60)
    log.close()
    shutil.rmtree(data, ignore_errors=True)


@pytest.fixture
def private_server():
    proc, uri, data, log = _own_server("--webhooks-allow-private")
    try:
        yield uri
    finally:
        _stop(proc, data, log)


def test_create_webhook_and_receive_signed_event_after_receiver_recovers(private_server):
    client = MlflowClient(tracking_uri=private_server, registry_uri=private_server)
    receiver = Receiver(failures=1)
    try:
        hook = client.create_webhook(
            name="ci-hook", url=receiver.url, events=[WebhookEvent("model_version", "created")],
            description="notify CI", secret=SECRET)
        assert hook.name == "ci-hook"
        assert hook.url == receiver.url
        assert hook.events == [WebhookEvent("model_version", "created")]
        assert hook.status == WebhookStatus.ACTIVE
        assert hook.description == "notify CI"
        assert hook.secret is None  # write-only
        assert hook.creation_timestamp > 0
        got = client.get_webhook(hook.webhook_id)
        assert (got.webhook_id, got.name, got.url, got.events) == (hook.webhook_id, "ci-hook", receiver.url, hook.events)
        assert hook.webhook_id in [w.webhook_id for w in client.list_webhooks()]

        name = unique_name("webhook-model")
        client.create_registered_model(name)
        version = client.create_model_version(name, source="s3://bucket/models/m1", description="first")
        assert version.version == "1"

        received = receiver.wait_for(2)  # the first attempt got 503; the retry after backoff got 200
        (first_headers, first_body), (headers, body) = received[0], received[1]
        assert first_headers["X-MLflow-Delivery-Id"] == headers["X-MLflow-Delivery-Id"]
        assert first_body == body
        assert headers["Content-Type"] == "application/json"
        assert verify_signature(headers, body, SECRET)
        assert not verify_signature(headers, body, "wrong-secret")
        assert abs(int(headers["X-MLflow-Timestamp"]) - time.time()) < 3600
        payload = json.loads(body)
        assert list(payload) == ["entity", "action", "timestamp", "data"]
        assert (payload["entity"], payload["action"]) == ("model_version", "created")
        assert payload["data"] == {"name": name, "version": "1", "source": "s3://bucket/models/m1", "run_id": None,
                                   "tags": {}, "description": "first"}

        # Cairn's delivery log: status, attempts and latency of what was sent.
        deadline = time.monotonic() + 120
        while True:
            reply = requests.get(private_server + "/api/cairn/v1/webhooks/deliveries",
                                 params={"webhook_id": hook.webhook_id}, timeout=60).json()
            deliveries = reply.get("deliveries", [])
            if deliveries and deliveries[0]["state"] == "delivered":
                break
            assert time.monotonic() < deadline, f"the delivery was not recorded as delivered: {reply}"
            time.sleep(0.1)
        assert len(deliveries) == 1
        assert deliveries[0]["attempts"] == 2
        assert deliveries[0]["last_status_code"] == 200
        assert deliveries[0]["event"] == "model_version.created"
        assert deliveries[0]["delivery_id"] == headers["X-MLflow-Delivery-Id"]

        # An event nobody subscribed to is not sent.
        client.set_model_version_tag(name, "1", "k", "v")

        updated = client.update_webhook(hook.webhook_id, description="changed",
                                        events=[WebhookEvent("model_version_tag", "set")])
        assert updated.description == "changed"
        assert updated.events == [WebhookEvent("model_version_tag", "set")]
        result = client.test_webhook(hook.webhook_id)
        assert result.success is True
        assert result.response_status == 200
        test_headers, test_body = receiver.wait_for(3)[2]
        assert verify_signature(test_headers, test_body, SECRET)
        assert json.loads(test_body)["data"] == {"name": "example_model", "version": "1", "key": "example_key",
                                                 "value": "example_value"}
        assert len(receiver.received) == 3  # the tag set before the update was not delivered

        disabled = client.update_webhook(hook.webhook_id, status=WebhookStatus.DISABLED)
        assert disabled.status == WebhookStatus.DISABLED
        client.delete_webhook(hook.webhook_id)
        with pytest.raises(MlflowException) as error:
            client.get_webhook(hook.webhook_id)
        assert error.value.error_code == "RESOURCE_DOES_NOT_EXIST"
    finally:
        receiver.close()


def test_cairn_run_events_reach_the_receiver(private_server):
    """Cairn's own events on the same mechanism: subscribed over REST (the mlflow client only knows
    MLflow's event names), fired by the mlflow client ending a run as FAILED."""
    receiver = Receiver(failures=0)
    try:
        reply = requests.post(private_server + "/api/2.0/mlflow/webhooks", json={
            "name": "run-alerts", "url": receiver.url, "secret": SECRET,
            "events": [{"entity": "RUN", "action": "FAILED"}, {"entity": "MODEL_VERSION", "action": "CREATED"}]}, timeout=60)
        assert reply.status_code == 200, reply.text
        webhook_id = reply.json()["webhook"]["webhook_id"]
        client = MlflowClient(tracking_uri=private_server, registry_uri=private_server)
        # The mlflow client still parses the webhook: MLflow's endpoints show it MLflow's events only.
        assert client.get_webhook(webhook_id).events == [WebhookEvent("model_version", "created")]
        full = requests.get(private_server + "/api/cairn/v1/webhooks/get", params={"webhook_id": webhook_id}, timeout=60).json()
        assert full["webhook"]["events"][0] == {"entity": "RUN", "action": "FAILED"}

        experiment_id = client.create_experiment(unique_name("webhook-runs"))
        ok = client.create_run(experiment_id)
        client.set_terminated(ok.info.run_id, "FINISHED")  # not subscribed
        bad = client.create_run(experiment_id, run_name="doomed")
        client.set_terminated(bad.info.run_id, "FAILED")
        headers, body = receiver.wait_for(1)[0]
        assert verify_signature(headers, body, SECRET)
        payload = json.loads(body)
        assert (payload["entity"], payload["action"]) == ("run", "failed")
        assert payload["data"]["run_id"] == bad.info.run_id
        assert payload["data"]["run_name"] == "doomed"
        assert payload["data"]["experiment_id"] == experiment_id
        assert payload["data"]["status"] == "FAILED"
        assert isinstance(payload["data"]["end_time"], int)
        requests.delete(private_server + f"/api/2.0/mlflow/webhooks/{webhook_id}", json={}, timeout=60)
    finally:
        receiver.close()
    assert len(receiver.received) == 1


def _subscribe(server, name, receiver, *events):
    """Subscribes the receiver to Cairn's own events over REST (the mlflow client knows only MLflow's)."""
    reply = requests.post(server + "/api/2.0/mlflow/webhooks", json={
        "name": name, "url": receiver.url, "secret": SECRET, "events": list(events)}, timeout=60)
    assert reply.status_code == 200, reply.text
    return reply.json()["webhook"]["webhook_id"]


def test_a_refused_promotion_reaches_the_receiver(private_server):
    """promotion_gate.failed: a version refused by its model's gate is announced, with every check."""
    receiver = Receiver(failures=0)
    try:
        _subscribe(private_server, "gate-alerts", receiver, {"entity": "PROMOTION_GATE", "action": "FAILED"})
        client = MlflowClient(tracking_uri=private_server, registry_uri=private_server)
        name = unique_name("gated")
        client.create_registered_model(name, tags={"cairn.gate": "require=finished"})
        run = client.create_run(client.create_experiment(unique_name("gate-hook"))).info.run_id
        version = client.create_model_version(name, f"runs:/{run}/model", run_id=run).version
        with pytest.raises(MlflowException):
            client.set_registered_model_alias(name, "prod", version)
        headers, body = receiver.wait_for(1)[0]
        assert verify_signature(headers, body, SECRET)
        payload = json.loads(body)
        assert (payload["entity"], payload["action"]) == ("promotion_gate", "failed")
        assert payload["data"]["name"] == name and payload["data"]["version"] == version and payload["data"]["alias"] == "prod"
        assert payload["data"]["checks"][0]["requirement"] == "finished" and payload["data"]["checks"][0]["passed"] is False
    finally:
        receiver.close()


def test_event_survives_a_killed_server_and_a_receiver_that_was_down():
    """Acknowledged means queued: the server is SIGKILLed right after it answered the registration,
    while the receiver is not even listening; a new server on the same data folder delivers it
    once the receiver is up."""
    port = free_port()  # nothing listens here yet: attempts get "connection refused"
    url = f"http://127.0.0.1:{port}/hook"
    proc, uri, data, log = _own_server("--webhooks-allow-private")
    receiver = None
    try:
        client = MlflowClient(tracking_uri=uri, registry_uri=uri)
        client.create_webhook(name="durable", url=url, events=[WebhookEvent("registered_model", "created")], secret=SECRET)
        name = unique_name("webhook-durable")
        client.create_registered_model(name)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=60)
        proc, uri = start_own_server(_binary(), os.path.join(data, "data"), log, "--webhooks-allow-private")
        receiver = Receiver(failures=0, port=port)
        headers, body = receiver.wait_for(1)[0]
        assert verify_signature(headers, body, SECRET)
        payload = json.loads(body)
        assert (payload["entity"], payload["action"]) == ("registered_model", "created")
        assert payload["data"] == {"name": name, "tags": {}, "description": ""}
    finally:
        if receiver is not None:
            receiver.close()
        _stop(proc, data, log)


def test_webhook_to_loopback_is_refused_without_the_flag():
    proc, uri, data, log = _own_server()
    try:
        client = MlflowClient(tracking_uri=uri, registry_uri=uri)
        for url in ["http://127.0.0.1:9/hook", "https://127.0.0.1/hook", "https://169.254.169.254/latest/meta-data",
                    "https://[::1]/hook", "https://10.1.2.3/hook"]:
            with pytest.raises(MlflowException) as error:
                client.create_webhook(name="nope", url=url, events=[WebhookEvent("registered_model", "created")])
            assert error.value.error_code == "INVALID_PARAMETER_VALUE", url
        assert list(client.list_webhooks()) == []
    finally:
        _stop(proc, data, log)


def test_a_metric_crossing_its_alert_rule_reaches_the_receiver_once_per_run_and_rule(private_server):
    """metric.threshold_crossed: the experiment tag cairn.alert (refused when it cannot be read)
    fires once per run and rule, at the first logged point that meets it, from the real client."""
    receiver = Receiver(failures=1)
    try:
        webhook_id = _subscribe(private_server, "metric-alerts", receiver, {"entity": "METRIC", "action": "THRESHOLD_CROSSED"})
        client = MlflowClient(tracking_uri=private_server)
        experiment_id = client.create_experiment(unique_name("alerted"))
        with pytest.raises(MlflowException) as bad:
            client.set_experiment_tag(experiment_id, "cairn.alert", "val_loss is high")
        assert bad.value.error_code == "INVALID_PARAMETER_VALUE" and "val_loss is high" in str(bad.value)
        with pytest.raises(MlflowException):
            client.create_experiment(unique_name("bad-alert"), tags={"cairn.alert": "metric=accuracy<0.5 after step soon"})
        assert "cairn.alert" not in client.get_experiment(experiment_id).tags  # refused: nothing changed
        client.set_experiment_tag(experiment_id, "cairn.alert", "metric=val_loss>2.0; metric=accuracy<0.5 after step 100")

        run = client.create_run(experiment_id).info.run_id
        calm = client.create_run(experiment_id).info.run_id
        for step, loss in enumerate([1.0, 1.5, 2.5, 3.0, 2.7]):  # crosses at step 2, stays above
            client.log_metric(run, "val_loss", loss, step=step)
        client.log_metric(run, "accuracy", 0.2, step=50)  # before step 100: no alert
        client.log_metric(run, "accuracy", 0.9, step=100)
        client.log_batch(run, metrics=[Metric("accuracy", 0.4, 0, 120), Metric("accuracy", 0.3, 0, 130)])
        client.log_metric(calm, "val_loss", 0.5, step=0)
        client.log_metric(calm, "accuracy", 0.9, step=200)

        received = receiver.wait_for(3)  # the first attempt was refused and retried
        payloads = [json.loads(body) for _, body in received[1:]]
        assert all(verify_signature(h, b, SECRET) for h, b in received)
        assert all((p["entity"], p["action"]) == ("metric", "threshold_crossed") for p in payloads)
        by_rule = {p["data"]["rule"]: p["data"] for p in payloads}
        assert set(by_rule) == {"val_loss>2", "accuracy<0.5 after step 100"}
        assert by_rule["val_loss>2"]["run_id"] == run and by_rule["val_loss>2"]["value"] == 2.5 and by_rule["val_loss>2"]["step"] == 2
        assert by_rule["accuracy<0.5 after step 100"]["step"] == 120
        assert by_rule["val_loss>2"]["experiment_id"] == experiment_id
        fired = client.get_run(run).data.tags["cairn.alert.fired"]
        assert set(fired.split("; ")) == {"val_loss>2", "accuracy<0.5 after step 100"}
        assert "cairn.alert.fired" not in client.get_run(calm).data.tags
        # Still above: no second delivery for the same run and rule.
        client.log_metric(run, "val_loss", 9.0, step=10)
        deliveries = requests.get(private_server + "/api/cairn/v1/webhooks/deliveries",
                                  params={"webhook_id": webhook_id}, timeout=60).json()
        assert len(deliveries["deliveries"]) == 2, deliveries
    finally:
        receiver.close()


def test_a_run_that_stops_logging_is_reported_stale_once():
    """run.stale: a RUNNING run that logs nothing for --stale-after is reported once (the run tag
    cairn.stale.notified_at says when); a finished run is not."""
    proc, uri, data, log = _own_server("--webhooks-allow-private", "--stale-after", "2s")
    receiver = Receiver(failures=0)
    try:
        webhook_id = _subscribe(uri, "stale-runs", receiver, {"entity": "RUN", "action": "STALE"})
        client = MlflowClient(tracking_uri=uri)
        experiment_id = client.create_experiment(unique_name("stale"))
        idle = client.create_run(experiment_id).info.run_id
        client.log_metric(idle, "loss", 1.0)
        done = client.create_run(experiment_id).info.run_id
        client.set_terminated(done)
        received = receiver.wait_for(1)  # the server's own check, every second with a 2 s threshold
        payload = json.loads(received[0][1])
        assert verify_signature(received[0][0], received[0][1], SECRET)
        assert (payload["entity"], payload["action"]) == ("run", "stale")
        assert payload["data"]["run_id"] == idle and payload["data"]["experiment_id"] == experiment_id
        assert "cairn.stale.notified_at" in client.get_run(idle).data.tags
        assert "cairn.stale.notified_at" not in client.get_run(done).data.tags
        # Once per run: the checks of the next seconds find it marked and queue nothing more.
        time.sleep(3)
        deliveries = requests.get(uri + "/api/cairn/v1/webhooks/deliveries", params={"webhook_id": webhook_id}, timeout=60).json()
        assert len(deliveries["deliveries"]) == 1, deliveries
    finally:
        receiver.close()
        _stop(proc, data, log)
