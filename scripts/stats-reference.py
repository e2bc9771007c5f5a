#!/usr/bin/env python3
"""Reference values for CairnCore's Statistics, from scipy 1.17.1 and statsmodels 0.15.0.

    .venv-test/bin/python scripts/stats-reference.py

Writes Tests/CairnCoreTests/Fixtures/statistics-reference.json, which StatisticsTests compares every
function to. The inputs come from one fixed numpy seed, so running it again writes the same file
byte for byte (same library versions). Every double is written as a string, its shortest
round-trip repr ("nan", "inf" and "-inf" for the non-finite ones, which JSON lacks), so the Swift
test reads back exactly the double numpy used. Needs scipy, numpy and statsmodels (compat/requirements.txt).

Where scipy/statsmodels has no function for a quantity (Hedges' g and its Hedges-Olkin interval,
the delta-method relative lift, CUPED), the value is computed here with numpy from the raw data, by
the formula the Swift doc comment states: a check of the arithmetic, from a second implementation.
"""

import json
import math
import os
import warnings
from pathlib import Path

import numpy as np
import scipy
import scipy.special as sc
import statsmodels
from scipy import stats
from statsmodels.stats.multitest import multipletests
from statsmodels.stats.power import TTestIndPower
from statsmodels.stats.proportion import confint_proportions_2indep, test_proportions_2indep

assert scipy.__version__ == "1.17.1", scipy.__version__
assert statsmodels.__version__ == "0.15.0", statsmodels.__version__

warnings.simplefilter("ignore")
# Another seed (STATS_REFERENCE_SEED=…) draws other inputs: a stress run of the Swift tests, not
# to be committed.
rng = np.random.default_rng(int(os.environ.get("STATS_REFERENCE_SEED", "20261126")))
OUT = Path(__file__).resolve().parent.parent / "Tests/CairnCoreTests/Fixtures/statistics-reference.json"


def num(x):
    """A number as the text of its shortest round-trip repr: JSON parsers (Foundation's on Linux
    among them) need not read a double back exactly, Swift's Double(String) does."""
    x = float(x)
    if math.isnan(x):
        return "nan"
    if math.isinf(x):
        return "inf" if x > 0 else "-inf"
    return repr(x)


def nums(xs):
    return [num(x) for x in xs]


def rounded(xs, decimals):
    return [float(v) for v in np.round(np.asarray(xs, dtype=float), decimals)]


# ---- distributions ----
normal_cdf = [[num(x), num(stats.norm.cdf(x))] for x in
              [-38.0, -37.5, -30.0, -20.0, -10.0, -8.0, -5.0, -3.0, -2.0, -1.5, -1.0, -0.5, -1e-8, 0.0, 1e-8,
               0.3, 1.0, 1.96, 2.5, 4.0, 6.0, 8.0, 9.0]]
normal_quantile = [[num(p), num(stats.norm.ppf(p))] for p in
                   [1e-300, 1e-100, 1e-20, 1e-12, 1e-8, 1e-5, 0.001, 0.01, 0.02, 0.02425, 0.025, 0.05, 0.1, 0.3,
                    0.4999, 0.5, 0.5001, 0.7, 0.9, 0.95, 0.975, 0.97575, 0.99, 0.999, 0.99999, 1 - 1e-12,
                    0.0, 1.0]]
t_cdf = []
for df in [1.0, 2.0, 3.0, 4.5, 7.0, 10.0, 29.0, 100.0, 1000.0, 1e5, 1e7]:
    for t in [-1e3, -40.0, -12.0, -5.0, -2.5, -1.0, -0.1, 0.0, 1e-6, 0.7, 1.5, 2.0, 3.3, 8.0, 25.0, 300.0]:
        t_cdf.append([num(t), num(df), num(stats.t.cdf(t, df))])
t_quantile = []
for df in [1.0, 2.0, 3.0, 4.5, 7.0, 10.0, 29.0, 100.0, 1000.0, 1e5]:
    for p in [1e-12, 1e-6, 1e-3, 0.01, 0.025, 0.05, 0.2, 0.5, 0.6, 0.9, 0.95, 0.975, 0.995, 0.999999]:
        t_quantile.append([num(p), num(df), num(stats.t.ppf(p, df))])
chi2_sf = []
for df in [1.0, 2.0, 3.0, 5.0, 10.0, 31.0, 100.0, 1000.0]:
    for x in [0.0, 1e-6, 0.1, 0.5, 1.0, 2.0, 3.84, 7.5, 15.0, 40.0, 90.0, 150.0, 400.0, 1100.0, 1500.0]:
        chi2_sf.append([num(x), num(df), num(stats.chi2.sf(x, df))])


# ---- samples ----
def sample_sets():
    """(name, array) pairs: normal, skewed, small, large, ties, zero variance, n 0/1."""
    out = [("empty", np.array([])), ("one", np.array([3.25])), ("two", np.array([1.0, 2.5])),
           ("constant", np.full(6, 0.73)), ("ties", np.array([1.0, 2.0, 2.0, 3.0, 3.0, 3.0, 5.0]))]
    for n in [2, 3, 5, 8, 10]:
        out.append((f"normal{n}", rng.normal(0.8, 0.05, n)))
    for n in [4, 9, 25]:
        out.append((f"lognormal{n}", rng.lognormal(0.0, 1.0, n)))
    out.append(("normal200", rng.normal(-3.0, 2.0, 200)))
    out.append(("normal5000", rng.normal(1e3, 10.0, 5000)))
    out.append(("rounded40", rounded(rng.normal(0.5, 0.2, 40), 1)))
    return [(name, np.asarray(xs, dtype=float)) for name, xs in out]


summaries = []
for name, xs in sample_sets():
    for level in [0.95, 0.9] if len(xs) in (5, 200) else [0.95]:
        n = len(xs)
        mean = np.mean(xs) if n else math.nan
        sd = np.std(xs, ddof=1) if n > 1 else math.nan
        se = sd / math.sqrt(n) if n > 1 else math.nan
        if n > 1 and sd > 0:
            lo, hi = stats.t.interval(level, n - 1, loc=mean, scale=se)
        elif n > 1:  # scipy's t.interval returns nan for scale 0; Cairn says [mean, mean]
            lo, hi = mean, mean
        else:
            lo, hi = math.nan, math.nan
        summaries.append({"name": name, "xs": nums(xs), "level": num(level), "n": n, "mean": num(mean), "sd": num(sd),
                          "se": num(se), "median": num(np.median(xs) if n else math.nan),
                          "min": num(np.min(xs) if n else math.nan), "max": num(np.max(xs) if n else math.nan),
                          "ciLow": num(lo), "ciHigh": num(hi)})


# ---- two samples ----
def pairs_of_samples():
    """(name, treatment, baseline, paired?) cases."""
    cases = [
        ("both empty", [], [], True), ("one each", [1.0], [2.0], True), ("one vs three", [1.0], [2.0, 3.0, 4.5], False),
        ("identical arms", [0.81, 0.79, 0.83, 0.80, 0.82], [0.81, 0.79, 0.83, 0.80, 0.82], True),
        ("both constant, different", [2.0, 2.0, 2.0], [1.0, 1.0, 1.0], True),
        ("both constant, same", [1.0, 1.0, 1.0], [1.0, 1.0, 1.0], True),
        ("one constant", [0.5, 0.5, 0.5, 0.5], [0.4, 0.45, 0.52, 0.38], True),
        ("ties across arms", [1.0, 2.0, 2.0, 3.0, 4.0], [2.0, 3.0, 3.0, 1.0, 0.0], True),
        ("complete separation 5", [10.0, 11.0, 12.0, 13.0, 14.0], [1.0, 2.0, 3.0, 4.0, 5.0], True),
        ("complete separation 8 and 9", list(range(20, 28)), list(range(0, 9)), False),
        ("paired with zero differences", [1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0], [1.0, 2.5, 3.0, 3.5, 5.0, 5.5, 6.0], True),
        ("paired all zero differences", [1.0, 2.0, 3.0], [1.0, 2.0, 3.0], True),
        ("huge separation", list(np.linspace(100, 101, 30)), list(np.linspace(0, 1, 30)), True),
    ]
    for n1, n2 in [(2, 2), (3, 3), (2, 6), (4, 7), (5, 5), (6, 6), (8, 8), (8, 9), (9, 9), (7, 12), (10, 10),
                   (12, 12), (13, 13), (14, 14), (20, 20), (30, 25), (50, 50), (51, 51), (100, 80),
                   (3, 40), (8, 120)]:
        shift = rng.choice([0.0, 0.02, 0.05, 0.3])
        t = rng.normal(0.8 + shift, 0.05, n1)
        b = rng.normal(0.8, 0.05, n2)
        cases.append((f"normal {n1} vs {n2} shift {shift}", t, b, n1 == n2))
    for n in [5, 11, 13, 14, 40, 60]:
        t = rng.lognormal(0.2, 1.0, n)
        b = rng.lognormal(0.0, 1.0, n)
        cases.append((f"lognormal {n}", t, b, True))
    for n in [6, 10, 13, 14, 30, 55]:
        b = rounded(rng.normal(5.0, 1.0, n), 0)
        t = [x + d for x, d in zip(b, rounded(rng.normal(0.5, 1.0, n), 0))]
        cases.append((f"rounded paired with zeros and ties {n}", t, b, True))
    t = rng.normal(0.3, 1.0, 500)
    cases.append(("large paired tiny p", list(t + 0.6), list(t + rng.normal(0.0, 0.2, 500)), True))
    return [(name, np.asarray(t, dtype=float), np.asarray(b, dtype=float), paired) for name, t, b, paired in cases]


def mean_difference(res, level):
    if math.isnan(res.statistic) and math.isnan(getattr(res, "df", math.nan)):
        lo = hi = math.nan
    else:
        ci = res.confidence_interval(level)
        lo, hi = ci.low, ci.high
    return lo, hi


welch, paired, mwu, wilcoxon, permutation, hedges = [], [], [], [], [], []
for name, t, b, is_paired in pairs_of_samples():
    base = {"name": name, "treatment": nums(t), "baseline": nums(b)}
    # Welch
    if len(t) >= 1 and len(b) >= 1:
        res = stats.ttest_ind(t, b, equal_var=False)
        ci = res.confidence_interval(0.95)
        diff = np.mean(t) - np.mean(b)
        vt = np.var(t, ddof=1) if len(t) > 1 else math.nan
        vb = np.var(b, ddof=1) if len(b) > 1 else math.nan
        se = math.sqrt(vt / len(t) + vb / len(b))
        welch.append(dict(base, level=num(0.95), diff=num(diff), se=num(se), df=num(res.df), t=num(res.statistic),
                          p=num(res.pvalue), ciLow=num(ci.low), ciHigh=num(ci.high)))
    if is_paired and len(t) >= 1:
        res = stats.ttest_rel(t, b)
        ci = res.confidence_interval(0.9)
        d = t - b
        se = np.std(d, ddof=1) / math.sqrt(len(d)) if len(d) > 1 else math.nan
        paired.append(dict(base, level=num(0.9), diff=num(np.mean(d)), se=num(se), df=num(res.df),
                           t=num(res.statistic), p=num(res.pvalue), ciLow=num(ci.low), ciHigh=num(ci.high)))
    # Mann-Whitney U (scipy's 'auto' rule: exact unless both n > 8 or there are ties)
    if len(t) >= 1 and len(b) >= 1:
        res = stats.mannwhitneyu(t, b, alternative="two-sided")
        ties = len(np.unique(np.concatenate([t, b]))) < len(t) + len(b)
        exact = not (len(t) > 8 and len(b) > 8) and not ties
        mwu.append(dict(base, statistic=num(res.statistic), p=num(res.pvalue), exact=bool(exact)))
    else:
        mwu.append(dict(base, statistic="nan", p="nan", exact=False))
    # Wilcoxon signed rank on the differences (scipy 1.17 'auto': len(d) > 50 -> asymptotic; no ties and
    # no zeros -> exact; else len(d) <= 13 -> exact permutation over all 2**n sign flips; else asymptotic)
    if is_paired:
        d = t - b
        if len(d) == 0:
            wilcoxon.append(dict(base, statistic="nan", p="nan", exact=False))
        else:
            res = stats.wilcoxon(t, b)
            nz = np.abs(d[d != 0])
            has_ties = len(np.unique(nz)) < len(nz)
            has_zeros = np.any(d == 0)
            exact = len(d) <= 50 and (not (has_ties or has_zeros) or len(d) <= 13)
            wilcoxon.append(dict(base, statistic=num(res.statistic), p=num(res.pvalue), exact=bool(exact)))
    # permutation test, exact cases only (random resampling cannot reproduce numpy's generator)
    if len(t) >= 2 and len(b) >= 2 and math.comb(len(t) + len(b), len(t)) <= 9999:
        res = stats.permutation_test((t, b), lambda x, y, axis: np.mean(x, axis=axis) - np.mean(y, axis=axis),
                                     permutation_type="independent", alternative="two-sided", n_resamples=9999,
                                     vectorized=True)
        permutation.append(dict(base, resamples=9999, p=num(res.pvalue), exact=True))
    # Hedges' g: pooled sd, exact small-sample correction J, Hedges-Olkin variance
    n1, n2 = len(t), len(b)
    if n1 >= 2 and n2 >= 2:
        df = n1 + n2 - 2
        sp = math.sqrt(((n1 - 1) * np.var(t, ddof=1) + (n2 - 1) * np.var(b, ddof=1)) / df)
        d_ = (np.mean(t) - np.mean(b)) / sp if sp > 0 else math.nan
        j = math.exp(sc.gammaln(df / 2) - sc.gammaln((df - 1) / 2)) / math.sqrt(df / 2) if df > 1 else math.nan
        g = d_ * j
        var = (n1 + n2) / (n1 * n2) + g * g / (2 * (n1 + n2))
        z = stats.norm.ppf(0.975)
        hedges.append(dict(base, level=num(0.95), g=num(g), ciLow=num(g - z * math.sqrt(var)),
                           ciHigh=num(g + z * math.sqrt(var))))

# ---- permutation by random resampling: scipy's p with many resamples, for a loose comparison ----
permutation_random = []
for n1, n2, shift in [(10, 10, 0.02), (12, 9, 0.05), (20, 20, 0.0)]:
    t = rng.normal(0.8 + shift, 0.05, n1)
    b = rng.normal(0.8, 0.05, n2)
    res = stats.permutation_test((t, b), lambda x, y, axis: np.mean(x, axis=axis) - np.mean(y, axis=axis),
                                 permutation_type="independent", n_resamples=200_000, vectorized=True,
                                 rng=np.random.default_rng(1))
    permutation_random.append({"name": f"random {n1} vs {n2}", "treatment": nums(t), "baseline": nums(b),
                               "p": num(res.pvalue)})

# ---- multiple testing ----
multiple = []
pvalue_sets = [[], [0.03], [0.01, 0.04, 0.03, 0.005], [0.5, 0.5, 0.5], [1e-12, 1e-9, 1e-6, 0.001, 0.02, 0.2, 0.9, 1.0],
               [0.04, 0.04, 0.01, 0.2, 0.04], list(np.round(rng.uniform(0, 1, 25) ** 3, 12))]
for ps in pvalue_sets:
    holm = multipletests(ps, method="holm")[1] if ps else []
    bh = multipletests(ps, method="fdr_bh")[1] if ps else []
    multiple.append({"p": nums(ps), "holm": nums(holm), "bh": nums(bh)})

# ---- power: ceil(TTestIndPower().solve_power) ----
power = []
for diff, sd_t, sd_b, alpha, pw in [(0.01, 0.02, 0.02, 0.05, 0.8), (0.5, 1.0, 1.0, 0.05, 0.8), (0.2, 1.0, 1.5, 0.05, 0.9),
                                    (1.0, 1.0, 1.0, 0.05, 0.8), (2.0, 1.0, 1.0, 0.05, 0.8), (-0.3, 0.5, 0.7, 0.01, 0.8),
                                    (0.05, 1.0, 1.0, 0.05, 0.8), (0.003, 0.01, 0.012, 0.1, 0.95),
                                    (0.8, 0.4, 0.4, 0.05, 0.8), (0.015, 1.0, 1.0, 0.05, 0.8)]:
    d = abs(diff) / math.sqrt((sd_t ** 2 + sd_b ** 2) / 2)
    n = TTestIndPower().solve_power(effect_size=d, alpha=alpha, power=pw, ratio=1.0)
    n = int(math.ceil(n)) if n <= 100_000 else None
    power.append({"diff": num(diff), "sdTreatment": num(sd_t), "sdBaseline": num(sd_b), "alpha": num(alpha), "power": num(pw),
                  "n": n})

# ---- online: rates (statsmodels Wald test/CI for two proportions), means, SRM, CUPED ----
z975 = stats.norm.ppf(0.975)
rates = []
for ct, nt, cc, nc in [(130, 1000, 100, 1000), (5230, 100000, 5010, 100000), (12, 80, 9, 95), (0, 500, 3, 500),
                       (41000, 1_000_000, 40000, 1_000_000)]:
    res = test_proportions_2indep(ct, nt, cc, nc, method="wald", compare="diff")
    lo, hi = confint_proportions_2indep(ct, nt, cc, nc, method="wald", compare="diff", alpha=0.05)
    pt, pc = ct / nt, cc / nc
    rel = pt / pc - 1 if pc > 0 else math.nan
    rel_se = math.sqrt(pt * (1 - pt) / nt / pc ** 2 + pt ** 2 * pc * (1 - pc) / nc / pc ** 4) if pc > 0 else math.nan
    arm_lo, arm_hi = stats.norm.interval(0.95, loc=pt, scale=math.sqrt(pt * (1 - pt) / nt)) if 0 < pt < 1 else (pt, pt)
    rates.append({"treatment": nums([nt, ct]), "control": nums([nc, cc]), "absolute": num(pt - pc), "absoluteLow": num(lo),
                  "absoluteHigh": num(hi), "p": num(res.pvalue), "relative": num(rel),
                  "relativeLow": num(rel - z975 * rel_se), "relativeHigh": num(rel + z975 * rel_se),
                  "treatmentArmLow": num(arm_lo), "treatmentArmHigh": num(arm_hi)})

means = []
for nt, nc, mt, mc, sd in [(400, 420, 10.3, 10.0, 3.0), (50, 45, 1.0, 1.2, 0.5), (20000, 20000, 4.02, 4.0, 2.0)]:
    yt = rng.normal(mt, sd, nt)
    yc = rng.normal(mc, sd, nc)
    st = [len(yt), float(np.sum(yt)), float(np.sum(yt * yt))]
    sc_ = [len(yc), float(np.sum(yc)), float(np.sum(yc * yc))]
    vt, vc = np.var(yt, ddof=1), np.var(yc, ddof=1)
    diff = np.mean(yt) - np.mean(yc)
    se = math.sqrt(vt / nt + vc / nc)
    z = diff / se
    rel = np.mean(yt) / np.mean(yc) - 1
    rel_se = math.sqrt(vt / nt / np.mean(yc) ** 2 + np.mean(yt) ** 2 * vc / nc / np.mean(yc) ** 4)
    means.append({"treatment": nums(st), "control": nums(sc_), "treatmentMean": num(np.mean(yt)), "treatmentVariance": num(vt),
                  "absolute": num(diff), "absoluteLow": num(diff - z975 * se), "absoluteHigh": num(diff + z975 * se),
                  "p": num(2 * stats.norm.sf(abs(z))), "relative": num(rel),
                  "relativeLow": num(rel - z975 * rel_se), "relativeHigh": num(rel + z975 * rel_se)})

srm = []
for observed, shares in [([5000, 5000], [1, 1]), ([5100, 4900], [0.5, 0.5]), ([50400, 49600], [1, 1]),
                         ([10000, 9000, 11000], [1, 1, 1]), ([1000, 3050], [0.25, 0.75]), ([100], [1]),
                         ([120000, 100000], [0.5, 0.5]), ([0, 0], [1, 1])]:
    shares_n = np.asarray(shares, float) / np.sum(shares)
    obs = np.asarray(observed, float)
    res = stats.chisquare(obs, f_exp=obs.sum() * shares_n)
    srm.append({"observed": nums(obs), "plannedShares": nums(shares), "chiSquare": num(res.statistic),
                "df": len(obs) - 1, "p": num(res.pvalue)})

cuped = []
for arms in [[(1000, 0.3), (1000, 0.0)], [(300, 0.1), (350, 0.0), (320, -0.05)]]:
    data = []
    for n, effect in arms:
        x = rng.normal(5.0, 2.0, n)
        y = 1.0 + 0.8 * x + effect + rng.normal(0.0, 1.0, n)
        data.append((x, y))
    all_x = np.concatenate([x for x, _ in data])
    all_y = np.concatenate([y for _, y in data])
    theta = np.cov(all_x, all_y, ddof=1)[0, 1] / np.var(all_x, ddof=1)
    sums, adjusted = [], []
    for x, y in data:
        sums.append(nums([len(x), np.sum(y), np.sum(y * y), np.sum(x), np.sum(x * x), np.sum(x * y)]))
        cov = np.cov(x, y, ddof=1)
        adjusted.append({"n": num(len(x)), "mean": num(np.mean(y) - theta * (np.mean(x) - np.mean(all_x))),
                         "variance": num(cov[1, 1] - 2 * theta * cov[0, 1] + theta ** 2 * cov[0, 0])})
    cuped.append({"sums": sums, "theta": num(theta), "arms": adjusted})

reference = {
    "versions": {"scipy": scipy.__version__, "statsmodels": statsmodels.__version__, "numpy": np.__version__},
    "normalCDF": normal_cdf, "normalQuantile": normal_quantile, "tCDF": t_cdf, "tQuantile": t_quantile,
    "chiSquareSurvival": chi2_sf, "summaries": summaries, "welch": welch, "paired": paired,
    "mannWhitneyU": mwu, "wilcoxon": wilcoxon, "permutation": permutation,
    "permutationRandom": permutation_random, "hedges": hedges, "multiple": multiple, "power": power,
    "rates": rates, "means": means, "sampleRatioMismatch": srm, "cuped": cuped,
}
OUT.parent.mkdir(parents=True, exist_ok=True)
OUT.write_text(json.dumps(reference, indent=1) + "\n")
print(f"wrote {OUT} ({OUT.stat().st_size} bytes)")
