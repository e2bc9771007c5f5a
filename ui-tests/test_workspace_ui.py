"""The runs page as a daily workspace (issue 19): chart panels of every metric, stable run
colours, groups drawn as bands, saved views, column resize / move / pin, nested runs as a tree,
the compare metric picker and parallel coordinates, the run and model pages, the small things.
Driven by the real headless Chromium against a real `cairn server` (see conftest.py)."""

import json
import re
import statistics
import time
import urllib.request
from urllib.parse import quote

import pytest
from mlflow.tracking import MlflowClient
from selenium.webdriver.common.action_chains import ActionChains
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import Select

from conftest import SERVER_URI

WS_READY = ("window.__cairnWorkspace && window.__cairnWorkspace.visible > 0 "
            "&& window.__cairnWorkspace.loaded >= window.__cairnWorkspace.visible")


def open_runs(ui, sweep, query="", **kw):
    ui.open(f"/experiments/{sweep.experiment_id}{'?' + query if query else ''}", **kw)
    ui.wait("window.__cairnTable && window.__cairnTable.domRows > 0")


def wait_workspace(ui, generation_after=None):
    if generation_after is not None:
        ui.wait(f"window.__cairnWorkspace.generation > {generation_after}")
    return ui.wait(f"({WS_READY}) && window.__cairnWorkspace")


def api(method, path, body=None):
    req = urllib.request.Request(SERVER_URI + path, data=json.dumps(body).encode() if body is not None else None, method=method,
                                 headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=60) as r:
            return r.status, json.loads(r.read() or b"{}")
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read() or b"{}")


def drag(ui, source_css, target_css):
    """An HTML5 drag and drop, dispatched in the page (WebDriver's mouse drag does not fire them in Chromium)."""
    ui.js("""const [a, b] = [document.querySelector(arguments[0]), document.querySelector(arguments[1])];
        const dt = new DataTransfer();
        a.dispatchEvent(new DragEvent('dragstart', {bubbles: true, dataTransfer: dt}));
        b.dispatchEvent(new DragEvent('dragover', {bubbles: true, cancelable: true, dataTransfer: dt}));
        b.dispatchEvent(new DragEvent('drop', {bubbles: true, cancelable: true, dataTransfer: dt}));
        a.dispatchEvent(new DragEvent('dragend', {bubbles: true, dataTransfer: dt}));""", source_css, target_css)


def layout_in_url(ui):
    h = ui.js("return location.hash")
    m = re.search(r"[?&]ws=([^&]*)", h)
    return json.loads(urllib.request.unquote(m.group(1))) if m else {}


def test_workspace_charts_every_metric_in_sections_for_the_top_runs(ui, sweep_seed):
    open_runs(ui, sweep_seed)
    ws = wait_workspace(ui)
    assert sorted(ws["panels"]) == sorted(sweep_seed.metrics)
    assert ws["sections"] == ["train", "val", ""]  # prefixes first, keys without one last
    summaries = ui.js("return [...document.querySelectorAll('.ws-section > summary')].map(s => s.textContent)")
    assert summaries[0].startswith("train/") and summaries[1].startswith("val/") and summaries[2].startswith("Other")
    table = ui.js("return window.__cairnTable")
    # The top 10 runs by the table's sort are charted; those without the metric simply have no line.
    assert ws["runs"] == table["order"][:10]
    info = ui.js("return window.__cairnCharts['ws:train/loss']")
    charted = {s["runId"] for s in info["series"]}
    assert charted and charted <= set(ws["runs"])
    assert all(s["pointCount"] == 40 for s in info["series"])
    # Colours are the run's own, the same as its swatch in the table.
    for s in info["series"]:
        assert s["color"] == table["colors"][s["runId"]]
    ui.screenshot("workspace-wide-light")


def test_workspace_search_by_text_and_regex(ui, sweep_seed):
    open_runs(ui, sweep_seed)
    wait_workspace(ui)
    box = ui.d.find_element(By.ID, "panel-search")
    box.send_keys("val/")
    assert ui.wait("window.__cairnWorkspace.panels.length === 2 && window.__cairnWorkspace.panels") == ["val/acc", "val/loss"]
    box.clear()
    box.send_keys("/loss$/")
    assert sorted(ui.wait("window.__cairnWorkspace.panels.length === 2 && window.__cairnWorkspace.panels")) == ["train/loss", "val/loss"]
    assert layout_in_url(ui)["search"] == "/loss$/"


def test_workspace_panels_are_removed_added_resized_and_moved_and_the_layout_is_kept(ui, sweep_seed):
    open_runs(ui, sweep_seed)
    wait_workspace(ui)
    ui.d.find_element(By.CSS_SELECTOR, ".panel[data-key='lr'] button.remove").click()
    assert "lr" not in ui.wait("!window.__cairnWorkspace.panels.includes('lr') && window.__cairnWorkspace.panels")
    Select(ui.d.find_element(By.ID, "add-panel")).select_by_value("lr")
    assert ui.wait("window.__cairnWorkspace.panels.includes('lr') && window.__cairnWorkspace.panels")[-1] == "lr"
    size = "return document.querySelector(\".panel[data-key='train/acc']\").dataset.size"
    for expected in ["l", "s", "m", "l"]:  # medium → large → small → medium …
        ui.d.find_element(By.CSS_SELECTOR, ".panel[data-key='train/acc'] button.resize").click()
        assert ui.js(size) == expected
    # Move train/loss before train/acc with the arrow, then drag val/loss onto val/acc.
    ui.d.find_element(By.CSS_SELECTOR, ".panel[data-key='train/loss'] button[aria-label='Move train/loss left']").click()
    ui.wait("window.__cairnWorkspace.panels.indexOf('train/loss') < window.__cairnWorkspace.panels.indexOf('train/acc')")
    drag(ui, ".panel[data-key='val/loss'] .ptitle", ".panel[data-key='val/acc']")
    ui.wait("window.__cairnWorkspace.panels.indexOf('val/loss') < window.__cairnWorkspace.panels.indexOf('val/acc')")
    layout = layout_in_url(ui)
    assert layout["size"] == {"train/acc": "l"}
    assert layout["panels"] == ["train/loss", "train/acc", "val/loss", "val/acc", "lr"]
    # The layout is in the URL: a fresh load shows the same panels in the same order and sizes.
    hash_route = ui.js("return location.hash.slice(1)")
    ui.open(hash_route)
    ws = wait_workspace(ui)
    assert ws["panels"] == ["train/loss", "train/acc", "val/loss", "val/acc", "lr"]
    assert ui.js("return document.querySelector(\".panel[data-key='train/acc']\").dataset.size") == "l"


def test_workspace_charts_the_selected_runs_and_the_top_n(ui, sweep_seed):
    open_runs(ui, sweep_seed)
    ws = wait_workspace(ui)
    picked = [sweep_seed.run_ids[("0.01", "small", 0)], sweep_seed.run_ids[("0.1", "large", 1)]]
    for rid in picked:
        box = ui.d.find_element(By.CSS_SELECTOR, f".grid-row[data-run-id='{rid}'] .check input")
        # Away from the sticky header and pinned cells, whatever the window's scroll position.
        ui.js("arguments[0].scrollIntoView({block: 'center'})", box)
        box.click()
    ws = ui.wait(f"({WS_READY}) && window.__cairnWorkspace.runs.length === 2 && window.__cairnWorkspace")
    assert sorted(ws["runs"]) == sorted(picked)
    assert "2 selected runs" in ui.js("return document.getElementById('ws-what').textContent")
    assert sorted(s["runId"] for s in ui.js("return window.__cairnCharts['ws:val/acc'].series")) == sorted(picked)
    ui.js("document.getElementById('clear-selection').click()")
    ws = wait_workspace(ui, ws["generation"])
    Select(ui.d.find_element(By.ID, "top-n")).select_by_value("5")
    ws = wait_workspace(ui, ws["generation"])
    assert len(ws["runs"]) == 5


def test_grouping_draws_a_labelled_band_per_group_and_group_rows_show_mean_and_sd(ui, sweep_seed):
    open_runs(ui, sweep_seed, "group=params.lr")
    ui.wait(WS_READY)
    info = ui.wait("window.__cairnCharts['ws:val/acc'] && window.__cairnCharts['ws:val/acc'].groups && window.__cairnCharts['ws:val/acc']")
    # Three learning rates (the nested trials have other lr values: groups of their own).
    labels = [s["label"] for s in info["series"]]
    for lr in ["0.1", "0.01", "0.001"]:
        assert any(label.startswith(f"lr={lr} (n ") for label in labels), labels
    assert info["band"] == "minmax"
    # Each group's line is its own colour, the same as its rows' swatches in the table.
    pills = ui.js("return Object.fromEntries([...document.querySelectorAll('#group-counts .chip')].map(c => [c.dataset.value, c.querySelector('.sw').style.background]))")
    colors = {s["label"].split(" ")[0].split("=")[1]: s["color"] for s in info["series"]}
    assert len(set(colors.values())) == len(colors)
    # The band kind is chosen per panel.
    Select(ui.d.find_element(By.CSS_SELECTOR, ".panel[data-key='val/acc'] select.band")).select_by_value("std")
    ui.wait("window.__cairnCharts['ws:val/acc'].band === 'std'")
    assert ui.js("return window.__cairnCharts['ws:train/acc'].band") == "minmax"
    assert layout_in_url(ui)["band"] == {"val/acc": "std"}
    # Group rows: mean ± sd (n) of each metric column over the group's finished runs.
    rows = ui.wait("window.__cairnGroupStats && window.__cairnGroupStats.loaded && [...document.querySelectorAll('.grid-row.group')].map(r => ({label: r.querySelector('.group-label').textContent, acc: (r.querySelector(\".group-stat[data-metric='val/acc']\") || {}).textContent}))")
    by = {r["label"]: r for r in rows}
    small = by["params.lr = 0.001 (4)"]["acc"]
    match = re.fullmatch(r"(0\.\d+) ± (0\.\d+) \(n 4\)", small)
    assert match, small
    client = MlflowClient()
    finals = [client.get_run(sweep_seed.run_ids[("0.001", size, seed)]).data.metrics["val/acc"] for size in ["small", "large"] for seed in range(2)]
    assert abs(float(match.group(1)) - statistics.mean(finals)) < 0.001
    assert abs(float(match.group(2)) - statistics.stdev(finals)) < 0.001
    # One failed run: n counts finished runs only.
    assert re.search(r"\(n 3 of 4\)", by["params.lr = 0.1 (4)"]["acc"]), by
    ui.d.find_element(By.ID, "workspace").location_once_scrolled_into_view
    ui.screenshot("workspace-grouped-wide-light")
    assert pills


def test_saved_views_restore_exactly_are_shared_by_link_and_one_is_the_default(ui, sweep_seed):
    exp = sweep_seed.experiment_id
    query = ("sort=metric:val/acc:desc&group=params.size&filter=" + quote("params.seed = '0'")
             + "&w=" + quote(json.dumps({"attr:status": 140})) + "&pin=" + quote("attr:run_name,param:lr")
             + "&ws=" + quote(json.dumps({"panels": ["val/acc", "train/loss"], "size": {"val/acc": "l"}})))
    open_runs(ui, sweep_seed, query)
    ui.wait("window.__cairnViews && window.__cairnViews.loaded")
    name = f"by size {int(time.time() * 1000)}"
    ui.d.find_element(By.ID, "view-name").send_keys(name)
    ui.d.find_element(By.ID, "view-save-as").click()
    view_id = ui.wait("window.__cairnViews.active")
    assert ui.wait(f"window.__cairnViews.views.some(v => v.name === {json.dumps(name)}) && !window.__cairnViews.modified")
    status, body = api("GET", f"/api/cairn/v1/experiments/{exp}/views/{view_id}")
    assert status == 200 and body["view"]["name"] == name
    saved = json.loads(body["view"]["state"])
    assert saved["group"] == "params.size" and saved["sort"] == "metric:val/acc:desc" and saved["pins"] == ["attr:run_name", "param:lr"]
    assert saved["ws"]["panels"] == ["val/acc", "train/loss"]
    expected = {k: ui.js(f"return window.__cairnTable.{k}") for k in ["order", "columns", "pinned", "sort", "filter"]}
    # The link opens exactly that view.
    ui.open(f"/experiments/{exp}?view={view_id}")
    ui.wait("window.__cairnTable && window.__cairnTable.domRows > 0 && window.__cairnViews && window.__cairnViews.loaded")
    ws = wait_workspace(ui)
    for k, v in expected.items():
        assert ui.js(f"return window.__cairnTable.{k}") == v, k
    assert ws["panels"] == ["val/acc", "train/loss"] and ws["group"] == "params.size"
    assert ui.js("return window.__cairnTable.widths['attr:status']") == 140
    assert ui.js("return document.getElementById('view-select').value") == view_id
    # A change marks the view modified; Save writes it.
    Select(ui.d.find_element(By.ID, "group-by")).select_by_value("")
    ui.wait("window.__cairnViews.modified === true")
    ui.d.find_element(By.ID, "view-save").click()
    ui.wait("window.__cairnViews.modified === false")
    assert json.loads(api("GET", f"/api/cairn/v1/experiments/{exp}/views/{view_id}")[1]["view"]["state"])["group"] == ""
    # The default view opens when the experiment is opened without a query.
    ui.d.find_element(By.ID, "view-default").click()
    ui.wait(f"window.__cairnViews.views.find(v => v.id === {json.dumps(view_id)}).default === true")
    ui.open(f"/experiments/{exp}")
    ui.wait("window.__cairnTable && window.__cairnTable.domRows > 0 && window.__cairnViews && window.__cairnViews.loaded")
    assert ui.js("return window.__cairnViews.active") == view_id
    assert ui.js("return window.__cairnTable.sort") == "metric:val/acc:desc"
    ui.screenshot("views-wide-light")
    # Delete: the page stays as it is, the view is gone.
    ui.d.find_element(By.ID, "view-delete").click()
    ui.wait(f"!window.__cairnViews.views.some(v => v.id === {json.dumps(view_id)})")
    assert api("GET", f"/api/cairn/v1/experiments/{exp}/views/{view_id}")[0] == 404


def test_views_api_refuses_bad_input_and_changes_nothing(sweep_seed):
    exp = sweep_seed.experiment_id
    base = f"/api/cairn/v1/experiments/{exp}/views"
    before = api("GET", base)[1]["views"]
    for body in [{"name": "", "state": "{}"}, {"name": "x", "state": "[1, 2]"}, {"name": "x", "state": "{not json"},
                 {"name": "x" * 251, "state": "{}"}, {"name": "x", "state": json.dumps({"a": "b" * 70_000})}]:
        status, reply = api("POST", base, body)
        assert status == 400 and reply["error_code"] == "INVALID_PARAMETER_VALUE", (body.get("name", "")[:10], reply)
    assert api("GET", base)[1]["views"] == before
    status, reply = api("GET", "/api/cairn/v1/experiments/987654321/views")
    assert status == 404 and reply["error_code"] == "RESOURCE_DOES_NOT_EXIST"
    status, made = api("POST", base, {"name": "dup", "state": "{}"})
    assert status == 200
    status, reply = api("POST", base, {"name": "dup", "state": "{}"})
    assert status == 400 and reply["error_code"] == "RESOURCE_ALREADY_EXISTS"
    assert api("PATCH", f"{base}/nope", {"name": "y"})[0] == 404
    assert api("DELETE", f"{base}/{made['view']['view_id']}", {})[0] == 200


def test_columns_resize_move_and_pin(ui, sweep_seed):
    open_runs(ui, sweep_seed, "charts=0")
    table = ui.js("return window.__cairnTable")
    assert table["pinned"] == ["attr:run_name"]  # the Run column is pinned by default
    # Pinned cells stay in view when the table scrolls right.
    ui.js("document.getElementById('runs-grid').scrollLeft = 400")
    left = ui.js("const g = document.getElementById('runs-grid').getBoundingClientRect().left; return document.querySelector('.grid-row .cell.pinned:not(.check)').getBoundingClientRect().left - g")
    assert 30 <= left <= 40, left
    ui.js("document.getElementById('runs-grid').scrollLeft = 0")
    # Resize the Status column by dragging its handle.
    handle = ui.d.find_element(By.CSS_SELECTOR, ".grid-head .cell[data-col='attr:status'] .rz")
    before = table["widths"]["attr:status"]
    ActionChains(ui.d).move_to_element(handle).click_and_hold().move_by_offset(60, 0).release().perform()
    after = ui.wait(f"window.__cairnTable.widths['attr:status'] !== {before} && window.__cairnTable.widths['attr:status']")
    assert abs(after - (before + 60)) <= 3
    assert ui.js("return window.__cairnTable.sort") == "attr:start_time:desc"  # resizing did not sort
    # Move the lr column before Status by dragging its header.
    drag(ui, ".grid-head .cell[data-col='param:lr']", ".grid-head .cell[data-col='attr:status']")
    cols = ui.wait("window.__cairnTable.columns.indexOf('param:lr') === 1 && window.__cairnTable.columns")
    assert cols[:3] == ["attr:run_name", "param:lr", "attr:status"]
    # Pin it: pinned columns come first and stick.
    ui.js("document.querySelector(\".grid-head .cell[data-col='param:size'] .pin\").click()")
    assert ui.wait("window.__cairnTable.pinned.length === 2 && window.__cairnTable.pinned") == ["attr:run_name", "param:size"]
    assert ui.js("return window.__cairnTable.columns.slice(0, 2)") == ["attr:run_name", "param:size"]
    ui.screenshot("columns-wide-light")


def test_nested_runs_show_as_a_tree_and_the_parent_lists_its_childrens_metrics(ui, sweep_seed):
    open_runs(ui, sweep_seed, "tree=1&charts=0")
    table = ui.js("return window.__cairnTable")
    assert table["rowCount"] == 16 and table["viewCount"] == 13  # the 3 children are folded under their parent
    twisty = ui.d.find_element(By.CSS_SELECTOR, f".twisty[data-parent='{sweep_seed.parent_run}']")
    assert twisty.text.endswith("3")
    twisty.click()
    assert sorted(ui.wait("window.__cairnTable.tree.length === 3 && window.__cairnTable.tree")) == sorted(sweep_seed.child_runs)
    order = ui.js("return window.__cairnTable.order")
    i = order.index(sweep_seed.parent_run)
    assert sorted(order[i + 1:i + 4]) == sorted(sweep_seed.child_runs)
    ui.screenshot("tree-wide-light")
    ui.open(f"/experiments/{sweep_seed.experiment_id}/runs/{sweep_seed.parent_run}?tab=children")
    text = ui.wait("document.getElementById('child-runs') && document.getElementById('child-runs').textContent")
    head = ui.js("return [...document.querySelectorAll('#child-runs th')].map(h => h.textContent)")
    assert "val/acc" in head and "lr" in head
    for i in range(3):
        assert f"trial-{i}" in text
    values = ui.js("const i = [...document.querySelectorAll('#child-runs th')].findIndex(h => h.textContent === 'val/acc'); return [...document.querySelectorAll('#child-runs tbody tr')].map(r => r.children[i].textContent)")
    assert sorted(values) == ["0.59", "0.69", "0.79"]


def test_compare_metric_picker_searches_selects_all_and_takes_a_regex(ui, sweep_seed):
    runs = ",".join(sweep_seed.run_ids[k] for k in [("0.1", "small", 0), ("0.01", "small", 0), ("0.001", "small", 0)])
    ui.open(f"/compare?e={sweep_seed.experiment_id}&runs={runs}&keys=lr")
    ui.wait("document.getElementById('metric-keys-search')")
    search = ui.d.find_element(By.ID, "metric-keys-search")
    search.send_keys("/^val\\//")
    assert ui.js("return [...document.querySelectorAll('#metric-keys label')].map(l => l.textContent.trim())") == ["val/acc", "val/loss"]
    ui.d.find_element(By.ID, "metric-keys-all").click()
    ui.wait("window.__cairnCharts['compare:val/loss'] && window.__cairnCharts['compare:val/acc'] && window.__cairnCharts['compare:lr']")
    assert "2 shown" in ui.js("return document.querySelector('.picker-count').textContent")
    search.clear()
    search.send_keys("train")
    assert len(ui.js("return document.querySelectorAll('#metric-keys label')")) == 2
    ui.d.find_element(By.ID, "metric-keys-none").click()
    ui.wait("document.querySelectorAll('canvas[data-chart^=\"compare:\"]').length === 0")
    # Colours are the runs' own, as in the table.
    ui.screenshot("compare-picker-wide-light")


def test_parallel_coordinates_skip_constant_axes_and_colour_by_a_metric(ui, sweep_seed):
    runs = ",".join(sweep_seed.run_ids[("0.01", size, seed)] for size in ["small", "large"] for seed in range(2))
    ui.open(f"/compare?e={sweep_seed.experiment_id}&runs={runs}&keys=val/acc&tab=parallel")
    par = ui.wait("window.__cairnParallel")
    assert "params.lr" not in par["axes"]  # every run has lr 0.01
    assert "params.size" in par["axes"] and "params.seed" in par["axes"] and "metrics.val/acc" in par["axes"]
    assert par["skipped"] >= 1
    lo, hi = par["ranges"]["metrics.val/acc"]
    assert float(lo) < float(hi)
    Select(ui.d.find_element(By.ID, "parallel-color")).select_by_value("metrics.val/acc")
    assert ui.wait("window.__cairnParallel.colorBy") == "metrics.val/acc"
    ui.d.find_element(By.ID, "parallel-all").click()
    par = ui.wait("window.__cairnParallel && window.__cairnParallel.axes.includes('params.lr') && window.__cairnParallel")
    lo, hi = par["ranges"]["params.lr"]
    assert float(lo) < 0.01 < float(hi) and float(hi) - float(lo) < 0.01  # a small range around the one value
    ui.screenshot("parallel-wide-light")


def test_run_overview_shows_params_metrics_with_sparklines_tags_then_provenance(ui, sweep_seed):
    rid = sweep_seed.run_ids[("0.01", "large", 0)]
    MlflowClient().set_tag(rid, "owner", "ada")
    ui.open(f"/experiments/{sweep_seed.experiment_id}/runs/{rid}")
    ui.wait("window.__cairnSparklines === 5")
    chips = ui.js("return [...document.querySelectorAll('#run-key-params .chip')].map(c => c.textContent)")
    assert chips == ["lr = 0.01", "seed = 0", "size = large"]
    items = ui.js("return [...document.querySelectorAll('#run-metrics .spark-item')].map(i => [i.dataset.key, i.querySelector('.spark-value').textContent, i.querySelectorAll('polyline').length])")
    assert [i[0] for i in items] == sorted(sweep_seed.metrics) and all(i[2] == 1 for i in items)
    assert "owner = ada" in ui.js("return document.getElementById('run-user-tags').textContent")
    headings = ui.js("return [...document.querySelectorAll('#run-panel h2, #run-panel h3')].map(h => h.textContent)")
    assert headings.index("Latest metrics") < headings.index("Note") < headings.index("Provenance")
    assert ui.js("return document.querySelector('#run-summary').textContent").find("FINISHED") >= 0


def test_small_things(ui, sweep_seed, seed):
    # Numbers print compactly.
    ui.open("/experiments")
    got = ui.d.execute_async_script("const done = arguments[0]; import('/ui/js/util.js').then(m => done([m.fmtCompact(0.00019080112448884818), m.fmtCompact('0.0125'), m.fmtCompact(12345678), m.fmtCompact('cnn')]))")
    assert got == ["1.9e-4", "0.0125", "1.2e+7", "cnn"]
    # ?theme=dark inside the hash route.
    ui.open("/experiments?theme=dark")
    assert ui.js("return getComputedStyle(document.body).backgroundColor") == "rgb(20, 23, 28)"
    # Breadcrumbs name the experiment.
    runs = ",".join(r["run_id"] for r in seed.runs[:2]) + "," + seed.artifact_run
    ui.open(f"/compare?e={seed.experiment_id}&runs={runs}&tab=diff")
    name = MlflowClient().get_experiment(seed.experiment_id).name
    assert ui.wait("document.getElementById('crumb-experiment') && document.getElementById('crumb-experiment').textContent") == name
    # The Diff renders the note as Markdown.
    note = ui.wait("document.querySelector(\"tr[data-key='tags.mlflow.note.content'] .note-cell\")")
    assert note is not None
    strong = ui.js("return [...document.querySelectorAll(\"tr[data-key='tags.mlflow.note.content'] .note-cell strong\")].map(s => s.textContent)")
    assert "0.01" in strong, strong  # the provenance run's note: "Learning rate **0.01** works."
    ui.open(f"/overview?experiment_id={seed.experiment_id}")
    assert name in ui.wait("document.getElementById('report-experiments') && document.querySelector('h1').textContent")


def test_model_version_page_shows_signature_example_metrics_and_history_in_sentences(ui):
    client = MlflowClient()
    mlmodel = ("artifact_path: model\nflavors:\n  python_function:\n    loader_module: mlflow.pyfunc.model\n"
               "saved_input_example_info:\n  artifact_path: input_example.json\n  type: dataframe\n"
               "signature:\n  inputs: '[{\"type\": \"double\", \"name\": \"x\", \"required\": true}, {\"type\": \"string\", \"name\": \"it''s\", \"required\": false}]'\n"
               "  outputs: '[{\"type\": \"long\", \"required\": true}]'\n  params: null\n")
    name = f"ui-sig-{int(time.time() * 1000)}"
    experiment = client.create_experiment(name)
    client.create_registered_model(name, description="first words")
    rids = []
    for i, acc in enumerate([0.8, 0.9]):
        run = client.create_run(experiment, run_name=f"model-{i}")
        client.log_text(run.info.run_id, mlmodel, "model/MLmodel")
        client.log_dict(run.info.run_id, {"columns": ["x", "it's"], "data": [[1.5, "a"]]}, "model/input_example.json")
        client.log_metric(run.info.run_id, "acc", acc)
        client.set_terminated(run.info.run_id)
        client.create_model_version(name, f"runs:/{run.info.run_id}/model", run_id=run.info.run_id)
        rids.append(run.info.run_id)
    client.set_registered_model_alias(name, "champion", "1")
    client.set_registered_model_alias(name, "champion", "2")
    ui.open(f"/models/{name}")
    ui.wait("document.getElementById('signature-inputs') && document.getElementById('input-example')")
    assert ui.js("return [...document.querySelectorAll('#signature-inputs tbody tr')].map(r => [...r.children].map(c => c.textContent))") == [["x", "double", ""], ["it's", "string", "optional"]]
    assert json.loads(ui.js("return document.getElementById('input-example').textContent")) == {"columns": ["x", "it's"], "data": [[1.5, "a"]]}
    assert "acc = 0.9" in ui.js("return document.getElementById('version-metrics').textContent")
    heads = ui.js("return [...document.querySelectorAll('#versions th')].map(h => h.textContent)")
    assert "Stage" not in heads and "acc" in heads  # no version uses stages; versions compared by their run's metrics
    assert ui.js("return [...document.querySelectorAll('#versions tbody tr')].map(r => r.dataset.version)") == ["2", "1"]
    sentences = ui.js("return [...document.querySelectorAll('#history tbody tr')].map(r => r.children[3].textContent)")
    assert any(s.startswith("alias champion moved from v1 to v2") for s in sentences), sentences
    assert not any(s.startswith("{") for s in sentences)
    ui.screenshot("model-version-wide-light")
    # The description is edited in place; an alias is set and removed here.
    ui.d.find_element(By.CSS_SELECTOR, "#model-description button.edit").click()
    area = ui.d.find_element(By.CSS_SELECTOR, "#model-description textarea")
    area.clear()
    area.send_keys("better words")
    ui.d.find_element(By.CSS_SELECTOR, "#model-description button.save").click()
    ui.wait("document.querySelector('#model-description p') && document.querySelector('#model-description p').textContent === 'better words'")
    assert client.get_registered_model(name).description == "better words"
    ui.d.find_element(By.ID, "alias-name").send_keys("staging")
    Select(ui.d.find_element(By.ID, "alias-version")).select_by_value("1")
    ui.d.find_element(By.ID, "alias-set").click()
    ui.wait("document.getElementById('aliases') && document.getElementById('aliases').textContent.includes('@staging → version 1')")
    assert client.get_model_version_by_alias(name, "staging").version == "1"
    ui.d.find_element(By.CSS_SELECTOR, ".alias-remove[data-alias='staging']").click()
    ui.wait("document.getElementById('aliases') && !document.getElementById('aliases').textContent.includes('staging')")


def workspace_pages(sweep, seed):
    exp = sweep.experiment_id
    picked = ",".join(sweep.run_ids[k] for k in [("0.1", "small", 0), ("0.01", "small", 0), ("0.001", "small", 0)])
    return {
        "workspace": f"/experiments/{exp}",
        "workspace-grouped": f"/experiments/{exp}?group=params.lr",
        "workspace-tree": f"/experiments/{exp}?tree=1&charts=0",
        "compare-picker": f"/compare?e={exp}&runs={picked}&keys=val/acc,train/loss",
        "compare-parallel-sweep": f"/compare?e={exp}&runs={picked}&keys=val/acc&tab=parallel&pcolor=metrics.val%2Facc",
        "run-overview": f"/experiments/{exp}/runs/{sweep.run_ids[('0.01', 'large', 0)]}",
        "run-provenance": f"/experiments/{seed.experiment_id}/runs/{seed.artifact_run}",
        "model": "/models/ui-model",
    }


@pytest.mark.parametrize("theme", ["light", "dark"])
@pytest.mark.parametrize("size", ["wide", "narrow"])
def test_workspace_pages_load_without_console_errors(ui, sweep_seed, seed, theme, size):
    for name, route in workspace_pages(sweep_seed, seed).items():
        ui.open(route, theme=theme, size=size)
        charts = name.startswith("workspace") and "charts=0" not in route
        if charts:
            # Panels load when they come into view: on a narrow screen the workspace is below the fold.
            ui.js("document.getElementById('workspace').scrollIntoView()")
            ui.wait(WS_READY)
        if name == "workspace-grouped":
            ui.wait("window.__cairnCharts['ws:train/acc'] && window.__cairnCharts['ws:train/acc'].groups")
        if name == "run-overview":
            ui.wait("window.__cairnSparklines === 5")
        if name.startswith("compare-parallel"):
            ui.wait("window.__cairnParallel")
        if name == "model":
            ui.wait("document.getElementById('history')")
        assert ui.js("return document.querySelector('main .error')") is None, name
        assert ui.js("return window.__cairnErrors.length") == 0, (name, ui.js("return window.__cairnErrors"))
        assert ui.console_errors() == [], name
        ui.screenshot(f"{name}-panels-{size}-{theme}" if charts else f"{name}-{size}-{theme}")
        if charts:
            ui.js("window.scrollTo(0, 0)")
            ui.screenshot(f"{name}-{size}-{theme}")


@pytest.fixture(scope="module")
def many_runs():
    """An experiment of 25 runs, each with a metric m = its number at 5 steps."""
    from mlflow.entities import Metric, Param

    client = MlflowClient()
    stamp = int(time.time() * 1000)
    experiment_id = client.create_experiment(f"ui-colours-{stamp}")
    ids = []
    for i in range(25):
        rid = client.create_run(experiment_id, run_name=f"c{i:02d}", start_time=stamp + i).info.run_id
        client.log_batch(rid, metrics=[Metric("m", float(i) + step / 10, stamp + step, step) for step in range(5)], params=[Param("i", str(i))])
        client.set_terminated(rid, "FINISHED")
        ids.append(rid)
    return experiment_id, ids


def test_runs_shown_together_get_distinct_colours_that_survive_filtering_reloading_and_compare(ui, many_runs):
    experiment_id, ids = many_runs
    ws = quote(json.dumps({"top": 50}))
    ui.open(f"/experiments/{experiment_id}?ws={ws}")
    ui.wait("window.__cairnTable && window.__cairnTable.rowCount === 25")
    ws_info = wait_workspace(ui)
    assert len(ws_info["runs"]) == 25
    colours = ui.js("return window.__cairnTable.colors")
    assert sorted(colours) == sorted(ids)
    assert len(set(colours.values())) == 25, colours
    # The charts draw each run in its table colour.
    series = ui.wait("window.__cairnCharts['ws:m'] && window.__cairnCharts['ws:m'].series.length === 25 && window.__cairnCharts['ws:m'].series")
    assert {s["runId"]: s["color"] for s in series} == colours
    ui.screenshot("colours-25-runs-wide-light")

    # Filtered, the remaining runs keep their colours.
    ui.open(f"/experiments/{experiment_id}?ws={ws}&filter={quote('metrics.m >= 20')}")
    ui.wait("window.__cairnTable && window.__cairnTable.rowCount === 5")
    kept = ui.js("return window.__cairnTable.colors")
    assert len(kept) == 5 and all(kept[rid] == colours[rid] for rid in kept)

    # Reloaded, every run has the same colour again.
    ui.open(f"/experiments/{experiment_id}?ws={ws}")
    ui.wait("window.__cairnTable && window.__cairnTable.rowCount === 25")
    assert ui.js("return window.__cairnTable.colors") == colours

    # Compare draws the runs in the same colours.
    picked = ids[3:9]
    ui.open(f"/compare?e={experiment_id}&runs={','.join(picked)}&keys=m")
    series = ui.wait("window.__cairnCharts['compare:m'] && window.__cairnCharts['compare:m'].series.length === 6 && window.__cairnCharts['compare:m'].series")
    assert {s["runId"]: s["color"] for s in series} == {rid: colours[rid] for rid in picked}


def test_statistics_tab_picks_metrics_with_the_same_searchable_picker(ui, sweep_seed):
    runs = ",".join(sweep_seed.run_ids[(lr, "small", seed)] for lr in ["0.1", "0.01"] for seed in range(2))
    ui.open(f"/compare?e={sweep_seed.experiment_id}&runs={runs}&tab=stats&sg=params.lr&sm=lr")
    ui.wait("window.__cairnStats && window.__cairnStats.loaded")
    # The picker of the Charts tab (picker.js): search box, select all shown, clear, count.
    assert ui.js("return !!document.querySelector('#stats-metrics.picker-list') && !document.querySelector('select#stats-metrics')")
    search = ui.d.find_element(By.ID, "stats-metrics-search")
    search.send_keys("/^val\\//")
    assert ui.js("return [...document.querySelectorAll('#stats-metrics label')].map(l => l.textContent.trim())") == ["val/acc", "val/loss"]
    ui.d.find_element(By.ID, "stats-metrics-all").click()
    ui.wait("window.__cairnStats.loaded && window.__cairnStats.verdicts && window.__cairnStats.verdicts.length === 3")
    assert sorted({v["metric"] for v in ui.js("return window.__cairnStats.verdicts")}) == ["lr", "val/acc", "val/loss"]
    assert "sm=" in ui.js("return location.hash") and "val" in ui.js("return location.hash")
    ui.d.find_element(By.ID, "stats-metrics-none").click()
    assert ui.wait("document.getElementById('stats-context').textContent").startswith("Choose one or more metrics")
    ui.screenshot("compare-stats-picker-wide-light")
