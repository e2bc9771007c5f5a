"""Bad input over raw REST (MLFLOW-API.md §2, §3): status codes, error codes, and all-or-nothing writes."""

import gzip
import json
import socket
from urllib.parse import urlparse

import mlflow
import pytest
from mlflow.exceptions import MlflowException

from conftest import ORACLE, SERVER_URI, unique_name

UNKNOWN_RUN = "0123456789abcdef0123456789abcdef"


def assert_error(resp, status, code):
    got_status, body = resp
    assert got_status == status, body
    assert isinstance(body, dict), body
    assert body.get("error_code") == code, body
    assert isinstance(body.get("message"), str) and body["message"]


@pytest.fixture
def run_id(client, experiment):
    return client.create_run(experiment.experiment_id).info.run_id


def test_unknown_run_is_404(rest):
    assert_error(rest("GET", "runs/get", params={"run_id": UNKNOWN_RUN}), 404, "RESOURCE_DOES_NOT_EXIST")
    assert_error(
        rest("POST", "runs/log-metric", json={"run_id": UNKNOWN_RUN, "key": "m", "value": 1, "timestamp": 1}),
        404,
        "RESOURCE_DOES_NOT_EXIST",
    )
    for path, body in (
        ("runs/log-parameter", {"run_id": UNKNOWN_RUN, "key": "p", "value": "v"}),
        ("runs/set-tag", {"run_id": UNKNOWN_RUN, "key": "t", "value": "v"}),
        ("runs/log-batch", {"run_id": UNKNOWN_RUN, "params": [{"key": "p", "value": "v"}]}),
        ("runs/update", {"run_id": UNKNOWN_RUN, "status": "FINISHED"}),
        ("runs/delete", {"run_id": UNKNOWN_RUN}),
    ):
        assert_error(rest("POST", path, json=body), 404, "RESOURCE_DOES_NOT_EXIST")
    # A malformed run id is just an unknown run for MLflow (404, not 400).
    assert_error(rest("GET", "runs/get", params={"run_id": "not a valid id!"}), 404, "RESOURCE_DOES_NOT_EXIST")
    # MLflow answers the metric history of an unknown run with an empty 200; Cairn keeps its
    # rule that an unknown id is a 404, so a typo in a run id is not mistaken for "no points".
    history = rest("GET", "metrics/get-history", params={"run_id": UNKNOWN_RUN, "metric_key": "m"})
    if ORACLE == "mlflow":
        assert history[0] == 200 and not history[1].get("metrics"), history
    else:
        assert_error(history, 404, "RESOURCE_DOES_NOT_EXIST")


def test_unknown_run_through_client(client):
    with pytest.raises(MlflowException) as err:
        client.get_run(UNKNOWN_RUN)
    assert err.value.error_code == "RESOURCE_DOES_NOT_EXIST"


def test_absent_experiment(rest, client):
    name = unique_name("compat-absent")
    assert_error(
        rest("GET", "experiments/get-by-name", params={"experiment_name": name}), 404, "RESOURCE_DOES_NOT_EXIST"
    )
    assert client.get_experiment_by_name(name) is None
    assert_error(rest("GET", "experiments/get", params={"experiment_id": "987654321"}), 404, "RESOURCE_DOES_NOT_EXIST")


def test_duplicate_experiment_name(rest, experiment):
    assert_error(rest("POST", "experiments/create", json={"name": experiment.name}), 400, "RESOURCE_ALREADY_EXISTS")


def test_experiment_name_required(rest):
    assert_error(rest("POST", "experiments/create", json={"name": ""}), 400, "INVALID_PARAMETER_VALUE")
    assert_error(rest("POST", "experiments/create", json={}), 400, "INVALID_PARAMETER_VALUE")


def test_non_integer_experiment_id(rest):
    assert_error(rest("GET", "experiments/get", params={"experiment_id": "abc"}), 400, "INVALID_PARAMETER_VALUE")


def test_log_batch_over_1000_metrics_writes_nothing(rest, client, run_id):
    metrics = [{"key": f"m{i % 7}", "value": float(i), "timestamp": 1000 + i, "step": i} for i in range(1001)]
    assert_error(
        rest("POST", "runs/log-batch", json={"run_id": run_id, "metrics": metrics, "params": [{"key": "p", "value": "1"}]}),
        400,
        "INVALID_PARAMETER_VALUE",
    )
    run = client.get_run(run_id)
    assert run.data.metrics == {}
    assert run.data.params == {}
    # Exactly 1000 is fine.
    status, _ = rest("POST", "runs/log-batch", json={"run_id": run_id, "metrics": metrics[:1000]})
    assert status == 200
    assert len(client.get_metric_history(run_id, "m0")) == 143


def test_log_batch_invalid_metric_key_writes_nothing(rest, client, run_id):
    body = {
        "run_id": run_id,
        "metrics": [
            {"key": "ok", "value": 1.0, "timestamp": 1000, "step": 0},
            {"key": "bad key!", "value": 2.0, "timestamp": 1000, "step": 0},
        ],
        "params": [{"key": "p", "value": "v"}],
        "tags": [{"key": "t", "value": "v"}],
    }
    assert_error(rest("POST", "runs/log-batch", json=body), 400, "INVALID_PARAMETER_VALUE")
    run = client.get_run(run_id)
    assert run.data.metrics == {}
    assert run.data.params == {}
    assert "t" not in run.data.tags
    assert client.get_metric_history(run_id, "ok") == []


@pytest.mark.parametrize("key", ["bad key!", "semi;colon", "../up", "/leading", "a//b", "trailing/", "q?"])
def test_invalid_keys_rejected(rest, client, run_id, key):
    assert_error(
        rest("POST", "runs/log-metric", json={"run_id": run_id, "key": key, "value": 1, "timestamp": 1}),
        400,
        "INVALID_PARAMETER_VALUE",
    )
    assert_error(
        rest("POST", "runs/log-parameter", json={"run_id": run_id, "key": key, "value": "v"}),
        400,
        "INVALID_PARAMETER_VALUE",
    )
    assert_error(
        rest("POST", "runs/set-tag", json={"run_id": run_id, "key": key, "value": "v"}), 400, "INVALID_PARAMETER_VALUE"
    )
    run = client.get_run(run_id)
    assert key not in run.data.metrics and key not in run.data.params and key not in run.data.tags


def test_valid_unusual_keys_accepted(rest, client, run_id):
    keys = ["a b", "dir/sub/leaf", "x-y_z.w", "ns:key", "ünïcode"]
    for key in keys:
        status, body = rest("POST", "runs/log-metric", json={"run_id": run_id, "key": key, "value": 1, "timestamp": 1})
        assert status == 200, (key, body)
    assert set(client.get_run(run_id).data.metrics) == set(keys)


def test_log_batch_duplicate_param_keys(rest, client, run_id):
    for values in (("1", "2"), ("1", "1")):
        body = {"run_id": run_id, "params": [{"key": "p", "value": values[0]}, {"key": "p", "value": values[1]}]}
        assert_error(rest("POST", "runs/log-batch", json=body), 400, "INVALID_PARAMETER_VALUE")
    assert client.get_run(run_id).data.params == {}


def test_log_batch_changing_param_writes_nothing(rest, client, run_id):
    client.log_param(run_id, "p", "1")
    body = {
        "run_id": run_id,
        "metrics": [{"key": "m", "value": 1.0, "timestamp": 1000, "step": 0}],
        "params": [{"key": "q", "value": "new"}, {"key": "p", "value": "2"}],
    }
    assert_error(rest("POST", "runs/log-batch", json=body), 400, "INVALID_PARAMETER_VALUE")
    run = client.get_run(run_id)
    assert run.data.params == {"p": "1"}
    assert run.data.metrics == {}


def test_log_metric_missing_fields(rest, client, run_id):
    assert_error(
        rest("POST", "runs/log-metric", json={"run_id": run_id, "key": "m", "value": 1.0}),
        400,
        "INVALID_PARAMETER_VALUE",
    )
    assert_error(
        rest("POST", "runs/log-metric", json={"run_id": run_id, "value": 1.0, "timestamp": 1}),
        400,
        "INVALID_PARAMETER_VALUE",
    )
    assert_error(
        rest("POST", "runs/log-metric", json={"run_id": run_id, "key": "m", "timestamp": 1}),
        400,
        "INVALID_PARAMETER_VALUE",
    )
    assert client.get_run(run_id).data.metrics == {}


def test_log_metric_wire_forms(rest, client, run_id):
    """int64 as JSON numbers or decimal strings, non-finite doubles as strings; step defaults to 0."""
    for body in (
        {"run_id": run_id, "key": "num", "value": 1.5, "timestamp": 1000, "step": 2},
        {"run_id": run_id, "key": "str", "value": 2.5, "timestamp": "1000", "step": "3"},
        {"run_uuid": run_id, "key": "uuid", "value": 3, "timestamp": 1000},
        {"run_id": run_id, "key": "nan", "value": "NaN", "timestamp": 1000},
    ):
        status, resp = rest("POST", "runs/log-metric", json=body)
        assert (status, resp) == (200, {}), body
    hist = {k: client.get_metric_history(run_id, k)[0] for k in ("num", "str", "uuid")}
    assert (hist["num"].value, hist["num"].step, hist["num"].timestamp) == (1.5, 2, 1000)
    assert (hist["str"].value, hist["str"].step, hist["str"].timestamp) == (2.5, 3, 1000)
    assert (hist["uuid"].value, hist["uuid"].step) == (3.0, 0)
    status, body = rest("GET", "runs/get", params={"run_id": run_id})
    wire = {m["key"]: m for m in body["run"]["data"]["metrics"]}
    assert wire["nan"]["value"] == "NaN"
    assert wire["num"]["timestamp"] == 1000 and wire["num"]["step"] == 2  # int64 answered as JSON numbers


def test_writes_to_deleted_run_rejected(rest, client, run_id):
    client.log_param(run_id, "kept", "1")
    client.delete_run(run_id)
    for path, body in (
        ("runs/log-metric", {"run_id": run_id, "key": "m", "value": 1, "timestamp": 1}),
        ("runs/log-parameter", {"run_id": run_id, "key": "p", "value": "v"}),
        ("runs/set-tag", {"run_id": run_id, "key": "t", "value": "v"}),
        ("runs/log-batch", {"run_id": run_id, "metrics": [{"key": "m", "value": 1, "timestamp": 1}]}),
    ):
        assert_error(rest("POST", path, json=body), 400, "INVALID_PARAMETER_VALUE")
    run = client.get_run(run_id)
    assert run.data.metrics == {}
    assert run.data.params == {"kept": "1"}
    assert "t" not in run.data.tags


def test_fluent_log_param_change_keeps_old_value(client, experiment):
    with mlflow.start_run(experiment_id=experiment.experiment_id) as active:
        mlflow.log_param("lr", 0.1)
        with pytest.raises(MlflowException) as err:
            mlflow.log_param("lr", 0.2)
        assert err.value.error_code == "INVALID_PARAMETER_VALUE"
        mlflow.log_param("lr", 0.1)  # same value again is fine
    assert client.get_run(active.info.run_id).data.params == {"lr": "0.1"}


def test_create_run_conflicting_run_name_tag(rest, experiment):
    body = {
        "experiment_id": experiment.experiment_id,
        "run_name": "one",
        "tags": [{"key": "mlflow.runName", "value": "two"}],
        "start_time": 1000,
    }
    assert_error(rest("POST", "runs/create", json=body), 400, "INVALID_PARAMETER_VALUE")


def test_create_run_in_unknown_experiment(rest):
    assert_error(
        rest("POST", "runs/create", json={"experiment_id": "987654321", "start_time": 1000}),
        404,
        "RESOURCE_DOES_NOT_EXIST",
    )


def test_search_bad_max_results(rest, experiment):
    assert_error(
        rest("POST", "runs/search", json={"experiment_ids": [experiment.experiment_id], "max_results": 50001}),
        400,
        "INVALID_PARAMETER_VALUE",
    )
    assert_error(rest("POST", "experiments/search", json={"max_results": 0}), 400, "INVALID_PARAMETER_VALUE")


# ---- Cairn-only: places where MLflow is buggy or unfriendly ----


@pytest.mark.cairn_only
def test_malformed_json_body(rest, run_id, client):
    # MLflow silently treats an unparsable body as {} and fails later on a missing field.
    resp = rest(
        "POST",
        "runs/log-metric",
        data='{"run_id": "' + run_id + '", "key": "m", "value": 1, "timestamp": 1',
        headers={"Content-Type": "application/json"},
    )
    assert_error(resp, 400, "INVALID_PARAMETER_VALUE")
    assert client.get_run(run_id).data.metrics == {}


@pytest.mark.cairn_only
def test_unknown_route_is_json_404(rest):
    # MLflow answers an HTML 404 page.
    assert_error(rest("GET", "nope"), 404, "ENDPOINT_NOT_FOUND")
    assert_error(rest("POST", "nope", json={}), 404, "ENDPOINT_NOT_FOUND")


@pytest.mark.cairn_only
def test_changes_to_a_deleted_experiment_are_refused(rest, client, experiment):
    # MLflow answers the rename with a 500 INVALID_STATE (which the client retries); Cairn says 400.
    exp_id = experiment.experiment_id
    client.set_experiment_tag(exp_id, "k", "v")
    client.delete_experiment(exp_id)
    new_name = unique_name("renamed")
    assert_error(rest("POST", "experiments/update", json={"experiment_id": exp_id, "new_name": new_name}),
                 400, "INVALID_PARAMETER_VALUE")
    assert_error(rest("POST", "experiments/set-experiment-tag",
                      json={"experiment_id": exp_id, "key": "k", "value": "changed"}),
                 400, "INVALID_PARAMETER_VALUE")
    stored = client.get_experiment(exp_id)
    assert stored.name != new_name
    assert stored.tags["k"] == "v"
    assert stored.lifecycle_stage == "deleted"


# ---- The HTTP layer: requests the HTTP/1.1 decoder refuses, over a raw socket ----

# Behind a load balancer the balancer's own HTTP parser meets these bytes first (and answers or
# rewrites them as it sees fit), so these tests would test the balancer, not Cairn.
raw_http = pytest.mark.single_server("sends malformed HTTP/1.1 over a raw socket to test Cairn's own HTTP decoder; "
                                     "behind a load balancer the balancer's parser would answer instead")


def raw_exchange(request_bytes):
    """Sends `request_bytes` on a fresh connection and reads until the server closes it.
    Returns (status, headers with lower-case names, body bytes); the server must close the
    connection after such a reply, so a hang fails the test after 15 s."""
    url = urlparse(SERVER_URI)
    with socket.create_connection((url.hostname, url.port), timeout=15) as sock:
        sock.sendall(request_bytes)
        received = b""
        while True:
            chunk = sock.recv(65536)
            if not chunk:
                break
            received += chunk
    head, _, body = received.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split(" ")[1])
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    assert int(headers.get("content-length", "-1")) == len(body), received[:500]
    return status, headers, body


def assert_raw_error(reply, status, code):
    got_status, headers, body = reply
    assert got_status == status, body
    assert headers.get("content-type") == "application/json", headers
    parsed = json.loads(body)
    assert parsed.get("error_code") == code, parsed
    assert isinstance(parsed.get("message"), str) and parsed["message"], parsed
    assert set(parsed) == {"error_code", "message"}, parsed
    return parsed["message"]


def assert_still_serving(rest):
    assert rest("GET", "/health") == (200, "OK")


def chunked_create(name, after_first_chunk):
    body = json.dumps({"name": name}).encode()
    return (
        b"POST /api/2.0/mlflow/experiments/create HTTP/1.1\r\nHost: t\r\n"
        b"Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
        + b"%x\r\n" % len(body) + body + b"\r\n" + after_first_chunk
    )


@pytest.mark.cairn_only
@raw_http
def test_malformed_chunk_size_is_400_and_creates_nothing(rest):
    name = unique_name("raw-chunk")
    # A well-formed request first: the framing, not the JSON, is what is tested below.
    status, _, body = raw_exchange(chunked_create(unique_name("raw-ok"), b"0\r\n\r\n").replace(b"Host: t\r\n", b"Host: t\r\nConnection: close\r\n"))
    assert status == 200, body
    message = assert_raw_error(raw_exchange(chunked_create(name, b"zz\r\nxyz\r\n0\r\n\r\n")), 400, "INVALID_PARAMETER_VALUE")
    assert "chunk" in message
    assert_error(rest("GET", "experiments/get-by-name", params={"experiment_name": name}), 404, "RESOURCE_DOES_NOT_EXIST")
    # The same broken framing on a GET whose route never reads a body: the 400 replaces the reply.
    broken_get = b"GET /health HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n\r\n"
    assert_raw_error(raw_exchange(broken_get), 400, "INVALID_PARAMETER_VALUE")
    assert_still_serving(rest)


@pytest.mark.cairn_only
@raw_http
def test_unsupported_transfer_encoding_is_501_and_creates_nothing(rest):
    name = unique_name("raw-gzip")
    payload = gzip.compress(json.dumps({"name": name}).encode())
    request = (
        b"POST /api/2.0/mlflow/experiments/create HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n"
        b"Transfer-Encoding: gzip\r\n\r\n" + payload
    )
    message = assert_raw_error(raw_exchange(request), 501, "NOT_IMPLEMENTED")
    assert "gzip" in message
    # gzip then chunked is valid framing, so it reaches the server proper: refused the same way.
    request = (
        b"POST /api/2.0/mlflow/experiments/create HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n"
        b"Connection: close\r\nTransfer-Encoding: gzip, chunked\r\n\r\n"
        + b"%x\r\n" % len(payload) + payload + b"\r\n0\r\n\r\n"
    )
    assert_raw_error(raw_exchange(request), 501, "NOT_IMPLEMENTED")
    assert_error(rest("GET", "experiments/get-by-name", params={"experiment_name": name}), 404, "RESOURCE_DOES_NOT_EXIST")
    assert_still_serving(rest)


@pytest.mark.cairn_only
@raw_http
def test_request_line_over_80_kib_is_400(rest):
    name = "x" * (82 * 1024)
    request = b"GET /api/2.0/mlflow/experiments/get-by-name?experiment_name=" + name.encode() + b" HTTP/1.1\r\nHost: t\r\n\r\n"
    message = assert_raw_error(raw_exchange(request), 400, "INVALID_PARAMETER_VALUE")
    assert "80 KiB" in message
    assert_still_serving(rest)


@pytest.mark.cairn_only
@raw_http
@pytest.mark.parametrize("target", [b"/\xff", b"/api/2.0/mlflow/experiments/get-by-name?experiment_name=caf\xc3\xa9\xff"])
def test_raw_non_ascii_bytes_in_the_path_are_400(rest, target):
    request = b"GET " + target + b" HTTP/1.1\r\nHost: t\r\n\r\n"
    assert_raw_error(raw_exchange(request), 400, "INVALID_PARAMETER_VALUE")
    assert_still_serving(rest)


# ---- Wrong JSON types: refused, never converted (MLflow's schema check and its words) ----

HINT = "See the API docs for more information about request parameters."


def wrong_type_message(field, shown, python_type):
    return f"Invalid value {shown} for parameter '{field}' supplied:  Hint: Value was of type '{python_type}'. {HINT}"


WRONG_TYPES = [(123, "123", "int"), (9.0, "9.0", "float"), (True, "true", "bool"), (["a"], '["a"]', "list"),
               ({"a": 1}, '{"a":1}', "dict")]


@pytest.mark.parametrize("value,shown,python_type", WRONG_TYPES, ids=[t[2] for t in WRONG_TYPES])
def test_experiment_create_string_fields_refuse_other_types(rest, value, shown, python_type):
    name = unique_name("compat-typed")
    resp = rest("POST", "experiments/create", json={"name": value})
    assert_error(resp, 400, "INVALID_PARAMETER_VALUE")
    assert resp[1]["message"] == wrong_type_message("name", shown, python_type)
    resp = rest("POST", "experiments/create", json={"name": name, "artifact_location": value})
    assert_error(resp, 400, "INVALID_PARAMETER_VALUE")
    assert resp[1]["message"] == wrong_type_message("artifact_location", shown, python_type)
    assert_error(rest("GET", "experiments/get-by-name", params={"experiment_name": name}), 404, "RESOURCE_DOES_NOT_EXIST")
    assert_error(rest("GET", "experiments/get-by-name", params={"experiment_name": shown}), 404, "RESOURCE_DOES_NOT_EXIST")


@pytest.mark.parametrize("value,shown,python_type", WRONG_TYPES, ids=[t[2] for t in WRONG_TYPES])
def test_run_writes_refuse_non_strings_in_string_fields(rest, client, run_id, value, shown, python_type):
    for path, body, field in (
        ("runs/log-metric", {"run_id": value, "key": "m", "value": 1, "timestamp": 1}, "run_id"),
        ("runs/log-metric", {"run_id": run_id, "key": value, "value": 1, "timestamp": 1}, "key"),
        ("runs/log-parameter", {"run_id": run_id, "key": "p", "value": value}, "value"),
        ("runs/log-parameter", {"run_id": run_id, "key": value, "value": "v"}, "key"),
        ("runs/set-tag", {"run_id": run_id, "key": "t", "value": value}, "value"),
        ("runs/set-tag", {"run_uuid": value, "key": "t", "value": "v"}, "run_id"),  # MLflow names run_uuid 'run_id'
    ):
        resp = rest("POST", path, json=body)
        assert_error(resp, 400, "INVALID_PARAMETER_VALUE")
        assert resp[1]["message"] == wrong_type_message(field, shown, python_type), (path, body)
    run = client.get_run(run_id)
    assert run.data.metrics == {} and run.data.params == {} and "t" not in run.data.tags


def test_unknown_run_id_as_a_number_is_invalid_not_unknown(rest):
    # MLflow's own test: "Invalid value 31 for parameter 'run_id' supplied".
    resp = rest("POST", "runs/log-metric", json={"run_id": 31, "key": "m", "value": 1, "timestamp": 1})
    assert_error(resp, 400, "INVALID_PARAMETER_VALUE")
    assert "Invalid value 31 for parameter 'run_id' supplied" in resp[1]["message"]


def test_numbers_as_strings_are_read_and_other_strings_refused(rest, client, run_id):
    # Protobuf reads an integer field's string as an integer or an integral number ("3.0", "1e3"),
    # and a number field's string as Python's float() does (surrounding spaces allowed).
    for key, body, expected in (
        ("s", {"value": "2.5", "timestamp": "7", "step": "3"}, (2.5, 7, 3)),
        ("f", {"value": " 4.5 ", "timestamp": "1e3", "step": "3.0"}, (4.5, 1000, 3)),
        ("n", {"value": "-1E2", "timestamp": 5.0, "step": "-2"}, (-100.0, 5, -2)),
    ):
        assert rest("POST", "runs/log-metric", json={"run_id": run_id, "key": key, **body}) == (200, {})
        point = client.get_metric_history(run_id, key)[0]
        assert (point.value, point.timestamp, point.step) == expected, key
    for field, body in (
        ("step", {"run_id": run_id, "key": "x", "value": 1, "timestamp": 1, "step": "x"}),
        ("timestamp", {"run_id": run_id, "key": "x", "value": 1, "timestamp": "x"}),
        ("value", {"run_id": run_id, "key": "x", "value": "x", "timestamp": 1}),
        ("value", {"run_id": run_id, "key": "x", "value": "0x10", "timestamp": 1}),
        ("step", {"run_id": run_id, "key": "x", "value": 1, "timestamp": 1, "step": "2.5"}),
        ("timestamp", {"run_id": run_id, "key": "x", "value": 1, "timestamp": "0x10"}),
    ):
        resp = rest("POST", "runs/log-metric", json=body)
        assert_error(resp, 400, "INVALID_PARAMETER_VALUE")
        shown = json.dumps(body[field])
        assert resp[1]["message"] == wrong_type_message(field, shown, "str"), body
    assert set(client.get_run(run_id).data.metrics) == {"s", "f", "n"}


@pytest.mark.cairn_only
def test_coercions_mlflow_stores_are_refused(rest, client, run_id):
    # MLflow accepts these and stores something else: step 3.5 and step true become 0, value true
    # becomes 1.0, and inside log-batch a number as a param value becomes "" and "x" as a metric
    # value becomes 0.0 at timestamp 0. Cairn refuses them, naming the field.
    for path, body, field, shown, python_type in (
        ("runs/log-metric", {"run_id": run_id, "key": "m", "value": 1, "timestamp": 1, "step": 3.5}, "step", "3.5", "float"),
        ("runs/log-metric", {"run_id": run_id, "key": "m", "value": 1, "timestamp": 1, "step": True}, "step", "true", "bool"),
        ("runs/log-metric", {"run_id": run_id, "key": "m", "value": True, "timestamp": 1}, "value", "true", "bool"),
        ("runs/log-metric", {"run_id": run_id, "key": "m", "value": {}, "timestamp": 1}, "value", "{}", "dict"),
        ("runs/log-batch", {"run_id": run_id, "params": [{"key": "p", "value": 5}]}, "params[0].value", "5", "int"),
        ("runs/log-batch", {"run_id": run_id, "tags": [{"key": "t", "value": True}]}, "tags[0].value", "true", "bool"),
        ("runs/log-batch", {"run_id": run_id, "metrics": [{"key": 5, "value": 1, "timestamp": 1}]}, "metrics[0].key", "5", "int"),
        ("runs/log-batch", {"run_id": run_id, "metrics": [{"key": "m", "value": "x", "timestamp": 1}]}, "metrics[0].value", '"x"', "str"),
        ("runs/log-batch", {"run_id": run_id, "metrics": [{"key": "m", "value": 1, "timestamp": 1, "step": 4.5}]}, "metrics[0].step", "4.5", "float"),
        ("experiments/create", {"name": unique_name("compat-typed"), "tags": [{"key": "k", "value": 5}]}, "tags[0].value", "5", "int"),
        ("runs/search", {"experiment_ids": [0]}, "experiment_ids[0]", "0", "int"),
    ):
        resp = rest("POST", path, json=body)
        assert_error(resp, 400, "INVALID_PARAMETER_VALUE")
        assert resp[1]["message"] == wrong_type_message(field, shown, python_type), (path, body)
    run = client.get_run(run_id)
    assert run.data.metrics == {} and run.data.params == {} and "t" not in run.data.tags


def test_limits_and_ids_in_mlflows_words(rest):
    for method, path, kw, message in (
        ("GET", "experiments/get", {"params": {"experiment_id": "abc"}},
         "Invalid experiment ID 'abc'. Experiment ID must be a valid integer."),
        ("POST", "experiments/create", {"json": {"name": ""}}, f"Missing value for required parameter 'name'. {HINT}"),
        ("GET", "experiments/search", {"params": {"max_results": "0"}},
         "Invalid value 0 for parameter 'max_results' supplied. It must be a positive integer"),
        ("GET", "experiments/search", {"params": {}},
         "Invalid value 0 for parameter 'max_results' supplied. It must be a positive integer"),
        ("GET", "experiments/search", {"params": {"max_results": "50001"}},
         "Invalid value 50001 for parameter 'max_results' supplied. It must be at most 50000"),
        ("GET", "model-versions/search", {"params": {"max_results": "0"}},
         "Invalid value for max_results. It must be a positive integer, but got 0"),
    ):
        resp = rest(method, path, **kw)
        assert_error(resp, 400, "INVALID_PARAMETER_VALUE")
        assert resp[1]["message"] == message, (path, kw)


def test_an_empty_required_string_is_missing(rest, client, experiment, run_id):
    # MLflow reads "" in a required field as absent, naming the field (at any depth).
    eid = experiment.experiment_id
    for path, body, field in (
        ("runs/log-metric", {"run_id": run_id, "key": "", "value": 1, "timestamp": 1}, "key"),
        ("runs/log-parameter", {"run_id": run_id, "key": "", "value": "v"}, "key"),
        ("runs/set-tag", {"run_id": run_id, "key": "", "value": "v"}, "key"),
        ("runs/log-batch", {"run_id": run_id, "params": [{"key": "", "value": "v"}]}, "params[0].key"),
        ("runs/log-batch", {"run_id": run_id, "metrics": [{"key": "", "value": 1, "timestamp": 1}]}, "metrics[0].key"),
        ("runs/log-batch", {"run_id": run_id, "tags": [{"key": "ok", "value": "v"}, {"key": "", "value": "v"}]}, "tags[1].key"),
        ("experiments/set-experiment-tag", {"experiment_id": eid, "key": "", "value": "v"}, "key"),
        ("experiments/update", {"experiment_id": eid, "new_name": ""}, "new_name"),
        ("experiments/update", {"experiment_id": eid}, "new_name"),
        ("experiments/create", {"name": ""}, "name"),
    ):
        resp = rest("POST", path, json=body)
        assert_error(resp, 400, "INVALID_PARAMETER_VALUE")
        assert resp[1]["message"] == f"Missing value for required parameter '{field}'. {HINT}", (path, body)
    run = client.get_run(run_id)
    assert run.data.metrics == {} and run.data.params == {} and "ok" not in run.data.tags
    assert client.get_experiment(eid).name == experiment.name and client.get_experiment(eid).tags == experiment.tags


@pytest.mark.cairn_only
def test_out_of_range_page_sizes_are_refused_in_the_stores_words(rest):
    # MLflow answers registered-models/search max_results=0 with an empty page whose token
    # loops, and an over-limit value there or in runs/search with a type hint that does not fit.
    for method, path, kw, message in (
        ("GET", "registered-models/search", {"params": {"max_results": "0"}},
         "Invalid value for max_results. It must be a positive integer, but got 0"),
        ("GET", "registered-models/search", {"params": {"max_results": "1001"}},
         "Invalid value for request parameter max_results. It must be at most 1000, but got value 1001"),
        ("POST", "runs/search", {"json": {"max_results": 50001}},
         "Invalid value 50001 for parameter 'max_results' supplied. It must be at most 50000"),
    ):
        resp = rest(method, path, **kw)
        assert_error(resp, 400, "INVALID_PARAMETER_VALUE")
        assert resp[1]["message"] == message, (path, kw)


@pytest.mark.cairn_only
def test_what_mlflow_ignores_is_refused_too(rest, client, experiment, run_id):
    # MLflow ignores these (an unknown enum name, a bool in an enum field, a string where a list
    # belongs, a query parameter it cannot read) and answers as if they were absent.
    client.log_metric(run_id, "m", 1.0)
    for method, path, kw, field in (
        ("POST", "experiments/search", {"json": {"max_results": 10, "view_type": "x"}}, "view_type"),
        ("POST", "runs/search", {"json": {"experiment_ids": [experiment.experiment_id], "run_view_type": True}}, "run_view_type"),
        ("POST", "runs/create", {"json": {"experiment_id": experiment.experiment_id, "tags": "x"}}, "tags"),
        ("GET", "metrics/get-history", {"params": {"run_id": run_id, "metric_key": "m", "max_results": "x"}}, "max_results"),
    ):
        resp = rest(method, path, **kw)
        assert_error(resp, 400, "INVALID_PARAMETER_VALUE")
        assert f"'{field}'" in resp[1]["message"], (path, resp)
    model = client.create_logged_model(experiment.experiment_id, name="m")
    resp = rest("GET", f"logged-models/{model.model_id}", params={"allow_deleted": "yes"})
    assert_error(resp, 400, "INVALID_PARAMETER_VALUE")
    assert resp[1]["message"] == "Invalid boolean value: yes, must be 'true' or 'false'."
    # Nothing was created or changed.
    assert [r.info.run_id for r in client.search_runs([experiment.experiment_id])] == [run_id]


@pytest.mark.cairn_only
def test_an_experiment_name_of_spaces_is_missing(rest):
    # MLflow creates an experiment named "   ".
    resp = rest("POST", "experiments/create", json={"name": "   "})
    assert_error(resp, 400, "INVALID_PARAMETER_VALUE")
    assert resp[1]["message"] == f"Missing value for required parameter 'name'. {HINT}"
    assert_error(rest("GET", "experiments/get-by-name", params={"experiment_name": "   "}), 404, "RESOURCE_DOES_NOT_EXIST")


@pytest.mark.cairn_only
def test_logged_model_id_in_the_path_is_enough(rest, client, experiment):
    # MLflow also wants model_id in the body of these two (400 without it); the path names the model.
    model = client.create_logged_model(experiment.experiment_id, name="m")
    assert rest("POST", f"logged-models/{model.model_id}/params", json={"params": [{"key": "k", "value": "v"}]}) == (200, {})
    status, body = rest("PATCH", f"logged-models/{model.model_id}", json={"status": "LOGGED_MODEL_READY"})
    assert status == 200 and body["model"]["info"]["status"] == "LOGGED_MODEL_READY", body
    got = client.get_logged_model(model.model_id)
    assert got.params == {"k": "v"} and str(got.status) == "READY"


@pytest.mark.cairn_only
def test_a_run_created_without_start_time_starts_now(rest, experiment):
    # MLflow starts it at 0 (1970); the client always sends start_time.
    import time

    before = int(time.time() * 1000)
    status, body = rest("POST", "runs/create", json={"experiment_id": experiment.experiment_id})
    assert status == 200, body
    assert before <= body["run"]["info"]["start_time"] <= int(time.time() * 1000)


# ---- get-history-bulk-interval and get-history: MLflow's checks and words ----


def test_bulk_interval_checks_its_fields(rest, run_id):
    path = "metrics/get-history-bulk-interval"
    for params, message in (
        ({"run_ids": run_id, "metric_key": ""}, f"Missing value for required parameter 'metric_key'. {HINT}"),
        ({"run_ids": run_id}, f"Missing value for required parameter 'metric_key'. {HINT}"),
        ({"metric_key": "m"}, f"Missing value for required parameter 'run_ids'. {HINT}"),
        ({"run_ids": run_id, "metric_key": "m", "start_step": 5},
         "If either start step or end step are specified, both must be specified."),
        ({"run_ids": run_id, "metric_key": "m", "end_step": 5},
         "If either start step or end step are specified, both must be specified."),
        ({"run_ids": run_id, "metric_key": "m", "start_step": 5, "end_step": 2},
         "end_step must be greater than start_step. Found start_step=5 and end_step=2."),
        ({"run_ids": run_id, "metric_key": "m", "start_step": "x", "end_step": 5},
         wrong_type_message("start_step", '"x"', "str")),
        ({"run_ids": run_id, "metric_key": "m", "max_results": 0}, f"max_results must be between 1 and 2500. {HINT}"),
        ({"run_ids": run_id, "metric_key": "m", "max_results": 2501}, f"max_results must be between 1 and 2500. {HINT}"),
        ({"run_ids": [UNKNOWN_RUN] * 101, "metric_key": "m"},
         f"GetMetricHistoryBulkInterval request must specify at most 100 run_ids. Received 101 run_ids. {HINT}"),
    ):
        resp = rest("GET", path, params=params)
        assert_error(resp, 400, "INVALID_PARAMETER_VALUE")
        assert resp[1]["message"] == message, params
    resp = rest("GET", "metrics/get-history", params={"run_id": run_id, "metric_key": ""})
    assert_error(resp, 400, "INVALID_PARAMETER_VALUE")
    assert resp[1]["message"] == f"Missing value for required parameter 'metric_key'. {HINT}"


# ---- experiments/create: where the artifact location is ----


def test_relative_artifact_location_is_made_absolute_on_the_server(rest, client):
    # MLflow resolves a relative local path against the server's working directory.
    leaf = unique_name("compat-rel")
    for given, check in (
        (f"relative/{leaf}", lambda loc: loc.startswith("/") and loc.endswith(f"/relative/{leaf}")),
        (f"./{leaf}-dot", lambda loc: loc.startswith("/") and loc.endswith(f"/{leaf}-dot") and "/./" not in loc),
        (f"file:{leaf}-file", lambda loc: loc.startswith("file:///") and loc.endswith(f"/{leaf}-file")),
        (f"/tmp/{leaf}-abs", lambda loc: loc == f"/tmp/{leaf}-abs"),
        (f"s3://compat-bucket/{leaf}", lambda loc: loc == f"s3://compat-bucket/{leaf}"),
    ):
        status, body = rest("POST", "experiments/create", json={"name": unique_name("compat-loc"), "artifact_location": given})
        assert status == 200, body
        location = client.get_experiment(body["experiment_id"]).artifact_location
        assert check(location), (given, location)
    resp = rest("POST", "experiments/create", json={"name": unique_name("compat-loc"), "artifact_location": "runs:/abc/x"})
    assert_error(resp, 400, "INVALID_PARAMETER_VALUE")
    assert "runs:/" in resp[1]["message"]
