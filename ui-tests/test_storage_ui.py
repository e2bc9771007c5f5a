"""Storage in the web UI (issue 14): the experiments table's Storage column and a run's storage
line, both from /api/cairn/v1/storage, checked against the same endpoint."""

import requests

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
