"""Shared setup of the compat suite.

The suite drives a tracking server over HTTP with the real `mlflow` client and raw REST calls.
It must pass against the real MLflow server (COMPAT_ORACLE=mlflow, Cairn-only tests skipped) and
against Cairn.

    CAIRN_TRACKING_URI=http://127.0.0.1:5000 pytest -q compat
    CAIRN_TRACKING_URI=http://127.0.0.1:5055 COMPAT_ORACLE=mlflow pytest -q compat

With CAIRN_TRACKING_URIS=uri1,uri2 and pytest-xdist (`-n 2 --dist loadfile`; scripts/test's first pass), each
worker takes its own server from the list (worker gwN the Nth) as its CAIRN_TRACKING_URI: whole files go to
one worker, so a file's tests keep their order and their server, as in a run on one process.

With CAIRN_COMPAT_REPLICAS=N (N > 1; scripts/test sets it for its second pass), CAIRN_TRACKING_URI is a
load balancer in front of N Cairn replicas on one store, and tests marked `single_server(reason)` are
skipped there with their reason: they start, kill or restart a server of their own, or test the HTTP
layer of the one process they talk to, so a second run behind a balancer would repeat the first pass or
test the balancer instead.
"""

import contextlib
import os
import socket
import subprocess
import sys
import time
import uuid

import pytest

_URIS = [uri.strip() for uri in os.environ.get("CAIRN_TRACKING_URIS", "").split(",") if uri.strip()]
if _URIS:
    # The xdist controller (no worker id) checks the first server; the workers use theirs.
    _WORKER = os.environ.get("PYTEST_XDIST_WORKER", "gw0")
    os.environ["CAIRN_TRACKING_URI"] = _URIS[int(_WORKER.removeprefix("gw") or 0) % len(_URIS)]
SERVER_URI = os.environ.get("CAIRN_TRACKING_URI", "").strip().rstrip("/")
ORACLE = os.environ.get("COMPAT_ORACLE", "").strip().lower()
REPLICAS = int(os.environ.get("CAIRN_COMPAT_REPLICAS", "1").strip() or "1")

# The client reads these lazily, but set them before mlflow is imported anywhere to be safe.
if SERVER_URI:
    os.environ["MLFLOW_TRACKING_URI"] = SERVER_URI
os.environ["MLFLOW_HTTP_REQUEST_MAX_RETRIES"] = "0"  # a 5xx must fail now, not after minutes of retries
# Hang protection only, generous so a slow answer on a busy machine is never a failure.
os.environ["MLFLOW_HTTP_REQUEST_TIMEOUT"] = "120"
os.environ["MLFLOW_DISABLE_TELEMETRY"] = "true"
os.environ["MLFLOW_ENABLE_ASYNC_LOGGING"] = "false"
os.environ.pop("MLFLOW_EXPERIMENT_ID", None)
os.environ.pop("MLFLOW_EXPERIMENT_NAME", None)
os.environ.pop("MLFLOW_RUN_ID", None)

import mlflow  # noqa: E402
import requests  # noqa: E402
from mlflow.tracking import MlflowClient  # noqa: E402

API = "/api/2.0/mlflow/"


def pytest_configure(config):
    config.addinivalue_line(
        "markers",
        "cairn_only: Cairn extension / deliberate difference from MLflow; skipped when COMPAT_ORACLE=mlflow",
    )
    config.addinivalue_line(
        "markers",
        "single_server(reason): needs one server process of its own or talks to the HTTP layer of exactly one; "
        "skipped, with the reason, when CAIRN_COMPAT_REPLICAS > 1",
    )
    if not SERVER_URI:
        raise pytest.UsageError(
            "CAIRN_TRACKING_URI is not set: point it at a running tracking server, "
            "e.g. CAIRN_TRACKING_URI=http://127.0.0.1:5000 pytest compat"
        )
    try:
        resp = requests.get(SERVER_URI + "/health", timeout=120)
    except requests.RequestException as exc:
        raise pytest.UsageError(f"tracking server at CAIRN_TRACKING_URI={SERVER_URI} is unreachable: {exc}")
    if resp.status_code != 200:
        raise pytest.UsageError(
            f"tracking server at CAIRN_TRACKING_URI={SERVER_URI} answered /health with {resp.status_code}"
        )


def pytest_report_header(config):
    replicas = f"  replicas behind a load balancer: {REPLICAS}" if REPLICAS > 1 else ""
    return f"tracking server: {SERVER_URI or '<unset>'}  oracle: {ORACLE or 'none (Cairn)'}{replicas}"


def pytest_collection_modifyitems(config, items):
    for item in items:
        if ORACLE == "mlflow" and "cairn_only" in item.keywords:
            item.add_marker(pytest.mark.skip(reason="Cairn-only behaviour (COMPAT_ORACLE=mlflow)"))
        marker = item.get_closest_marker("single_server")
        if REPLICAS > 1 and marker is not None:
            reason = marker.args[0] if marker.args else marker.kwargs.get("reason", "needs a single server")
            item.add_marker(pytest.mark.skip(reason=f"{REPLICAS} replicas: {reason}"))


@contextlib.contextmanager
def environment(**values):
    """os.environ with `values` set (this process: the mlflow client reads it), restored afterwards."""
    saved = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


@contextlib.contextmanager
def fluent_uris(uri):
    """mlflow's fluent API (tracking and registry) pointed at `uri` for a block, then back to the
    suite's server with the registry following it again (restoring a URI read from
    get_registry_uri() would pin it for every later client)."""
    from mlflow.tracking._model_registry import utils as registry_utils

    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    try:
        yield
    finally:
        mlflow.set_tracking_uri(SERVER_URI)
        registry_utils._registry_uri = None
        os.environ.pop("MLFLOW_REGISTRY_URI", None)


def unique_name(prefix="compat"):
    return f"{prefix}-{uuid.uuid4().hex}"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def cairn_binary():
    """The `cairn` binary tests that start their own server use (scripts/test exports CAIRN_BINARY)."""
    binary = os.environ.get("CAIRN_BINARY", "").strip()
    if not binary:
        pytest.skip("CAIRN_BINARY is not set: this test starts its own cairn server from that binary (scripts/test exports it)")
    return binary


def start_own_server(binary, data, log, *args, env=None):
    """Starts `binary server` on a free loopback port with the data folder `data` (and `args`, and
    `env` added to the environment), its output to the open file `log`; waits until it answers
    /health. Returns (process, uri)."""
    port = free_port()
    proc = subprocess.Popen([binary, "server", "--host", "127.0.0.1", "--port", str(port), "--data-dir", data, *args],
                            stdout=log, stderr=subprocess.STDOUT, env={**os.environ, **(env or {})})
    uri = f"http://127.0.0.1:{port}"
    wait_for_health(proc, uri, "cairn server", patience=120)
    return proc, uri


def wait_for_health(proc, uri, what, patience):
    """Waits until `uri`/health answers 200; fails if `proc` exits first. `patience` (seconds) is
    hang protection only, never a speed expectation."""
    deadline = time.monotonic() + patience
    while True:
        try:
            if requests.get(uri + "/health", timeout=5).status_code == 200:
                return
        except requests.RequestException:
            pass
        assert proc.poll() is None, f"{what} exited at start"
        assert time.monotonic() < deadline, f"{what} did not answer /health"
        time.sleep(0.05)


def start_mlflow_server(folder, *args, env=None, backend=None):
    """Starts the real `mlflow server` (the venv's, one worker) on a free loopback port with its
    store at `backend` (default: the SQLite file `folder`/mlflow.db), `args` and `env` added, its
    output to `folder`/mlflow.log; waits until it answers /health. Returns (process, uri)."""
    port = free_port()
    mlflow_bin = os.path.join(os.path.dirname(sys.executable), "mlflow")
    log = open(os.path.join(folder, "mlflow.log"), "w")
    proc = subprocess.Popen(
        [mlflow_bin, "server", "--backend-store-uri", backend or f"sqlite:///{folder}/mlflow.db", "--host", "127.0.0.1",
         "--port", str(port), "--workers", "1", *args],
        stdout=log, stderr=subprocess.STDOUT, env={**os.environ, "MLFLOW_DISABLE_TELEMETRY": "true", **(env or {})})
    uri = f"http://127.0.0.1:{port}"
    wait_for_health(proc, uri, "mlflow server (see " + os.path.join(folder, "mlflow.log") + ")", patience=240)
    return proc, uri


@pytest.fixture
def own_server(tmp_path):
    """A `cairn server` ($CAIRN_BINARY) of the test's own, on a data folder of its own (for commands
    that work on the folder: gc, audit verify…), with mlflow's fluent API pointed at it. Yields
    (uri, data folder)."""
    binary = os.environ.get("CAIRN_BINARY", "").strip()
    if not binary:
        pytest.skip("CAIRN_BINARY is not set: this test starts the real cairn binary (scripts/test sets it)")
    data = str(tmp_path / "data")
    log = open(tmp_path / "server.log", "w")
    proc, uri = start_own_server(binary, data, log, "--log-level", "warning")
    try:
        with fluent_uris(uri):
            yield uri, data
    finally:
        proc.terminate()
        proc.wait(timeout=60)
        log.close()


_session = requests.Session()


def _rest(method, path, json=None, params=None, data=None, headers=None):
    """Raw HTTP call. `path` without a leading slash is relative to /api/2.0/mlflow/;
    with a leading slash it is relative to the server root (e.g. "/health", "/ajax-api/2.0/mlflow/runs/get").
    Returns (status_code, body) where body is the decoded JSON, or the text if it is not JSON."""
    url = SERVER_URI + (path if path.startswith("/") else API + path)
    resp = _session.request(method, url, json=json, params=params, data=data, headers=headers, timeout=120)
    try:
        body = resp.json()
    except ValueError:
        body = resp.text
    return resp.status_code, body


@pytest.fixture(scope="session")
def server_uri():
    return SERVER_URI


@pytest.fixture(scope="session")
def rest():
    return _rest


@pytest.fixture(scope="session")
def client():
    return MlflowClient(tracking_uri=SERVER_URI)


@pytest.fixture
def experiment(client):
    """A fresh, uniquely named experiment (mlflow.entities.Experiment) for one test."""
    exp_id = client.create_experiment(unique_name("compat-exp"))
    return client.get_experiment(exp_id)


@pytest.fixture(autouse=True)
def _isolate_fluent_state():
    """Keep mlflow's fluent (global) state from leaking between tests."""
    yield
    # End every run a test left active (nested runs stack up), then forget the active experiment.
    for _ in range(100):
        if mlflow.active_run() is None:
            break
        try:
            mlflow.end_run()  # pops the run before talking to the server, so a failure still unstacks it
        except Exception:
            pass
    # set_experiment() stores the experiment in a module global *and* in MLFLOW_EXPERIMENT_ID.
    from mlflow.tracking import fluent

    fluent._active_experiment_id = None
    for var in ("MLFLOW_EXPERIMENT_ID", "MLFLOW_EXPERIMENT_NAME", "MLFLOW_RUN_ID"):
        os.environ.pop(var, None)
    # set_registry_uri() pins the registry in a module global *and* in MLFLOW_REGISTRY_URI; a test
    # that "restores" the URI it read pins it too, and every later client would follow it.
    from mlflow.tracking._model_registry import utils as registry_utils

    registry_utils._registry_uri = None
    os.environ.pop("MLFLOW_REGISTRY_URI", None)
    if mlflow.get_tracking_uri() != SERVER_URI:
        mlflow.set_tracking_uri(SERVER_URI)
