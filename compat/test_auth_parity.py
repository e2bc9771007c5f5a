"""MLflow's auth API answered side by side: the same calls go to a real `mlflow server --app-name basic-auth`
(mlflow[auth] 3.17.2) and to `cairn server --auth`, and each answer must agree in status, error code, the
words MLflow's message starts with, and the JSON of a success (ids compared by position, not value).

What Cairn deliberately answers differently is listed in DIFFERENCES and in the README ("Accounts and
permissions"); everything else must match."""

import os
import re
import tempfile

import pytest
import requests

from conftest import cairn_binary, start_mlflow_server, start_own_server

pytestmark = [
    pytest.mark.cairn_only,
    pytest.mark.single_server("starts its own MLflow and Cairn servers with accounts on"),
]

ADMIN, PASSWORD = "admin", "parity-admin-password-1"

# Known, documented differences, by step name. Anything not here must match.
DIFFERENCES = {
    # MLflow keeps a user's direct grants in a role of their own (`__user_<id>__`) and lists it with the
    # named roles; Cairn keeps direct grants apart (they are listed by users/permissions/list alike).
    "synthetic roles": "roles named __user_<id>__ are left out of MLflow's role lists before comparing",
    # Cairn adds when an account was made (its Accounts page shows it).
    "creation_time": "the `creation_time` of a user is left out of Cairn's answers before comparing",
    # Cairn has no prompts, scorers, gateway or per-tier (run, trace, …) resources to grant on.
    "resource types": "an unknown resource type's message is compared up to the list of valid types",
}


def start_mlflow_auth(folder):
    config = os.path.join(folder, "basic_auth.ini")
    with open(config, "w") as f:
        f.write("[mlflow]\ndefault_permission = READ\n"
                f"database_uri = sqlite:///{folder}/basic_auth.db\n"
                f"admin_username = {ADMIN}\nadmin_password = {PASSWORD}\n"
                "authorization_function = mlflow.server.auth:authenticate_request_basic_auth\n")
    return start_mlflow_server(folder, "--app-name", "basic-auth", env={
        "MLFLOW_AUTH_CONFIG_PATH": config, "MLFLOW_FLASK_SERVER_SECRET_KEY": "parity-secret", "MLFLOW_AUTH_ADMIN_PASSWORD": PASSWORD})


@pytest.fixture(scope="module")
def servers():
    with tempfile.TemporaryDirectory() as tmp:
        os.makedirs(os.path.join(tmp, "mlflow"))
        mlflow_proc, mlflow_uri = start_mlflow_auth(os.path.join(tmp, "mlflow"))
        log = open(os.path.join(tmp, "cairn.log"), "w")
        cairn_proc, cairn_uri = start_own_server(cairn_binary(), os.path.join(tmp, "cairn"), log, "--auth",
                                                 env={"CAIRN_ADMIN_PASSWORD": PASSWORD})
        try:
            yield {"mlflow": mlflow_uri, "cairn": cairn_uri}
        finally:
            for proc in (mlflow_proc, cairn_proc):
                proc.terminate()
                proc.wait(timeout=60)


def _send(uri, method, path, auth, body):
    kwargs = {"params": body} if method == "GET" else {"json": body}
    resp = requests.request(method, uri + path, auth=auth, timeout=120, **kwargs)
    try:
        return resp.status_code, resp.json()
    except ValueError:
        return resp.status_code, resp.text


def _normalise(value, server):
    """Ids by position, synthetic roles and Cairn's creation_time left out (see DIFFERENCES)."""
    if isinstance(value, dict):
        out = {}
        for k, v in value.items():
            if server == "cairn" and k == "creation_time":
                continue
            if k == "roles" and isinstance(v, list):
                v = [r for r in v if not str(r.get("name", "")).startswith("__user_")]
            out[k] = "<id>" if k in ("id", "role_id", "user_id") and isinstance(v, int) else _normalise(v, server)
        return out
    if isinstance(value, list):
        return [_normalise(v, server) for v in value]
    return value


def _message(body):
    """A message with ids by position (`role_id=<id>`)."""
    message = body.get("message", "") if isinstance(body, dict) else str(body)
    return re.sub(r"\b(id|role_id|user_id)=\d+", r"\1=<id>", message)


def _message_start(body):
    """MLflow's words before any appended SQL error, and before its list of resource types (DIFFERENCES)."""
    return _message(body).split(" Error: (")[0].split("Valid resource types are:")[0]


class Pair:
    """One call sent to both servers; remembers what each answered so later steps can use it."""

    def __init__(self, servers):
        self.servers = servers
        self.saved = {"mlflow": {}, "cairn": {}}
        self.mismatches = []

    def call(self, step, method, path, body=None, user=(ADMIN, PASSWORD), save=None, body_for=None, message=True, compare_body=True):
        """`message=False`: the error's words are not compared (MLflow answers some refusals in plain text);
        `compare_body=False`: a success's body is not compared (tracking answers, with times in them)."""
        answers = {}
        for server, uri in self.servers.items():
            payload = body_for(self.saved[server]) if body_for else (body or {})
            status, reply = _send(uri, method, path, user, payload)
            answers[server] = (status, reply)
            if save and status == 200:
                save(self.saved[server], reply)
        (ms, mb), (cs, cb) = answers["mlflow"], answers["cairn"]
        if ms != cs:
            self.mismatches.append(f"{step}: status mlflow {ms} {mb!r:.200} / cairn {cs} {cb!r:.200}")
        elif ms == 200:
            if compare_body and _normalise(mb, "mlflow") != _normalise(cb, "cairn"):
                self.mismatches.append(f"{step}: body mlflow {_normalise(mb, 'mlflow')!r:.300} / cairn {_normalise(cb, 'cairn')!r:.300}")
        elif isinstance(mb, dict):
            if not isinstance(cb, dict) or mb.get("error_code") != cb.get("error_code"):
                self.mismatches.append(f"{step}: error mlflow {mb!r:.200} / cairn {cb!r:.200}")
            elif message and not _message(cb).startswith(_message_start(mb)):
                self.mismatches.append(f"{step}: message mlflow {_message_start(mb)!r} / cairn {_message(cb)!r}")
        return answers


def test_the_auth_api_answers_as_mlflows_basic_auth_server(servers):
    p = Pair(servers)
    bob = ("bob", "bob-password-12")
    v2, v3 = "/api/2.0/mlflow/", "/api/3.0/mlflow/"

    # Users.
    p.call("create user", "POST", v2 + "users/create", {"username": "bob", "password": bob[1]})
    p.call("create user again", "POST", v2 + "users/create", {"username": "bob", "password": bob[1]})
    p.call("short password", "POST", v2 + "users/create", {"username": "dan", "password": "short"})
    p.call("get user", "GET", v2 + "users/get", {"username": "bob"})
    p.call("get unknown user", "GET", v2 + "users/get", {"username": "nobody"})
    p.call("current user", "GET", v2 + "users/current", user=bob)
    p.call("list users as admin", "GET", v2 + "users/list")
    p.call("list users as a user", "GET", v2 + "users/list", user=bob)
    p.call("update password", "PATCH", v2 + "users/update-password", {"username": "bob", "password": bob[1] + "x"})
    bob = (bob[0], bob[1] + "x")
    p.call("update admin", "PATCH", v2 + "users/update-admin", {"username": "bob", "is_admin": False})
    p.call("wrong password", "GET", v2 + "users/current", user=("bob", "not-the-password"), message=False)

    # Grants on an experiment the admin made.
    p.call("create experiment", "POST", v2 + "experiments/create", {"name": "parity"}, compare_body=False,
           save=lambda s, r: s.update(exp=r["experiment_id"]))
    grant = lambda level: (lambda s: {"username": "bob", "resource_type": "experiment", "resource_id": s["exp"], "permission": level})
    where = lambda s: {"username": "bob", "resource_type": "experiment", "resource_id": s["exp"]}
    p.call("grant", "POST", v3 + "users/permissions/grant", body_for=grant("READ"))
    p.call("grant again", "POST", v3 + "users/permissions/grant", body_for=grant("EDIT"))
    p.call("grant a bad level", "POST", v3 + "users/permissions/grant", body_for=grant("NOPE"))
    p.call("get permission", "GET", v3 + "users/permissions/get", body_for=where)
    p.call("get permission of no grant", "GET", v3 + "users/permissions/get",
           {"username": "bob", "resource_type": "experiment", "resource_id": "424242"})
    p.call("list permissions", "GET", v3 + "users/permissions/list", {"username": "bob"})
    p.call("current permissions", "GET", v3 + "users/current/permissions", user=bob)
    p.call("reader cannot rename", "POST", v2 + "experiments/update",
           body_for=lambda s: {"experiment_id": s["exp"], "new_name": "renamed"}, user=bob, message=False)
    p.call("revoke", "POST", v3 + "users/permissions/revoke", body_for=where)
    p.call("revoke again", "POST", v3 + "users/permissions/revoke", body_for=where)

    # Roles.
    role = lambda s: {"role_id": s["role"]}
    p.call("create role", "POST", v3 + "roles/create", {"workspace": "default", "name": "editors", "description": "d"},
           save=lambda s, r: s.update(role=r["role"]["id"]))
    p.call("create role again", "POST", v3 + "roles/create", {"workspace": "default", "name": "editors"})
    p.call("role in another workspace", "POST", v3 + "roles/create", {"workspace": "other", "name": "elsewhere"})
    p.call("role without workspace", "POST", v3 + "roles/create", {"workspace": "", "name": "x"})
    p.call("role without name", "POST", v3 + "roles/create", {"workspace": "default", "name": " "})
    p.call("get role", "GET", v3 + "roles/get", body_for=role)
    p.call("get unknown role", "GET", v3 + "roles/get", {"role_id": "999"})
    p.call("get role by a bad id", "GET", v3 + "roles/get", {"role_id": "abc"})
    p.call("list roles of a workspace", "GET", v3 + "roles/list", {"workspace": "default"})
    p.call("list every role", "GET", v3 + "roles/list")
    p.call("update role", "PATCH", v3 + "roles/update", body_for=lambda s: {"role_id": s["role"], "description": "new"})
    p.call("update role with nothing", "PATCH", v3 + "roles/update", body_for=role)
    add = lambda t, pattern, level: (lambda s: {"role_id": s["role"], "resource_type": t, "resource_pattern": pattern if pattern != "EXP" else s["exp"], "permission": level})
    p.call("add role grant", "POST", v3 + "roles/permissions/add", body_for=add("experiment", "EXP", "EDIT"),
           save=lambda s, r: s.update(grant=r["role_permission"]["id"]))
    p.call("add role grant again", "POST", v3 + "roles/permissions/add", body_for=add("experiment", "EXP", "EDIT"))
    p.call("add wildcard grant", "POST", v3 + "roles/permissions/add", body_for=add("experiment", "*", "READ"))
    p.call("workspace grant on one id", "POST", v3 + "roles/permissions/add", body_for=add("workspace", "x", "USE"))
    p.call("workspace grant of EDIT", "POST", v3 + "roles/permissions/add", body_for=add("workspace", "*", "EDIT"))
    p.call("grant on a bogus type", "POST", v3 + "roles/permissions/add", body_for=add("bogus", "*", "READ"))
    p.call("grant of a bad level", "POST", v3 + "roles/permissions/add", body_for=add("experiment", "*", "BAD"))
    p.call("grant on an unknown role", "POST", v3 + "roles/permissions/add",
           {"role_id": 999, "resource_type": "experiment", "resource_pattern": "*", "permission": "READ"})
    p.call("list role grants", "GET", v3 + "roles/permissions/list", body_for=role)
    p.call("update role grant", "PATCH", v3 + "roles/permissions/update",
           body_for=lambda s: {"role_permission_id": s["grant"], "permission": "MANAGE"})
    p.call("assign", "POST", v3 + "roles/assign", body_for=lambda s: {"username": "bob", "role_id": s["role"]})
    p.call("assign again", "POST", v3 + "roles/assign", body_for=lambda s: {"username": "bob", "role_id": s["role"]})
    p.call("assign to nobody", "POST", v3 + "roles/assign", body_for=lambda s: {"username": "nobody", "role_id": s["role"]})
    p.call("roles of a user", "GET", v3 + "users/roles/list", {"username": "bob"})
    p.call("users of a role", "GET", v3 + "roles/users/list", body_for=role)
    p.call("permission through a role", "GET", v3 + "users/permissions/get", body_for=where)
    p.call("permissions through a role", "GET", v3 + "users/permissions/list", {"username": "bob"})
    p.call("role member renames", "POST", v2 + "experiments/update",
           body_for=lambda s: {"experiment_id": s["exp"], "new_name": "renamed-by-bob"}, user=bob)
    p.call("member lists their workspace's roles", "GET", v3 + "roles/list", {"workspace": "default"}, user=bob)
    p.call("member gets the role", "GET", v3 + "roles/get", body_for=role, user=bob)
    p.call("member cannot create roles", "POST", v3 + "roles/create", {"workspace": "default", "name": "x"}, user=bob, message=False)
    p.call("member cannot list every role", "GET", v3 + "roles/list", user=bob, message=False)
    p.call("remove role grant", "DELETE", v3 + "roles/permissions/remove", body_for=lambda s: {"role_permission_id": s["grant"]})
    p.call("unassign", "DELETE", v3 + "roles/unassign", body_for=lambda s: {"username": "bob", "role_id": s["role"]})
    p.call("unassign again", "DELETE", v3 + "roles/unassign", body_for=lambda s: {"username": "bob", "role_id": s["role"]})
    p.call("delete role", "DELETE", v3 + "roles/delete", body_for=role)
    p.call("delete role again", "DELETE", v3 + "roles/delete", body_for=role)

    p.call("delete user", "DELETE", v2 + "users/delete", {"username": "bob"})
    p.call("delete user again", "DELETE", v2 + "users/delete", {"username": "bob"})

    assert not p.mismatches, "answers differ from MLflow's:\n" + "\n".join(p.mismatches)


def test_a_deny_in_a_role_wins_over_a_direct_grant_and_a_wildcard_grant_reaches_every_experiment(servers):
    """The fold of grants (direct and through roles) as MLflow folds them, checked on the same two servers."""
    p = Pair(servers)
    carl = ("carl", "carl-password-12")
    v2, v3 = "/api/2.0/mlflow/", "/api/3.0/mlflow/"
    p.call("create user", "POST", v2 + "users/create", {"username": "carl", "password": carl[1]})
    for name in ("one", "two"):
        p.call(f"create {name}", "POST", v2 + "experiments/create", {"name": "fold-" + name}, compare_body=False,
               save=lambda s, r, name=name: s.update({name: r["experiment_id"]}))
    p.call("direct EDIT on one", "POST", v3 + "users/permissions/grant",
           body_for=lambda s: {"username": "carl", "resource_type": "experiment", "resource_id": s["one"], "permission": "EDIT"})
    p.call("create role", "POST", v3 + "roles/create", {"workspace": "default", "name": "fold"},
           save=lambda s, r: s.update(role=r["role"]["id"]))
    p.call("role MANAGE on all", "POST", v3 + "roles/permissions/add",
           body_for=lambda s: {"role_id": s["role"], "resource_type": "experiment", "resource_pattern": "*", "permission": "MANAGE"})
    p.call("assign", "POST", v3 + "roles/assign", body_for=lambda s: {"username": "carl", "role_id": s["role"]})
    for name in ("one", "two"):
        p.call(f"level on {name}", "GET", v3 + "users/permissions/get",
               body_for=lambda s, name=name: {"username": "carl", "resource_type": "experiment", "resource_id": s[name]})
    p.call("role DENY on two", "POST", v3 + "roles/permissions/add",
           body_for=lambda s: {"role_id": s["role"], "resource_type": "experiment", "resource_pattern": s["two"], "permission": "DENY"})
    p.call("level on two after the deny", "GET", v3 + "users/permissions/get",
           body_for=lambda s: {"username": "carl", "resource_type": "experiment", "resource_id": s["two"]})
    p.call("denied read", "GET", v2 + "experiments/get", body_for=lambda s: {"experiment_id": s["two"]}, user=carl, message=False)
    p.call("allowed delete through the wildcard", "POST", v2 + "experiments/delete",
           body_for=lambda s: {"experiment_id": s["one"]}, user=carl)
    p.call("workspace admin", "POST", v3 + "roles/permissions/add",
           body_for=lambda s: {"role_id": s["role"], "resource_type": "workspace", "resource_pattern": "*", "permission": "MANAGE"})
    p.call("workspace admin creates a role", "POST", v3 + "roles/create", {"workspace": "default", "name": "made-by-carl"}, user=carl)
    p.call("workspace admin reads past the deny", "GET", v2 + "experiments/get",
           body_for=lambda s: {"experiment_id": s["two"]}, user=carl, message=False, compare_body=False)
    assert not p.mismatches, "answers differ from MLflow's:\n" + "\n".join(p.mismatches)
