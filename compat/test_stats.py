"""Honest comparison (issue 15): the statistics endpoints and `cairn compare` / `cairn ab report`,
checked end to end against scipy and statsmodels. Runs are logged with the real `mlflow` client;
every number the server answers is recomputed here from the values that were logged."""

import math
import os
import subprocess
import time

import numpy as np
import pytest
import scipy.stats as st
from mlflow.entities import Metric, Param
from statsmodels.stats.multitest import multipletests
from statsmodels.stats.power import TTestIndPower

from conftest import unique_name

pytestmark = pytest.mark.cairn_only

STATS = "/api/cairn/v1/stats/"


def _run(client, exp_id, params, metrics, status="FINISHED", tags=None, history=None):
    """One run with `params` and final `metrics` (a dict key -> value, or key -> list of values by step)."""
    run = client.create_run(exp_id, tags=tags or {})
    rid = run.info.run_id
    now = int(time.time() * 1000)
    points = []
    for key, value in metrics.items():
        values = value if isinstance(value, list) else [value]
        points += [Metric(key, float(v), now + i, i) for i, v in enumerate(values)]
    client.log_batch(rid, metrics=points, params=[Param(k, str(v)) for k, v in params.items()])
    client.set_terminated(rid, status=status)
    return rid


def _get(rest, endpoint, **params):
    status, body = rest("GET", STATS + endpoint if not endpoint.startswith("/") else endpoint, params=params)
    return status, body


def _close(a, b, rel=1e-9, abs_=1e-12):
    return a == pytest.approx(b, rel=rel, abs=abs_)


def _two_configs(client, exp_id, a_values, b_values, seeds=None, metric="val_acc"):
    seeds = seeds if seeds is not None else list(range(len(a_values)))
    ids = {"a": [], "b": []}
    for model, values in (("a", a_values), ("b", b_values)):
        for seed, v in zip(seeds, values):
            ids[model].append(_run(client, exp_id, {"model": model, "seed": seed}, {metric: v}))
    return ids


def test_group_summaries_match_scipy(client, rest):
    exp_id = client.create_experiment(unique_name("stats-groups"))
    rng = np.random.default_rng(1)
    a = rng.normal(0.80, 0.02, 5)
    b = rng.normal(0.83, 0.03, 6)
    _two_configs(client, exp_id, list(a), [], seeds=range(5))
    for seed, v in enumerate(b):
        _run(client, exp_id, {"model": "b", "seed": seed}, {"val_acc": v})
    # Runs that must not count, each for its own reason.
    _run(client, exp_id, {"model": "b", "seed": 90}, {"val_acc": 0.99}, status="FAILED")
    _run(client, exp_id, {"model": "b", "seed": 91}, {"val_acc": 0.99}, status="KILLED")
    _run(client, exp_id, {"model": "b", "seed": 92}, {"other": 1.0})
    _run(client, exp_id, {"model": "b", "seed": 93}, {"val_acc": float("nan")})
    running = client.create_run(exp_id)
    client.log_batch(running.info.run_id, params=[Param("model", "b"), Param("seed", "94")])

    status, body = _get(rest, "groups", experiment_ids=exp_id, metrics="val_acc")
    assert status == 200, body
    # Grouped by configuration: seed is seed-like, so model is the only field that tells groups apart.
    assert body["by_configuration"] is True
    assert body["group_by"] == ["params.model"]
    assert "seed" in body["seed_params"]
    groups = {g["key"]: g for g in body["groups"]}
    assert set(groups) == {"model=a", "model=b"}
    for key, xs in (("model=a", a), ("model=b", b)):
        m = groups[key]["metrics"][0]
        assert m["n"] == len(xs)
        assert _close(m["mean"], np.mean(xs))
        assert _close(m["sd"], np.std(xs, ddof=1))
        assert _close(m["se"], st.sem(xs))
        assert _close(m["median"], np.median(xs))
        assert _close(m["min"], np.min(xs)) and _close(m["max"], np.max(xs))
        low, high = st.t.interval(0.95, len(xs) - 1, loc=np.mean(xs), scale=st.sem(xs))
        assert _close(m["ci_low"], low) and _close(m["ci_high"], high)
    excluded = groups["model=b"]["metrics"][0]["excluded"]
    assert excluded == {"failed": 1, "killed": 1, "unfinished": 1, "missing": 1, "nonfinite": 1}
    assert len(groups["model=b"]["run_ids"]) == 6 + 5

    # A 90% interval and the bootstrap option.
    status, body = _get(rest, "groups", experiment_ids=exp_id, metrics="val_acc", level="0.9", interval="bootstrap")
    assert status == 200, body
    m = {g["key"]: g for g in body["groups"]}["model=b"]["metrics"][0]
    assert m["interval"] == "bootstrap"
    assert min(b) <= m["ci_low"] < np.mean(b) < m["ci_high"] <= max(b)


def test_edge_cases_n1_zero_variance(client, rest):
    exp_id = client.create_experiment(unique_name("stats-edge"))
    _run(client, exp_id, {"model": "one"}, {"acc": 0.5})
    for seed in range(3):
        _run(client, exp_id, {"model": "flat", "seed": seed}, {"acc": 0.7})
    status, body = _get(rest, "groups", experiment_ids=exp_id, metrics="acc")
    assert status == 200, body
    groups = {g["key"]: g["metrics"][0] for g in body["groups"]}
    one = groups["model=one"]
    assert one["n"] == 1 and one["mean"] == 0.5
    assert "sd" not in one and "ci_low" not in one  # undefined for n = 1: left out, never NaN
    flat = groups["model=flat"]
    assert flat["sd"] == 0 and flat["ci_low"] == flat["ci_high"] == 0.7

    status, body = _get(rest, "compare", experiment_ids=exp_id, metrics="acc", group_by="params.model", baseline="flat")
    assert status == 200, body
    (c,) = body["comparisons"]
    assert c["verdict"] == "inconclusive"
    assert {w["code"] for w in c["warnings"]} >= {"small_n"}


def test_welch_mann_whitney_permutation_match_scipy(client, rest):
    exp_id = client.create_experiment(unique_name("stats-welch"))
    rng = np.random.default_rng(7)
    a = rng.normal(0.80, 0.02, 5)
    b = rng.normal(0.84, 0.02, 5)
    # Different seeds per arm: nothing to pair.
    for seed, v in enumerate(a):
        _run(client, exp_id, {"model": "a", "seed": seed}, {"val_acc": v})
    for seed, v in enumerate(b):
        _run(client, exp_id, {"model": "b", "seed": seed + 100}, {"val_acc": v})

    status, body = _get(rest, "compare", experiment_ids=exp_id, metrics="val_acc", group_by="params.model", baseline="a")
    assert status == 200, body
    assert body["baseline"] == "model=a"
    (c,) = body["comparisons"]
    assert c["paired"] is False and c["test"] == "welch t-test"
    ref = st.ttest_ind(b, a, equal_var=False)
    ci = ref.confidence_interval(0.95)
    assert _close(c["diff"], np.mean(b) - np.mean(a))
    assert _close(c["t"], ref.statistic) and _close(c["p"], ref.pvalue, rel=1e-7) and _close(c["df"], ref.df)
    assert _close(c["ci_low"], ci.low) and _close(c["ci_high"], ci.high)
    mw = st.mannwhitneyu(b, a, alternative="two-sided")
    assert c["rank_test"]["name"] == "mann-whitney u"
    assert _close(c["rank_test"]["statistic"], mw.statistic) and _close(c["rank_test"]["p"], mw.pvalue, rel=1e-7)
    perm = st.permutation_test((b, a), lambda x, y, axis: np.mean(x, axis=axis) - np.mean(y, axis=axis),
                               permutation_type="independent", alternative="two-sided", n_resamples=9999, vectorized=True)
    assert c["permutation_exact"] is True  # C(10, 5) = 252 splits: all of them
    assert _close(c["permutation_p"], perm.pvalue, rel=1e-9)
    # Hedges' g: Cohen's d with the pooled sd times the small-sample correction.
    sp = math.sqrt(((len(a) - 1) * np.var(a, ddof=1) + (len(b) - 1) * np.var(b, ddof=1)) / (len(a) + len(b) - 2))
    d = (np.mean(b) - np.mean(a)) / sp
    assert c["hedges_g"] == pytest.approx(d * (1 - 3 / (4 * (len(a) + len(b)) - 9)), rel=5e-3)
    assert c["hedges_g_low"] < c["hedges_g"] < c["hedges_g_high"]
    assert c["verdict"] == ("better" if ref.pvalue < 0.05 else "inconclusive")
    assert c["verdict"] == "better", c["summary"]
    assert c["summary"].startswith("Better: model=b beats model=a on val_acc by +")


def test_paired_by_shared_seeds_matches_scipy(client, rest):
    exp_id = client.create_experiment(unique_name("stats-paired"))
    rng = np.random.default_rng(11)
    seed_effect = rng.normal(0, 0.05, 6)
    a = 0.7 + seed_effect + rng.normal(0, 0.005, 6)
    b = 0.71 + seed_effect + rng.normal(0, 0.005, 6)
    _two_configs(client, exp_id, list(a), list(b))
    status, body = _get(rest, "compare", experiment_ids=exp_id, metrics="val_acc", baseline="model=a")
    assert status == 200, body
    (c,) = body["comparisons"]
    assert c["paired"] is True and c["paired_by"] == ["params.seed"] and c["test"] == "paired t-test"
    ref = st.ttest_rel(b, a)
    ci = ref.confidence_interval(0.95)
    assert _close(c["t"], ref.statistic) and _close(c["p"], ref.pvalue, rel=1e-7)
    assert _close(c["ci_low"], ci.low) and _close(c["ci_high"], ci.high)
    w = st.wilcoxon(b - a)
    assert c["rank_test"]["name"] == "wilcoxon signed-rank"
    assert _close(c["rank_test"]["statistic"], w.statistic) and _close(c["rank_test"]["p"], w.pvalue, rel=1e-7)
    # Unpaired, the seed-to-seed variation hides the same difference.
    status, body = _get(rest, "compare", experiment_ids=exp_id, metrics="val_acc", baseline="a", group_by="params.model", pair="never")
    (u,) = body["comparisons"]
    assert u["paired"] is False and _close(u["p"], st.ttest_ind(b, a, equal_var=False).pvalue, rel=1e-7)
    assert c["verdict"] == "better" and u["verdict"] == "inconclusive"
    assert "runs per group would detect" in u["summary"]
    d = abs(np.mean(b) - np.mean(a)) / math.sqrt((np.var(a, ddof=1) + np.var(b, ddof=1)) / 2)
    assert u["seeds_per_arm_needed"] == math.ceil(TTestIndPower().solve_power(effect_size=d, alpha=0.05, power=0.8))


def test_holm_and_bh_over_groups_and_metrics(client, rest):
    exp_id = client.create_experiment(unique_name("stats-holm"))
    rng = np.random.default_rng(3)
    values = {}
    for model, shift in (("base", 0.0), ("x", 0.01), ("y", 0.05)):
        for seed in range(5):
            acc, loss = 0.8 + shift + rng.normal(0, 0.02), 0.5 - shift + rng.normal(0, 0.01)
            values.setdefault(model, []).append((acc, loss))
            _run(client, exp_id, {"model": model, "seed": seed + (0 if model == "base" else 50)}, {"acc": acc, "val_loss": loss})
    for correction, method in (("holm", "holm"), ("bh", "fdr_bh")):
        status, body = _get(rest, "compare", experiment_ids=exp_id, metrics=["acc", "val_loss"], group_by="params.model",
                            baseline="base", correction=correction)
        assert status == 200, body
        cs = body["comparisons"]
        assert len(cs) == 4
        ps = [c["p"] for c in cs]
        for c in cs:
            i = 0 if c["metric"] == "acc" else 1
            g = [v[i] for v in values[c["group"].split("=")[1]]]
            base = [v[i] for v in values["base"]]
            assert _close(c["p"], st.ttest_ind(g, base, equal_var=False).pvalue, rel=1e-7)
        expected = multipletests(ps, method=method)[1]
        for c, adj in zip(cs, expected):
            assert _close(c["p_adjusted"], adj, rel=1e-9)
    # val_loss is minimized: a lower loss is "better".
    loss_y = next(c for c in cs if c["group"] == "model=y" and c["metric"] == "val_loss")
    assert loss_y["direction"] == "minimize" and loss_y["diff"] < 0 and loss_y["verdict"] == "better"


def test_value_at_best_and_step(client, rest):
    exp_id = client.create_experiment(unique_name("stats-at"))
    curves = {}
    for model in ("a", "b"):
        for seed in range(3):
            curve = [0.5 + 0.1 * i + (0.05 if model == "b" else 0) + 0.001 * seed for i in range(5)] + [0.2]
            curves.setdefault(model, []).append(curve)
            _run(client, exp_id, {"model": model, "seed": seed}, {"acc": curve, "loss": [1 - v for v in curve]})
    status, body = _get(rest, "groups", experiment_ids=exp_id, metrics=["acc", "loss"], at="best")
    assert status == 200, body
    g = {x["key"]: {m["key"]: m for m in x["metrics"]} for x in body["groups"]}
    assert _close(g["model=b"]["acc"]["mean"], np.mean([max(c) for c in curves["b"]]))
    assert _close(g["model=b"]["loss"]["mean"], np.mean([min(1 - v for v in c) for c in curves["b"]]))
    status, body = _get(rest, "groups", experiment_ids=exp_id, metrics="acc", at="step=2")
    g = {x["key"]: x["metrics"][0] for x in body["groups"]}
    assert _close(g["model=a"]["mean"], np.mean([c[2] for c in curves["a"]]))
    status, body = _get(rest, "groups", experiment_ids=exp_id, metrics="acc", at="step=99")
    g = {x["key"]: x["metrics"][0] for x in body["groups"]}
    assert g["model=a"]["n"] == 0 and g["model=a"]["excluded"]["missing"] == 3


def test_warnings_data_steps_failures_improving(client, rest):
    import mlflow
    import pandas as pd

    exp_id = client.create_experiment(unique_name("stats-warn"))
    ds_a = mlflow.data.from_pandas(pd.DataFrame({"x": [1, 2, 3]}), name="train")
    ds_b = mlflow.data.from_pandas(pd.DataFrame({"x": [1, 2, 4]}), name="train")
    for model, ds, steps, slope in (("a", ds_a, 10, 0.0), ("b", ds_b, 20, 0.01)):
        for seed in range(4):
            curve = [0.8 + slope * i + 0.001 * seed for i in range(steps)]
            rid = _run(client, exp_id, {"model": model, "seed": seed}, {"acc": curve}, tags={"mlflow.source.git.commit": "c0ffee" if model == "a" else "beef"})
            with mlflow.start_run(run_id=rid):
                mlflow.log_input(ds, context="training")
            client.set_terminated(rid)
    for seed in range(2):
        _run(client, exp_id, {"model": "b", "seed": 10 + seed}, {"acc": 0.1}, status="FAILED")
    status, body = _get(rest, "compare", experiment_ids=exp_id, metrics="acc", group_by="params.model", baseline="a")
    assert status == 200, body
    (c,) = body["comparisons"]
    codes = {w["code"]: w["message"] for w in c["warnings"]}
    assert {"different_data", "different_code", "different_steps", "still_improving", "failed_share"} <= set(codes), codes
    assert ds_a.digest in codes["different_data"] and ds_b.digest in codes["different_data"]
    assert "2 of 6" in codes["failed_share"]


def test_bands_align_groups_by_step(client, rest):
    exp_id = client.create_experiment(unique_name("stats-bands"))
    curves = {"a": [], "b": []}
    for model in curves:
        for seed in range(3):
            curve = [i * (1 if model == "a" else 2) + seed for i in range(10)]
            curves[model].append(curve)
            _run(client, exp_id, {"model": model, "seed": seed}, {"acc": curve})
    status, body = _get(rest, "bands", experiment_ids=exp_id, metric="acc", buckets=10)
    assert status == 200, body
    series = {s["group"]: s for s in body["series"]}
    b = series["model=b"]
    assert b["x"] == list(range(10)) and b["n"] == [3] * 10
    values = np.array(curves["b"])
    for i in range(10):
        assert _close(b["mean"][i], values[:, i].mean())
        low, high = st.t.interval(0.95, 2, loc=values[:, i].mean(), scale=st.sem(values[:, i]))
        assert _close(b["low"][i], low) and _close(b["high"][i], high)
    status, body = _get(rest, "bands", experiment_ids=exp_id, metric="acc", buckets=10, band="minmax")
    a = {s["group"]: s for s in body["series"]}["model=a"]
    assert a["low"][4] == 4 and a["high"][4] == 6


def test_bad_requests_are_400_and_named(rest, client):
    exp_id = client.create_experiment(unique_name("stats-bad"))
    _run(client, exp_id, {"model": "a"}, {"acc": 1.0})
    cases = [
        (dict(experiment_ids=exp_id), "metrics"),
        (dict(experiment_ids=exp_id, metrics="acc", at="middle"), "at"),
        (dict(experiment_ids=exp_id, metrics="acc", level="2"), "level"),
        (dict(experiment_ids=exp_id, metrics="acc", group_by="metrics.acc"), "param or a tag"),
        (dict(experiment_ids=exp_id, metrics="acc", filter="params.x = "), "filter"),
        (dict(metrics="acc"), "experiment_ids"),
        (dict(experiment_ids=exp_id, metrics="acc", direction="acc:up"), "direction"),
    ]
    for params, needle in cases:
        status, body = _get(rest, "groups", **params)
        assert status == 400 and body["error_code"] == "INVALID_PARAMETER_VALUE", (params, body)
        assert needle.lower() in body["message"].lower(), (params, body)
    status, body = _get(rest, "compare", experiment_ids=exp_id, metrics="acc")
    assert status == 400 and "Nothing to compare" in body["message"]
    status, body = _get(rest, "compare", experiment_ids=exp_id, metrics="acc", group_by="params.model", baseline="zzz")
    assert status == 400


# ---- Online experiments ----

def _variant(client, exp_id, name, daily, control=False, allocation=None, extra_tags=None):
    """A variant run; `daily` maps metric key -> list of per-day increments (step = day)."""
    tags = {"cairn.variant": name}
    if control:
        tags["cairn.control"] = "true"
    if allocation is not None:
        tags["cairn.allocation"] = str(allocation)
    tags.update(extra_tags or {})
    run = client.create_run(exp_id, run_name=name, tags=tags)
    points = [Metric(k, float(v), 1_700_000_000_000 + day * 86_400_000, day) for k, vs in daily.items() for day, v in enumerate(vs)]
    client.log_batch(run.info.run_id, metrics=points)
    return run.info.run_id


def test_online_rates_lift_and_sample_ratio(client, rest):
    exp_id = client.create_experiment(unique_name("ab"))
    days = 10
    _variant(client, exp_id, "control", {"exposures": [1000] * days, "purchase.conversions": [100] * days}, control=True, allocation=0.5)
    _variant(client, exp_id, "treatment", {"exposures": [800] * days, "purchase.conversions": [96] * days}, allocation=0.5)
    status, body = _get(rest, "/api/cairn/v1/online/report", experiment_id=exp_id)
    assert status == 200, body
    assert body["control"] == "control"
    srm = body["sample_ratio"]
    ref = st.chisquare([10000, 8000], f_exp=[9000, 9000])
    assert _close(srm["chi_square"], ref.statistic) and srm["mismatch"] is True
    assert srm["p"] == pytest.approx(ref.pvalue, rel=1e-6, abs=1e-300)
    assert any(w["code"] == "sample_ratio_mismatch" for w in body["warnings"])
    (m,) = body["metrics"]
    assert m["key"] == "purchase" and m["kind"] == "rate"
    (lift,) = m["lifts"]
    pc, pt = 1000 / 10000, 960 / 8000
    se = math.sqrt(pc * (1 - pc) / 10000 + pt * (1 - pt) / 8000)
    z = st.norm.ppf(0.975)
    assert _close(lift["absolute"], pt - pc) and _close(lift["relative"], pt / pc - 1)
    assert _close(lift["absolute_low"], pt - pc - z * se, rel=1e-6) and _close(lift["absolute_high"], pt - pc + z * se, rel=1e-6)
    assert _close(lift["p"], 2 * st.norm.sf(abs(pt - pc) / se), rel=1e-6)
    assert lift["sequential_low"] < lift["absolute_low"] and lift["sequential_high"] > lift["absolute_high"]
    assert "Not trustworthy" in lift["summary"]
    assert len({p["step"] for p in m["timeline"]}) == days


def test_online_means_with_cuped_and_no_mismatch(client, rest):
    exp_id = client.create_experiment(unique_name("ab-mean"))
    rng = np.random.default_rng(5)
    def arm(n_per_day, effect):
        daily = {k: [] for k in ("exposures", "spend.sum", "spend.sum_squares", "spend.pre_sum", "spend.pre_sum_squares", "spend.cross_sum")}
        units = []
        for _ in range(7):
            x = rng.normal(50, 10, n_per_day)
            y = x + rng.normal(effect, 5, n_per_day)
            units.append((x, y))
            for k, v in (("exposures", n_per_day), ("spend.sum", y.sum()), ("spend.sum_squares", (y * y).sum()), ("spend.pre_sum", x.sum()),
                         ("spend.pre_sum_squares", (x * x).sum()), ("spend.cross_sum", (x * y).sum())):
                daily[k].append(v)
        return daily, units
    dc, uc = arm(500, 0.0)
    dt, ut = arm(500, 1.0)
    _variant(client, exp_id, "control", dc, control=True)
    _variant(client, exp_id, "bigger-button", dt)
    status, body = _get(rest, "/api/cairn/v1/online/report", experiment_id=exp_id)
    assert status == 200, body
    assert body["sample_ratio"]["mismatch"] is False
    (m,) = body["metrics"]
    assert m["kind"] == "mean" and m["cuped_theta"] is not None
    # CUPED removes most of the variance here: y = x + noise, so theta is near 1.
    assert m["cuped_theta"] == pytest.approx(1.0, abs=0.1) and m["cuped_variance_reduction"] > 0.5
    (lift,) = m["lifts"]
    assert lift["verdict"] == "better", lift["summary"]
    assert lift["absolute_low"] < 1.0 < lift["absolute_high"]


def test_online_bad_setups_are_explained(client, rest):
    exp_id = client.create_experiment(unique_name("ab-bad"))
    _variant(client, exp_id, "a", {"exposures": [10]})
    _variant(client, exp_id, "b", {"exposures": [10]})
    status, body = _get(rest, "/api/cairn/v1/online/report", experiment_id=exp_id)
    assert status == 400 and "cairn.control" in body["message"]
    status, body = _get(rest, "/api/cairn/v1/online/report")
    assert status == 400 and "experiment_id" in body["message"]


# ---- The CLI, and the whole story with scikit-learn ----

def _cairn(server_uri, *args):
    binary = os.environ.get("CAIRN_BINARY", "").strip()
    if not binary:
        pytest.skip("CAIRN_BINARY is not set: these tests drive the real cairn binary (scripts/test sets it)")
    return subprocess.run([binary, *args, "--tracking-uri", server_uri], capture_output=True, text=True, timeout=300)


def _train_sklearn(exp_name, configs, seeds, different_data_for=None):
    """Trains a small classifier per config and seed with the real mlflow client (autolog off)."""
    import mlflow
    import pandas as pd
    from sklearn.datasets import make_classification
    from sklearn.model_selection import train_test_split

    mlflow.set_experiment(exp_name)
    X, y = make_classification(n_samples=600, n_features=20, n_informative=8, random_state=0)
    for name, make in configs.items():
        for seed in seeds:
            Xs = X if name != different_data_for else X * 1.0001
            Xtr, Xte, ytr, yte = train_test_split(Xs, y, test_size=0.3, random_state=seed)
            model = make(seed)
            model.fit(Xtr, ytr)
            with mlflow.start_run():
                mlflow.log_params({"model": name, "seed": seed})
                mlflow.log_input(mlflow.data.from_pandas(pd.DataFrame(Xs[:50]), name="features"), context="training")
                mlflow.log_metric("val_acc", float(model.score(Xte, yte)))


def test_cairn_compare_says_better_then_inconclusive(server_uri):
    from sklearn.linear_model import LogisticRegression
    from sklearn.tree import DecisionTreeClassifier

    better = unique_name("sk-better")
    _train_sklearn(better, {"stump": lambda s: DecisionTreeClassifier(max_depth=1, random_state=s),
                            "logreg": lambda s: LogisticRegression(max_iter=500)}, range(5))
    r = _cairn(server_uri, "compare", "--experiment", better, "--group-by", "params.model", "--metric", "val_acc", "--baseline", "stump")
    assert r.returncode == 0, r.stderr
    assert "BETTER" in r.stdout and "Better: model=logreg beats model=stump on val_acc" in r.stdout, r.stdout
    assert "paired t" in r.stdout  # both arms ran seeds 0-4
    r = _cairn(server_uri, "compare", "--experiment", better, "--group-by", "params.model", "--metric", "val_acc", "--baseline", "stump", "--require", "better")
    assert r.returncode == 0, r.stderr

    same = unique_name("sk-same")
    _train_sklearn(same, {"C=1.0": lambda s: LogisticRegression(C=1.0, max_iter=500),
                          "C=1.001": lambda s: LogisticRegression(C=1.001, max_iter=500)}, range(5), different_data_for="C=1.001")
    r = _cairn(server_uri, "compare", "--experiment", same, "--group-by", "params.model", "--metric", "val_acc", "--baseline", "C=1.0")
    assert r.returncode == 0, r.stderr
    assert "INCONCLUSIVE" in r.stdout and "Inconclusive:" in r.stdout, r.stdout
    assert "different data" in r.stdout
    r = _cairn(server_uri, "compare", "--experiment", same, "--group-by", "params.model", "--metric", "val_acc", "--baseline", "C=1.0", "--require", "better")
    assert r.returncode == 1 and "--require better is not met" in r.stderr
    r = _cairn(server_uri, "compare", "--experiment", same, "--metric", "val_acc", "--json")
    assert r.returncode == 0 and '"comparisons"' in r.stdout


def test_cairn_ab_report_flags_mismatch(server_uri, client):
    name = unique_name("ab-cli")
    exp_id = client.create_experiment(name)
    _variant(client, exp_id, "control", {"exposures": [1000] * 5, "signup.conversions": [50] * 5}, control=True)
    _variant(client, exp_id, "new-copy", {"exposures": [900] * 5, "signup.conversions": [60] * 5})
    r = _cairn(server_uri, "ab", "report", name)
    assert r.returncode == 0, r.stderr
    assert "SAMPLE-RATIO MISMATCH" in r.stdout and "signup (rate, higher is better)" in r.stdout, r.stdout
    r = _cairn(server_uri, "ab", "report", name, "--require", "not-worse")
    assert r.returncode == 1 and "sample ratio" in r.stderr
    r = _cairn(server_uri, "compare", "--experiment", name)
    assert r.returncode != 0 and "--metric" in r.stderr
