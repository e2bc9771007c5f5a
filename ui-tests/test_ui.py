"""What a user does in the web UI, checked by reading the DOM and the charts' data."""

import json
import re
import statistics
import time
from urllib.parse import unquote

import pytest
from mlflow.tracking import MlflowClient
from selenium.webdriver.common.action_chains import ActionChains
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support.ui import Select

from conftest import sha256

# Requests the UI makes on purpose that the browser logs as failed resources.
EXPECTED_404_REPORT = "api/cairn/v1/report"


def table_state(ui):
    return ui.js("return window.__cairnTable")


def pages(seed):
    run = seed.artifact_run
    sel = ",".join(r["run_id"] for r in seed.runs[:4])
    return {
        "experiments": "/experiments",
        "runs": f"/experiments/{seed.experiment_id}",
        "runs-multi": f"/experiments/{seed.experiment_id},{seed.second_experiment_id}",
        "run": f"/experiments/{seed.experiment_id}/runs/{run}",
        "run-metrics": f"/experiments/{seed.experiment_id}/runs/{seed.spike_run}?tab=metrics",
        "run-artifacts": f"/experiments/{seed.experiment_id}/runs/{run}?tab=artifacts",
        "compare": f"/compare?e={seed.experiment_id}&runs={sel}&keys=loss,acc",
        "compare-parallel": f"/compare?e={seed.experiment_id}&runs={sel}&keys=loss,acc&tab=parallel",
        "compare-scatter": f"/compare?e={seed.experiment_id}&runs={sel}&keys=loss,acc&tab=scatter",
        "compare-diff": f"/compare?e={seed.experiment_id}&runs={sel}&keys=loss,acc&tab=diff",
        "models": "/models",
        "model": "/models/ui-model",
        "overview": "/overview",
    }


def settle(ui, name):
    """Waits for what each page draws after it is ready."""
    if name.startswith("runs"):
        ui.wait("window.__cairnTable && window.__cairnTable.domRows > 0")
    if name == "compare":
        ui.wait("window.__cairnCharts['compare:loss'] && window.__cairnCharts['compare:loss'].requests >= 1")
    if name == "run-metrics":
        ui.wait("window.__cairnCharts['run:loss'] && window.__cairnCharts['run:loss'].requests >= 1")
    if name == "run-artifacts":
        ui.wait("document.querySelectorAll('#artifact-tree .node').length > 0")
    if name == "run":
        ui.wait("document.getElementById('git-diff') !== null")
    if name == "model":
        ui.wait("document.getElementById('history') !== null")


@pytest.mark.parametrize("theme", ["light", "dark"])
@pytest.mark.parametrize("size", ["wide", "narrow"])
def test_every_page_loads_without_console_errors(ui, seed, theme, size):
    for name, route in pages(seed).items():
        ui.open(route, theme=theme, size=size)
        settle(ui, name)
        assert ui.js("return document.querySelector('main .error:not(#report-missing)')") is None or name == "overview", name
        assert ui.js("return window.__cairnErrors.length") == 0, (name, ui.js("return window.__cairnErrors"))
        errors = ui.console_errors(allow=[EXPECTED_404_REPORT] if name == "overview" else [])
        assert errors == [], (name, errors)
        ui.screenshot(f"{name}-{size}-{theme}")
        bg = ui.js("return getComputedStyle(document.body).backgroundColor")
        assert (bg == "rgb(20, 23, 28)") == (theme == "dark"), (name, bg)


def test_runs_table_shows_every_run_with_params_and_latest_metrics(ui, seed):
    ui.open(f"/experiments/{seed.experiment_id}")
    state = ui.wait("window.__cairnTable && window.__cairnTable.domRows > 0 && window.__cairnTable")
    assert state["rowCount"] == 14  # 12 runs, the provenance run and its child
    for col in ["param:lr", "param:batch", "param:model", "metric:acc", "metric:loss"]:
        assert col in state["columns"]
    text = ui.js(f"return document.querySelector(\".grid-row[data-run-id='{seed.runs[3]['run_id']}']\").textContent")
    assert "run-03" in text and "0.45" in text
    assert ui.js("return document.getElementById('run-count').textContent").startswith("14 runs")


def test_sorting_by_a_metric_column_both_ways(ui, seed):
    ui.open(f"/experiments/{seed.experiment_id}")
    ui.wait("window.__cairnTable && window.__cairnTable.domRows > 0")
    ui.d.find_element(By.CSS_SELECTOR, ".grid-head .cell[data-col='metric:acc']").click()
    names = ui.wait("window.__cairnTable.sort === 'metric:acc:desc' && window.__cairnTable.names")
    by_acc = [r["name"] for r in sorted(seed.runs, key=lambda r: -r["acc"])]
    assert names[0] == "provenance"  # acc 0.91 is the highest
    assert names[1:13] == by_acc
    assert names[13] == "child"  # no acc: missing values sort last
    ui.d.find_element(By.CSS_SELECTOR, ".grid-head .cell[data-col='metric:acc']").click()
    names = ui.wait("window.__cairnTable.sort === 'metric:acc:asc' && window.__cairnTable.names")
    assert names[:12] == list(reversed(by_acc)) and names[13] == "child"
    assert "sort=metric%3Aacc%3Aasc" in ui.d.current_url or "sort=metric:acc:asc" in unquote(ui.d.current_url)


@pytest.fixture(scope="module")
def big_experiment():
    """1,200 runs (more than the table's first page of 500), newest last, each with a `score`."""
    from mlflow.entities import Metric
    client = MlflowClient()
    exp = client.create_experiment(f"ui-big-{int(time.time() * 1000)}")
    scores = []
    for i in range(1200):
        run = client.create_run(exp, start_time=1_700_000_000_000 + i, run_name=f"big-{i:04d}")
        scores.append((i * 37) % 1000 / 10)
        client.log_batch(run.info.run_id, metrics=[Metric("score", scores[-1], 1_700_000_000_000, 0)])
    return exp, scores


def table_requests(ui):
    return ui.js("return performance.getEntriesByType('resource').map((e) => e.name).filter((n) => n.includes('/runs/table'))")


def test_a_big_table_shows_its_first_page_then_reads_the_rest_and_sorts_every_row(ui, big_experiment):
    exp, scores = big_experiment
    ui.open(f"/experiments/{exp}")
    state = ui.wait("window.__cairnTable && window.__cairnTable.complete && window.__cairnTable.rowCount === 1200 && window.__cairnTable")
    assert state["total"] == 1200
    assert state["names"][:3] == ["big-1199", "big-1198", "big-1197"]
    assert ui.js("return document.getElementById('run-count').textContent").startswith("1200 runs")
    asked = table_requests(ui)
    # The first screen is one page of 500 with the count, in the table's order; the rest follow.
    assert "max_results=500" in asked[0] and "total=true" in asked[0] and "start_time+DESC" in asked[0], asked
    assert any("offset=500" in a for a in asked[1:]), asked
    ui.d.find_element(By.CSS_SELECTOR, ".grid-head .cell[data-col='metric:score']").click()
    names = ui.wait("window.__cairnTable.sort === 'metric:score:desc' && window.__cairnTable.names")
    by_score = sorted(range(1200), key=lambda i: (-scores[i], -i))
    assert names == [f"big-{i:04d}" for i in by_score[:200]]
    # Select-all takes every run once they are all here.
    ui.d.find_element(By.CSS_SELECTOR, ".grid-head input[type=checkbox]").click()
    assert ui.wait("window.__cairnTable.selected.length === 1200")


def test_a_big_table_opened_sorted_by_a_metric_asks_for_its_first_page_in_that_order(ui, big_experiment):
    exp, scores = big_experiment
    ui.open(f"/experiments/{exp}?sort=metric%3Ascore%3Aasc")
    names = ui.wait("window.__cairnTable && window.__cairnTable.complete && window.__cairnTable.names")
    assert "max_results=500" in table_requests(ui)[0] and "order_by=metrics.%60score%60+ASC" in table_requests(ui)[0]
    assert names == [f"big-{i:04d}" for i in sorted(range(1200), key=lambda i: (scores[i], -i))[:200]]


def test_filter_with_or_and_a_bad_filter_shown_inline(ui, seed):
    ui.open(f"/experiments/{seed.experiment_id}")
    ui.wait("window.__cairnTable && window.__cairnTable.domRows > 0")
    box = ui.d.find_element(By.ID, "filter")
    box.send_keys("metrics.acc >= 0.8 OR params.model = 'resnet'", Keys.ENTER)
    state = ui.wait("window.__cairnTable.filter !== '' && window.__cairnTable")
    expected = {r["name"] for r in seed.runs if r["acc"] >= 0.8 or r["params"]["model"] == "resnet"} | {"provenance"}
    assert set(state["names"]) == expected
    assert "filter=" in ui.d.current_url
    # The view is a link: opening the URL again gives the same table.
    url = ui.d.current_url
    ui.d.get("about:blank")
    ui.d.get(url)
    ui.wait_ready()
    again = ui.wait("window.__cairnTable && window.__cairnTable.domRows > 0 && window.__cairnTable")
    assert set(again["names"]) == expected
    box = ui.d.find_element(By.ID, "filter")
    box.clear()
    box.send_keys("metrics.acc >> 1", Keys.ENTER)
    message = ui.wait("document.querySelector('#filter-error .error') && document.querySelector('#filter-error .error').textContent")
    assert "The filter was not applied" in message and len(message) > 40
    assert ui.js("return document.getElementById('filter').getAttribute('aria-invalid')") == "true"
    assert set(table_state(ui)["names"]) == expected  # the previous result stays


def test_shift_click_selects_a_range_kept_in_the_url_and_compare_opens(ui, seed):
    ui.open(f"/experiments/{seed.experiment_id}?sort=attr:run_name:asc")
    ui.wait("window.__cairnTable && window.__cairnTable.domRows > 0")
    ui.d.find_elements(By.CSS_SELECTOR, ".grid-row .check")[0].click()
    ui.wait("window.__cairnTable.selected.length === 1")
    fifth = ui.d.find_elements(By.CSS_SELECTOR, ".grid-row .check")[4]  # rows are redrawn: find it again
    ActionChains(ui.d).key_down(Keys.SHIFT).click(fifth).key_up(Keys.SHIFT).perform()
    selected = ui.wait("window.__cairnTable.selected.length === 5 && window.__cairnTable.selected")
    names = table_state(ui)["names"][:5]
    assert names == ["child", "provenance", "run-00", "run-01", "run-02"]
    assert len(selected) == 5
    assert unquote(ui.d.current_url).count(",") >= 4 and "sel=" in ui.d.current_url
    ui.js("window.scrollTo(0, 0)")  # the rows sit below the chart workspace: back up to the toolbar under the sticky bar
    ui.d.find_element(By.ID, "compare-button").click()
    # The click changes the hash; the runs page's own h1 and ready flag may still be there for a moment.
    title = ui.wait("location.hash.startsWith('#/compare') && window.__cairnReady === true && document.querySelector('h1')"
                    " && document.querySelector('h1').textContent.startsWith('Compare') && document.querySelector('h1').textContent")
    assert title == "Compare 5 runs"


def test_keyboard_moves_selects_and_opens(ui, seed):
    ui.open(f"/experiments/{seed.experiment_id}?sort=attr:run_name:asc")
    ui.wait("window.__cairnTable && window.__cairnTable.domRows > 0")
    grid = ui.d.find_element(By.ID, "runs-grid")
    grid.click()
    ActionChains(ui.d).send_keys(Keys.HOME, Keys.ARROW_DOWN, Keys.ARROW_DOWN, " ").perform()
    selected = ui.wait("window.__cairnTable.selected.length === 1 && window.__cairnTable.selected")
    assert selected == [seed.runs[0]["run_id"]]  # child, provenance, run-00
    ActionChains(ui.d).send_keys(Keys.ENTER).perform()
    ui.wait_ready()
    ui.wait("location.hash.indexOf('/runs/') > 0")
    assert seed.runs[0]["run_id"] in ui.d.current_url


def test_group_by_a_param_shows_counts(ui, seed):
    ui.open(f"/experiments/{seed.experiment_id}?group=params.model")
    ui.wait("document.querySelectorAll('#group-counts .chip').length > 0")
    chips = [c.text for c in ui.d.find_elements(By.CSS_SELECTOR, "#group-counts .chip")]
    assert "cnn · 4" in chips and "mlp · 4" in chips and "resnet · 4" in chips and "(none) · 2" in chips
    groups = ui.js("return [...document.querySelectorAll('.grid-row.group .group-label')].map(e => e.textContent)")
    assert "params.model = cnn (4)" in groups


def test_column_chooser_adds_min_and_max_columns(ui, seed):
    ui.open(f"/experiments/{seed.experiment_id}")
    ui.wait("window.__cairnTable && window.__cairnTable.domRows > 0")
    ui.d.find_element(By.ID, "columns-button").click()
    ui.d.find_element(By.ID, "column-search").send_keys("loss")
    ui.d.find_element(By.CSS_SELECTOR, "#column-chooser input[data-col='metric.max:loss']").click()
    cols = ui.wait("window.__cairnTable.columns.includes('metric.max:loss') && window.__cairnTable.columns")
    assert "metric:loss" in cols
    cells = ui.js(f"return [...document.querySelector(\".grid-row[data-run-id='{seed.spike_run}']\").children].map(c => c.textContent)")
    assert cells[1 + cols.index("metric.max:loss")] == "50"  # run-00's loss spike is its maximum
    assert "cols=" in ui.d.current_url


def test_compare_charts_every_run_keeps_the_spike_and_zooms_with_finer_buckets(ui, seed):
    sel = [r["run_id"] for r in seed.runs[:6]]
    ui.open(f"/compare?e={seed.experiment_id}&runs={','.join(sel)}&keys=loss")
    chart = ui.wait("window.__cairnCharts['compare:loss'] && window.__cairnCharts['compare:loss'].requests >= 1 && window.__cairnCharts['compare:loss']")
    assert len(chart["series"]) == 6
    spike = next(s for s in chart["series"] if s["runId"] == seed.spike_run)
    assert spike["max"] == 50 and spike["pointCount"] == 300
    canvas = ui.d.find_element(By.CSS_SELECTOR, "canvas[data-chart='compare:loss']")
    width = canvas.size["width"]
    # Hover lists every run's value at that x.
    ActionChains(ui.d).move_to_element_with_offset(canvas, 0, 0).perform()
    hover = ui.wait("window.__cairnCharts['compare:loss'].hover")
    assert len(hover["values"]) == 6
    # Drag across the middle to zoom: the chart re-fetches a narrower range.
    ActionChains(ui.d).move_to_element_with_offset(canvas, -width // 8, 0).click_and_hold() \
        .move_by_offset(width // 5, 0).release().perform()
    zoomed = ui.wait("window.__cairnCharts['compare:loss'].requests >= 2 && window.__cairnCharts['compare:loss'].zoomed && window.__cairnCharts['compare:loss']")
    lo, hi = zoomed["xRange"]
    assert 0 < lo < hi < 299 and hi - lo < 150
    for s in zoomed["series"]:
        assert s["pointCount"] <= hi - lo + 1
    # Log scale and smoothing are switches on the same data.
    ui.d.find_element(By.ID, "log-scale").click()
    assert ui.wait("window.__cairnCharts['compare:loss'].log === true")
    # Double-click resets the zoom.
    ActionChains(ui.d).double_click(canvas).perform()
    ui.wait("window.__cairnCharts['compare:loss'].zoomed === false")


def test_compare_diff_parallel_and_scatter(ui, seed):
    sel = [r["run_id"] for r in seed.runs[:3]]
    base = f"/compare?e={seed.experiment_id}&runs={','.join(sel)}&keys=acc"
    ui.open(base + "&tab=diff")
    keys = ui.js("return [...document.querySelectorAll('#diff-table tr.differs')].map(r => r.dataset.key)")
    assert "params.lr" in keys and "params.model" in keys and "params.batch" in keys
    assert all(k != "tags.mlflow.user" for k in keys)  # the same everywhere: not highlighted
    ui.open(base + "&tab=parallel")
    par = ui.wait("window.__cairnParallel")
    assert "params.lr" in par["axes"] and "metrics.acc" in par["axes"] and len(par["kept"]) == 3
    canvas = ui.d.find_element(By.ID, "parallel")
    # Brush the top of the metrics.acc axis: only the higher-acc runs stay.
    w = canvas.size["width"]
    index = par["axes"].index("metrics.acc")
    axis_x = int(40 + index * (w - 80) / (len(par["axes"]) - 1) - w / 2)
    ActionChains(ui.d).move_to_element_with_offset(canvas, axis_x, -canvas.size["height"] // 2 + 20).click_and_hold() \
        .move_by_offset(0, canvas.size["height"] // 3).release().perform()
    kept = ui.wait("window.__cairnParallel.brushes.length > 0 && window.__cairnParallel.kept")
    assert 0 < len(kept) < 3
    ui.open(base + "&tab=scatter")
    sc = ui.wait("window.__cairnScatter")
    assert len(sc["plotted"]) >= 1


def test_editing_the_note_renders_markdown_safely_and_saves_the_tag(ui, seed):
    rid = seed.runs[1]["run_id"]
    ui.open(f"/experiments/{seed.experiment_id}/runs/{rid}")
    ui.d.find_element(By.ID, "edit-note").click()
    area = ui.d.find_element(By.ID, "note-text")
    area.send_keys("## Result\n\n**better** than <b>baseline</b> <script>window.__pwned=1</script>\n\n- [docs](https://mlflow.org)\n- [bad](javascript:alert(1))")
    ui.d.find_element(By.ID, "save-note").click()
    ui.wait("document.querySelector('#note .markdown') !== null")
    assert ui.js("return document.querySelector('#note strong').textContent") == "better"
    assert ui.js("return document.querySelectorAll('#note b, #note script').length") == 0
    assert "<b>baseline</b>" in ui.js("return document.querySelector('#note').textContent")
    assert ui.js("return window.__pwned === undefined")
    links = ui.js("return [...document.querySelectorAll('#note a')].map(a => a.href)")
    assert links == ["https://mlflow.org/"]
    stored = MlflowClient().get_run(rid).data.tags["mlflow.note.content"]
    assert stored.startswith("## Result") and "<script>" in stored


def test_run_page_from_the_mlflow_link_shows_provenance_and_the_diff(ui, seed):
    ui.open(f"/experiments/{seed.experiment_id}/runs/{seed.artifact_run}")
    ui.wait("document.getElementById('git-diff') !== null")
    text = ui.js("return document.getElementById('run-panel').textContent")
    for expected in ["0123456789abcdef0123456789abcdef01234567", "uncommitted changes", "python train.py --lr 0.01", "gpu-box", "CUDA_VISIBLE_DEVICES"]:
        assert expected in text
    assert ui.js("return document.getElementById('git-diff').textContent") == seed.diff
    assert ui.js("return document.querySelector('#note h3').textContent") == "Findings"
    ui.d.find_element(By.CSS_SELECTOR, ".tabs button[data-tab='children']").click()
    ui.wait("document.getElementById('child-runs') !== null")
    assert ui.js("return document.getElementById('child-runs').textContent").find("child") >= 0


def test_artifact_browser_previews_csv_json_images_with_digests(ui, seed):
    ui.open(f"/experiments/{seed.experiment_id}/runs/{seed.artifact_run}?tab=artifacts")
    ui.wait("document.querySelectorAll('#artifact-tree .node').length > 0")
    # The first level is open: the files of eval/ are listed without a click.
    ui.wait("document.querySelector(\"#artifact-tree .node[data-path='eval/metrics.csv']\") !== null")
    ui.d.find_element(By.CSS_SELECTOR, "#artifact-tree .node[data-path='eval/metrics.csv']").click()
    cells = ui.wait("document.querySelector('#csv-preview') && [...document.querySelectorAll('#csv-preview tr')].map(r => [...r.children].map(c => c.textContent))")
    assert cells == [["epoch", "loss", "acc"], ["0", "0.9", "0.1"], ["1", "0.5", "0.6"], ["2", "0,25", "0.8"]]
    assert sha256(seed.csv_text) in ui.js("return document.getElementById('artifact-preview').textContent")
    ui.d.find_element(By.CSS_SELECTOR, "#artifact-tree .node[data-path='config.json']").click()
    shown = ui.wait("document.querySelector('#preview-body pre') && document.querySelector('#preview-body pre').textContent")
    assert json.loads(shown) == seed.json_doc and "\n  " in shown
    ui.wait("document.querySelector(\"#artifact-tree .node[data-path='images/sample.png']\") !== null")
    ui.d.find_element(By.CSS_SELECTOR, "#artifact-tree .node[data-path='images/sample.png']").click()
    width = ui.wait("document.querySelector('#preview-body img') && document.querySelector('#preview-body img').complete && document.querySelector('#preview-body img').naturalWidth")
    assert width == 48
    href = ui.js("return document.getElementById('download-link').href")
    assert href.endswith("/images/sample.png")
    assert ui.console_errors() == []


def test_experiments_create_rename_delete_restore(ui, seed):
    ui.open("/experiments")
    name = f"made-in-ui-{seed.experiment_id}"
    ui.d.find_element(By.CSS_SELECTOR, "input[aria-label='New experiment name']").send_keys(name, Keys.ENTER)
    row = ui.wait(f"[...document.querySelectorAll('#experiments tbody tr')].find(r => r.textContent.includes('{name}')) || null")
    exp_id = row.get_attribute("data-id")
    assert MlflowClient().get_experiment(exp_id).name == name
    counts = ui.js("return Object.fromEntries([...document.querySelectorAll('#experiments tbody tr')].map(r => [r.dataset.id, r.children[2].textContent]))")
    assert counts[str(seed.experiment_id)] == "14"
    ui.d.find_element(By.CSS_SELECTOR, "input[aria-label='Search experiments by name']").send_keys("ui-second")
    visible = ui.js("return [...document.querySelectorAll('#experiments tbody tr')].map(r => r.dataset.id)")
    assert visible == [str(seed.second_experiment_id)]
    ui.d.find_element(By.CSS_SELECTOR, "input[aria-label='Search experiments by name']").clear()
    ui.d.find_element(By.CSS_SELECTOR, "input[aria-label='Search experiments by name']").send_keys(name)
    ui.js("window.prompt = () => arguments[0]; window.confirm = () => true", name + "-renamed")
    ui.d.find_element(By.CSS_SELECTOR, f"#experiments tr[data-id='{exp_id}'] .actions button").click()
    ui.wait(f"document.querySelector(\"#experiments tr[data-id='{exp_id}']\").textContent.includes('renamed')")
    assert MlflowClient().get_experiment(exp_id).name == name + "-renamed"
    buttons = ui.d.find_elements(By.CSS_SELECTOR, f"#experiments tr[data-id='{exp_id}'] .actions button")
    buttons[1].click()
    ui.wait(f"document.querySelector(\"#experiments tr[data-id='{exp_id}']\") === null")
    assert MlflowClient().get_experiment(exp_id).lifecycle_stage == "deleted"


def test_models_page_shows_versions_aliases_lineage_and_history(ui, seed):
    ui.open("/models")
    assert "ui-model" in ui.js("return document.getElementById('models').textContent")
    ui.open("/models/ui-model")
    ui.wait("document.getElementById('history') !== null")
    assert "@champion → version 2" in ui.js("return document.getElementById('aliases').textContent")
    assert ui.js("return document.querySelectorAll('#versions tbody tr').length") == 2
    assert "provenance" in ui.js("return document.getElementById('lineage').textContent")
    actions = ui.js("return [...document.querySelectorAll('#history tbody tr')].map(r => r.children[2].textContent)")
    assert "create" in actions and "set_alias" in actions


def test_lineage_marks_a_run_of_another_server(ui):
    # MLflow lets a version name a run this server does not hold: the lineage shows its id, marked.
    remote = "0123456789abcdef0123456789abcdef"
    name = f"ui-remote-{int(time.time() * 1000)}"
    client = MlflowClient()
    client.create_registered_model(name)
    exp_id = client.create_experiment(name)
    local = client.create_run(exp_id, run_name="held-here").info.run_id
    client.create_model_version(name, f"runs:/{local}/model", run_id=local)
    client.create_model_version(name, f"runs:/{remote}/model", run_id=remote)
    ui.open(f"/models/{name}")
    ui.wait("document.getElementById('remote-run') !== null")
    text = ui.js("return document.getElementById('lineage').textContent")
    assert remote in text and "not on this server" in text
    assert ui.js("return document.querySelector('#lineage a[href*=\"%s\"]')" % remote) is None
    # The versions table: the held run is a link into its own experiment, the other is marked, not linked.
    cells = ui.js("const i = [...document.querySelectorAll('#versions thead th')].findIndex(h => h.textContent === 'Source run');"
                  "return [...document.querySelectorAll('#versions tbody tr')].map(r => [r.children[0].textContent, "
                  "r.children[i].textContent, r.children[i].querySelector('a')?.getAttribute('href') || null])")
    assert cells == [["v2", remote[:12] + " (not on this server)", None],
                     ["v1", "held-here", f"#/experiments/{exp_id}/runs/{local}"]], cells
    ui.screenshot("models-remote-run-wide")


def test_overview_shows_the_health_report(ui, seed):
    ui.open("/overview")
    ui.wait("document.getElementById('report-runs') || document.getElementById('report-missing')")
    assert ui.js("return document.getElementById('report-missing')") is None
    client = MlflowClient()
    experiment_ids = [e.experiment_id for e in client.search_experiments()]
    active_runs = client.search_runs(experiment_ids, max_results=50000)
    total = ui.js("return document.querySelector('#report-runs .card .big').textContent")
    assert int(total) == len(active_runs)


def test_a_deleted_runs_page_says_which_model_version_keeps_its_artifacts(ui, seed, tmp_path):
    client = MlflowClient()
    experiment_id = client.create_experiment(f"ui-kept-{seed.experiment_id}")
    run = client.create_run(experiment_id)
    rid = run.info.run_id
    (tmp_path / "MLmodel").write_text("flavors: {}\n")
    client.log_artifact(rid, str(tmp_path / "MLmodel"), "model")
    client.create_registered_model("ui-kept-model")
    client.create_model_version("ui-kept-model", f"runs:/{rid}/model", run_id=rid)
    client.delete_run(rid)
    ui.open(f"/experiments/{experiment_id}/runs/{rid}")
    shown = ui.wait("document.getElementById('kept-artifacts') && document.getElementById('kept-artifacts').textContent")
    assert "model ui-kept-model version 1 uses them" in shown
    assert ui.console_errors() == []


# ---- Statistics (issue 15): compare → Statistics, grouped runs, the A/B report, online evidence ----

def stats_pages(stats_seed):
    runs = ",".join(stats_seed.run_ids[k] for k in sorted(stats_seed.run_ids))
    return {
        "compare-stats": f"/compare?e={stats_seed.experiment_id}&runs={runs}&keys=acc&tab=stats&sm=acc,loss&base=model%3Dsmall",
        "runs-grouped-stats": f"/experiments/{stats_seed.experiment_id}?group=params.model&cols=attr%3Arun_name,attr%3Astatus,param%3Amodel,param%3Aseed,metric%3Aacc,metric%3Aloss",
        "online": f"/experiments/{stats_seed.online_experiment_id}/online",
        "model-online": f"/models/{stats_seed.model_name}",
    }


def settle_stats(ui, name):
    if name == "compare-stats":
        ui.wait("window.__cairnStats && window.__cairnStats.loaded")
        ui.wait("window.__cairnCharts['stats:acc'] && window.__cairnCharts['stats:acc'].requests >= 1")
        ui.wait("window.__cairnCharts['stats:loss'] && window.__cairnCharts['stats:loss'].requests >= 1")
    if name == "runs-grouped-stats":
        ui.wait("window.__cairnGroupStats && window.__cairnGroupStats.loaded && document.querySelector('.grid-row.group .group-stat') !== null")
    if name == "online":
        ui.wait("window.__cairnOnline && window.__cairnOnline.loaded")
        ui.wait("window.__cairnCharts['online:signup'] && window.__cairnCharts['online:signup'].requests >= 1")
    if name == "model-online":
        ui.wait("document.querySelector('#online-evidence ul.summaries, #online-evidence .error') !== null")


@pytest.mark.parametrize("theme", ["light", "dark"])
@pytest.mark.parametrize("size", ["wide", "narrow"])
def test_statistics_pages_load_without_console_errors(ui, stats_seed, theme, size):
    for name, route in stats_pages(stats_seed).items():
        ui.open(route, theme=theme, size=size)
        settle_stats(ui, name)
        assert ui.js("return document.querySelector('main .error')") is None, (name, ui.js("return document.querySelector('main .error').textContent"))
        assert ui.js("return window.__cairnErrors.length") == 0, (name, ui.js("return window.__cairnErrors"))
        assert ui.console_errors() == [], name
        ui.screenshot(f"{name}-{size}-{theme}")
        # Nothing wider than the window: tables scroll inside their own box.
        overflow = ui.js("return document.documentElement.scrollWidth - document.documentElement.clientWidth")
        assert overflow <= 0, (name, size, overflow)


def test_statistics_tab_says_which_configuration_is_better_and_warns_about_different_data(ui, stats_seed):
    runs = ",".join(stats_seed.run_ids[k] for k in sorted(stats_seed.run_ids))
    ui.open(f"/compare?e={stats_seed.experiment_id}&runs={runs}&keys=acc")
    ui.d.find_element(By.CSS_SELECTOR, ".tabs button[data-tab='stats']").click()
    state = ui.wait("window.__cairnStats && window.__cairnStats.loaded && window.__cairnStats")
    assert "error" not in state, state
    # Grouped by configuration: the seeds are repeats, the model tells the groups apart.
    assert sorted(state["groups"]) == ["model=large", "model=small"]
    # Make the small model the baseline: the large one is then better, on acc and on loss (lower is better).
    Select(ui.d.find_element(By.ID, "stats-baseline")).select_by_value("model=small")
    state = ui.wait("window.__cairnStats.loaded && window.__cairnStats.baseline === 'model=small' && window.__cairnStats")
    verdicts = {(v["group"], v["metric"]): v["verdict"] for v in state["verdicts"]}
    assert verdicts[("model=large", "acc")] == "better", verdicts
    assert "base=model%3Dsmall" in ui.d.current_url or "base=model=small" in unquote(ui.d.current_url)
    badge = ui.d.find_element(By.CSS_SELECTOR, "#stats-comparisons tr[data-group='model=large'][data-metric='acc'] .verdict")
    assert badge.text.endswith("better") and badge.is_displayed()  # the word, not only the colour
    row = ui.js("return [...document.querySelector(\"#stats-comparisons tr[data-group='model=large'][data-metric='acc']\").children].map(c => c.textContent)")
    assert row[1] == "acc" and row[2].startswith("+0.1") and row[5].startswith("paired t (seed)")
    summaries = ui.js("return [...document.querySelectorAll('#stats-summaries li')].map(li => li.textContent)")
    assert any("Better: model=large beats model=small on acc" in s for s in summaries), summaries
    # The groups table: n and the mean of each group.
    cells = ui.js("return [...document.querySelector(\"#stats-groups tr[data-group='model=large'][data-metric='acc']\").children].map(c => c.textContent)")
    large = [0.80 + n + 0.002 * seed for seed, n in enumerate([0.004, -0.006, 0.001, 0.007, -0.003])]
    assert cells[2] == "5" and abs(float(cells[3]) - sum(large) / 5) < 1e-3, cells
    # The arms trained on different data: a visible warning naming both digests.
    warning = ui.d.find_element(By.CSS_SELECTOR, "#stats-warnings li[data-code='different_data']")
    assert warning.is_displayed() and "d1g3st-large" in warning.text and "d1g3st-small" in warning.text
    # One band chart per metric, one band per group.
    chart = ui.wait("window.__cairnCharts['stats:acc'] && window.__cairnCharts['stats:acc'].requests >= 1 && window.__cairnCharts['stats:acc']")
    assert sorted(s["runId"] for s in chart["series"]) == ["model=large", "model=small"]
    assert all(s["buckets"] == 20 and s["drawnPoints"] > 0 for s in chart["series"]), chart["series"]
    ui.screenshot("compare-stats-better-wide")
    assert ui.console_errors() == []


def test_statistics_tab_shows_the_servers_words_when_there_is_nothing_to_compare(ui, stats_seed):
    runs = ",".join(stats_seed.run_ids[("small", seed)] for seed in range(5))
    ui.open(f"/compare?e={stats_seed.experiment_id}&runs={runs}&keys=acc&tab=stats")
    message = ui.wait("window.__cairnStats && window.__cairnStats.loaded && document.querySelector('#stats-status .error') && document.querySelector('#stats-status .error').textContent")
    assert "Nothing to compare" in message and "one group" in message
    assert ui.js("return document.querySelectorAll('#stats-comparisons').length") == 0
    ui.screenshot("compare-stats-one-group-wide")


def test_grouped_runs_table_shows_mean_and_sd_on_group_rows(ui, stats_seed):
    ui.open(f"/experiments/{stats_seed.experiment_id}?group=params.model")
    ui.wait("window.__cairnGroupStats && window.__cairnGroupStats.loaded && window.__cairnGroupStats.groups === 2")
    rows = ui.js("""return [...document.querySelectorAll('.grid-row.group')].map(r => ({
        label: r.querySelector('.group-label').textContent,
        acc: r.querySelector(".group-stat[data-metric='acc']").textContent,
        title: r.querySelector(".group-stat[data-metric='acc']").title}))""")
    by = {r["label"]: r for r in rows}
    large = by["params.model = large (5)"]
    match = re.fullmatch(r"(0\.8\d*) ± (0\.0\d*) \(n 5\)", large["acc"])
    assert match, large
    values = [0.80 + n + 0.002 * seed for seed, n in enumerate([0.004, -0.006, 0.001, 0.007, -0.003])]
    assert abs(float(match.group(1)) - sum(values) / 5) < 0.001
    # The ± is the standard deviation of the runs (not the interval's half-width).
    assert abs(float(match.group(2)) - statistics.stdev(values)) < 0.0002, (match.group(2), statistics.stdev(values))
    assert "95% CI" in large["title"] and "every run counted" in large["title"]
    assert re.fullmatch(r"0\.7\d* ± 0\.0\d* \(n 5\)", by["params.model = small (5)"]["acc"]), by


def test_ab_report_shows_the_sample_ratio_mismatch_and_the_cumulative_lift(ui, stats_seed):
    ui.open(f"/experiments/{stats_seed.online_experiment_id}")
    ui.wait("window.__cairnTable && window.__cairnTable.domRows > 0")
    link = ui.wait("document.getElementById('ab-report-link') && !document.getElementById('ab-report-link').hidden && document.getElementById('ab-report-link')")
    link.click()
    ui.wait_ready()
    ui.wait("window.__cairnOnline && window.__cairnOnline.loaded")
    assert location_hash(ui).endswith(f"/experiments/{stats_seed.online_experiment_id}/online")
    banner = ui.d.find_element(By.ID, "srm-banner")
    assert banner.is_displayed() and "Sample-ratio mismatch" in banner.text and "do not trust" in banner.text
    assert "control 55.6%" in banner.text and "planned 50%" in banner.text
    variants = ui.js("return [...document.querySelectorAll('#online-variants tbody tr')].map(r => [...r.children].map(c => c.textContent))")
    assert variants[0][:4] == ["control", "10,000", "55.6%", "50%"] and variants[1][:4] == ["treatment", "8,000", "44.4%", "50%"], variants
    lift = ui.js("return [...document.querySelector(\"#lifts-signup tr[data-variant='treatment']\").children].map(c => c.textContent)")
    assert lift[0] == "treatment" and lift[1].endswith(" pp") and lift[7].endswith(("better", "worse", "inconclusive")), lift
    assert abs(float(lift[1][:-3]) - 100 * (957 / 8000 - 997 / 10000)) < 0.01  # percentage points
    summaries = ui.js("return document.getElementById('summaries-signup').textContent")
    assert "treatment changes signup" in summaries and "Not trustworthy" in summaries
    chart = ui.wait("window.__cairnCharts['online:signup'] && window.__cairnCharts['online:signup'].requests >= 1 && window.__cairnCharts['online:signup']")
    assert chart["refLines"] == [0]
    drawn = {s["runId"]: s for s in chart["series"]}
    assert set(drawn) == {"treatment:fixed", "treatment:always-valid"}
    assert drawn["treatment:fixed"]["buckets"] == 10 and drawn["treatment:fixed"]["drawnPoints"] >= 8
    models = ui.js("return [...document.querySelectorAll('#online-models a')].map(a => a.textContent)")
    assert models == [f"{stats_seed.model_name} version {stats_seed.model_version}"]
    assert ui.console_errors() == []


def test_model_version_page_shows_online_evidence(ui, stats_seed):
    ui.open(f"/models/{stats_seed.model_name}")
    ui.wait("document.querySelector('#online-evidence ul.summaries, #online-evidence .error') !== null")
    box = ui.d.find_element(By.ID, "online-evidence")
    assert box.is_displayed() and "Online evidence" in box.text
    items = ui.js("return [...document.querySelectorAll('#online-evidence li')].map(li => li.textContent)")
    assert any("treatment changes signup" in t for t in items) and any("treatment changes revenue" in t for t in items), items
    assert "Sample-ratio mismatch" in box.text
    href = ui.js("return document.getElementById('online-report-link').getAttribute('href')")
    assert href == f"#/experiments/{stats_seed.online_experiment_id}/online"
    ui.d.find_element(By.ID, "online-report-link").click()
    ui.wait_ready()
    ui.wait("window.__cairnOnline && window.__cairnOnline.loaded")
    assert ui.d.find_element(By.ID, "srm-banner").is_displayed()


def location_hash(ui):
    return ui.js("return location.hash")
