"""Search (MLFLOW-API.md §4, §5e): run filters, ordering, pagination, view types, pandas search_runs,
experiment search/rename/delete/restore, bad filters, and Cairn's OR/NOT/parentheses extension.

The filter and order_by cases share one read-only experiment (module fixture `corpus`, never mutated) so each
case is its own test without re-creating the data; tests that mutate state make their own experiment.
"""

import time

import mlflow
import pandas as pd
import pytest
from mlflow.entities import Dataset, DatasetInput, InputTag, Metric, Param, RunTag, ViewType
from mlflow.exceptions import MlflowException

from conftest import unique_name

# name: (start offset ms, final status, metrics, params, tags, dataset (name, context) or None)
CORPUS = {
    "alpha": (1000, "FINISHED", {"acc": 0.9, "loss": 0.1}, {"lr": "0.1", "opt": "adam"},
              {"team": "Red", "t": "x"}, ("ds-eval", "eval")),
    "Apple": (2000, "FINISHED", {"acc": 0.4}, {"lr": "0.01"}, {"team": "red", "t": "x"}, None),
    "beta": (3000, "RUNNING", {"acc": 0.7}, {"lr": "0.1", "opt": "sgd"}, {"t": "y"}, None),
    "gamma": (4000, "FINISHED", {"loss": 0.3}, {"lr": "0.001"}, {"team": "blue"}, ("ds-train", "training")),
}
ALL = set(CORPUS)


class Corpus:
    def __init__(self, experiment_id, base, ids):
        self.experiment_id = experiment_id
        self.base = base  # start_time of the corpus; run start times are base + offset
        self.ids = ids  # run name -> run id
        self.names = {v: k for k, v in ids.items()}

    def names_of(self, runs):
        return [self.names[r.info.run_id] for r in runs]


@pytest.fixture(scope="module")
def corpus():
    client = mlflow.MlflowClient()
    exp_id = client.create_experiment(unique_name("compat-search"))
    base = int(time.time() * 1000) - 600_000
    ids = {}
    for name, (offset, status, metrics, params, tags, dataset) in CORPUS.items():
        run_id = client.create_run(exp_id, start_time=base + offset, run_name=name).info.run_id
        ids[name] = run_id
        client.log_batch(
            run_id,
            metrics=[Metric(k, v, base + offset, 0) for k, v in metrics.items()],
            params=[Param(k, v) for k, v in params.items()],
            tags=[RunTag(k, v) for k, v in tags.items()],
        )
        if dataset:
            ds_name, context = dataset
            client.log_inputs(
                run_id,
                datasets=[
                    DatasetInput(
                        Dataset(ds_name, f"d-{ds_name}", "local", '{"uri": "/tmp/x.csv"}'),
                        tags=[InputTag("mlflow.data.context", context)],
                    )
                ],
            )
        if status != "RUNNING":
            client.set_terminated(run_id, status=status, end_time=base + offset + 500)
    return Corpus(exp_id, base, ids)


FILTERS = [
    ("", ALL),
    ("metrics.acc > 0.5", {"alpha", "beta"}),
    ("metrics.acc <= 0.4", {"Apple"}),
    ("metrics.acc = 0.7", {"beta"}),
    ("metrics.acc != 0.9", {"Apple", "beta"}),  # runs without the metric never match
    ("metric.loss < 0.2", {"alpha"}),
    ("metrics.acc >= 0.4 AND metrics.acc < 0.8", {"Apple", "beta"}),
    ("params.lr = '0.1'", {"alpha", "beta"}),
    ('params.lr = "0.01"', {"Apple"}),
    ("param.opt != 'adam'", {"beta"}),
    ("params.lr LIKE '0.0%'", {"Apple", "gamma"}),
    ("params.opt IS NULL", {"Apple", "gamma"}),
    ("params.opt IS NOT NULL", {"alpha", "beta"}),
    ("tags.team = 'red'", {"Apple"}),
    ("tags.team = 'Red'", {"alpha"}),
    ("tags.team LIKE 'r%'", {"Apple"}),
    ("tags.team ILIKE 'r%'", {"alpha", "Apple"}),
    ("tags.team ILIKE '%E%'", {"alpha", "Apple", "gamma"}),
    ("tags.team != 'red'", {"alpha", "gamma"}),  # only runs HAVING the tag
    ("tags.team IS NULL", {"beta"}),
    ("tags.team IS NOT NULL", {"alpha", "Apple", "gamma"}),
    ("tags.`t` = 'y'", {"beta"}),
    ("tags.mlflow.runName = 'gamma'", {"gamma"}),
    ("attributes.status = 'FINISHED'", {"alpha", "Apple", "gamma"}),
    ("attributes.status != 'FINISHED'", {"beta"}),
    ("attributes.run_name LIKE 'a%'", {"alpha"}),
    ("attributes.run_name ILIKE 'a%'", {"alpha", "Apple"}),
    ("attributes.run_name = 'beta'", {"beta"}),
    ("run_name = 'beta'", {"beta"}),  # no prefix = attribute
    ("attributes.start_time > {base+2500}", {"beta", "gamma"}),
    ("attributes.start_time >= {base+2000} AND attributes.start_time < {base+4000}", {"Apple", "beta"}),
    ("attributes.run_id IN ('{alpha}', '{beta}')", {"alpha", "beta"}),
    ("attributes.run_id NOT IN ('{alpha}', '{beta}')", {"Apple", "gamma"}),
    ("attributes.run_id = '{gamma}'", {"gamma"}),
    ("datasets.name = 'ds-train'", {"gamma"}),
    ("datasets.name LIKE 'ds-%'", {"alpha", "gamma"}),
    ("datasets.context = 'eval'", {"alpha"}),
    ("metrics.acc > 0.5 AND params.lr = '0.1' AND tags.t = 'x'", {"alpha"}),
    ("metrics.acc > 0.5 and params.opt = 'sgd'", {"beta"}),
]


def render(template, corpus):
    out = template.replace("{base+2500}", str(corpus.base + 2500))
    out = out.replace("{base+2000}", str(corpus.base + 2000)).replace("{base+4000}", str(corpus.base + 4000))
    for name, run_id in corpus.ids.items():
        out = out.replace("{" + name + "}", run_id)
    return out


@pytest.mark.parametrize("template,expected", FILTERS, ids=[f for f, _ in FILTERS])
def test_run_filter(client, corpus, template, expected):
    runs = client.search_runs([corpus.experiment_id], filter_string=render(template, corpus))
    assert sorted(corpus.names_of(runs)) == sorted(expected)


ORDERS = [
    ([], ["gamma", "beta", "Apple", "alpha"]),  # default: start_time DESC
    (["metrics.acc DESC"], ["alpha", "beta", "Apple", "gamma"]),  # missing metric last
    (["metrics.acc ASC"], ["Apple", "beta", "alpha", "gamma"]),
    (["metrics.acc"], ["Apple", "beta", "alpha", "gamma"]),  # ASC by default
    # Ties and missing values fall back to start_time DESC.
    (["metrics.loss DESC"], ["gamma", "alpha", "beta", "Apple"]),
    (["params.lr ASC"], ["gamma", "Apple", "beta", "alpha"]),
    (["params.lr DESC"], ["beta", "alpha", "Apple", "gamma"]),
    (["attributes.start_time ASC"], ["alpha", "Apple", "beta", "gamma"]),
    (["start_time DESC"], ["gamma", "beta", "Apple", "alpha"]),
    (["params.lr ASC", "metrics.acc DESC"], ["gamma", "Apple", "alpha", "beta"]),
]


@pytest.mark.parametrize("order_by,expected", ORDERS, ids=[",".join(o) or "default" for o, _ in ORDERS])
def test_run_order_by(client, corpus, order_by, expected):
    runs = client.search_runs([corpus.experiment_id], order_by=order_by)
    assert corpus.names_of(runs) == expected


def test_run_order_by_with_filter(client, corpus):
    runs = client.search_runs(
        [corpus.experiment_id], filter_string="params.lr = '0.1'", order_by=["metrics.acc ASC"]
    )
    assert corpus.names_of(runs) == ["beta", "alpha"]


def test_run_pagination(client, corpus):
    seen, pages, token = [], [], None
    while True:
        page = client.search_runs([corpus.experiment_id], max_results=2, page_token=token)
        pages.append(len(page))
        seen.extend(corpus.names_of(page))
        token = page.token
        if not token:
            break
        assert len(pages) < 10, "pagination does not terminate"
    assert sorted(seen) == sorted(ALL)  # every run exactly once
    assert seen == ["gamma", "beta", "Apple", "alpha"]  # pages follow the order
    assert pages == [2, 2]  # a token only when more rows exist

    first = client.search_runs([corpus.experiment_id], max_results=3, order_by=["metrics.acc DESC"])
    assert corpus.names_of(first) == ["alpha", "beta", "Apple"] and first.token
    rest_ = client.search_runs(
        [corpus.experiment_id], max_results=3, order_by=["metrics.acc DESC"], page_token=first.token
    )
    assert corpus.names_of(rest_) == ["gamma"] and not rest_.token


def test_search_runs_returns_full_runs(client, corpus):
    (run,) = client.search_runs([corpus.experiment_id], filter_string="attributes.run_name = 'alpha'")
    assert run.data.metrics == {"acc": 0.9, "loss": 0.1}
    assert run.data.params == {"lr": "0.1", "opt": "adam"}
    assert run.data.tags["team"] == "Red"
    assert run.data.tags["mlflow.runName"] == "alpha"
    assert run.info.status == "FINISHED"
    assert run.info.start_time == corpus.base + 1000
    assert run.info.end_time == corpus.base + 1500
    assert [di.dataset.name for di in run.inputs.dataset_inputs] == ["ds-eval"]


def test_fluent_search_runs_dataframe(corpus):
    df = mlflow.search_runs(experiment_ids=[corpus.experiment_id])
    assert isinstance(df, pd.DataFrame)
    assert len(df) == 4
    for col in ("run_id", "experiment_id", "status", "start_time", "metrics.acc", "metrics.loss",
                "params.lr", "params.opt", "tags.team", "tags.mlflow.runName"):
        assert col in df.columns, col
    assert list(df["tags.mlflow.runName"]) == ["gamma", "beta", "Apple", "alpha"]
    rows = df.set_index("tags.mlflow.runName")
    assert rows.loc["alpha", "metrics.acc"] == 0.9
    assert pd.isna(rows.loc["gamma", "metrics.acc"])
    assert rows.loc["Apple", "params.lr"] == "0.01"
    assert pd.isna(rows.loc["Apple", "params.opt"])
    assert rows.loc["beta", "status"] == "RUNNING"
    assert rows.loc["alpha", "run_id"] == corpus.ids["alpha"]

    filtered = mlflow.search_runs(
        experiment_ids=[corpus.experiment_id], filter_string="metrics.acc > 0.5", order_by=["metrics.acc ASC"]
    )
    assert list(filtered["tags.mlflow.runName"]) == ["beta", "alpha"]
    assert list(filtered["metrics.acc"]) == [0.7, 0.9]


def test_search_runs_across_experiments(client, corpus, experiment):
    other = client.create_run(experiment.experiment_id, run_name="elsewhere").info.run_id
    client.log_metric(other, "acc", 0.95)
    runs = client.search_runs([corpus.experiment_id, experiment.experiment_id], filter_string="metrics.acc > 0.8")
    assert sorted(r.info.run_id for r in runs) == sorted([other, corpus.ids["alpha"]])


def test_run_view_type(client, experiment):
    ids = [client.create_run(experiment.experiment_id, run_name=f"r{i}").info.run_id for i in range(3)]
    client.delete_run(ids[1])
    eid = experiment.experiment_id

    def names(view):
        return sorted(r.info.run_name for r in client.search_runs([eid], run_view_type=view))

    assert names(ViewType.ACTIVE_ONLY) == ["r0", "r2"]
    assert names(ViewType.DELETED_ONLY) == ["r1"]
    assert names(ViewType.ALL) == ["r0", "r1", "r2"]
    # Filters combine with the view type.
    deleted = client.search_runs([eid], "attributes.run_name = 'r1'", run_view_type=ViewType.ALL)
    assert [r.info.lifecycle_stage for r in deleted] == ["deleted"]
    assert client.search_runs([eid], "attributes.run_name = 'r1'") == []


def test_search_experiments(client):
    prefix = unique_name("compat-sx")
    ids = {}
    for suffix in ("a", "b", "c"):
        ids[suffix] = client.create_experiment(f"{prefix}-{suffix}", tags={"group": "g1" if suffix != "c" else "g2"})
        time.sleep(0.005)  # distinct creation_time for the default order
    like = f"name LIKE '{prefix}%'"

    found = client.search_experiments(filter_string=like)
    assert [e.name for e in found] == [f"{prefix}-c", f"{prefix}-b", f"{prefix}-a"]  # creation_time DESC
    got = {e.name: e for e in found}
    assert got[f"{prefix}-a"].experiment_id == ids["a"]
    assert got[f"{prefix}-a"].tags == {"group": "g1"}
    assert got[f"{prefix}-a"].lifecycle_stage == "active"

    asc = client.search_experiments(filter_string=like, order_by=["name ASC"])
    assert [e.name for e in asc] == [f"{prefix}-a", f"{prefix}-b", f"{prefix}-c"]
    desc = client.search_experiments(filter_string=like, order_by=["name DESC"])
    assert [e.name for e in desc] == [f"{prefix}-c", f"{prefix}-b", f"{prefix}-a"]

    exact = client.search_experiments(filter_string=f"name = '{prefix}-b'")
    assert [e.experiment_id for e in exact] == [ids["b"]]
    tagged = client.search_experiments(filter_string=f"{like} AND tags.group = 'g1'", order_by=["name ASC"])
    assert [e.name for e in tagged] == [f"{prefix}-a", f"{prefix}-b"]
    upper = client.search_experiments(filter_string=f"name ILIKE '{prefix.upper()}%'")
    assert len(upper) == 3
    assert client.search_experiments(filter_string=f"name LIKE '{prefix.upper()}%'") == []

    # Pagination: max_results=2 walks every experiment exactly once.
    seen, token, pages = [], None, 0
    while True:
        page = client.search_experiments(filter_string=like, order_by=["name ASC"], max_results=2, page_token=token)
        pages += 1
        seen.extend(e.name for e in page)
        token = page.token
        if not token:
            break
        assert pages < 10
    assert seen == [f"{prefix}-a", f"{prefix}-b", f"{prefix}-c"]
    assert pages == 2

    # View types.
    client.delete_experiment(ids["b"])
    active = client.search_experiments(view_type=ViewType.ACTIVE_ONLY, filter_string=like, order_by=["name ASC"])
    assert [e.name for e in active] == [f"{prefix}-a", f"{prefix}-c"]
    deleted = client.search_experiments(view_type=ViewType.DELETED_ONLY, filter_string=like)
    assert [e.name for e in deleted] == [f"{prefix}-b"]
    assert deleted[0].lifecycle_stage == "deleted"
    everything = client.search_experiments(view_type=ViewType.ALL, filter_string=like)
    assert len(everything) == 3


def test_rename_experiment(client, experiment):
    new_name = unique_name("compat-renamed")
    client.rename_experiment(experiment.experiment_id, new_name)
    assert client.get_experiment(experiment.experiment_id).name == new_name
    assert client.get_experiment_by_name(new_name).experiment_id == experiment.experiment_id
    assert client.get_experiment_by_name(experiment.name) is None


def test_delete_and_restore_experiment(client, experiment):
    eid = experiment.experiment_id
    run_ids = sorted(client.create_run(eid).info.run_id for _ in range(2))

    client.delete_experiment(eid)
    exp = client.get_experiment(eid)  # still readable by id
    assert exp.lifecycle_stage == "deleted"
    assert client.get_experiment_by_name(experiment.name).lifecycle_stage == "deleted"
    # Its runs became deleted too.
    assert client.search_runs([eid], run_view_type=ViewType.ACTIVE_ONLY) == []
    deleted = client.search_runs([eid], run_view_type=ViewType.DELETED_ONLY)
    assert sorted(r.info.run_id for r in deleted) == run_ids
    assert client.get_run(run_ids[0]).info.lifecycle_stage == "deleted"
    # A deleted experiment keeps its name reserved and takes no new runs.
    with pytest.raises(MlflowException) as err:
        client.create_experiment(experiment.name)
    assert err.value.error_code == "RESOURCE_ALREADY_EXISTS"
    with pytest.raises(MlflowException) as err:
        client.create_run(eid)
    assert err.value.error_code == "INVALID_PARAMETER_VALUE"

    client.restore_experiment(eid)
    assert client.get_experiment(eid).lifecycle_stage == "active"
    active = client.search_runs([eid], run_view_type=ViewType.ACTIVE_ONLY)
    assert sorted(r.info.run_id for r in active) == run_ids
    assert client.get_run(run_ids[0]).info.lifecycle_stage == "active"


@pytest.mark.parametrize(
    "filter_string",
    ["metrics.acc >", "params.lr = 0.1", "metrics.acc > 'high'", "foo.bar = 'x'", "metrics.acc = 1 OR"],
)
def test_bad_run_filter_rejected(client, experiment, filter_string):
    with pytest.raises(MlflowException) as err:
        client.search_runs([experiment.experiment_id], filter_string=filter_string)
    assert err.value.error_code == "INVALID_PARAMETER_VALUE"


def test_bad_order_by_and_page_token_rejected(client, experiment):
    with pytest.raises(MlflowException) as err:
        client.search_runs([experiment.experiment_id], page_token="garbage!!not-a-token")
    assert err.value.error_code == "INVALID_PARAMETER_VALUE"
    with pytest.raises(MlflowException) as err:
        client.search_runs([experiment.experiment_id], order_by=["metrics.acc SIDEWAYS"])
    assert err.value.error_code == "INVALID_PARAMETER_VALUE"
    with pytest.raises(MlflowException) as err:
        client.search_experiments(page_token="garbage!!not-a-token")
    assert err.value.error_code == "INVALID_PARAMETER_VALUE"


# ---- Cairn extension: OR, NOT and parentheses in run filters (MLflow answers 400 "Invalid clause(s)") ----

BOOLEAN_FILTERS = [
    ("metrics.acc > 0.8 OR params.lr = '0.01'", {"alpha", "Apple"}),
    ("metrics.acc > 0.9 OR params.lr = '0.1'", {"alpha", "beta"}),
    ("NOT (tags.t = 'x')", {"beta", "gamma"}),
    ("NOT tags.t = 'x'", {"beta", "gamma"}),
    ("(tags.team = 'red' OR tags.team = 'Red') AND metrics.acc > 0.5", {"alpha"}),
    ("(metrics.acc > 0.8 OR metrics.loss > 0.2) AND attributes.status = 'FINISHED'", {"alpha", "gamma"}),
    ("params.lr = '0.1' AND (tags.t = 'y' OR metrics.loss < 0.2)", {"alpha", "beta"}),
    ("metrics.acc < 0.5 OR metrics.acc > 0.8 AND params.opt = 'adam'", {"Apple", "alpha"}),  # AND binds tighter
    ("NOT (metrics.acc > 0.5 OR tags.team IS NULL)", {"Apple", "gamma"}),
    ("tags.team = 'blue' or run_name = 'beta'", {"gamma", "beta"}),
]


@pytest.mark.cairn_only
@pytest.mark.parametrize("filter_string,expected", BOOLEAN_FILTERS, ids=[f for f, _ in BOOLEAN_FILTERS])
def test_boolean_run_filters(client, corpus, filter_string, expected):
    runs = client.search_runs([corpus.experiment_id], filter_string=filter_string)
    assert sorted(corpus.names_of(runs)) == sorted(expected)
