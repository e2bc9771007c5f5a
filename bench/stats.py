"""Statistics endpoints under load (issue 15; a benchmark, not a timed test).

Seeds a fresh `cairn server` (bench/ui.py's seeding: N runs with 5 params — model, lr, batch,
layers, seed — and 3 metrics; R runs x P points of `loss`), then times, as a client sees them
(median of --repeats requests, each answer read in full):
  * stats/groups over all N runs, grouped by configuration (every param but the seed);
  * stats/groups and stats/compare over all N runs grouped by params.model (4 groups);
  * stats/bands of the R runs x P points (200 buckets, one group), next to metrics/series of the
    same runs at 1000 buckets: what the compare chart asks for today.
Prints a JSON document and a Markdown table.
"""

import argparse
import json
import statistics
import time
import urllib.parse
import urllib.request

from ui import seed_series, seed_table


def get(base, path, params):
    url = base + "/api/cairn/v1/" + path + "?" + urllib.parse.urlencode(params, doseq=True)
    start = time.perf_counter()
    with urllib.request.urlopen(url, timeout=600) as resp:
        body = resp.read()
    return time.perf_counter() - start, body


def timed(base, path, params, repeats):
    get(base, path, params)  # warm-up: the first read of a table is not what a user waits for twice
    times = [get(base, path, params)[0] for _ in range(repeats)]
    return round(statistics.median(times) * 1000, 1)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--url", required=True)
    ap.add_argument("--runs", type=int, default=10_000)
    ap.add_argument("--series-runs", type=int, default=100)
    ap.add_argument("--points", type=int, default=100_000)
    ap.add_argument("--workers", type=int, default=8)
    ap.add_argument("--repeats", type=int, default=5)
    args = ap.parse_args()
    base = args.url.rstrip("/")

    t0 = time.perf_counter()
    table = seed_table(base, args.runs, args.workers)
    series_exp, series_ids = seed_series(base, args.series_runs, args.points, args.workers)
    seeded = round(time.perf_counter() - t0, 1)

    ids = {"experiment_ids": table}
    results = {
        "runs": args.runs, "series_runs": args.series_runs, "points": args.points, "seeded_s": seeded,
        "groups_by_configuration_ms": timed(base, "stats/groups", {**ids, "metrics": ["acc", "loss"]}, args.repeats),
        "groups_by_model_ms": timed(base, "stats/groups", {**ids, "metrics": ["acc", "loss"], "group_by": "params.model"}, args.repeats),
        "compare_by_model_ms": timed(base, "stats/compare", {**ids, "metrics": ["acc", "loss"], "group_by": "params.model"}, args.repeats),
        "bands_ms": timed(base, "stats/bands", {"experiment_ids": series_exp, "metric": "loss", "buckets": 200}, args.repeats),
        "compare_chart_series_ms": timed(base, "metrics/series", {"run_ids": series_ids, "keys": "loss", "buckets": 1000}, args.repeats),
    }
    groups = json.loads(get(base, "stats/groups", {**ids, "metrics": "acc"})[1])
    results["configurations"] = len(groups["groups"])
    print(json.dumps(results, indent=2))
    print()
    print("| measure | median |")
    print("|---|---|")
    print(f"| stats/groups, {args.runs:,} runs by configuration ({results['configurations']:,} groups), 2 metrics | {results['groups_by_configuration_ms']} ms |")
    print(f"| stats/groups, {args.runs:,} runs by params.model (4 groups), 2 metrics | {results['groups_by_model_ms']} ms |")
    print(f"| stats/compare, {args.runs:,} runs by params.model, 2 metrics (3 comparisons each) | {results['compare_by_model_ms']} ms |")
    print(f"| stats/bands, {args.series_runs} runs x {args.points:,} points, 200 buckets | {results['bands_ms']} ms |")
    print(f"| metrics/series (compare chart), same runs, 1000 buckets | {results['compare_chart_series_ms']} ms |")


if __name__ == "__main__":
    main()
