"""Signing in to a server with accounts (issue 13), in the real headless Chromium: the UI shows its
own sign-in form (no browser password dialog), then the pages, the signed-in user in the header,
only what the user may read, and signs out. The server is this module's own, started with --auth."""

import os
import socket
import subprocess
import tempfile
import time

import pytest
import requests
from mlflow.tracking import MlflowClient
from selenium.webdriver.support.ui import WebDriverWait

from conftest import SCREENSHOTS, WAIT_TIMEOUT

ADMIN_PASSWORD = "admin-secret-1"


@pytest.fixture(scope="module")
def auth_server():
    binary = os.environ.get("CAIRN_BINARY", "").strip()
    if not binary:
        pytest.skip("CAIRN_BINARY is not set: this test starts its own cairn server (scripts/test exports it)")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with tempfile.TemporaryDirectory() as data, open(os.path.join(data, "server.log"), "w") as log:
        proc = subprocess.Popen([binary, "server", "--host", "127.0.0.1", "--port", str(port), "--data-dir", data,
                                 "--auth", "--auth-default-permission", "NO_PERMISSIONS"],
                                stdout=log, stderr=subprocess.STDOUT, env={**os.environ, "CAIRN_ADMIN_PASSWORD": ADMIN_PASSWORD})
        uri = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 120  # hang protection only
        while True:
            try:
                if requests.get(uri + "/health", timeout=5).status_code == 200:
                    break
            except requests.RequestException:
                pass
            assert proc.poll() is None and time.monotonic() < deadline, "cairn server did not start"
            time.sleep(0.05)
        admin = requests.Session()
        admin.auth = ("admin", ADMIN_PASSWORD)
        assert admin.post(uri + "/api/2.0/mlflow/users/create", json={"username": "reader", "password": "reader-password"}).ok
        saved = {k: os.environ.get(k) for k in ("MLFLOW_TRACKING_USERNAME", "MLFLOW_TRACKING_PASSWORD")}
        os.environ.update(MLFLOW_TRACKING_USERNAME="admin", MLFLOW_TRACKING_PASSWORD=ADMIN_PASSWORD)
        try:
            client = MlflowClient(uri)
            shown = client.create_experiment(f"granted-{time.time_ns()}")
            hidden = client.create_experiment(f"hidden-{time.time_ns()}")
            client.create_run(shown)
        finally:
            for k, v in saved.items():
                os.environ.pop(k, None) if v is None else os.environ.__setitem__(k, v)
        assert admin.post(uri + "/api/3.0/mlflow/users/permissions/grant",
                          json={"username": "reader", "resource_type": "experiment", "resource_id": shown, "permission": "READ"}).ok
        try:
            yield uri, shown, hidden
        finally:
            proc.terminate()
            proc.wait(timeout=30)


def _wait(driver, script):
    return WebDriverWait(driver, WAIT_TIMEOUT).until(lambda d: d.execute_script(f"return ({script})"))


def test_sign_in_shows_only_granted_experiments_and_signs_out(browser, auth_server):
    uri, shown, hidden = auth_server
    browser.delete_all_cookies()
    browser.get("about:blank")
    browser.get(f"{uri}/#/experiments")
    form = _wait(browser, "document.querySelector('form.signin')")
    os.makedirs(SCREENSHOTS, exist_ok=True)
    browser.save_screenshot(os.path.join(SCREENSHOTS, "signin-form.png"))
    browser.execute_script("""
        const f = arguments[0];
        f.querySelector('input[name=username]').value = 'reader';
        f.querySelector('input[name=password]').value = 'wrong-password';
        f.querySelector('button[type=submit]').click();""", form)
    assert "not authenticated" in _wait(browser, "(() => { const e = document.querySelector('form.signin .error'); return e && e.textContent; })()")
    browser.execute_script("""
        const f = document.querySelector('form.signin');
        f.querySelector('input[name=password]').value = 'reader-password';
        f.querySelector('button[type=submit]').click();""")
    _wait(browser, f"document.querySelector(\"#experiments tr[data-id='{shown}']\")")
    assert browser.execute_script(f"return document.querySelector(\"#experiments tr[data-id='{hidden}']\")") is None
    assert _wait(browser, "document.querySelector('#session [data-user]') && document.querySelector('#session [data-user]').textContent") == "reader"
    browser.save_screenshot(os.path.join(SCREENSHOTS, "signin-experiments.png"))
    cookies = {c["name"]: c for c in browser.get_cookies()}
    assert cookies["cairn_session"]["httpOnly"] is True and cookies["cairn_session"]["sameSite"] == "Strict"
    assert cookies["cairn_csrf"]["httpOnly"] is False
    # A change with the session cookie but without the page's CSRF header is refused.
    status = browser.execute_script("""
        return fetch('/ajax-api/2.0/mlflow/experiments/create', {method: 'POST', headers: {'Content-Type': 'application/json'},
                     body: JSON.stringify({name: 'csrf-' + Date.now()})}).then(r => r.status);""")
    assert status == 403
    browser.execute_script("document.querySelector('#session button').click()")
    _wait(browser, "document.querySelector('form.signin')")
    assert "cairn_session" not in {c["name"] for c in browser.get_cookies()}


def test_an_administrator_manages_users_grants_and_tokens_on_the_accounts_page(browser, auth_server):
    uri, shown, _ = auth_server
    browser.delete_all_cookies()
    browser.get("about:blank")
    browser.get(f"{uri}/#/accounts")
    _wait(browser, "document.querySelector('form.signin')")
    browser.execute_script("""
        const f = document.querySelector('form.signin');
        f.querySelector('input[name=username]').value = 'admin';
        f.querySelector('input[name=password]').value = arguments[0];
        f.querySelector('button[type=submit]').click();""", ADMIN_PASSWORD)
    _wait(browser, "document.querySelector(\"#users tr[data-user='reader']\")")
    assert browser.execute_script("return !!document.querySelector('nav a[data-nav=accounts]')")
    # The signed-in session shows among the tokens.
    assert "web session" in browser.execute_script("return document.getElementById('tokens').textContent")
    browser.execute_script("""
        document.getElementById('new-user-name').value = 'writer';
        document.getElementById('new-user-password').value = 'writer-password';
        document.getElementById('create-user').click();""")
    _wait(browser, "document.querySelector(\"#users tr[data-user='writer']\")")
    browser.execute_script("document.querySelector(\"#users tr[data-user='writer'] button.link\").click()")
    _wait(browser, "document.getElementById('grant-resource')")
    browser.execute_script("""
        document.getElementById('grant-resource').value = arguments[0];
        document.getElementById('grant-level').value = 'EDIT';
        document.getElementById('grant').click();""", shown)
    _wait(browser, "document.getElementById('grants-table').textContent.includes('EDIT')")
    browser.save_screenshot(os.path.join(SCREENSHOTS, "accounts-admin.png"))
    reply = requests.get(uri + "/api/3.0/mlflow/users/permissions/get", auth=("admin", ADMIN_PASSWORD),
                         params={"username": "writer", "resource_type": "experiment", "resource_id": shown}, timeout=60).json()
    assert reply == {"allowed": True, "permission": "EDIT"}
    # A second grant on the same experiment changes the level (MLflow's API refuses a second grant;
    # the page revokes the old one first).
    browser.execute_script("""
        document.getElementById('grant-resource').value = arguments[0];
        document.getElementById('grant-level').value = 'MANAGE';
        document.getElementById('grant').click();""", shown)
    _wait(browser, "document.getElementById('grants-table').textContent.includes('MANAGE')")
    reply = requests.get(uri + "/api/3.0/mlflow/users/permissions/get", auth=("admin", ADMIN_PASSWORD),
                         params={"username": "writer", "resource_type": "experiment", "resource_id": shown}, timeout=60).json()
    assert reply == {"allowed": True, "permission": "MANAGE"}
    assert requests.get(uri + "/api/2.0/mlflow/users/current", auth=("writer", "writer-password"), timeout=60).status_code == 200


def test_a_stale_session_cookie_leaves_the_page_anonymous_and_is_not_a_failed_sign_in(browser, auth_server):
    uri, _, _ = auth_server
    browser.delete_all_cookies()
    browser.get(f"{uri}/health")
    browser.add_cookie({"name": "cairn_session", "value": "cairn_not-a-real-session-token", "path": "/"})
    for _ in range(3):
        browser.get("about:blank")
        browser.get(f"{uri}/#/experiments")
        _wait(browser, "document.querySelector('form.signin')")
    events = requests.get(uri + "/api/cairn/v1/audit", auth=("admin", ADMIN_PASSWORD),
                          params={"action": "auth.sign_in_failed", "max_results": 100}, timeout=60).json()["events"]
    assert [e for e in events if e["target"] == "token:unknown"] == []


@pytest.fixture(scope="module")
def grants(auth_server):
    """A registered model, a READ user ("reader", READ on the granted experiment and the model) and
    an EDIT user ("editor", EDIT on both); returns (run id in the granted experiment, model name)."""
    uri, shown, _ = auth_server
    admin = requests.Session()
    admin.auth = ("admin", ADMIN_PASSWORD)
    model = f"perm-model-{time.time_ns()}"
    assert admin.post(uri + "/api/2.0/mlflow/registered-models/create", json={"name": model}).ok
    assert admin.post(uri + "/api/2.0/mlflow/users/create", json={"username": "editor", "password": "editor-password"}).ok
    for user, level in [("reader", "READ"), ("editor", "EDIT")]:
        for kind, resource in [("experiment", shown), ("registered_model", model)]:
            if (user, kind) == ("reader", "experiment"):
                continue  # granted by auth_server
            assert admin.post(uri + "/api/3.0/mlflow/users/permissions/grant",
                              json={"username": user, "resource_type": kind, "resource_id": resource, "permission": level}).ok
    runs = admin.post(uri + "/api/2.0/mlflow/runs/search", json={"experiment_ids": [shown]}).json()["runs"]
    return runs[0]["info"]["run_id"], model


def _sign_in(browser, uri, user, password):
    browser.delete_all_cookies()
    browser.get("about:blank")
    browser.get(f"{uri}/#/experiments")
    _wait(browser, "document.querySelector('form.signin')")
    browser.execute_script("""
        const f = document.querySelector('form.signin');
        f.querySelector('input[name=username]').value = arguments[0];
        f.querySelector('input[name=password]').value = arguments[1];
        f.querySelector('button[type=submit]').click();""", user, password)
    _wait(browser, "document.querySelector('#session [data-user]')")


def _open(browser, uri, route):
    browser.get("about:blank")
    browser.get(f"{uri}/#{route}")
    _wait(browser, "window.__cairnReady === true")


def _buttons(browser, uri, shown, run_id, model):
    """Which edit buttons each page shows the signed-in user."""
    seen = {}
    _open(browser, uri, "/experiments")
    row = f"#experiments tr[data-id='{shown}']"
    _wait(browser, f"document.querySelector(\"{row}\")")
    seen["experiment"] = browser.execute_script(f"return [...document.querySelectorAll(\"{row} td.actions button\")].map(b => b.textContent)")
    seen["create"] = browser.execute_script("return [...document.querySelectorAll('button.primary')].some(b => b.textContent === 'Create' && !b.hidden)")
    seen["nav"] = browser.execute_script("return [...document.querySelectorAll('header nav a')].filter(a => !a.hidden).map(a => a.dataset.nav)")
    _open(browser, uri, f"/experiments/{shown}")
    _wait(browser, "window.__cairnViews && window.__cairnViews.loaded")
    seen["views"] = browser.execute_script("return ['view-save', 'view-save-as', 'view-default', 'view-delete', 'view-link'].filter(id => document.getElementById(id))")
    _open(browser, uri, f"/experiments/{shown}/runs/{run_id}")
    _wait(browser, "document.querySelector('#note p, #note .markdown')")
    seen["note"] = browser.execute_script("return !!document.getElementById('edit-note')")
    _open(browser, uri, f"/models/{model}")
    _wait(browser, "document.getElementById('model-description')")
    seen["model"] = browser.execute_script("return [...document.querySelectorAll('#model-description button, #alias-editor button')].map(b => b.textContent)")
    assert browser.execute_script("return document.getElementById('model-description').textContent") == "No description." + (
        "Edit description" if seen["model"] else "")
    return seen


def test_a_read_user_sees_no_edit_buttons_an_editor_sees_them_and_an_admin_sees_the_admin_pages(browser, auth_server, grants):
    uri, shown, _ = auth_server
    run_id, model = grants
    _sign_in(browser, uri, "reader", "reader-password")
    reader = _buttons(browser, uri, shown, run_id, model)
    browser.save_screenshot(os.path.join(SCREENSHOTS, "permissions-reader-model.png"))
    assert reader == {"experiment": [], "create": True, "nav": ["experiments", "models", "overview"],
                      "views": ["view-link"], "note": False, "model": []}

    _sign_in(browser, uri, "editor", "editor-password")
    editor = _buttons(browser, uri, shown, run_id, model)
    browser.save_screenshot(os.path.join(SCREENSHOTS, "permissions-editor-model.png"))
    # EDIT renames but does not delete (MANAGE); it saves views, notes, descriptions and aliases.
    assert editor["experiment"] == ["Rename"]
    assert editor["views"] == ["view-save", "view-save-as", "view-default", "view-delete", "view-link"]
    assert editor["note"] is True
    assert "Edit description" in editor["model"] and "Set alias" in editor["model"]
    assert editor["nav"] == ["experiments", "models", "overview"]

    _sign_in(browser, uri, "admin", ADMIN_PASSWORD)
    admin = _buttons(browser, uri, shown, run_id, model)
    assert admin["experiment"] == ["Rename", "Delete"]
    assert admin["nav"] == ["experiments", "models", "overview", "webhooks", "audit", "accounts"]
