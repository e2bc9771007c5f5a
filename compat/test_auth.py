"""Accounts, tokens and permissions (`cairn server --auth`), with the real mlflow client: its auth
client (`get_app_client("basic-auth", …)`), Basic credentials and Bearer tokens from
the MLFLOW_TRACKING_* variables, and raw requests for the refusals. Each test module starts its own
server with accounts on and the default permission NO_PERMISSIONS, so a user sees only what they
were granted."""

import base64
import os
import subprocess
import tempfile
import time
import uuid

import mlflow
from mlflow.server import get_app_client
import pytest
import requests
from mlflow.exceptions import MlflowException, RestException
from mlflow.tracking import MlflowClient

from conftest import cairn_binary, free_port, start_own_server, unique_name

ADMIN, ADMIN_PASSWORD = "admin", "admin-secret-1"

pytestmark = pytest.mark.cairn_only


@pytest.fixture(scope="module")
def auth_server():
    with tempfile.TemporaryDirectory() as data, open(os.path.join(data, "server.log"), "w") as log:
        proc, uri = start_own_server(cairn_binary(), os.path.join(data, "data"), log, "--auth",
                                     "--auth-default-permission", "NO_PERMISSIONS",
                                     env={"CAIRN_ADMIN_PASSWORD": ADMIN_PASSWORD})
        try:
            yield uri, os.path.join(data, "data")
        finally:
            proc.terminate()
            proc.wait(timeout=30)


class Credentials:
    """MLFLOW_TRACKING_* set for a block (the mlflow client reads them on every request)."""

    KEYS = ("MLFLOW_TRACKING_USERNAME", "MLFLOW_TRACKING_PASSWORD", "MLFLOW_TRACKING_TOKEN")

    def __init__(self, user=None, password=None, token=None):
        self.values = {"MLFLOW_TRACKING_USERNAME": user, "MLFLOW_TRACKING_PASSWORD": password, "MLFLOW_TRACKING_TOKEN": token}

    def __enter__(self):
        self.saved = {k: os.environ.get(k) for k in self.KEYS}
        for k, v in self.values.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
        return self

    def __exit__(self, *exc):
        for k, v in self.saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def basic(user, password):
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}


def call(uri, method, path, headers=None, **kwargs):
    resp = requests.request(method, uri + path, headers=headers or {}, timeout=60, **kwargs)
    try:
        return resp.status_code, resp.json(), resp
    except ValueError:
        return resp.status_code, resp.text, resp


@pytest.fixture(scope="module")
def world(auth_server):
    """Two experiments made by the admin, users with READ, EDIT and MANAGE on the first and
    nothing on the second, and a registered model with a version."""
    uri, data = auth_server
    auth_client = get_app_client("basic-auth", tracking_uri=uri)
    names = {level: unique_name(level.lower()) for level in ("READ", "EDIT", "MANAGE", "NONE")}
    with Credentials(ADMIN, ADMIN_PASSWORD):
        client = MlflowClient(uri)
        exp_a = client.create_experiment(unique_name("auth-a"))
        exp_b = client.create_experiment(unique_name("auth-b"))
        run_a = client.create_run(exp_a).info.run_id
        client.log_param(run_a, "lr", "0.1")
        run_b = client.create_run(exp_b).info.run_id
        model = unique_name("auth-model")
        client.create_registered_model(model)
        client.create_model_version(model, f"runs:/{run_a}/model", run_id=run_a)
        for level, name in names.items():
            user = auth_client.create_user(name, "password-" + name)
            assert user.username == name and user.is_admin is False
            if level != "NONE":
                auth_client.grant_user_permission(name, "experiment", exp_a, level)
                auth_client.grant_user_permission(name, "registered_model", model, level)
    return {"uri": uri, "data": data, "users": names, "exp_a": exp_a, "exp_b": exp_b, "run_a": run_a, "run_b": run_b,
            "model": model}


def creds(world, level):
    name = world["users"][level]
    return name, "password-" + name


def test_anonymous_requests_get_401_with_mlflow_error_json_and_a_basic_challenge(world):
    uri = world["uri"]
    status, body, resp = call(uri, "GET", "/api/2.0/mlflow/experiments/get", params={"experiment_id": world["exp_a"]})
    assert status == 401
    assert body["error_code"] == "UNAUTHENTICATED"
    assert resp.headers["WWW-Authenticate"].startswith("Basic realm=")
    # What a client needs before signing in stays open.
    assert call(uri, "GET", "/health")[0] == 200
    assert call(uri, "GET", "/version")[0] == 200


@pytest.mark.parametrize("header", [
    "Basic !!!not-base64!!!",
    "Basic " + base64.b64encode(b"no-colon-here").decode(),
    "Basic " + base64.b64encode(b"admin:wrong-password").decode(),
    "Basic " + base64.b64encode(b"nobody:whatever-password").decode(),
    "Bearer cairn_" + "A" * 43,
    "Bearer " + "x" * 9000,
    "Digest username=admin",
    "Basic",
    "",
    "Bearer \u00e9\u00e9\u00e9",
])
def test_bad_and_hostile_credentials_get_401_never_500(world, header):
    status, body, _ = call(world["uri"], "POST", "/api/2.0/mlflow/experiments/search",
                           headers={"Authorization": header.encode("utf-8") if header else header}, json={"max_results": 10})
    if header == "":
        assert status == 401  # an empty header is no credentials: anonymous
    else:
        assert status == 401, body
        assert body["error_code"] == "UNAUTHENTICATED"


def test_the_mlflow_auth_client_manages_users_and_grants(world):
    uri = world["uri"]
    auth_client = get_app_client("basic-auth", tracking_uri=uri)
    name = unique_name("carol")
    with Credentials(ADMIN, ADMIN_PASSWORD):
        created = auth_client.create_user(name, "carol-password")
        assert auth_client.get_user(name).username == name
        auth_client.grant_user_permission(name, "experiment", world["exp_a"], "EDIT")
        got = auth_client.get_user_permission(name, "experiment", world["exp_a"])
        assert (got.permission, got.allowed) == ("EDIT", True)
        none = auth_client.get_user_permission(name, "experiment", world["exp_b"])
        assert (none.permission, none.allowed) == ("NO_PERMISSIONS", False)
        auth_client.update_user_admin(name, True)
        assert auth_client.get_user(name).is_admin is True
        auth_client.update_user_admin(name, False)
        auth_client.revoke_user_permission(name, "experiment", world["exp_a"])
        assert auth_client.get_user_permission(name, "experiment", world["exp_a"]).permission == "NO_PERMISSIONS"
        with pytest.raises(RestException) as duplicate:
            auth_client.create_user(name, "another-password")
        assert duplicate.value.error_code == "RESOURCE_ALREADY_EXISTS"
        with pytest.raises(RestException) as bad_level:
            auth_client.grant_user_permission(name, "experiment", world["exp_a"], "SUPERUSER")
        assert bad_level.value.error_code == "INVALID_PARAMETER_VALUE"
    # A user changes their own password with the current one, and only then.
    with Credentials(name, "carol-password"):
        with pytest.raises(RestException):
            auth_client.update_user_password(name, "carol-password-2")
        auth_client.update_user_password(name, "carol-password-2", current_password="carol-password")
    status, body, _ = call(uri, "GET", "/api/2.0/mlflow/users/current", headers=basic(name, "carol-password-2"))
    assert status == 200 and body["user"]["username"] == name and body["user"]["is_admin"] is False
    assert call(uri, "GET", "/api/2.0/mlflow/users/current", headers=basic(name, "carol-password"))[0] == 401
    # Only administrators manage accounts.
    status, body, _ = call(uri, "POST", "/api/2.0/mlflow/users/create", headers=basic(name, "carol-password-2"),
                           json={"username": unique_name("mallory"), "password": "mallory-password"})
    assert status == 403 and body["error_code"] == "PERMISSION_DENIED"
    with Credentials(ADMIN, ADMIN_PASSWORD):
        auth_client.delete_user(name)
    assert call(uri, "GET", "/api/2.0/mlflow/users/current", headers=basic(name, "carol-password-2"))[0] == 401
    assert created.id > 0


def test_a_reader_reads_their_experiment_cannot_write_it_and_cannot_see_another(world):
    uri = world["uri"]
    user, password = creds(world, "READ")
    with Credentials(user, password):
        client = MlflowClient(uri)
        assert client.get_experiment(world["exp_a"]).experiment_id == world["exp_a"]
        runs = client.search_runs([world["exp_a"]])
        assert [r.info.run_id for r in runs] == [world["run_a"]]
        assert client.get_run(world["run_a"]).data.params == {"lr": "0.1"}
        with pytest.raises(MlflowException) as refused:
            client.log_metric(world["run_a"], "loss", 1.0)
        assert refused.value.error_code == "PERMISSION_DENIED"
        with pytest.raises(MlflowException) as refused:
            client.set_tag(world["run_a"], "note", "mine")
        assert refused.value.error_code == "PERMISSION_DENIED"
        with pytest.raises(MlflowException) as hidden:
            client.get_experiment(world["exp_b"])
        assert hidden.value.error_code == "PERMISSION_DENIED"
        with pytest.raises(MlflowException):
            client.get_run(world["run_b"])
        visible = {e.experiment_id for e in client.search_experiments(max_results=1000)}
        assert world["exp_a"] in visible and world["exp_b"] not in visible
        # An unreadable experiment's name answers as if it did not exist.
        b_name = None
    with Credentials(ADMIN, ADMIN_PASSWORD):
        b_name = MlflowClient(uri).get_experiment(world["exp_b"]).name
        admin_run = MlflowClient(uri).get_run(world["run_a"])
    status, body, _ = call(uri, "GET", "/api/2.0/mlflow/experiments/get-by-name", headers=basic(user, password),
                           params={"experiment_name": b_name})
    assert status == 404 and body["error_code"] == "RESOURCE_DOES_NOT_EXIST"
    # Nothing the refused calls tried was written.
    assert admin_run.data.metrics == {} and "note" not in admin_run.data.tags


def test_the_signed_in_user_is_recorded_whatever_the_client_claims(world):
    user, password = creds(world, "EDIT")
    with Credentials(user, password):
        client = MlflowClient(world["uri"])
        run = client.create_run(world["exp_a"], tags={"mlflow.user": "somebody-else"})
        assert run.info.user_id == user
        assert client.get_run(run.info.run_id).data.tags["mlflow.user"] == user


def test_the_creator_of_an_experiment_or_model_manages_it(world):
    user, password = creds(world, "NONE")
    with Credentials(user, password):
        client = MlflowClient(world["uri"])
        exp = client.create_experiment(unique_name("own"))
        run = client.create_run(exp).info.run_id
        client.log_metric(run, "acc", 0.5)
        client.delete_run(run)
        client.restore_run(run)
        name = unique_name("own-model")
        client.create_registered_model(name)
        client.set_registered_model_tag(name, "k", "v")
    auth_client = get_app_client("basic-auth", tracking_uri=world["uri"])
    with Credentials(ADMIN, ADMIN_PASSWORD):
        assert auth_client.get_user_permission(user, "experiment", exp).permission == "MANAGE"
        assert auth_client.get_user_permission(user, "registered_model", name).permission == "MANAGE"


def _create_token(world, level, *args):
    user, password = creds(world, level)
    env = {**os.environ, "MLFLOW_TRACKING_URI": world["uri"], "MLFLOW_TRACKING_USERNAME": user, "MLFLOW_TRACKING_PASSWORD": password}
    out = subprocess.run([cairn_binary(), "tokens", "create", "--json", *args], env=env, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    import json
    reply = json.loads(out.stdout)
    return reply["secret"], reply["token"]


def test_tokens_sign_in_the_mlflow_client_and_stop_working_when_revoked(world):
    secret, token = _create_token(world, "EDIT", "--name", "ci")
    assert token["user"] == world["users"]["EDIT"] and token["state"] == "active"
    with Credentials(token=secret):
        client = MlflowClient(world["uri"])
        run = client.create_run(world["exp_a"]).info.run_id
        client.log_metric(run, "loss", 0.25)
        assert client.get_run(run).data.metrics == {"loss": 0.25}
    user, password = creds(world, "EDIT")
    env = {**os.environ, "MLFLOW_TRACKING_URI": world["uri"], "MLFLOW_TRACKING_USERNAME": user, "MLFLOW_TRACKING_PASSWORD": password}
    listed = subprocess.run([cairn_binary(), "tokens", "list"], env=env, capture_output=True, text=True, timeout=60)
    assert listed.returncode == 0 and token["id"] in listed.stdout and secret not in listed.stdout
    revoked = subprocess.run([cairn_binary(), "tokens", "revoke", token["id"]], env=env, capture_output=True, text=True, timeout=60)
    assert revoked.returncode == 0, revoked.stderr
    status, body, _ = call(world["uri"], "GET", "/api/2.0/mlflow/runs/get", headers={"Authorization": "Bearer " + secret},
                           params={"run_id": run})
    assert status == 401 and body["error_code"] == "UNAUTHENTICATED"


def test_read_only_and_expired_tokens(world):
    secret, _ = _create_token(world, "EDIT", "--read-only")
    headers = {"Authorization": "Bearer " + secret}
    assert call(world["uri"], "GET", "/api/2.0/mlflow/runs/get", headers=headers, params={"run_id": world["run_a"]})[0] == 200
    status, body, _ = call(world["uri"], "POST", "/api/2.0/mlflow/runs/set-tag", headers=headers,
                           json={"run_id": world["run_a"], "key": "ro", "value": "x"})
    assert status == 403 and body["error_code"] == "PERMISSION_DENIED"
    short, _ = _create_token(world, "EDIT", "--expires", "1s")
    time.sleep(1.2)  # the token's own lifetime, not a timing assumption about the server
    status, body, _ = call(world["uri"], "GET", "/api/2.0/mlflow/runs/get", headers={"Authorization": "Bearer " + short},
                           params={"run_id": world["run_a"]})
    assert status == 401 and body["error_code"] == "UNAUTHENTICATED"


# Route × role matrix: each case is (description, minimum level, request builder, check that it took effect).
LEVELS = ["NONE", "READ", "EDIT", "MANAGE", "ADMIN"]
RANK = {"NONE": 0, "READ": 1, "EDIT": 3, "MANAGE": 4, "ADMIN": 5}


def _matrix_cases(world):
    exp, run, model = world["exp_a"], world["run_a"], world["model"]
    key = uuid.uuid4().hex[:8]
    return [
        ("get experiment", "READ", ("GET", "/api/2.0/mlflow/experiments/get", {"params": {"experiment_id": exp}})),
        ("search runs", "READ", ("POST", "/api/2.0/mlflow/runs/search", {"json": {"experiment_ids": [exp]}})),
        ("get run", "READ", ("GET", "/api/2.0/mlflow/runs/get", {"params": {"run_id": run}})),
        ("metric history", "READ", ("GET", "/api/2.0/mlflow/metrics/get-history", {"params": {"run_id": run, "metric_key": "m"}})),
        ("list artifacts", "READ", ("GET", "/api/2.0/mlflow/artifacts/list", {"params": {"run_id": run}})),
        ("runs table (UI)", "READ", ("GET", "/api/cairn/v1/runs/table", {"params": {"experiment_ids": exp}})),
        ("get model", "READ", ("GET", "/api/2.0/mlflow/registered-models/get", {"params": {"name": model}})),
        ("set run tag", "EDIT", ("POST", "/api/2.0/mlflow/runs/set-tag", {"json": {"run_id": run, "key": "t-" + key, "value": "v"}})),
        ("log batch", "EDIT", ("POST", "/api/2.0/mlflow/runs/log-batch", {"json": {"run_id": run, "metrics": [{"key": "b-" + key, "value": 1, "timestamp": 1, "step": 0}]}})),
        ("create run", "EDIT", ("POST", "/api/2.0/mlflow/runs/create", {"json": {"experiment_id": exp}})),
        ("upload artifact", "EDIT", ("PUT", f"/api/2.0/mlflow-artifacts/artifacts/{exp}/{run}/artifacts/f-{key}.txt", {"data": b"hello"})),
        ("set experiment tag", "EDIT", ("POST", "/api/2.0/mlflow/experiments/set-experiment-tag", {"json": {"experiment_id": exp, "key": "e-" + key, "value": "v"}})),
        ("set model tag", "EDIT", ("POST", "/api/2.0/mlflow/registered-models/set-tag", {"json": {"name": model, "key": "m-" + key, "value": "v"}})),
        ("delete run tag", "EDIT", ("POST", "/api/2.0/mlflow/runs/delete-tag", {"json": {"run_id": run, "key": "lr-none"}})),
        ("webhooks (admin)", "ADMIN", ("GET", "/api/2.0/mlflow/webhooks", {})),
        # As MLflow: any signed-in user lists the user names; only administrators see their roles.
        ("users list", "NONE", ("GET", "/api/2.0/mlflow/users/list", {})),
        ("create role (admin)", "ADMIN", ("POST", "/api/3.0/mlflow/roles/create", {"json": {"workspace": "default", "name": "r-" + key}})),
    ]


def _headers_for(world, who):
    if who == "ANON":
        return {}
    if who == "ADMIN":
        return basic(ADMIN, ADMIN_PASSWORD)
    return basic(*creds(world, who))


def test_every_route_answers_each_role_as_its_permission_says(world):
    uri = world["uri"]
    failures = []
    for who in ["ANON"] + LEVELS:
        for description, needed, (method, path, kwargs) in _matrix_cases(world):
            status, body, _ = call(uri, method, path, headers=_headers_for(world, who), **kwargs)
            if who == "ANON":
                expected = {401}
            elif RANK[who] >= RANK[needed]:
                expected = {200, 404} if description == "delete run tag" else {200}
            else:
                expected = {403}
            if status not in expected:
                failures.append(f"{who} {description}: {status} {body}")
            elif status in (401, 403):
                code = "UNAUTHENTICATED" if status == 401 else "PERMISSION_DENIED"
                if not isinstance(body, dict) or body.get("error_code") != code:
                    failures.append(f"{who} {description}: body {body}")
    assert not failures, "\n".join(failures)


def test_refused_changes_change_nothing(world):
    uri = world["uri"]
    with Credentials(ADMIN, ADMIN_PASSWORD):
        before = MlflowClient(uri).get_run(world["run_a"])
    reader = basic(*creds(world, "READ"))
    call(uri, "POST", "/api/2.0/mlflow/runs/log-batch", headers=reader,
         json={"run_id": world["run_a"], "metrics": [{"key": "sneaky", "value": 1, "timestamp": 1, "step": 0}],
               "params": [{"key": "sneaky", "value": "1"}], "tags": [{"key": "sneaky", "value": "1"}]})
    call(uri, "POST", "/api/2.0/mlflow/runs/delete", headers=reader, json={"run_id": world["run_a"]})
    call(uri, "PUT", f"/api/2.0/mlflow-artifacts/artifacts/{world['exp_a']}/{world['run_a']}/artifacts/sneaky.txt",
         headers=reader, data=b"x")
    with Credentials(ADMIN, ADMIN_PASSWORD):
        after = MlflowClient(uri).get_run(world["run_a"])
        files = [f.path for f in MlflowClient(uri).list_artifacts(world["run_a"])]
    assert after.data.metrics == before.data.metrics and after.data.params == before.data.params
    assert after.data.tags == before.data.tags and after.info.lifecycle_stage == "active"
    assert "sneaky.txt" not in files


def test_registry_searches_list_only_readable_models(world):
    uri = world["uri"]
    with Credentials(*creds(world, "READ")):
        names = {m.name for m in MlflowClient(uri).search_registered_models()}
    assert world["model"] in names
    with Credentials(*creds(world, "NONE")):
        names = {m.name for m in MlflowClient(uri).search_registered_models()}
        versions = MlflowClient(uri).search_model_versions(f"name = '{world['model']}'")
    assert world["model"] not in names and versions == []


def test_users_cli_creates_accounts_from_standard_input(world):
    name = unique_name("dave")
    out = subprocess.run([cairn_binary(), "users", "create", name, "--data-dir", world["data"]],
                         input="dave-password-1\n", capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    listed = subprocess.run([cairn_binary(), "users", "list", "--data-dir", world["data"]], capture_output=True, text=True, timeout=60)
    assert name in listed.stdout
    assert call(world["uri"], "GET", "/api/2.0/mlflow/users/current", headers=basic(name, "dave-password-1"))[0] == 200
    short = subprocess.run([cairn_binary(), "users", "create", unique_name("eve"), "--data-dir", world["data"]],
                           input="short\n", capture_output=True, text=True, timeout=60)
    assert short.returncode != 0 and "at least 12 characters" in short.stderr


def test_a_public_address_without_auth_is_refused_unless_insecure_is_asked_for():
    with tempfile.TemporaryDirectory() as data:
        out = subprocess.run([cairn_binary(), "server", "--host", "0.0.0.0", "--port", "0", "--data-dir", data],
                             capture_output=True, text=True, timeout=60)
        assert out.returncode != 0
        assert "--auth" in out.stderr and "--insecure-no-auth" in out.stderr


def _self_signed_certificate(folder):
    """A certificate for 127.0.0.1 and its key, as PEM files (cryptography comes with mlflow)."""
    import datetime
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
            .sign(key, hashes.SHA256()))
    cert_path, key_path = os.path.join(folder, "cert.pem"), os.path.join(folder, "key.pem")
    with open(cert_path, "wb") as f:
        f.write(cert.public_bytes(serialization.Encoding.PEM))
    with open(key_path, "wb") as f:
        f.write(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
    return cert_path, key_path


def test_tls_serves_the_mlflow_client_and_the_cli_over_https_without_a_proxy():
    with tempfile.TemporaryDirectory() as data, open(os.path.join(data, "server.log"), "w") as log:
        cert, key = _self_signed_certificate(data)
        binary = cairn_binary()
        port = free_port()
        proc = subprocess.Popen([binary, "server", "--host", "127.0.0.1", "--port", str(port), "--data-dir", os.path.join(data, "d"),
                                 "--auth", "--tls-cert-file", cert, "--tls-key-file", key],
                                stdout=log, stderr=subprocess.STDOUT, env={**os.environ, "CAIRN_ADMIN_PASSWORD": ADMIN_PASSWORD})
        uri = f"https://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + 120  # hang protection only
            while True:
                try:
                    if requests.get(uri + "/health", verify=cert, timeout=5).status_code == 200:
                        break
                except requests.RequestException:
                    pass
                assert proc.poll() is None and time.monotonic() < deadline, "cairn server did not start with TLS"
                time.sleep(0.05)
            os.environ["MLFLOW_TRACKING_SERVER_CERT_PATH"] = cert
            try:
                with Credentials(ADMIN, ADMIN_PASSWORD):
                    client = MlflowClient(uri)
                    exp = client.create_experiment(unique_name("tls"))
                    run = client.create_run(exp).info.run_id
                    client.log_metric(run, "m", 1.5)
                    assert client.get_run(run).data.metrics == {"m": 1.5}
            finally:
                os.environ.pop("MLFLOW_TRACKING_SERVER_CERT_PATH", None)
            # The CLI trusts the same private CA through the same variable, and says what to set without it.
            env = {**os.environ, "MLFLOW_TRACKING_URI": uri, "MLFLOW_TRACKING_USERNAME": ADMIN,
                   "MLFLOW_TRACKING_PASSWORD": ADMIN_PASSWORD}
            listed = subprocess.run([binary, "tokens", "list"], capture_output=True, text=True, timeout=60,
                                    env={**env, "MLFLOW_TRACKING_SERVER_CERT_PATH": cert})
            assert listed.returncode == 0, listed.stderr
            untrusted = subprocess.run([binary, "tokens", "list"], capture_output=True, text=True, timeout=60, env=env)
            assert untrusted.returncode != 0 and "MLFLOW_TRACKING_SERVER_CERT_PATH" in untrusted.stderr, untrusted.stderr
            unreadable = subprocess.run([binary, "tokens", "list"], capture_output=True, text=True, timeout=60,
                                        env={**env, "MLFLOW_TRACKING_SERVER_CERT_PATH": os.path.join(data, "missing.pem")})
            assert unreadable.returncode != 0 and "missing.pem" in unreadable.stderr, unreadable.stderr
            # Plain http on the TLS port gets no answer with data in it.
            with pytest.raises(requests.RequestException):
                requests.get(f"http://127.0.0.1:{port}/health", timeout=5)
        finally:
            proc.terminate()
            proc.wait(timeout=30)


def test_a_later_mlflow_user_tag_cannot_name_someone_else(world):
    user, password = creds(world, "EDIT")
    with Credentials(user, password):
        client = MlflowClient(world["uri"])
        run = client.create_run(world["exp_a"]).info.run_id
        client.set_tag(run, "mlflow.user", user)  # the same name: fine
        with pytest.raises(MlflowException) as refused:
            client.set_tag(run, "mlflow.user", "somebody-else")
        assert refused.value.error_code == "INVALID_PARAMETER_VALUE"
        with pytest.raises(MlflowException):
            client.delete_tag(run, "mlflow.user")
        assert client.get_run(run).data.tags["mlflow.user"] == user


def test_a_revoked_grant_stops_working_at_once(world):
    uri = world["uri"]
    auth_client = get_app_client("basic-auth", tracking_uri=uri)
    name = unique_name("frank")
    with Credentials(ADMIN, ADMIN_PASSWORD):
        auth_client.create_user(name, "frank-password")
        auth_client.grant_user_permission(name, "experiment", world["exp_a"], "READ")
    headers = basic(name, "frank-password")
    params = {"run_id": world["run_a"]}
    assert call(uri, "GET", "/api/2.0/mlflow/runs/get", headers=headers, params=params)[0] == 200
    with Credentials(ADMIN, ADMIN_PASSWORD):
        auth_client.revoke_user_permission(name, "experiment", world["exp_a"])
    assert call(uri, "GET", "/api/2.0/mlflow/runs/get", headers=headers, params=params)[0] == 403


def test_sign_ins_refusals_and_account_changes_are_in_the_audit_log_for_administrators(world):
    uri = world["uri"]
    name = unique_name("gina")
    admin = basic(ADMIN, ADMIN_PASSWORD)
    assert call(uri, "POST", "/api/2.0/mlflow/users/create", headers=admin, json={"username": name, "password": "gina-password"})[0] == 200
    assert call(uri, "GET", "/api/2.0/mlflow/users/current", headers=basic(name, "wrong-password"))[0] == 401
    assert call(uri, "GET", "/api/2.0/mlflow/users/current", headers=basic(name, "gina-password"))[0] == 200

    def events(**params):
        status, body, _ = call(uri, "GET", "/api/cairn/v1/audit", headers=admin, params={"target": f"user:{name}", "max_results": 100, **params})
        assert status == 200, body
        return body["events"]

    actions = [e["action"] for e in events()]
    assert {"user.create", "auth.sign_in_failed", "auth.sign_in"} <= set(actions), actions
    created = next(e for e in events() if e["action"] == "user.create")
    assert created["actor"] == ADMIN
    # The audit log itself is for administrators.
    assert call(uri, "GET", "/api/cairn/v1/audit", headers=basic(name, "gina-password"))[0] == 403
    # Every refused attempt of a signed-in user is in the log too, naming who and what, and changing nothing else.
    denied = call(uri, "GET", "/api/cairn/v1/audit", headers=admin, params={"action": "access.denied", "max_results": 100})[1]["events"]
    mine = [e for e in denied if e["actor"] == name]
    assert mine and mine[0]["target"] == "route:GET /api/cairn/v1/audit", mine


def test_a_gate_override_needs_manage_and_records_who_gave_it(world):
    """EDIT may promote a version that passes, but not set `cairn.gate.override` nor promote
    through one; MANAGE (or an administrator) may, and the history and the audit log say who."""
    uri = world["uri"]
    model = unique_name("gated-auth")
    admin = basic(ADMIN, ADMIN_PASSWORD)
    with Credentials(ADMIN, ADMIN_PASSWORD):
        client = MlflowClient(uri)
        client.create_registered_model(model)
        client.set_registered_model_tag(model, "cairn.gate", "metric=val_auc>=0.9")
        version = client.create_model_version(model, f"runs:/{world['run_a']}/model", run_id=world["run_a"]).version
        auth_client = get_app_client("basic-auth", tracking_uri=uri)
        for level in ("EDIT", "MANAGE"):
            auth_client.grant_user_permission(world["users"][level], "registered_model", model, level)

    def history():
        status, body, _ = call(uri, "GET", "/api/cairn/v1/model-versions/history", headers=admin, params={"name": model, "version": version})
        assert status == 200, body
        return body["events"]

    editor, manager = creds(world, "EDIT"), creds(world, "MANAGE")
    alias = {"name": model, "alias": "champion", "version": version}
    override = {"name": model, "version": version, "key": "cairn.gate.override", "value": "incident 7, accepted by the lead"}
    # EDIT: the gate refuses the promotion, and EDIT may not write the override.
    status, body, _ = call(uri, "POST", "/api/2.0/mlflow/registered-models/alias", headers=basic(*editor), json=alias)
    assert status == 400 and body["error_code"] == "INVALID_PARAMETER_VALUE" and "promotion gate failed" in body["message"]
    status, body, _ = call(uri, "POST", "/api/2.0/mlflow/model-versions/set-tag", headers=basic(*editor), json=override)
    assert status == 403 and body["error_code"] == "PERMISSION_DENIED" and "MANAGE" in body["message"], body
    with Credentials(*editor), pytest.raises(RestException) as refused:
        MlflowClient(uri).set_model_version_tag(model, version, "cairn.gate.override", "sneaky")
    assert refused.value.error_code == "PERMISSION_DENIED"
    # MANAGE writes the override; EDIT still may not promote through it.
    status, body, _ = call(uri, "POST", "/api/2.0/mlflow/model-versions/set-tag", headers=basic(*manager), json=override)
    assert status == 200, body
    status, body, _ = call(uri, "POST", "/api/2.0/mlflow/registered-models/alias", headers=basic(*editor), json=alias)
    assert status == 403 and body["error_code"] == "PERMISSION_DENIED", body
    refusal = [e for e in history() if e["action"] == "gate_failed"][-1]
    assert refusal["user"] == editor[0] and "override_refused" in refusal["changes"]
    status, _, _ = call(uri, "GET", "/api/2.0/mlflow/registered-models/alias", headers=admin, params={"name": model, "alias": "champion"})
    assert status in (400, 404)  # nothing changed: no version holds the alias
    # MANAGE promotes through it: recorded with who, in the history and in the audit log.
    with Credentials(*manager):
        MlflowClient(uri).set_registered_model_alias(model, "champion", version)
    overridden = next(e for e in history() if e["action"] == "gate_overridden")
    assert overridden["user"] == manager[0] and overridden["changes"]["overridden_by"] == manager[0]
    assert overridden["changes"]["override_reason"] == override["value"]
    status, body, _ = call(uri, "GET", "/api/cairn/v1/audit", headers=admin,
                           params={"target": f"model_version:{model}/{version}", "max_results": 100})
    assert status == 200, body
    events = {e["action"]: e for e in body["events"]}
    assert events["model_version.gate_overridden"]["actor"] == manager[0]
    assert events["model_version.gate_overridden"]["details"]["overridden_by"] == manager[0]
    assert events["model_version.tag.set"]["actor"] == manager[0]
    # Removing the override needs MANAGE too; an administrator may.
    status, body, _ = call(uri, "DELETE", "/api/2.0/mlflow/model-versions/delete-tag", headers=basic(*editor),
                           json={"name": model, "version": version, "key": "cairn.gate.override"})
    assert status == 403, body
    status, body, _ = call(uri, "DELETE", "/api/2.0/mlflow/model-versions/delete-tag", headers=admin,
                           json={"name": model, "version": version, "key": "cairn.gate.override"})
    assert status == 200, body


def test_a_trace_is_read_and_changed_with_its_experiments_permission(world):
    uri = world["uri"]
    trace_id = "tr-" + uuid.uuid4().hex
    location = {"type": "MLFLOW_EXPERIMENT", "mlflow_experiment": {"experiment_id": world["exp_a"]}}
    status, body, _ = call(uri, "POST", "/api/3.0/mlflow/traces", headers=basic(ADMIN, ADMIN_PASSWORD),
                           json={"trace": {"trace_info": {"trace_id": trace_id, "trace_location": location,
                                                          "request_time": "2026-01-01T00:00:00Z", "state": "OK"}}})
    assert status == 200, body
    cases = [
        ("get trace", "READ", ("GET", "/api/3.0/mlflow/traces/get", {"params": {"trace_id": trace_id}})),
        ("trace info", "READ", ("GET", f"/api/3.0/mlflow/traces/{trace_id}", {})),
        ("batch get", "READ", ("GET", "/api/3.0/mlflow/traces/batchGet", {"params": {"trace_ids": trace_id}})),
        ("download spans", "READ", ("GET", "/ajax-api/2.0/mlflow/get-trace-artifact", {"params": {"request_id": trace_id}})),
        ("filter correlation", "READ", ("POST", "/api/3.0/mlflow/traces/calculate-filter-correlation",
                                        {"json": {"experiment_ids": [world["exp_a"]], "filter_string1": "status = 'OK'",
                                                  "filter_string2": "tags.k = 'v'"}})),
        ("trace metrics", "READ", ("POST", "/api/3.0/mlflow/traces/metrics",
                                   {"json": {"experiment_ids": [world["exp_a"]], "view_type": "TRACES", "metric_name": "trace_count",
                                             "aggregations": [{"aggregation_type": "COUNT"}]}})),
        ("set trace tag", "EDIT", ("PATCH", f"/api/3.0/mlflow/traces/{trace_id}/tags", {"json": {"key": "k", "value": "v"}})),
        ("log feedback", "EDIT", ("POST", f"/api/3.0/mlflow/traces/{trace_id}/assessments",
                                  {"json": {"assessment": {"assessment_name": "ok", "trace_id": trace_id, "feedback": {"value": True},
                                                           "source": {"source_type": "HUMAN", "source_id": "me"}}}})),
    ]
    failures = []
    for who in LEVELS:
        for description, needed, (method, path, kwargs) in cases:
            status, body, _ = call(uri, method, path, headers=_headers_for(world, who), **kwargs)
            expected = 200 if RANK[who] >= RANK[needed] else 403
            if status != expected:
                failures.append(f"{who} {description}: {status} {body}")
    assert not failures, "\n".join(failures)


def test_the_permissions_endpoint_tells_each_caller_their_own_levels_for_the_ui(world):
    uri, exp_a, exp_b, model = world["uri"], world["exp_a"], world["exp_b"], world["model"]
    params = {"experiment_ids": [exp_a, exp_b], "registered_model_names": [model]}
    expected = {"READ": "READ", "EDIT": "EDIT", "MANAGE": "MANAGE", "NONE": "NO_PERMISSIONS"}
    for level, shown in expected.items():
        user, password = creds(world, level)
        status, body, _ = call(uri, "GET", "/api/cairn/v1/permissions", headers=basic(user, password), params=params)
        assert status == 200, body
        assert body == {"auth": True, "user": user, "admin": False, "read_only": False, "can_create": True,
                        "experiments": {exp_a: shown, exp_b: "NO_PERMISSIONS"}, "registered_models": {model: shown}}
    status, body, _ = call(uri, "GET", "/api/cairn/v1/permissions", headers=basic(ADMIN, ADMIN_PASSWORD), params=params)
    assert status == 200 and body["admin"] is True and body["experiments"] == {exp_a: "MANAGE", exp_b: "MANAGE"}
    status, body, _ = call(uri, "GET", "/api/cairn/v1/permissions", params=params)
    assert status == 401 and body["error_code"] == "UNAUTHENTICATED"
    too_many = {"experiment_ids": [str(i) for i in range(1001)]}
    status, body, _ = call(uri, "GET", "/api/cairn/v1/permissions", headers=basic(*creds(world, "READ")), params=too_many)
    assert status == 400 and body["error_code"] == "INVALID_PARAMETER_VALUE"
