"""The web UI under load, measured in real headless Chromium (see bench/ui).

Seeds a fresh `cairn server` over HTTP (concurrent log-batch requests) with
  * N runs (default 10,000) in one experiment, each with 5 params, 3 metrics and 2 tags;
  * R runs (default 100) x P points (default 100,000) of `loss` in a second experiment;
  * for the workspace, the 100 newest of the N runs get 20 more metrics (`train/m00`…`val/m19`)
    of W points each (default 1,000) and the tag ws=1;
then opens the UI and measures in the page (performance.now / requestAnimationFrame):
  time to first rendered table, sort and filter times, scrolling frame times,
  time to first drawn compare chart of the R runs, zoom re-fetch + redraw, frame times
  while hovering the compare chart; the workspace: first panel grid of the 20 metrics x 100
  visible runs (of the N), grouping by a param with bands, hover over a panel.
Prints a JSON document and a Markdown table.
"""

import argparse
import json
import math
import os
import random
import statistics
import sys
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor

from selenium import webdriver
from selenium.webdriver.chrome.options import Options
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait


def post(base, path, body):
    req = urllib.request.Request(base + "/api/2.0/mlflow/" + path, data=json.dumps(body).encode(),
                                 headers={"Content-Type": "application/json"}, method="POST")
    with urllib.request.urlopen(req, timeout=120) as resp:
        return json.loads(resp.read() or b"{}")


def seed_table(base, runs, workers, ids=None):
    exp = post(base, "experiments/create", {"name": f"bench-table-{int(time.time())}"})["experiment_id"]
    rng = random.Random(7)

    def one(i):
        run = post(base, "runs/create", {"experiment_id": exp, "run_name": f"run-{i:05d}", "start_time": 1_700_000_000_000 + i})["run"]["info"]["run_id"]
        params = [{"key": k, "value": v} for k, v in {"lr": str(10 ** -rng.randint(1, 5)), "batch": str(2 ** rng.randint(4, 9)),
                                                     "model": rng.choice(["cnn", "mlp", "resnet", "vit"]), "seed": str(i), "layers": str(rng.randint(1, 12))}.items()]
        metrics = [{"key": k, "value": rng.random(), "timestamp": 1_700_000_000_000, "step": 0} for k in ("acc", "loss", "f1")]
        tags = [{"key": "team", "value": rng.choice(["nlp", "vision"])}, {"key": "stage", "value": rng.choice(["dev", "prod"])}]
        post(base, "runs/log-batch", {"run_id": run, "params": params, "metrics": metrics, "tags": tags})
        post(base, "runs/update", {"run_id": run, "status": "FINISHED", "end_time": 1_700_000_000_000 + i + 60_000})
        return run

    with ThreadPoolExecutor(workers) as pool:
        made = list(pool.map(one, range(runs)))
    if ids is not None:
        ids.extend(made)
    return exp


WS_METRICS = [f"train/m{i:02d}" for i in range(10)] + [f"val/m{i:02d}" for i in range(10, 20)]


def seed_workspace(base, run_ids, points, workers):
    """20 metrics of `points` points each for the given runs (the newest of the table), tag ws=1."""
    def one(job):
        r, run = job
        post(base, "runs/set-tag", {"run_id": run, "key": "ws", "value": "1"})
        per = 1000 // len(WS_METRICS)  # steps per log-batch: 1,000 metric values, the batch limit
        for start in range(0, points, per):
            stop = min(points, start + per)
            metrics = [{"key": k, "value": 1 / math.sqrt(1 + step / 50) * (1 + 0.1 * j) + 0.01 * math.sin(step / 20 + r), "timestamp": 1_700_000_000_000 + step, "step": step}
                       for j, k in enumerate(WS_METRICS) for step in range(start, stop)]
            post(base, "runs/log-batch", {"run_id": run, "metrics": metrics})

    with ThreadPoolExecutor(workers) as pool:
        list(pool.map(one, enumerate(run_ids)))


WS_READY = "return window.__cairnWorkspace && window.__cairnWorkspace.visible > 0 && window.__cairnWorkspace.loaded >= window.__cairnWorkspace.visible"


def measure_workspace(base, table_exp, repeats):
    from urllib.parse import quote
    d = driver()
    out = {}
    try:
        layout = quote(json.dumps({"top": 100}))
        firsts = []
        for _ in range(repeats):
            d.get("about:blank")
            d.get(f"{base}/#/experiments/{table_exp}?ws={layout}&sort=attr:start_time:desc")
            WebDriverWait(d, 180).until(lambda x: x.execute_script(WS_READY))
            firsts.append(d.execute_script("return performance.now()"))
        info = d.execute_script("return window.__cairnWorkspace")
        charts = d.execute_script("return Object.entries(window.__cairnCharts).filter(([k]) => k.startsWith('ws:')).map(([k, v]) => v.series.length)")
        out["ws_first_ms"] = round(min(firsts), 1)
        out["ws_panels"] = len(info["panels"])
        out["ws_visible_panels"] = info["visible"]
        out["ws_runs_charted"] = len(info["runs"])
        out["ws_series_requests"] = info["requests"]
        out["ws_series_drawn"] = sum(charts)
        out["ws_hover_frames"] = frame_stats(d.execute_async_script(FRAMES_JS, "canvas[data-chart='ws:train/m00']", "hover", 200))
        # Grouping by a param: each visible panel asks stats/bands for the 100 runs and draws 4 bands.
        filt = quote("tags.ws = '1'")
        groups = []
        for _ in range(repeats):
            d.get("about:blank")
            d.get(f"{base}/#/experiments/{table_exp}?ws={layout}&filter={filt}")
            WebDriverWait(d, 180).until(lambda x: x.execute_script(WS_READY))
            t = d.execute_async_script("""
                const done = arguments[0]; const sel = document.getElementById('group-by');
                const t0 = performance.now(); sel.value = 'params.model'; sel.dispatchEvent(new Event('change'));
                (function poll() { const w = window.__cairnWorkspace;
                  if (w.group === 'params.model' && w.loaded >= w.visible && w.visible > 0) requestAnimationFrame(() => done(performance.now() - t0)); else setTimeout(poll, 2); })();""")
            groups.append(t)
        out["ws_group_bands_ms"] = {"median": round(statistics.median(groups), 1), "max": round(max(groups), 1)}
        out["ws_group_bands"] = d.execute_script("return window.__cairnCharts['ws:train/m00'].groups.length")
        out["ws_scroll_frames"] = frame_stats(d.execute_async_script(FRAMES_JS, "#workspace-panels", "scroll", 200))
    finally:
        d.quit()
    return out


def seed_series(base, runs, points, workers):
    exp = post(base, "experiments/create", {"name": f"bench-series-{int(time.time())}"})["experiment_id"]
    ids = [post(base, "runs/create", {"experiment_id": exp, "run_name": f"series-{i:03d}", "start_time": 1_700_000_000_000})["run"]["info"]["run_id"]
           for i in range(runs)]

    def batch(job):
        r, start = job
        run = ids[r]
        metrics = []
        for step in range(start, min(points, start + 1000)):
            v = 1 / math.sqrt(1 + step / 100) + 0.02 * math.sin(step / 50 + r) + (5 if step == 77_777 and r == 0 else 0)
            metrics.append({"key": "loss", "value": v, "timestamp": 1_700_000_000_000 + step * 100, "step": step})
        post(base, "runs/log-batch", {"run_id": run, "metrics": metrics})

    jobs = [(r, s) for r in range(runs) for s in range(0, points, 1000)]
    with ThreadPoolExecutor(workers) as pool:
        list(pool.map(batch, jobs))
    return exp, ids


def driver():
    opts = Options()
    opts.binary_location = "/usr/bin/chromium"
    for arg in ["--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu", "--window-size=1280,800", "--force-device-scale-factor=1"]:
        opts.add_argument(arg)
    d = webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=opts)
    d.set_window_size(1280, 800)
    d.set_script_timeout(120)
    return d


FRAMES_JS = """
const [selector, kind, frames, done] = [arguments[0], arguments[1], arguments[2], arguments[arguments.length - 1]];
const node = document.querySelector(selector);
const deltas = []; let last = performance.now(); let n = 0;
function tick(now) {
  deltas.push(now - last); last = now; n++;
  if (kind === 'scroll') node.scrollTop += 120;
  else { const r = node.getBoundingClientRect(); node.dispatchEvent(new MouseEvent('mousemove', {clientX: r.left + 70 + (n * 7) % (r.width - 90), clientY: r.top + 100, bubbles: true})); }
  if (n < frames) requestAnimationFrame(tick); else done(deltas.slice(1));
}
requestAnimationFrame(tick);
"""


def frame_stats(deltas):
    deltas = sorted(deltas)
    p = lambda q: deltas[min(len(deltas) - 1, int(q * len(deltas)))]
    return {"frames": len(deltas), "p50_ms": round(p(0.5), 1), "p95_ms": round(p(0.95), 1), "max_ms": round(deltas[-1], 1),
            "fps": round(1000 / statistics.mean(deltas), 1)}


def measure(base, table_exp, series_exp, series_ids, repeats):
    d = driver()
    out = {}
    try:
        first = []
        for _ in range(repeats):
            d.get("about:blank")
            d.get(f"{base}/#/experiments/{table_exp}")
            WebDriverWait(d, 120).until(lambda x: x.execute_script("return window.__cairnTable && window.__cairnTable.domRows > 0"))
            first.append(d.execute_script("return performance.now()"))
        out["first_table_ms"] = round(min(first), 1)
        out["first_table_runs"] = d.execute_script("return window.__cairnTable.rowCount")
        out["table_dom_rows"] = d.execute_script("return window.__cairnTable.domRows")
        sorts = []
        for col in ["metric:acc", "param:lr", "attr:run_name", "metric:loss"]:
            t = d.execute_async_script("""
                const done = arguments[1]; const cell = document.querySelector(`.grid-head .cell[data-col='${arguments[0]}']`);
                const t0 = performance.now(); cell.click();
                requestAnimationFrame(() => requestAnimationFrame(() => done(performance.now() - t0)));""", col)
            sorts.append(t)
        out["sort_ms"] = {"median": round(statistics.median(sorts), 1), "max": round(max(sorts), 1)}
        filters = []
        for f in ["metrics.acc > 0.5", "params.model = 'cnn' OR params.model = 'vit'", "metrics.acc > 0.9 AND tags.team = 'nlp'"]:
            t = d.execute_async_script("""
                const [text, done] = arguments; const box = document.getElementById('filter');
                box.value = text; const t0 = performance.now();
                box.dispatchEvent(new KeyboardEvent('keydown', {key: 'Enter', bubbles: true}));
                (function poll() { if (window.__cairnTable.filter === text) requestAnimationFrame(() => done(performance.now() - t0)); else setTimeout(poll, 2); })();""", f)
            filters.append(t)
        out["filter_ms"] = {"median": round(statistics.median(filters), 1), "max": round(max(filters), 1)}
        d.execute_script("document.getElementById('filter').value=''; document.getElementById('filter').dispatchEvent(new KeyboardEvent('keydown', {key: 'Enter', bubbles: true}))")
        WebDriverWait(d, 60).until(lambda x: x.execute_script("return window.__cairnTable.filter === '' && window.__cairnTable.rowCount === " + str(out["first_table_runs"])))
        out["scroll_frames"] = frame_stats(d.execute_async_script(FRAMES_JS, "#runs-grid", "scroll", 300))
        # Compare: all series runs, one metric.
        charts = []
        for _ in range(repeats):
            d.get("about:blank")
            d.get(f"{base}/#/compare?e={series_exp}&runs={','.join(series_ids)}&keys=loss")
            WebDriverWait(d, 180).until(lambda x: x.execute_script("return window.__cairnCharts && window.__cairnCharts['compare:loss'] && window.__cairnCharts['compare:loss'].requests >= 1"))
            charts.append(d.execute_script("return performance.now()"))
        info = d.execute_script("return window.__cairnCharts['compare:loss']")
        out["first_chart_ms"] = round(min(charts), 1)
        out["chart_series"] = len(info["series"])
        out["chart_points"] = sum(s["pointCount"] for s in info["series"])
        out["chart_buckets_per_series"] = info["series"][0]["buckets"] if info["series"] else 0
        out["hover_frames"] = frame_stats(d.execute_async_script(FRAMES_JS, "canvas[data-chart='compare:loss']", "hover", 200))
        zooms = []
        canvas = d.find_element(By.CSS_SELECTOR, "canvas[data-chart='compare:loss']")
        w = canvas.size["width"]
        from selenium.webdriver.common.action_chains import ActionChains
        for k in range(3):
            before = d.execute_script("return window.__cairnCharts['compare:loss'].requests")
            t0 = time.perf_counter()
            ActionChains(d).move_to_element_with_offset(canvas, -w // 4, 0).click_and_hold().move_by_offset(w // 3, 0).release().perform()
            WebDriverWait(d, 120).until(lambda x: x.execute_script("return window.__cairnCharts['compare:loss'].requests") > before)
            zooms.append((time.perf_counter() - t0) * 1000)
        out["zoom_refetch_ms"] = {"median": round(statistics.median(zooms), 1), "max": round(max(zooms), 1), "note": "includes the WebDriver drag"}
    finally:
        d.quit()
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--url", required=True)
    ap.add_argument("--runs", type=int, default=10_000)
    ap.add_argument("--series-runs", type=int, default=100)
    ap.add_argument("--points", type=int, default=100_000)
    ap.add_argument("--ws-points", type=int, default=1000, help="points per workspace metric series")
    ap.add_argument("--workers", type=int, default=8)
    ap.add_argument("--repeats", type=int, default=3)
    a = ap.parse_args()
    t = time.time()
    ids = []
    table_exp = seed_table(a.url, a.runs, a.workers, ids)
    seeded_table = time.time() - t
    t = time.time()
    seed_workspace(a.url, ids[-100:], a.ws_points, a.workers)
    seeded_ws = time.time() - t
    t = time.time()
    series_exp, series_ids = seed_series(a.url, a.series_runs, a.points, a.workers)
    seeded_series = time.time() - t
    result = {"runs": a.runs, "series_runs": a.series_runs, "points_per_series": a.points,
              "seed_table_s": round(seeded_table, 1), "seed_series_s": round(seeded_series, 1), "seed_workspace_s": round(seeded_ws, 1),
              "ws_points_per_series": a.ws_points}
    result.update(measure(a.url, table_exp, series_exp, series_ids, a.repeats))
    result.update(measure_workspace(a.url, table_exp, a.repeats))
    print(json.dumps(result, indent=2))
    rows = [
        ("time to first rendered table (navigation start → rows drawn)", f"{result['first_table_ms']} ms", "≤ 1000 ms"),
        ("sort by a column (click → drawn), median / max", f"{result['sort_ms']['median']} / {result['sort_ms']['max']} ms", "≤ 200 ms"),
        ("filter (Enter → server answer → drawn), median / max", f"{result['filter_ms']['median']} / {result['filter_ms']['max']} ms", "≤ 200 ms"),
        ("scrolling: frame time p50 / p95 / max (fps)", f"{result['scroll_frames']['p50_ms']} / {result['scroll_frames']['p95_ms']} / {result['scroll_frames']['max_ms']} ms ({result['scroll_frames']['fps']} fps)", "60 fps"),
        (f"first compare chart ({result['chart_series']} runs × {a.points:,} points)", f"{result['first_chart_ms']} ms", "≤ 1000 ms"),
        ("hover over the compare chart: frame time p50 / p95 (fps)", f"{result['hover_frames']['p50_ms']} / {result['hover_frames']['p95_ms']} ms ({result['hover_frames']['fps']} fps)", "60 fps"),
        ("zoom by drag → finer buckets fetched and drawn, median", f"{result['zoom_refetch_ms']['median']} ms", "—"),
        (f"workspace: first panel grid, {len(WS_METRICS)} metrics × {result['ws_runs_charted']} visible runs of {a.runs:,} (navigation start → every visible panel drawn; {result['ws_visible_panels']} on screen)",
         f"{result['ws_first_ms']} ms", "≤ 1500 ms"),
        (f"workspace: group by a param → {result['ws_group_bands']} bands per visible panel, median / max", f"{result['ws_group_bands_ms']['median']} / {result['ws_group_bands_ms']['max']} ms", "≤ 300 ms"),
        ("workspace: hover over a panel, frame time p50 / p95 (fps)", f"{result['ws_hover_frames']['p50_ms']} / {result['ws_hover_frames']['p95_ms']} ms ({result['ws_hover_frames']['fps']} fps)", "60 fps"),
        ("workspace: scrolling the panels, frame time p50 / p95 (fps)", f"{result['ws_scroll_frames']['p50_ms']} / {result['ws_scroll_frames']['p95_ms']} ms ({result['ws_scroll_frames']['fps']} fps)", "60 fps"),
    ]
    print("\n| measure | Cairn | target |\n|---|---:|---|")
    for r in rows:
        print(f"| {r[0]} | {r[1]} | {r[2]} |")


if __name__ == "__main__":
    sys.exit(main())
