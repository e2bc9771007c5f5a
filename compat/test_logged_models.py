"""MLflow 3 logged models (MLFLOW-API.md §1a logged-models rows, runs/outputs, runs/log-inputs models,
runs/log-model, §5d, §5f): create / get / finalize / tags / params / delete / search, metrics linked to a
model, run outputs and model inputs, and bad input over raw REST.

Every test reads values back. The search cases share one read-only experiment (module fixture `corpus`);
tests that mutate state make their own experiment.
"""

import json
import re
import time
import uuid

import mlflow
import pytest
from mlflow.entities import LoggedModelInput, LoggedModelOutput, LoggedModelStatus, Metric
from mlflow.exceptions import MlflowException

from conftest import ORACLE, unique_name

MODEL_ID = re.compile(r"^m-[0-9a-f]{32}$")
UNKNOWN_MODEL = "m-0123456789abcdef0123456789abcdef"
UNKNOWN_RUN = "0123456789abcdef0123456789abcdef"


def now_ms():
    return int(time.time() * 1000)


def assert_error(resp, status, code):
    got_status, body = resp
    assert got_status == status, body
    assert isinstance(body, dict), body
    assert body.get("error_code") == code, body
    assert isinstance(body.get("message"), str) and body["message"]


def wire_model(rest, model_id, **params):
    status, body = rest("GET", f"logged-models/{model_id}", params=params or None)
    assert status == 200, body
    return body["model"]


def metric_points(metrics):
    """Order-independent view of a model's metric list."""
    return sorted(
        (m.key, m.value, m.step, m.timestamp, m.run_id, m.dataset_name, m.dataset_digest, m.model_id)
        for m in metrics or []
    )


def search_ids(client, experiment_ids, **kwargs):
    return [m.model_id for m in client.search_logged_models(experiment_ids, **kwargs)]


# --------------------------------------------------------------------------------------------------
# create / get
# --------------------------------------------------------------------------------------------------


def test_create_logged_model_fields(client, experiment, rest):
    eid = experiment.experiment_id
    run_id = client.create_run(eid).info.run_id
    before = now_ms()
    model = client.create_logged_model(
        eid,
        name="my-model",
        source_run_id=run_id,
        params={"lr": "0.1", "layers": 3},
        tags={"team": "vision", "stage": "dev"},
        model_type="agent",
    )
    after = now_ms()

    assert MODEL_ID.match(model.model_id), model.model_id
    assert model.experiment_id == eid
    assert model.name == "my-model"
    assert model.source_run_id == run_id
    assert model.model_type == "agent"
    assert model.status == LoggedModelStatus.PENDING
    assert model.artifact_location == f"mlflow-artifacts:/{eid}/models/{model.model_id}/artifacts"
    assert model.model_uri == f"models:/{model.model_id}"
    assert before - 5000 <= model.creation_timestamp <= after + 5000
    assert model.last_updated_timestamp == model.creation_timestamp
    assert model.params == {"lr": "0.1", "layers": "3"}  # the client stringifies values
    assert model.tags == {"team": "vision", "stage": "dev"}
    assert not model.metrics

    got = client.get_logged_model(model.model_id)
    for attr in ("model_id", "experiment_id", "name", "source_run_id", "model_type", "status",
                 "artifact_location", "creation_timestamp", "last_updated_timestamp", "params", "tags"):
        assert getattr(got, attr) == getattr(model, attr), attr

    # Raw wire form: {"model": {"info": {...}, "data": {...}}}, proto field names, enum names, int64 as numbers.
    wire = wire_model(rest, model.model_id)
    info = wire["info"]
    assert info["model_id"] == model.model_id
    assert info["experiment_id"] == eid
    assert info["name"] == "my-model"
    assert info["artifact_uri"] == model.artifact_location
    assert info["status"] == "LOGGED_MODEL_PENDING"
    assert info["model_type"] == "agent"
    assert info["source_run_id"] == run_id
    assert int(info["creation_timestamp_ms"]) == model.creation_timestamp
    assert int(info["last_updated_timestamp_ms"]) == model.last_updated_timestamp
    assert {t["key"]: t["value"] for t in info["tags"]} == {"team": "vision", "stage": "dev"}
    assert {p["key"]: p["value"] for p in wire["data"]["params"]} == {"lr": "0.1", "layers": "3"}
    assert not wire["data"].get("metrics")


def test_create_without_name_generates_one(client, experiment, rest):
    eid = experiment.experiment_id
    model = client.create_logged_model(eid)
    assert MODEL_ID.match(model.model_id)
    assert model.name  # server-generated (MLflow: adjective-animal-NNN)
    assert model.status == LoggedModelStatus.PENDING
    assert not model.source_run_id and not model.model_type
    assert model.params == {} and model.tags == {}
    assert client.get_logged_model(model.model_id).name == model.name

    # An explicit empty name is "no name" too.
    status, body = rest("POST", "logged-models", json={"experiment_id": eid, "name": ""})
    assert status == 200, body
    assert body["model"]["info"]["name"]
    assert MODEL_ID.match(body["model"]["info"]["model_id"])
    assert body["model"]["info"]["status"] == "LOGGED_MODEL_PENDING"

    # Two models may share a name; each gets its own id.
    a = client.create_logged_model(eid, name="twin")
    b = client.create_logged_model(eid, name="twin")
    assert a.model_id != b.model_id
    assert sorted(search_ids(client, [eid], filter_string="name = 'twin'")) == sorted([a.model_id, b.model_id])


def test_invalid_model_names_rejected(client, experiment, rest):
    eid = experiment.experiment_id
    for name in ("a/b", "a:b", "a.b", "50%", 'say"hi"', "it's"):
        assert_error(rest("POST", "logged-models", json={"experiment_id": eid, "name": name}),
                     400, "INVALID_PARAMETER_VALUE")
    with pytest.raises(MlflowException) as err:
        client.create_logged_model(eid, name="model.v1")
    assert err.value.error_code == "INVALID_PARAMETER_VALUE"
    assert client.search_logged_models([eid]).to_list() == []


def test_get_unknown_logged_model(client, rest):
    with pytest.raises(MlflowException) as err:
        client.get_logged_model(UNKNOWN_MODEL)
    assert err.value.error_code == "RESOURCE_DOES_NOT_EXIST"
    assert_error(rest("GET", f"logged-models/{UNKNOWN_MODEL}"), 404, "RESOURCE_DOES_NOT_EXIST")
    assert_error(rest("GET", "logged-models/not-a-model-id"), 404, "RESOURCE_DOES_NOT_EXIST")
    # Every per-model endpoint answers 404 for an unknown id.
    for method, path, body in (
        ("PATCH", f"logged-models/{UNKNOWN_MODEL}", {"model_id": UNKNOWN_MODEL, "status": "LOGGED_MODEL_READY"}),
        ("PATCH", f"logged-models/{UNKNOWN_MODEL}/tags", {"tags": [{"key": "k", "value": "v"}]}),
        ("DELETE", f"logged-models/{UNKNOWN_MODEL}/tags/k", None),
        ("POST", f"logged-models/{UNKNOWN_MODEL}/params",
         {"model_id": UNKNOWN_MODEL, "params": [{"key": "k", "value": "v"}]}),
        ("DELETE", f"logged-models/{UNKNOWN_MODEL}", None),
    ):
        assert_error(rest(method, path, json=body), 404, "RESOURCE_DOES_NOT_EXIST")


# --------------------------------------------------------------------------------------------------
# finalize / tags / params / delete
# --------------------------------------------------------------------------------------------------


def test_finalize_ready_and_upload_failed(client, experiment, rest):
    eid = experiment.experiment_id
    model = client.create_logged_model(eid, name="fin")
    time.sleep(0.01)
    ready = client.finalize_logged_model(model.model_id, LoggedModelStatus.READY)
    assert ready.model_id == model.model_id
    assert ready.status == LoggedModelStatus.READY
    assert ready.name == "fin"
    assert ready.creation_timestamp == model.creation_timestamp
    assert ready.last_updated_timestamp >= model.last_updated_timestamp
    assert client.get_logged_model(model.model_id).status == LoggedModelStatus.READY
    assert wire_model(rest, model.model_id)["info"]["status"] == "LOGGED_MODEL_READY"

    failed = client.create_logged_model(eid, name="fin-failed")
    got = client.finalize_logged_model(failed.model_id, "FAILED")  # plain strings are accepted too
    assert got.status == LoggedModelStatus.FAILED
    assert client.get_logged_model(failed.model_id).status == LoggedModelStatus.FAILED
    assert wire_model(rest, failed.model_id)["info"]["status"] == "LOGGED_MODEL_UPLOAD_FAILED"

    # Raw PATCH returns the updated model.
    raw = client.create_logged_model(eid, name="fin-raw")
    status, body = rest("PATCH", f"logged-models/{raw.model_id}",
                        json={"model_id": raw.model_id, "status": "LOGGED_MODEL_READY"})
    assert status == 200, body
    assert body["model"]["info"]["model_id"] == raw.model_id
    assert body["model"]["info"]["status"] == "LOGGED_MODEL_READY"


def test_finalize_bad_status(client, experiment, rest):
    model = client.create_logged_model(experiment.experiment_id, name="badstatus")
    mid = model.model_id
    assert_error(rest("PATCH", f"logged-models/{mid}", json={"model_id": mid}), 400, "INVALID_PARAMETER_VALUE")
    assert client.get_logged_model(mid).status == LoggedModelStatus.PENDING

    garbage = rest("PATCH", f"logged-models/{mid}", json={"model_id": mid, "status": "garbage"})
    if ORACLE == "mlflow":
        # MLflow parses an unknown enum name as LOGGED_MODEL_STATUS_UNSPECIFIED and stores it.
        assert garbage[0] == 200, garbage
        assert garbage[1]["model"]["info"]["status"] == "LOGGED_MODEL_STATUS_UNSPECIFIED"
    else:
        assert_error(garbage, 400, "INVALID_PARAMETER_VALUE")
        assert_error(rest("PATCH", f"logged-models/{mid}", json={"model_id": mid, "status": 7}),
                     400, "INVALID_PARAMETER_VALUE")
        got = client.get_logged_model(mid)
        assert got.status == LoggedModelStatus.PENDING
        assert got.last_updated_timestamp == model.last_updated_timestamp


def test_logged_model_tags(client, experiment, rest):
    model = client.create_logged_model(experiment.experiment_id, tags={"keep": "1", "change": "old"})
    mid = model.model_id
    client.set_logged_model_tags(mid, {"change": "new", "added": 42, "gone": "x"})
    assert client.get_logged_model(mid).tags == {"keep": "1", "change": "new", "added": "42", "gone": "x"}

    client.delete_logged_model_tag(mid, "gone")
    assert client.get_logged_model(mid).tags == {"keep": "1", "change": "new", "added": "42"}

    with pytest.raises(MlflowException) as err:
        client.delete_logged_model_tag(mid, "never-set")
    assert err.value.error_code == "RESOURCE_DOES_NOT_EXIST"
    assert_error(rest("DELETE", f"logged-models/{mid}/tags/never-set"), 404, "RESOURCE_DOES_NOT_EXIST")

    # Raw form: PATCH logged-models/<id>/tags {tags:[...]} -> {}; a repeated key keeps the last value.
    status, body = rest("PATCH", f"logged-models/{mid}/tags",
                        json={"tags": [{"key": "dup", "value": "1"}, {"key": "dup", "value": "2"}]})
    assert status == 200 and body == {}, body
    status, body = rest("DELETE", f"logged-models/{mid}/tags/keep")
    assert status == 200 and body == {}, body
    info = wire_model(rest, mid)["info"]
    assert {t["key"]: t["value"] for t in info["tags"]} == {"change": "new", "added": "42", "dup": "2"}


def test_log_model_params_in_batches(client, experiment, rest):
    eid = experiment.experiment_id
    # >100 params at creation: the client sends the first 100 with the create call, the rest through
    # POST logged-models/<id>/params in batches of 100, then re-reads the model.
    initial = {f"p{i:03d}": str(i) for i in range(150)}
    model = client.create_logged_model(eid, name="many-params", params=initial)
    assert model.params == initial

    more = {f"q{i:03d}": f"v{i}" for i in range(230)}
    client.log_model_params(model.model_id, more)
    got = client.get_logged_model(model.model_id)
    assert got.params == {**initial, **more}

    wire = wire_model(rest, model.model_id)
    assert len(wire["data"]["params"]) == 380
    assert {p["key"]: p["value"] for p in wire["data"]["params"]} == {**initial, **more}

    status, body = rest("POST", f"logged-models/{model.model_id}/params",
                        json={"model_id": model.model_id, "params": [{"key": "raw", "value": "r"}]})
    assert status == 200 and body == {}, body
    assert client.get_logged_model(model.model_id).params["raw"] == "r"


def test_model_params_are_immutable(client, experiment, rest):
    model = client.create_logged_model(experiment.experiment_id, params={"lr": "0.1"})
    mid = model.model_id
    path = f"logged-models/{mid}/params"
    changed = rest("POST", path, json={"model_id": mid, "params": [{"key": "lr", "value": "0.2"}]})
    same = rest("POST", path, json={"model_id": mid, "params": [{"key": "lr", "value": "0.1"}]})
    if ORACLE == "mlflow":
        # MLflow surfaces the SQL unique-constraint failure: 400 BAD_REQUEST even for an identical value.
        assert_error(changed, 400, "BAD_REQUEST")
        assert_error(same, 400, "BAD_REQUEST")
    else:
        assert_error(changed, 400, "INVALID_PARAMETER_VALUE")
        # A replayed identical write (client retry) is accepted, as for run params.
        assert same[0] == 200, same
    assert client.get_logged_model(mid).params == {"lr": "0.1"}


def test_delete_logged_model(client, experiment, rest):
    eid = experiment.experiment_id
    keep = client.create_logged_model(eid, name="keep")
    doomed = client.create_logged_model(eid, name="doomed", tags={"t": "v"}, params={"p": "1"})
    client.delete_logged_model(doomed.model_id)

    with pytest.raises(MlflowException) as err:
        client.get_logged_model(doomed.model_id)
    assert err.value.error_code == "RESOURCE_DOES_NOT_EXIST"
    assert_error(rest("GET", f"logged-models/{doomed.model_id}"), 404, "RESOURCE_DOES_NOT_EXIST")
    assert_error(rest("GET", f"logged-models/{doomed.model_id}", params={"allow_deleted": "false"}),
                 404, "RESOURCE_DOES_NOT_EXIST")

    # ?allow_deleted=true still returns it, with its data.
    wire = wire_model(rest, doomed.model_id, allow_deleted="true")
    assert wire["info"]["model_id"] == doomed.model_id
    assert wire["info"]["name"] == "doomed"
    assert {t["key"]: t["value"] for t in wire["info"]["tags"]} == {"t": "v"}
    assert {p["key"]: p["value"] for p in wire["data"]["params"]} == {"p": "1"}

    # Deleted models drop out of search.
    assert search_ids(client, [eid]) == [keep.model_id]
    assert search_ids(client, [eid], filter_string="name = 'doomed'") == []
    # The client refuses to tag a deleted model (it checks with a GET first).
    with pytest.raises(MlflowException):
        client.set_logged_model_tags(doomed.model_id, {"x": "y"})


# --------------------------------------------------------------------------------------------------
# search
# --------------------------------------------------------------------------------------------------

# name: (model_type, params, tags, finalize READY?, acc metric or None)
CORPUS = {
    "alpha": ("agent", {"lr": "0.1", "opt": "adam"}, {"team": "red"}, True, 0.9),
    "beta": ("agent", {"lr": "0.01"}, {"team": "blue"}, False, 0.5),
    "gamma": ("classifier", {"lr": "0.1"}, {"team": "red", "extra": "y"}, True, 0.7),
    "delta": ("classifier", {}, {}, False, None),
    "alphabet": (None, {"opt": "sgd"}, {"team": "green"}, True, None),
}


class Corpus:
    def __init__(self, experiment_id, run_id, ids):
        self.experiment_id = experiment_id
        self.run_id = run_id
        self.ids = ids  # name -> model id, in creation order
        self.names = {v: k for k, v in ids.items()}

    def names_of(self, models):
        return [self.names[m.model_id] for m in models]

    def search(self, client, **kwargs):
        return self.names_of(client.search_logged_models([self.experiment_id], **kwargs))


@pytest.fixture(scope="module")
def corpus():
    from mlflow.tracking import MlflowClient

    client = MlflowClient()
    eid = client.create_experiment(unique_name("compat-lm-search"))
    run_id = client.create_run(eid).info.run_id
    ids = {}
    for name, (model_type, params, tags, ready, acc) in CORPUS.items():
        model = client.create_logged_model(
            eid, name=name, source_run_id=run_id if name != "delta" else None,
            params=params, tags=tags, model_type=model_type,
        )
        ids[name] = model.model_id
        if ready:
            client.finalize_logged_model(model.model_id, LoggedModelStatus.READY)
        if acc is not None:
            client.log_metric(run_id, "acc", acc, timestamp=1000, step=0, model_id=model.model_id)
        time.sleep(0.01)  # distinct creation timestamps, so the default order is deterministic
    created = [client.get_logged_model(i).creation_timestamp for i in ids.values()]
    assert created == sorted(created) and len(set(created)) == len(created)
    return Corpus(eid, run_id, ids)


@pytest.mark.parametrize(
    "filter_string, expected",
    [
        ("name = 'alpha'", {"alpha"}),
        ("name != 'alpha'", {"beta", "gamma", "delta", "alphabet"}),
        ("name LIKE 'alpha%'", {"alpha", "alphabet"}),
        ("name LIKE '%a'", {"alpha", "beta", "gamma", "delta"}),
        ("name ILIKE 'ALPHA%'", {"alpha", "alphabet"}),
        ("name like 'gam%'", {"gamma"}),
        ("attributes.name = 'beta'", {"beta"}),
        ("model_type = 'agent'", {"alpha", "beta"}),
        ("model_type = 'classifier' AND name = 'delta'", {"delta"}),
        ("params.lr = '0.1'", {"alpha", "gamma"}),
        ("params.lr = '0.1' AND params.opt = 'adam'", {"alpha"}),
        ("params.opt LIKE '%d%'", {"alpha", "alphabet"}),
        ("tags.team = 'red'", {"alpha", "gamma"}),
        ("tags.team != 'red'", {"beta", "alphabet"}),  # only models that have the tag
        ("tags.extra = 'y'", {"gamma"}),
        ("tags.team = 'red' AND model_type = 'classifier'", {"gamma"}),
        ("metrics.acc > 0.5", {"alpha", "gamma"}),
        ("metrics.acc >= 0.5", {"alpha", "beta", "gamma"}),
        ("metrics.acc < 0.6", {"beta"}),
        ("metrics.acc = 0.9", {"alpha"}),
        ("metrics.acc > 0.5 AND params.lr = '0.1' AND tags.team = 'red'", {"alpha", "gamma"}),
        ("metrics.missing > 0", set()),
        ("name = 'nope'", set()),
        ("creation_timestamp > 0", set(CORPUS)),
    ],
)
def test_search_filter(client, corpus, filter_string, expected):
    assert set(corpus.search(client, filter_string=filter_string)) == expected


def test_search_filter_by_source_run_and_model_id(client, corpus):
    got = corpus.search(client, filter_string=f"source_run_id = '{corpus.run_id}'")
    assert set(got) == set(CORPUS) - {"delta"}
    assert corpus.search(client, filter_string=f"model_id = '{corpus.ids['gamma']}'") == ["gamma"]


def test_search_filter_by_status(client, corpus, rest):
    ready = {name for name, spec in CORPUS.items() if spec[3]}
    if ORACLE == "mlflow":
        # MLflow stores the status as an integer and compares it with the string: nothing matches.
        assert corpus.search(client, filter_string="status = 'READY'") == []
    else:
        assert set(corpus.search(client, filter_string="status = 'READY'")) == ready
        assert set(corpus.search(client, filter_string="status = 'PENDING'")) == set(CORPUS) - ready
        assert set(corpus.search(client, filter_string="status != 'READY'")) == set(CORPUS) - ready
    # Whatever the filter matches, the status read back is the finalized one.
    for model in client.search_logged_models([corpus.experiment_id]):
        name = corpus.names[model.model_id]
        assert model.status == (LoggedModelStatus.READY if name in ready else LoggedModelStatus.PENDING)


def test_search_returns_full_models(client, corpus):
    (alpha,) = client.search_logged_models([corpus.experiment_id], filter_string="name = 'alpha'")
    assert alpha.model_id == corpus.ids["alpha"]
    assert alpha.experiment_id == corpus.experiment_id
    assert alpha.model_type == "agent"
    assert alpha.source_run_id == corpus.run_id
    assert alpha.status == LoggedModelStatus.READY
    assert alpha.params == {"lr": "0.1", "opt": "adam"}
    assert alpha.tags == {"team": "red"}
    assert alpha.artifact_location == f"mlflow-artifacts:/{corpus.experiment_id}/models/{alpha.model_id}/artifacts"
    (acc,) = alpha.metrics
    assert (acc.key, acc.value, acc.step, acc.timestamp, acc.run_id, acc.model_id) == (
        "acc", 0.9, 0, 1000, corpus.run_id, alpha.model_id)


def test_search_default_order_is_newest_first(client, corpus):
    assert corpus.search(client) == list(reversed(list(CORPUS)))


def test_search_order_by(client, corpus):
    names = sorted(CORPUS)
    assert corpus.search(client, order_by=[{"field_name": "name"}]) == names
    assert corpus.search(client, order_by=[{"field_name": "name", "ascending": True}]) == names
    assert corpus.search(client, order_by=[{"field_name": "name", "ascending": False}]) == names[::-1]
    created = list(CORPUS)
    assert corpus.search(client, order_by=[{"field_name": "creation_timestamp", "ascending": True}]) == created
    assert corpus.search(client, order_by=[{"field_name": "creation_timestamp", "ascending": False}]) == created[::-1]
    assert corpus.search(client, order_by=[{"field_name": "creation_time", "ascending": True}]) == created
    # Metric order: by the model's value; models without the metric come last either way, newest first.
    assert corpus.search(client, order_by=[{"field_name": "metrics.acc", "ascending": False}]) == [
        "alpha", "gamma", "beta", "alphabet", "delta"]
    assert corpus.search(client, order_by=[{"field_name": "metrics.acc", "ascending": True}]) == [
        "beta", "gamma", "alpha", "alphabet", "delta"]
    # Several keys: model_type, then name descending.
    got = corpus.search(client, filter_string="name != 'alphabet'",
                        order_by=[{"field_name": "model_type"}, {"field_name": "name", "ascending": False}])
    assert got == ["beta", "alpha", "gamma", "delta"]


def test_search_pagination(client, corpus):
    full = corpus.search(client)
    seen = []
    token = None
    pages = 0
    while True:
        page = client.search_logged_models([corpus.experiment_id], max_results=2, page_token=token)
        pages += 1
        assert len(page) <= 2
        seen.extend(corpus.names_of(page))
        token = page.token
        if not token:
            break
        assert pages < 10
    assert pages == 3
    assert seen == full  # every model exactly once, in the same order as one big page

    # Same with a filter and an order (the token is only valid with the same query).
    query = {"filter_string": "name LIKE '%a%'", "order_by": [{"field_name": "name"}]}
    first = client.search_logged_models([corpus.experiment_id], max_results=3, **query)
    assert len(first) == 3 and first.token
    second = client.search_logged_models([corpus.experiment_id], max_results=3, page_token=first.token, **query)
    assert not second.token
    assert corpus.names_of(first) + corpus.names_of(second) == sorted(CORPUS)

    # The fluent search pages internally and returns the whole list.
    got = mlflow.search_logged_models(experiment_ids=[corpus.experiment_id], output_format="list")
    assert corpus.names_of(got) == full
    got = mlflow.search_logged_models(experiment_ids=[corpus.experiment_id], max_results=2, output_format="list")
    assert corpus.names_of(got) == full[:2]


def test_search_raw_wire_form(corpus, rest):
    status, body = rest("POST", "logged-models/search",
                        json={"experiment_ids": [corpus.experiment_id], "max_results": 2})
    assert status == 200, body
    assert [m["info"]["name"] for m in body["models"]] == list(reversed(list(CORPUS)))[:2]
    assert isinstance(body["next_page_token"], str) and body["next_page_token"]
    status, body2 = rest("POST", "logged-models/search",
                         json={"experiment_ids": [corpus.experiment_id], "max_results": 2,
                               "page_token": body["next_page_token"]})
    assert status == 200, body2
    assert [m["info"]["name"] for m in body2["models"]] == list(reversed(list(CORPUS)))[2:4]
    # Default page size is 50: everything fits, no token.
    status, body = rest("POST", "logged-models/search", json={"experiment_ids": [corpus.experiment_id]})
    assert status == 200 and len(body["models"]) == len(CORPUS) and not body.get("next_page_token"), body


def test_search_scoped_to_experiments(client, corpus, experiment):
    other = client.create_logged_model(experiment.experiment_id, name="alpha")
    assert search_ids(client, [experiment.experiment_id]) == [other.model_id]
    both = search_ids(client, [corpus.experiment_id, experiment.experiment_id], filter_string="name = 'alpha'")
    assert sorted(both) == sorted([other.model_id, corpus.ids["alpha"]])
    assert search_ids(client, ["987654321"]) == []


def test_search_without_match_is_empty_object(client, experiment, rest):
    # MLflow 3's download_artifacts / runs:/ resolution asks whether the path names a logged model.
    status, body = rest("POST", "logged-models/search",
                        json={"experiment_ids": [experiment.experiment_id], "filter": "name = 'model'"})
    assert status == 200
    assert body == {}
    assert client.search_logged_models([experiment.experiment_id], filter_string="name = 'model'").to_list() == []


def test_search_with_datasets(client, experiment):
    eid = experiment.experiment_id
    run_id = client.create_run(eid).info.run_id
    on_eval = client.create_logged_model(eid, name="on-eval")
    on_train = client.create_logged_model(eid, name="on-train")
    no_ds = client.create_logged_model(eid, name="no-ds")
    client.log_metric(run_id, "acc", 0.9, timestamp=1000, step=0, model_id=on_eval.model_id,
                      dataset_name="eval", dataset_digest="d1")
    client.log_metric(run_id, "acc", 0.8, timestamp=1000, step=0, model_id=on_train.model_id,
                      dataset_name="train", dataset_digest="d2")
    client.log_metric(run_id, "acc", 0.95, timestamp=1000, step=0, model_id=no_ds.model_id)

    def names(**kwargs):
        return sorted(m.name for m in client.search_logged_models([eid], **kwargs))

    assert names(filter_string="metrics.acc > 0.85") == ["no-ds", "on-eval"]
    # `datasets` restricts metric filters to metrics logged on those datasets ...
    eval_ds = {"dataset_name": "eval", "dataset_digest": "d1"}
    train_ds = {"dataset_name": "train", "dataset_digest": "d2"}
    assert names(filter_string="metrics.acc > 0.85", datasets=[eval_ds]) == ["on-eval"]
    assert names(filter_string="metrics.acc > 0.5", datasets=[train_ds]) == ["on-train"]
    assert names(filter_string="metrics.acc > 0.5", datasets=[eval_ds, train_ds]) == ["on-eval", "on-train"]
    assert names(filter_string="metrics.acc > 0.5", datasets=[{"dataset_name": "eval", "dataset_digest": "zz"}]) == []
    # ... and without a metric filter keeps the models having any metric on them.
    assert names(datasets=[eval_ds, train_ds]) == ["on-eval", "on-train"]
    assert names(datasets=[eval_ds]) == ["on-eval"]

    # A dataset given by name only.
    by_name = names(filter_string="metrics.acc > 0.85", datasets=[{"dataset_name": "eval"}])
    if ORACLE == "mlflow":
        # MLflow turns the absent digest into `dataset_digest IS NULL`, so nothing with a digest matches.
        assert by_name == []
    else:
        assert by_name == ["on-eval"]
        assert names(datasets=[{"dataset_name": "train"}]) == ["on-train"]


# --------------------------------------------------------------------------------------------------
# metrics linked to a model
# --------------------------------------------------------------------------------------------------


def test_fluent_log_metric_with_model_id(client, experiment):
    model = client.create_logged_model(experiment.experiment_id, name="fluent")
    with mlflow.start_run(experiment_id=experiment.experiment_id) as active:
        mlflow.log_metric("acc", 0.9, step=1, timestamp=1_700_000_000_000, model_id=model.model_id)
        mlflow.log_metrics({"f1": 0.8, "recall": 0.7}, step=2, timestamp=1_700_000_000_001, model_id=model.model_id)
    run_id = active.info.run_id

    got = client.get_logged_model(model.model_id)
    assert metric_points(got.metrics) == sorted([
        ("acc", 0.9, 1, 1_700_000_000_000, run_id, None, None, model.model_id),
        ("f1", 0.8, 2, 1_700_000_000_001, run_id, None, None, model.model_id),
        ("recall", 0.7, 2, 1_700_000_000_001, run_id, None, None, model.model_id),
    ])
    run = client.get_run(run_id)
    assert run.data.metrics == {"acc": 0.9, "f1": 0.8, "recall": 0.7}
    # The fluent API records the model as an input of the run before linking metrics to it.
    assert [i.model_id for i in run.inputs.model_inputs] == [model.model_id]


def test_client_log_metric_with_dataset(client, experiment, rest):
    model = client.create_logged_model(experiment.experiment_id, name="with-ds")
    run_id = client.create_run(experiment.experiment_id).info.run_id
    client.log_metric(run_id, "loss", 0.25, timestamp=5000, step=3, model_id=model.model_id,
                      dataset_name="eval-set", dataset_digest="abc123")
    (m,) = client.get_logged_model(model.model_id).metrics
    assert (m.key, m.value, m.timestamp, m.step) == ("loss", 0.25, 5000, 3)
    assert (m.run_id, m.model_id, m.dataset_name, m.dataset_digest) == (run_id, model.model_id, "eval-set", "abc123")
    assert client.get_run(run_id).data.metrics == {"loss": 0.25}

    (wire,) = wire_model(rest, model.model_id)["data"]["metrics"]
    assert wire["key"] == "loss" and wire["value"] == 0.25
    assert int(wire["timestamp"]) == 5000 and int(wire["step"]) == 3
    assert wire["run_id"] == run_id and wire["model_id"] == model.model_id
    assert wire["dataset_name"] == "eval-set" and wire["dataset_digest"] == "abc123"


def test_log_batch_metrics_with_model_id(client, experiment):
    eid = experiment.experiment_id
    m1 = client.create_logged_model(eid, name="batch-1")
    m2 = client.create_logged_model(eid, name="batch-2")
    run_id = client.create_run(eid).info.run_id
    client.log_batch(run_id, metrics=[
        Metric("acc", 0.6, 1000, 0, model_id=m1.model_id, dataset_name="ds", dataset_digest="d"),
        Metric("acc", 0.7, 1000, 0, model_id=m2.model_id),
        Metric("plain", 1.0, 1000, 0),
    ])
    assert metric_points(client.get_logged_model(m1.model_id).metrics) == [
        ("acc", 0.6, 0, 1000, run_id, "ds", "d", m1.model_id)]
    assert metric_points(client.get_logged_model(m2.model_id).metrics) == [
        ("acc", 0.7, 0, 1000, run_id, None, None, m2.model_id)]
    # The run keeps one latest value per key (both acc points are at step 0, ts 1000: the higher value wins).
    assert client.get_run(run_id).data.metrics == {"acc": 0.7, "plain": 1.0}
    (h1, h2) = sorted(m.value for m in client.get_metric_history(run_id, "acc"))
    assert (h1, h2) == (0.6, 0.7)


def test_model_metrics_keep_every_point(client, experiment):
    model = client.create_logged_model(experiment.experiment_id, name="history")
    run_id = client.create_run(experiment.experiment_id).info.run_id
    points = [(0.5, 1000, 1), (0.9, 2000, 2), (0.7, 3000, 3)]
    for value, ts, step in points:
        client.log_metric(run_id, "acc", value, timestamp=ts, step=step, model_id=model.model_id)
    # A replayed identical point is stored once.
    client.log_metric(run_id, "acc", 0.9, timestamp=2000, step=2, model_id=model.model_id)

    got = client.get_logged_model(model.model_id).metrics
    assert metric_points(got) == sorted(
        ("acc", v, s, ts, run_id, None, None, model.model_id) for v, ts, s in points)
    # The run's data.metrics holds only the latest point per key.
    assert client.get_run(run_id).data.metrics == {"acc": 0.7}
    assert len(client.get_metric_history(run_id, "acc")) == 3


def test_metric_for_unknown_model_rejected(client, experiment):
    run_id = client.create_run(experiment.experiment_id).info.run_id
    with pytest.raises(MlflowException) as err:
        client.log_metric(run_id, "single", 1.0, timestamp=1000, step=0, model_id=UNKNOWN_MODEL)
    assert err.value.get_http_status_code() in (400, 404)
    with pytest.raises(MlflowException) as err:
        client.log_batch(run_id, metrics=[
            Metric("ok", 1.0, 1000, 0),
            Metric("bad", 1.0, 1000, 0, model_id=UNKNOWN_MODEL),
        ])
    assert err.value.get_http_status_code() in (400, 404)
    metrics = client.get_run(run_id).data.metrics
    if ORACLE == "mlflow":
        # MLflow writes the run's points of the batch before the model link fails (not all-or-nothing).
        assert metrics == {"ok": 1.0, "bad": 1.0}
    else:
        assert metrics == {}


# --------------------------------------------------------------------------------------------------
# run outputs / model inputs
# --------------------------------------------------------------------------------------------------


def test_log_outputs_and_metric_auto_link(client, experiment, rest):
    eid = experiment.experiment_id
    model = client.create_logged_model(eid, name="output")
    other = client.create_logged_model(eid, name="output-2")
    with mlflow.start_run(experiment_id=eid) as active:
        run_id = active.info.run_id
        client.log_outputs(run_id, [LoggedModelOutput(model.model_id, 0)])
        status, body = rest("POST", "runs/outputs",
                            json={"run_id": run_id, "models": [{"model_id": other.model_id, "step": 5}]})
        assert status == 200 and body == {}, body

        run = client.get_run(run_id)
        outputs = sorted((o.model_id, o.step) for o in run.outputs.model_outputs)
        assert outputs == sorted([(model.model_id, 0), (other.model_id, 5)])

        # The fluent client links a metric without model_id to the model output at the same step.
        mlflow.log_metric("auto", 0.42, run_id=run_id)  # step 0
        mlflow.log_metric("auto5", 0.5, step=5, run_id=run_id)
        mlflow.log_metric("unlinked", 1.0, step=3, run_id=run_id)

    assert [(m.key, m.value, m.step) for m in client.get_logged_model(model.model_id).metrics] == [("auto", 0.42, 0)]
    assert [(m.key, m.value, m.step) for m in client.get_logged_model(other.model_id).metrics] == [("auto5", 0.5, 5)]

    wire = rest("GET", "runs/get", params={"run_id": run_id})[1]["run"]
    assert sorted((o["model_id"], int(o.get("step", 0))) for o in wire["outputs"]["model_outputs"]) == outputs
    # search_runs carries the outputs too.
    (found,) = client.search_runs([eid])
    assert sorted((o.model_id, o.step) for o in found.outputs.model_outputs) == outputs


def test_log_outputs_replay(client, experiment, rest):
    model = client.create_logged_model(experiment.experiment_id)
    run_id = client.create_run(experiment.experiment_id).info.run_id
    body = {"run_id": run_id, "models": [{"model_id": model.model_id, "step": 2}]}
    assert rest("POST", "runs/outputs", json=body)[0] == 200
    replay = rest("POST", "runs/outputs", json=body)
    if ORACLE == "mlflow":
        # MLflow: the SQL unique constraint fires, 400 BAD_REQUEST (a retried write fails).
        assert_error(replay, 400, "BAD_REQUEST")
    else:
        assert replay[0] == 200, replay
    assert [(o.model_id, o.step) for o in client.get_run(run_id).outputs.model_outputs] == [(model.model_id, 2)]


def test_runs_outputs_bad_input(client, experiment, rest):
    model = client.create_logged_model(experiment.experiment_id)
    run_id = client.create_run(experiment.experiment_id).info.run_id
    models = [{"model_id": model.model_id, "step": 0}]
    assert_error(rest("POST", "runs/outputs", json={"run_id": run_id}), 400, "INVALID_PARAMETER_VALUE")
    assert_error(rest("POST", "runs/outputs", json={"models": models}), 400, "INVALID_PARAMETER_VALUE")
    assert_error(rest("POST", "runs/outputs", json={"run_id": UNKNOWN_RUN, "models": models}),
                 404, "RESOURCE_DOES_NOT_EXIST")
    client.delete_run(run_id)
    assert_error(rest("POST", "runs/outputs", json={"run_id": run_id, "models": models}),
                 400, "INVALID_PARAMETER_VALUE")
    assert not client.get_run(run_id).outputs.model_outputs


def test_log_inputs_models(client, experiment, rest):
    eid = experiment.experiment_id
    m1 = client.create_logged_model(eid, name="in-1")
    m2 = client.create_logged_model(eid, name="in-2")
    run_id = client.create_run(eid).info.run_id
    client.log_inputs(run_id, models=[LoggedModelInput(m1.model_id)])
    client.log_inputs(run_id, models=[LoggedModelInput(m1.model_id)])  # re-logging the same model: one entry
    status, body = rest("POST", "runs/log-inputs", json={"run_id": run_id, "models": [{"model_id": m2.model_id}]})
    assert status == 200 and body == {}, body

    run = client.get_run(run_id)
    assert sorted(i.model_id for i in run.inputs.model_inputs) == sorted([m1.model_id, m2.model_id])
    assert not run.inputs.dataset_inputs
    assert not run.outputs.model_outputs
    wire = rest("GET", "runs/get", params={"run_id": run_id})[1]["run"]
    assert sorted(i["model_id"] for i in wire["inputs"]["model_inputs"]) == sorted([m1.model_id, m2.model_id])


# --------------------------------------------------------------------------------------------------
# fluent MLflow 3 flows
# --------------------------------------------------------------------------------------------------


def test_set_active_model_by_name_creates_external_model(client, experiment, tmp_path):
    mlflow.set_experiment(experiment_id=experiment.experiment_id)
    name = "agent-" + uuid.uuid4().hex[:8]
    try:
        # No model of that name: searches `name='<name>'`, then creates an external model
        # (create -> upload MLmodel under the model's artifact root -> finalize READY).
        active = mlflow.set_active_model(name=name)
        model = client.get_logged_model(active.model_id)
        assert model.name == name
        assert model.status == LoggedModelStatus.READY
        assert model.tags.get("mlflow.model.isExternal") == "true"
        local = mlflow.artifacts.download_artifacts(
            artifact_uri=f"{model.artifact_location}/MLmodel", dst_path=str(tmp_path))
        with open(local) as fh:
            assert model.model_id in fh.read()

        # Metrics logged while the model is active are linked to it.
        with mlflow.start_run() as run:
            mlflow.log_metric("score", 3.0)
        (m,) = client.get_logged_model(model.model_id).metrics
        assert (m.key, m.value, m.run_id) == ("score", 3.0, run.info.run_id)

        # Setting the same name again finds the existing model instead of creating another.
        again = mlflow.set_active_model(name=name)
        assert again.model_id == model.model_id
        assert [m.model_id for m in client.search_logged_models([experiment.experiment_id])] == [model.model_id]
    finally:
        mlflow.clear_active_model()


# --------------------------------------------------------------------------------------------------
# bad input
# --------------------------------------------------------------------------------------------------


def test_create_bad_input(client, experiment, rest):
    eid = experiment.experiment_id
    assert_error(rest("POST", "logged-models", json={}), 400, "INVALID_PARAMETER_VALUE")
    assert_error(rest("POST", "logged-models", json={"name": "x"}), 400, "INVALID_PARAMETER_VALUE")
    assert_error(rest("POST", "logged-models", json={"experiment_id": "987654321", "name": "x"}),
                 404, "RESOURCE_DOES_NOT_EXIST")
    assert_error(rest("POST", "logged-models", json={"experiment_id": "abc", "name": "x"}),
                 400, "INVALID_PARAMETER_VALUE")
    with pytest.raises(MlflowException) as err:
        client.create_logged_model("987654321", name="x")
    assert err.value.error_code == "RESOURCE_DOES_NOT_EXIST"
    assert client.search_logged_models([eid]).to_list() == []

    doomed = client.create_experiment(unique_name("compat-lm-deleted"))
    client.delete_experiment(doomed)
    assert_error(rest("POST", "logged-models", json={"experiment_id": doomed, "name": "x"}),
                 400, "INVALID_PARAMETER_VALUE")
    assert client.search_logged_models([doomed]).to_list() == []


def test_search_bad_requests(client, corpus, rest):
    eid = corpus.experiment_id

    def search(**body):
        return rest("POST", "logged-models/search", json={"experiment_ids": [eid], **body})

    assert_error(rest("POST", "logged-models/search", json={}), 400, "INVALID_PARAMETER_VALUE")
    assert_error(search(filter="name ~~ 'alpha'"), 400, "INVALID_PARAMETER_VALUE")
    assert_error(search(order_by=[{"field_name": "bogus"}]), 400, "INVALID_PARAMETER_VALUE")
    assert_error(search(order_by=[{"field_name": "params.lr"}]), 400, "INVALID_PARAMETER_VALUE")
    if ORACLE == "mlflow":
        # MLflow refuses OR and knows only last_updated_timestamp; Cairn's grammar has OR, NOT and
        # parentheses everywhere and accepts last_updated_time as an alias (as for creation_time).
        assert_error(search(filter="name = 'alpha' OR name = 'beta'"), 400, "INVALID_PARAMETER_VALUE")
        assert_error(search(filter="last_updated_time > 0"), 400, "INVALID_PARAMETER_VALUE")
    else:
        names = {m.name for m in client.search_logged_models([eid], filter_string="name = 'alpha' OR name = 'beta'")}
        assert names == {"alpha", "beta"}
        status, body = search(filter="last_updated_time > 0")
        assert status == 200 and len(body["models"]) == len(CORPUS)

    unknown_attr = search(filter="foo = 'x'")
    non_numeric = search(filter="metrics.acc > 'x'")
    bad_token = search(max_results=1, page_token="garbage")
    if ORACLE == "mlflow":
        # MLflow answers these client errors with 500s (the last one with an HTML body).
        assert unknown_attr[0] == 500 and non_numeric[0] == 500 and bad_token[0] == 500
    else:
        assert_error(unknown_attr, 400, "INVALID_PARAMETER_VALUE")
        assert_error(non_numeric, 400, "INVALID_PARAMETER_VALUE")
        assert_error(bad_token, 400, "INVALID_PARAMETER_VALUE")
    # Nothing changed.
    assert set(corpus.search(client)) == set(CORPUS)


def test_bad_requests_change_nothing(client, experiment, rest):
    model = client.create_logged_model(experiment.experiment_id, name="stable", tags={"t": "1"}, params={"p": "1"})
    mid = model.model_id
    before = wire_model(rest, mid)
    assert_error(rest("PATCH", f"logged-models/{mid}", json={"model_id": mid}), 400, "INVALID_PARAMETER_VALUE")
    assert_error(rest("DELETE", f"logged-models/{mid}/tags/absent"), 404, "RESOURCE_DOES_NOT_EXIST")
    assert_error(rest("POST", "logged-models", json={"name": "stable"}), 400, "INVALID_PARAMETER_VALUE")
    assert_error(rest("POST", "logged-models/search", json={"experiment_ids": [experiment.experiment_id],
                                                            "filter": "name ~~ 'a'"}),
                 400, "INVALID_PARAMETER_VALUE")
    assert wire_model(rest, mid) == before
    assert search_ids(client, [experiment.experiment_id]) == [mid]


# --------------------------------------------------------------------------------------------------
# legacy runs/log-model
# --------------------------------------------------------------------------------------------------

HISTORY_TAG = "mlflow.log-model.history"


def model_json(run_id, artifact_path="model", **extra):
    """What the client's record_logged_model sends: Model.get_tags_dict()."""
    body = {
        "run_id": run_id,
        "artifact_path": artifact_path,
        "utc_time_created": "2024-05-01 12:00:00.000000",
        "model_uuid": uuid.uuid4().hex,
        "flavors": {"python_function": {"loader_module": "mlflow.pyfunc.model", "python_version": "3.11.7"}},
    }
    body.update(extra)
    return body


def history(client, run_id):
    value = client.get_run(run_id).data.tags.get(HISTORY_TAG)
    return None if value is None else json.loads(value)


def test_legacy_log_model_appends_history(client, experiment, rest):
    run_id = client.create_run(experiment.experiment_id).info.run_id
    first = model_json(run_id, "model")
    second = model_json(run_id, "other", flavors={"sklearn": {"pickled_model": "model.pkl", "sklearn_version": "1.5"}})
    for entry in (first, second):
        status, body = rest("POST", "runs/log-model", json={"run_id": run_id, "model_json": json.dumps(entry)})
        assert status == 200 and body == {}, body

    got = history(client, run_id)
    assert isinstance(got, list) and len(got) == 2
    for sent, stored in zip((first, second), got):
        for key in ("run_id", "artifact_path", "utc_time_created", "model_uuid", "flavors"):
            assert stored[key] == sent[key], key

    # Allowed on a finished run.
    client.set_terminated(run_id)
    third = model_json(run_id, "third")
    assert rest("POST", "runs/log-model", json={"run_id": run_id, "model_json": json.dumps(third)})[0] == 200
    assert [e["artifact_path"] for e in history(client, run_id)] == ["model", "other", "third"]


def test_legacy_log_model_validation(client, experiment, rest):
    run_id = client.create_run(experiment.experiment_id).info.run_id

    def log_model(body):
        return rest("POST", "runs/log-model", json=body)

    assert_error(log_model({"run_id": run_id}), 400, "INVALID_PARAMETER_VALUE")
    assert_error(log_model({"model_json": json.dumps(model_json(run_id))}), 400, "INVALID_PARAMETER_VALUE")
    assert_error(log_model({"run_id": run_id, "model_json": "not json"}), 400, "INVALID_PARAMETER_VALUE")

    # artifact_path, flavors, utc_time_created and run_id are mandatory; the message names what is missing.
    status, body = log_model({"run_id": run_id, "model_json": json.dumps({"artifact_path": "model"})})
    assert_error((status, body), 400, "INVALID_PARAMETER_VALUE")
    for field in ("flavors", "utc_time_created", "run_id"):
        assert field in body["message"], body
    for field in ("artifact_path", "flavors", "utc_time_created", "run_id"):
        partial = model_json(run_id)
        del partial[field]
        status, body = log_model({"run_id": run_id, "model_json": json.dumps(partial)})
        assert_error((status, body), 400, "INVALID_PARAMETER_VALUE")
        assert field in body["message"], body

    assert_error(log_model({"run_id": UNKNOWN_RUN, "model_json": json.dumps(model_json(UNKNOWN_RUN))}),
                 404, "RESOURCE_DOES_NOT_EXIST")

    not_an_object = log_model({"run_id": run_id, "model_json": json.dumps([1, 2])})
    if ORACLE == "mlflow":
        assert not_an_object[0] == 500  # MLflow crashes on a JSON array
    else:
        assert_error(not_an_object, 400, "INVALID_PARAMETER_VALUE")
    assert history(client, run_id) is None  # nothing was recorded

    client.delete_run(run_id)
    assert_error(log_model({"run_id": run_id, "model_json": json.dumps(model_json(run_id))}),
                 400, "INVALID_PARAMETER_VALUE")
