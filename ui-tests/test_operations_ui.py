"""Operating views in the web UI (issue 14): the experiments table's Storage column and a run's
storage line (both from /api/cairn/v1/storage, checked against it), and stale runs marked in the
runs table and on the run page."""

import time

import requests
from mlflow.entities import Metric
from mlflow.tracking import MlflowClient

from conftest import SERVER_URI


def _storage(experiment_id, run_id=None):
    params = {"experiment_ids": experiment_id, "runs": 0}
    if run_id:
        params["run_id"] = run_id
    resp = requests.get(SERVER_URI + "/api/cairn/v1/storage", params=params, timeout=120)
    assert resp.status_code == 200, resp.text
    return resp.json()["experiments"][0]


def test_experiments_table_shows_storage_and_a_run_its_own(ui, seed):
    whole = _storage(seed.experiment_id)["storage"]
    assert whole["blob_bytes"] > 0 and whole["metric_points"] > 0
    ui.open("/experiments")
    cell = ui.wait(
        f"(() => {{ const row = document.querySelector(\"#experiments tr[data-id='{seed.experiment_id}']\");"
        " return row && row.children[3].textContent.includes('pts') && row.children[3]; })()")
    text = ui.js("return arguments[0].textContent", cell)
    points = whole["metric_points"]
    shown = f"{points / 1e6:.1f} M" if points >= 1e6 else f"{points / 1e3:.1f} k" if points >= 1e3 else str(points)
    assert text.endswith(f" · {shown} pts"), text
    assert "shared with other experiments" in ui.js("return arguments[0].title", cell)

    run = _storage(seed.experiment_id, seed.artifact_run)["runs"][0]["storage"]
    assert run["artifact_files"] >= 2
    ui.open(f"/experiments/{seed.experiment_id}/runs/{seed.artifact_run}")
    line = ui.wait("(() => { const s = document.getElementById('run-storage'); return s && s.textContent.includes('metric point') && s.textContent; })()")
    assert line.startswith(f"{run['artifact_files']} artifact files"), line
    ui.screenshot("run-storage-wide-light")


def test_a_silent_running_run_is_marked_stale(ui):
    client = MlflowClient(tracking_uri=SERVER_URI)
    exp_id = client.create_experiment(f"ui-stale-{time.time_ns()}")
    now = int(time.time() * 1000)
    silent = client.create_run(exp_id, start_time=now - 5 * 3_600_000, run_name="silent").info.run_id
    client.log_batch(silent, metrics=[Metric("loss", 0.5, now - 3 * 3_600_000, 1)])
    busy = client.create_run(exp_id, run_name="busy").info.run_id
    ui.open(f"/experiments/{exp_id}")
    ui.wait("window.__cairnTable && window.__cairnTable.domRows === 2")
    badge = ui.wait(f"document.querySelector(\".grid-row[data-run-id='{silent}'] .status.stale\")")
    assert ui.js("return arguments[0].textContent", badge) == "stale"
    assert "cairn runs close-stale" in ui.js("return arguments[0].title", badge)
    assert ui.js(f"return document.querySelector(\".grid-row[data-run-id='{busy}'] .status\").textContent") == "RUNNING"
    ui.screenshot("runs-stale-wide-light")
    ui.open(f"/experiments/{exp_id}/runs/{silent}")
    assert ui.wait("document.getElementById('run-stale') && document.getElementById('run-stale').textContent").startswith("stale since ")


def test_gate_evaluations_read_as_sentences_in_the_version_history(ui):
    import mlflow.exceptions

    client = MlflowClient(tracking_uri=SERVER_URI)
    name = f"ui-gated-{time.time_ns()}"
    exp_id = client.create_experiment(name)
    client.create_registered_model(name)
    client.set_registered_model_tag(name, "cairn.gate.champion", "require=finished; metric=val_acc>=0.9")
    run = client.create_run(exp_id).info.run_id
    client.log_metric(run, "val_acc", 0.7)
    version = client.create_model_version(name, f"runs:/{run}/model", run_id=run).version
    try:
        client.set_registered_model_alias(name, "champion", version)
        raise AssertionError("the gate let a failing version through")
    except mlflow.exceptions.MlflowException as refused:
        assert "promotion gate failed" in str(refused)
    client.set_model_version_tag(name, version, "cairn.gate.override", "demo for the review")
    client.set_registered_model_alias(name, "champion", version)
    ui.open(f"/models/{name}?version={version}")
    rows = ui.wait("document.querySelectorAll('#history tr.gate').length === 2 && [...document.querySelectorAll('#history tr.gate')].map((r) => r.textContent)")
    assert "Gate for alias champion: failed" in rows[0] and "✗ finished: status RUNNING" in rows[0], rows
    assert "Gate for alias champion: overridden — override: \"demo for the review\"" in rows[1], rows
    assert "✗ metric val_acc>=0.9: val_acc = 0.7" in rows[1], rows
    ui.js("document.getElementById('history').scrollIntoView()")
    ui.screenshot("model-gates-wide-light")


def test_dashboard_counts_the_window_and_a_bar_opens_its_runs(ui, seed):
    resp = requests.get(SERVER_URI + "/api/cairn/v1/dashboard", params={"window": "week"}, timeout=120)
    assert resp.status_code == 200, resp.text
    d = resp.json()
    assert len(d["days"]) == 7
    started = sum(day[k] for day in d["days"] for k in ("finished", "failed", "killed", "running", "scheduled"))
    assert started > 0
    ui.open("/overview")
    bars = ui.wait("window.__cairnDashboard && window.__cairnDashboard.bars.length === 7 && window.__cairnDashboard.bars")
    assert sum(bars) == started
    cards = ui.js("return [...document.querySelectorAll('#dashboard-cards .card')].map((c) => c.textContent)")
    assert any(c.startswith("Success rate") for c in cards) and any(c.startswith("Promotion pass rate") for c in cards), cards
    assert ui.js("return document.getElementById('dashboard-running').textContent").startswith("Running now")
    ui.screenshot("dashboard-wide-light")
    # The newest day with runs (today, unless the test crossed midnight UTC) opens those runs in the runs table.
    day = max(i for i, n in enumerate(bars) if n > 0)
    ui.js("""const c = document.getElementById('dashboard-runs-chart'); const r = c.getBoundingClientRect();
             const x = r.left + window.__cairnDashboard.centers[arguments[0]];
             c.dispatchEvent(new MouseEvent('click', {clientX: x, clientY: r.bottom - 30, bubbles: true}));""", day)
    ui.wait("location.hash.includes('attributes.start_time')")
    state = ui.wait("window.__cairnTable && window.__cairnTable.domRows > 0 && window.__cairnTable")
    assert state["rowCount"] == bars[day]
    # Another window is one select away and kept in the URL.
    ui.open("/overview?window=month")
    ui.wait("window.__cairnDashboard && window.__cairnDashboard.bars.length === 30")


def test_dashboard_shows_time_to_reproduce_and_audit_events_and_a_day_opens_the_reproductions(ui):
    client = MlflowClient(SERVER_URI)
    exp = client.create_experiment(f"reproduced-{time.time_ns()}")
    original = client.create_run(exp).info.run_id
    client.set_terminated(original)
    now = int(time.time() * 1000)
    for status, seconds in (("reproduced", 90), ("reproduced", 30), ("not_reproduced", 10)):
        run = client.create_run(exp, start_time=now - seconds * 1000,
                                tags={"cairn.reproduce.of": original, "cairn.reproduce.status": status}).info.run_id
        client.set_terminated(run, end_time=now)
    d = requests.get(SERVER_URI + "/api/cairn/v1/dashboard", params={"window": "week", "experiment_id": exp}, timeout=120).json()
    assert (d["reproduce_attempts"], d["reproduced"]) == (3, 2)
    assert d["time_to_reproduce_median_seconds"] == 60 and d["time_to_reproduce_max_seconds"] == 90
    assert sum(day["audit_events"] for day in d["days"]) > 0 and 0 <= d["audit_actor_known"] <= 1
    ui.open(f"/overview?experiment_id={exp}")
    charts = ui.wait("window.__cairnDashboardCharts && window.__cairnDashboardCharts['dashboard-reproduce-chart'] "
                     "&& window.__cairnDashboardCharts['dashboard-audit-chart'] && window.__cairnDashboardCharts")
    assert sum(charts["dashboard-reproduce-chart"]["all"]) == 3 and sum(charts["dashboard-reproduce-chart"]["part"]) == 2
    cards = ui.js("return [...document.querySelectorAll('#dashboard-cards .card')].map((c) => c.textContent)")
    assert any(c.startswith("Time to reproduce") and "60.0 s" in c for c in cards), cards
    assert any(c.startswith("Reproduced") and "2 of 3" in c for c in cards), cards
    assert any(c.startswith("Audit: actor known") for c in cards), cards
    ui.screenshot("dashboard-reproduce-wide-light")
    # The day with the reproductions opens exactly those runs.
    day = max(i for i, n in enumerate(charts["dashboard-reproduce-chart"]["all"]) if n > 0)
    ui.js("""const c = document.getElementById('dashboard-reproduce-chart'); const r = c.getBoundingClientRect();
             const days = window.__cairnDashboardCharts['dashboard-reproduce-chart'].all.length;
             const slot = (r.width - 30) / days; const x = r.left + 30 + arguments[0] * slot + slot * 0.3;
             c.dispatchEvent(new MouseEvent('click', {clientX: x, clientY: r.bottom - 30, bubbles: true}));""", day)
    ui.wait("location.hash.includes('cairn.reproduce.of')")
    state = ui.wait("window.__cairnTable && window.__cairnTable.domRows > 0 && window.__cairnTable")
    assert state["rowCount"] == 3


def test_the_audit_page_lists_changes_newest_first_and_filters_them(ui):
    client = MlflowClient(tracking_uri=SERVER_URI)
    exp_id = client.create_experiment(f"ui-audit-{time.time_ns()}")
    run_id = client.create_run(exp_id, run_name="audited").info.run_id
    client.log_batch(run_id, metrics=[Metric("loss", 1.0 / (i + 1), int(time.time() * 1000), i) for i in range(50)])
    client.set_terminated(run_id)
    ui.open("/audit")
    assert ui.js("return document.querySelector(\"nav a[data-nav='audit']\").classList.contains('active')")
    ui.wait("document.querySelectorAll('#audit-events tbody tr[data-seq]').length > 0")
    # Filter by the run as a user would: type the target, press Filter.
    ui.js("document.querySelector(\"#audit-filters input[name='target']\").value = arguments[0];"
          "document.querySelector('#audit-filters button[type=submit]').click()", f"run:{run_id}")
    rows = ui.wait("(() => { const r = [...document.querySelectorAll('#audit-events tbody tr[data-seq]')];"
                   " return r.length === 3 && r.map((x) => [x.children[4].textContent, x.children[6].textContent]); })()")
    assert [r[0] for r in rows] == ["run.update", "run.metrics.log", "run.create"]
    assert "points=50" in rows[1][1]
    assert f"target=run%3A{run_id}" in ui.js("return location.hash") or f"target=run:{run_id}" in ui.js("return location.hash")
    ui.screenshot("audit-wide-light")
    ui.open("/overview")
    card = ui.wait("document.getElementById('report-audit') && document.getElementById('report-audit').textContent")
    assert "Audit completeness" in card and "Actor known" in card
