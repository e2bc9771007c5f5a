"""Model registry (MLFLOW-API.md §1c registry rows, §2 errors, §4 registry search grammar, §5d): the sklearn
log_model -> register -> alias -> load round trip in a fresh process, registered models, model versions, stages,
aliases, registry search, bad input over raw REST, and Cairn's version history and lineage (cairn_only).

Facts checked against a real `mlflow server` 3.17.2 (sqlite backend) that the server must match:
- Versions are per registered model "1", "2", ... (strings on the wire); a deleted version's number is never reused.
- A version created from `models:/m-<id>` keeps that source, gets run_id from the logged model's source_run_id
  and its download URI is the logged model's artifact_location; from `models:/<name>/<version>` it keeps that
  source and takes that version's download URI and run_id; any other source (`runs:/...`, `s3://...`,
  `mlflow-artifacts:/...`) is returned verbatim as the download URI (NOT resolved to the run's artifact_uri).
  MLflow also tags the logged model with `mlflow.modelVersions` = JSON [{"name":..,"version":..}, ...] when a
  version is created from it.
- Status is always READY; current_stage starts as "None"; stages are case-insensitive on input and canonical
  ("None", "Staging", "Production", "Archived") on output.
- Prompts (registered models tagged mlflow.prompt.is_prompt=true) are hidden from registry searches.
"""

import json
import os
import subprocess
import sys
import time

import mlflow
import numpy as np
import pandas as pd
import pytest
from mlflow.entities import LoggedModelStatus
from mlflow.exceptions import MlflowException

from conftest import ORACLE, SERVER_URI, unique_name

UNKNOWN_RUN = "0123456789abcdef0123456789abcdef"
PROMPT_TAG = "mlflow.prompt.is_prompt"
STAGES = ("None", "Staging", "Production", "Archived")


# --------------------------------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------------------------------


def assert_error(resp, status, code, contains=None):
    got_status, body = resp
    assert got_status == status, body
    assert isinstance(body, dict), body
    assert body.get("error_code") == code, body
    assert isinstance(body.get("message"), str) and body["message"], body
    if contains:
        assert contains.lower() in body["message"].lower(), body["message"]


def client_error(fn, *args, **kwargs):
    with pytest.raises(MlflowException) as err:
        fn(*args, **kwargs)
    return err.value.error_code


def assert_no_nulls(obj, where="body"):
    """The wire form never carries null (MLFLOW-API.md §0): empty fields are omitted."""
    if isinstance(obj, dict):
        for k, v in obj.items():
            assert v is not None, f"{where}.{k} is null"
            assert_no_nulls(v, f"{where}.{k}")
    elif isinstance(obj, list):
        for i, v in enumerate(obj):
            assert v is not None, f"{where}[{i}] is null"
            assert_no_nulls(v, f"{where}[{i}]")


def is_int(value):
    return isinstance(value, int) and not isinstance(value, bool)


def wire_rm(rest, name):
    status, body = rest("GET", "registered-models/get", params={"name": name})
    assert status == 200, body
    return body["registered_model"]


def wire_mv(rest, name, version):
    status, body = rest("GET", "model-versions/get", params={"name": name, "version": str(version)})
    assert status == 200, body
    return body["model_version"]


def add_version(rest, name, source=None, **fields):
    """Raw `model-versions/create`; an `s3://` source needs neither a run nor a logged model."""
    body = {"name": name, "source": source or f"s3://compat-bucket/{unique_name('src')}/model", **fields}
    status, resp = rest("POST", "model-versions/create", json=body)
    assert status == 200, resp
    return resp["model_version"]


def versions_of(client, name):
    return sorted(int(mv.version) for mv in client.search_model_versions(f"name = '{name}'"))


def tag_versions(logged_model):
    """(name, version) pairs recorded in a logged model's `mlflow.modelVersions` tag. MLflow's server writes
    the version as a number and the client appends it again as a string, so compare as strings."""
    raw = logged_model.tags.get("mlflow.modelVersions")
    return {(e["name"], str(e["version"])) for e in json.loads(raw)} if raw else set()


@pytest.fixture
def new_model(client):
    """Factory: creates a uniquely named registered model and returns its name."""

    def make(prefix="compat-reg", **kwargs):
        name = unique_name(prefix)
        client.create_registered_model(name, **kwargs)
        return name

    return make


@pytest.fixture
def run_id(client, experiment):
    return client.create_run(experiment.experiment_id).info.run_id


@pytest.fixture
def logged_model(client, experiment, run_id):
    """A READY logged model produced by `run_id` (no artifacts needed for registration)."""
    model = client.create_logged_model(experiment.experiment_id, name="model", source_run_id=run_id)
    client.finalize_logged_model(model.model_id, LoggedModelStatus.READY)
    return client.get_logged_model(model.model_id)


# --------------------------------------------------------------------------------------------------
# 1. end to end: sklearn log_model(registered_model_name=) -> register -> alias -> load in a fresh process
# --------------------------------------------------------------------------------------------------

LOADER = r"""
import json, sys
import numpy as np
import mlflow.pyfunc
X = np.array(json.loads(sys.argv[1]))
out = {}
for uri in sys.argv[2:]:
    out[uri] = np.asarray(mlflow.pyfunc.load_model(uri).predict(X)).tolist()
print("PREDICTIONS " + json.dumps(out))
"""


def test_sklearn_log_register_alias_and_load_in_fresh_process(client, experiment, rest, tmp_path):
    from sklearn.linear_model import LogisticRegression

    X = np.array([[0.0, 1.0], [1.0, 0.0], [2.0, 1.0], [3.0, 2.0], [0.5, 0.2], [2.5, 3.0], [1.5, 1.4], [0.2, 2.2]])
    y = np.array([0, 0, 1, 1, 0, 1, 1, 0])
    # Two models that disagree on every row, so loading the wrong version shows.
    model_a = LogisticRegression().fit(X, y)
    model_b = LogisticRegression().fit(X, 1 - y)
    expected_a = model_a.predict(X).tolist()
    expected_b = model_b.predict(X).tolist()
    assert len(set(expected_a)) == 2 and all(a != b for a, b in zip(expected_a, expected_b))
    name = unique_name("compat-e2e")
    eid = experiment.experiment_id

    # pip_requirements only skips the client's requirement inference (a ~10 s local subprocess);
    # the HTTP traffic is the same as without it.
    with mlflow.start_run(experiment_id=eid) as run_a:
        info = mlflow.sklearn.log_model(
            model_a, name="model", input_example=X[:2], registered_model_name=name, pip_requirements=["scikit-learn"]
        )
    with mlflow.start_run(experiment_id=eid) as run_b:
        info_b = mlflow.sklearn.log_model(model_b, name="model", input_example=X[:2], pip_requirements=["scikit-learn"])
    rid, rid_b = run_a.info.run_id, run_b.info.run_id
    model_id = info.model_id

    # log_model(registered_model_name=) = log the logged model + create the registered model + version 1.
    assert info.model_uri == f"models:/{model_id}"
    assert int(info.registered_model_version) == 1
    lm = client.get_logged_model(model_id)
    assert lm.status == LoggedModelStatus.READY
    assert lm.source_run_id == rid
    mv1 = client.get_model_version(name, "1")
    assert mv1.source == f"models:/{model_id}"  # kept as given, not resolved
    assert mv1.run_id == rid  # filled in from the logged model
    assert mv1.status == "READY"
    assert mv1.current_stage == "None"
    assert client.get_model_version_download_uri(name, "1") == lm.artifact_location
    # The run itself holds no model artifacts in MLflow 3: they live under the logged model.
    assert client.list_artifacts(rid) == []

    # register_model("runs:/<run>/model") finds the logged model of that run and registers it: version 2.
    mv2 = mlflow.register_model(f"runs:/{rid_b}/model", name)
    assert mv2.version == "2"
    assert mv2.source == f"models:/{info_b.model_id}"
    assert mv2.run_id == rid_b
    assert mv2.status == "READY"
    assert tag_versions(client.get_logged_model(model_id)) >= {(name, "1")}
    assert tag_versions(client.get_logged_model(info_b.model_id)) >= {(name, "2")}
    lm_b = client.get_logged_model(info_b.model_id)
    assert client.get_model_version_download_uri(name, "2") == lm_b.artifact_location

    # A version whose source is the runs:/ URI itself: the download URI is that URI, verbatim. (MLflow cannot
    # load such a version of an MLflow 3 model: models:/<name>/3 downloads the run's empty `model` directory.)
    mv3 = client.create_model_version(name, f"runs:/{rid}/model", run_id=rid)
    assert mv3.version == "3"
    assert mv3.source == f"runs:/{rid}/model"
    assert mv3.run_id == rid
    assert client.get_model_version_download_uri(name, "3") == f"runs:/{rid}/model"
    assert [mv.version for mv in client.get_registered_model(name).latest_versions] == ["3"]  # all in "None"
    client.delete_model_version(name, "3")  # so that models:/<name>/latest is version 2

    client.set_registered_model_alias(name, "champion", "1")
    assert client.get_model_version_by_alias(name, "champion").version == "1"
    rm = client.get_registered_model(name)
    assert rm.aliases == {"champion": "1"}
    assert [mv.version for mv in rm.latest_versions] == ["2"]

    # Load every URI form in a process that has never seen the models (no local caches).
    expected = {
        f"models:/{name}@champion": expected_a,
        f"models:/{name}/1": expected_a,
        f"models:/{model_id}": expected_a,
        f"runs:/{rid}/model": expected_a,
        f"models:/{name}/2": expected_b,
        f"models:/{name}/latest": expected_b,
        f"runs:/{rid_b}/model": expected_b,
    }
    env = dict(os.environ, MLFLOW_TRACKING_URI=SERVER_URI)
    for var in ("MLFLOW_RUN_ID", "MLFLOW_EXPERIMENT_ID", "MLFLOW_EXPERIMENT_NAME"):
        env.pop(var, None)
    proc = subprocess.run(
        [sys.executable, "-c", LOADER, json.dumps(X.tolist()), *expected],
        capture_output=True, text=True, env=env, cwd=tmp_path, timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
    (line,) = [ln for ln in proc.stdout.splitlines() if ln.startswith("PREDICTIONS ")]
    predictions = json.loads(line[len("PREDICTIONS "):])
    for uri, want in expected.items():
        assert predictions[uri] == want, uri


# --------------------------------------------------------------------------------------------------
# 2. registered models
# --------------------------------------------------------------------------------------------------


def test_create_and_get_registered_model(client, rest):
    name = unique_name("compat-reg")
    before = int(time.time() * 1000)
    created = client.create_registered_model(name, tags={"team": "vision", "tier": "1"}, description="first model")
    after = int(time.time() * 1000)
    assert created.name == name
    assert created.description == "first model"
    assert created.tags == {"team": "vision", "tier": "1"}
    assert before - 5000 <= created.creation_timestamp <= after + 5000
    assert created.last_updated_timestamp == created.creation_timestamp

    got = client.get_registered_model(name)
    assert got.name == name
    assert got.description == "first model"
    assert got.tags == {"team": "vision", "tier": "1"}
    assert got.creation_timestamp == created.creation_timestamp
    assert got.last_updated_timestamp == created.last_updated_timestamp
    assert got.latest_versions == []
    assert got.aliases == {}

    # Wire form: {"registered_model": {...}} with int64 timestamps as numbers, tags as [{key, value}],
    # no latest_versions / aliases while there are none, never null.
    status, body = rest("GET", "registered-models/get", params={"name": name})
    assert status == 200, body
    assert_no_nulls(body)
    wire = body["registered_model"]
    assert wire["name"] == name
    assert is_int(wire["creation_timestamp"]) and wire["creation_timestamp"] == created.creation_timestamp
    assert is_int(wire["last_updated_timestamp"])
    assert wire["description"] == "first model"
    assert sorted((t["key"], t["value"]) for t in wire["tags"]) == [("team", "vision"), ("tier", "1")]
    assert not wire.get("latest_versions")
    assert not wire.get("aliases")

    # Without description/tags those fields are absent (or empty).
    bare = unique_name("compat-reg")
    status, body = rest("POST", "registered-models/create", json={"name": bare})
    assert status == 200, body
    assert_no_nulls(body)
    assert body["registered_model"]["name"] == bare
    assert not body["registered_model"].get("description")
    assert not body["registered_model"].get("tags")


def test_registered_model_with_versions_and_aliases_wire_form(client, rest, new_model):
    name = new_model()
    add_version(rest, name, tags=[{"key": "k", "value": "v"}], description="d1", run_link="http://example/run")
    add_version(rest, name)
    client.set_registered_model_alias(name, "champion", "1")
    client.set_registered_model_alias(name, "challenger", "2")

    status, body = rest("GET", "registered-models/get", params={"name": name})
    assert status == 200, body
    assert_no_nulls(body)
    wire = body["registered_model"]
    assert sorted((a["alias"], a["version"]) for a in wire["aliases"]) == [("challenger", "2"), ("champion", "1")]
    (latest,) = wire["latest_versions"]
    assert latest["name"] == name and latest["version"] == "2" and latest["current_stage"] == "None"

    mv = wire_mv(rest, name, 1)
    assert_no_nulls(mv)
    assert mv["name"] == name
    assert mv["version"] == "1"  # a string on the wire
    assert is_int(mv["creation_timestamp"]) and mv["last_updated_timestamp"] == mv["creation_timestamp"]
    assert mv["current_stage"] == "None"
    assert mv["status"] == "READY"
    assert mv["description"] == "d1"
    assert mv["run_link"] == "http://example/run"
    assert mv["source"].startswith("s3://compat-bucket/")
    assert not mv.get("run_id")  # no run behind an s3 source
    assert [(t["key"], t["value"]) for t in mv["tags"]] == [("k", "v")]
    assert mv["aliases"] == ["champion"]


def test_duplicate_registered_model_name(client, rest, new_model):
    name = new_model(description="original", tags={"k": "v"})
    assert_error(rest("POST", "registered-models/create", json={"name": name, "description": "second"}),
                 400, "RESOURCE_ALREADY_EXISTS")
    assert client_error(client.create_registered_model, name) == "RESOURCE_ALREADY_EXISTS"
    got = client.get_registered_model(name)
    assert got.description == "original" and got.tags == {"k": "v"}


def test_unknown_registered_model(client, rest):
    name = unique_name("compat-absent")
    assert client_error(client.get_registered_model, name) == "RESOURCE_DOES_NOT_EXIST"
    missing = (404, "RESOURCE_DOES_NOT_EXIST")
    assert_error(rest("GET", "registered-models/get", params={"name": name}), *missing)
    assert_error(rest("PATCH", "registered-models/update", json={"name": name, "description": "x"}), *missing)
    assert_error(rest("POST", "registered-models/rename", json={"name": name, "new_name": name + "-x"}), *missing)
    assert_error(rest("DELETE", "registered-models/delete", json={"name": name}), *missing)
    assert_error(rest("POST", "registered-models/set-tag", json={"name": name, "key": "k", "value": "v"}), *missing)
    assert_error(rest("DELETE", "registered-models/delete-tag", json={"name": name, "key": "k"}), *missing)
    assert_error(rest("POST", "registered-models/get-latest-versions", json={"name": name}), *missing)
    assert_error(rest("GET", "registered-models/alias", params={"name": name, "alias": "a"}), *missing)
    assert_error(rest("DELETE", "registered-models/alias", json={"name": name, "alias": "a"}), *missing)
    assert_error(rest("POST", "model-versions/create", json={"name": name, "source": "s3://b/m"}), *missing)
    assert_error(rest("GET", "registered-models/get", params={"name": name + "-x"}), *missing)


def test_rename_registered_model(client, rest, new_model):
    name = new_model(description="d", tags={"k": "v"})
    add_version(rest, name)
    add_version(rest, name)
    client.set_registered_model_alias(name, "champion", "1")
    created = client.get_registered_model(name)
    new_name = unique_name("compat-renamed")

    client.rename_registered_model(name, new_name)
    assert client_error(client.get_registered_model, name) == "RESOURCE_DOES_NOT_EXIST"
    got = client.get_registered_model(new_name)
    assert got.description == "d" and got.tags == {"k": "v"}
    assert got.creation_timestamp == created.creation_timestamp
    assert got.last_updated_timestamp >= created.last_updated_timestamp
    assert got.aliases == {"champion": "1"}
    # The versions move with the model.
    assert versions_of(client, new_name) == [1, 2]
    assert versions_of(client, name) == []
    assert client.get_model_version(new_name, "1").name == new_name
    assert client.get_model_version_by_alias(new_name, "champion").version == "1"
    assert_error(rest("GET", "model-versions/get", params={"name": name, "version": "1"}),
                 404, "RESOURCE_DOES_NOT_EXIST")
    # The old name is free again and starts at version 1.
    client.create_registered_model(name)
    assert add_version(rest, name)["version"] == "1"

    # Renaming onto a taken name fails and changes nothing.
    assert_error(rest("POST", "registered-models/rename", json={"name": name, "new_name": new_name}),
                 400, "RESOURCE_ALREADY_EXISTS")
    assert versions_of(client, new_name) == [1, 2] and versions_of(client, name) == [1]
    # Invalid / missing new names.
    for bad in ("a/b", "a:b"):
        assert_error(rest("POST", "registered-models/rename", json={"name": new_name, "new_name": bad}),
                     400, "INVALID_PARAMETER_VALUE")
    assert_error(rest("POST", "registered-models/rename", json={"name": new_name, "new_name": ""}),
                 400, "INVALID_PARAMETER_VALUE")
    assert_error(rest("POST", "registered-models/rename", json={"name": new_name}), 400, "INVALID_PARAMETER_VALUE")
    assert client.get_registered_model(new_name).name == new_name


def test_update_registered_model_description(client, rest, new_model):
    name = new_model(description="one")
    before = client.get_registered_model(name)
    time.sleep(0.01)
    updated = client.update_registered_model(name, description="two")
    assert updated.description == "two"
    got = client.get_registered_model(name)
    assert got.description == "two"
    assert got.last_updated_timestamp > before.last_updated_timestamp
    assert got.creation_timestamp == before.creation_timestamp

    status, body = rest("PATCH", "registered-models/update", json={"name": name, "description": "three"})
    assert status == 200, body
    assert body["registered_model"]["description"] == "three"
    assert body["registered_model"]["name"] == name
    # An empty description clears it.
    status, body = rest("PATCH", "registered-models/update", json={"name": name, "description": ""})
    assert status == 200, body
    assert not wire_rm(rest, name).get("description")
    assert not client.get_registered_model(name).description


def test_delete_registered_model_cascades(client, rest, new_model):
    name = new_model(tags={"k": "v"})
    add_version(rest, name)
    add_version(rest, name)
    client.set_registered_model_alias(name, "champion", "2")
    client.delete_registered_model(name)

    assert client_error(client.get_registered_model, name) == "RESOURCE_DOES_NOT_EXIST"
    assert_error(rest("GET", "model-versions/get", params={"name": name, "version": "1"}),
                 404, "RESOURCE_DOES_NOT_EXIST")
    assert versions_of(client, name) == []
    assert client.search_registered_models(f"name = '{name}'") == []
    assert_error(rest("DELETE", "registered-models/delete", json={"name": name}), 404, "RESOURCE_DOES_NOT_EXIST")

    # A model re-created under the same name starts from scratch.
    client.create_registered_model(name)
    got = client.get_registered_model(name)
    assert got.tags == {} and got.aliases == {} and got.latest_versions == []
    assert add_version(rest, name)["version"] == "1"


def test_registered_model_tags(client, rest, new_model):
    name = new_model(tags={"keep": "1"})
    client.set_registered_model_tag(name, "k", "v")
    client.set_registered_model_tag(name, "k", "v2")  # overwrite
    client.set_registered_model_tag(name, "with space.and-dash/slash", "x")
    assert client.get_registered_model(name).tags == {"keep": "1", "k": "v2", "with space.and-dash/slash": "x"}

    client.delete_registered_model_tag(name, "k")
    assert client.get_registered_model(name).tags == {"keep": "1", "with space.and-dash/slash": "x"}
    # Deleting an absent tag of an existing model is a no-op.
    status, body = rest("DELETE", "registered-models/delete-tag", json={"name": name, "key": "k"})
    assert status == 200, body

    assert_error(rest("POST", "registered-models/set-tag", json={"name": name, "key": "", "value": "v"}),
                 400, "INVALID_PARAMETER_VALUE")
    assert_error(rest("POST", "registered-models/set-tag", json={"name": name, "key": "a/../b", "value": "v"}),
                 400, "INVALID_PARAMETER_VALUE")
    assert_error(rest("POST", "registered-models/set-tag", json={"key": "k", "value": "v"}),
                 400, "INVALID_PARAMETER_VALUE")
    assert client.get_registered_model(name).tags == {"keep": "1", "with space.and-dash/slash": "x"}


# --------------------------------------------------------------------------------------------------
# registered model search
# --------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def rm_corpus(client, rest):
    """Five lower-case models under one prefix (so name order does not depend on collation), plus a prompt.
    Created in order alpha, beta, gamma, delta, epsilon, prompt, notprompt; then beta's description is updated
    so by last update: beta, notprompt, epsilon, delta, gamma, alpha."""
    p = unique_name("compat-rms")
    spec = [
        ("alpha", {"k": "v", "team": "x"}),
        ("beta", {"k": "w"}),
        ("gamma", {"k": "v"}),
        ("delta", {}),
        ("epsilon", {"k": "V"}),
        ("prompt", {PROMPT_TAG: "true"}),  # the client refuses to create these: raw REST
        ("notprompt", {PROMPT_TAG: "false"}),
    ]
    for suffix, tags in spec:
        body = {"name": f"{p}-{suffix}", "tags": [{"key": k, "value": v} for k, v in tags.items()]}
        status, resp = rest("POST", "registered-models/create", json=body)
        assert status == 200, resp
        time.sleep(0.005)
    client.update_registered_model(f"{p}-beta", description="touched")
    return p


def rm_names(models, prefix):
    return [m.name[len(prefix) + 1:] for m in models]


def test_search_registered_models_filters(client, rm_corpus):
    p = rm_corpus

    def search(filter_string, **kwargs):
        return rm_names(client.search_registered_models(filter_string, **kwargs), p)

    everything = ["alpha", "beta", "delta", "epsilon", "gamma", "notprompt"]  # default order: name ASC
    assert search(f"name LIKE '{p}-%'") == everything
    assert search(f"name = '{p}-alpha'") == ["alpha"]
    assert search(f"name = \"{p}-gamma\"") == ["gamma"]  # double quotes too
    assert search(f"name != '{p}-alpha' AND name LIKE '{p}-%'") == everything[1:]
    assert search(f"name LIKE '{p}-_eta'") == ["beta"]
    # LIKE is case-sensitive, ILIKE is not.
    assert search(f"name LIKE '{p.upper()}-AL%'") == []
    assert search(f"name ILIKE '{p.upper()}-AL%'") == ["alpha"]
    assert search(f"name IN ('{p}-gamma', '{p}-beta', '{p}-nothing')") == ["beta", "gamma"]
    # Tags; `!=` only matches models that have the tag.
    assert search(f"name LIKE '{p}-%' AND tags.k = 'v'") == ["alpha", "gamma"]
    assert search(f"name LIKE '{p}-%' AND tags.k != 'v'") == ["beta", "epsilon"]
    assert search(f"name LIKE '{p}-%' AND tags.k ILIKE 'v'") == ["alpha", "epsilon", "gamma"]
    assert search(f"name LIKE '{p}-%' AND tag.`k` LIKE 'v%'") == ["alpha", "gamma"]
    assert search(f"name LIKE '{p}-%' AND tags.k = 'v' AND tags.team = 'x'") == ["alpha"]
    assert search(f"name LIKE '{p}-%' and tags.`team` = 'x'") == ["alpha"]
    assert search(f"name = '{p}-nothing'") == []
    # Prompts never show up in a model search; a model tagged is_prompt=false is a plain model.
    assert search(f"name = '{p}-prompt'") == []


def test_search_registered_models_prompt_clause_over_rest(rest, rm_corpus):
    """The client always appends the prompt clause (MLFLOW-API.md §4); raw requests show the server side."""
    p = rm_corpus

    def search(filter_string):
        status, body = rest("GET", "registered-models/search", params={"filter": filter_string})
        assert status == 200, body
        assert_no_nulls(body)
        return [m["name"][len(p) + 1:] for m in body.get("registered_models", [])]

    clause = f"tag.`{PROMPT_TAG}` != 'true'"
    everything = ["alpha", "beta", "delta", "epsilon", "gamma", "notprompt"]
    assert search(f"name LIKE '{p}-%' AND {clause}") == everything  # models without the tag are returned
    assert search(f"name LIKE '{p}-%' AND tags.k = 'v' AND {clause}") == ["alpha", "gamma"]
    assert search(f"name LIKE '{p}-%'") == everything  # prompts are hidden even without the clause
    assert search(f"name LIKE '{p}-%' AND tags.`{PROMPT_TAG}` = 'true'") == ["prompt"]  # asking for prompts


def test_search_registered_models_order_and_pages(client, rest, rm_corpus):
    p = rm_corpus
    flt = f"name LIKE '{p}-%'"

    def search(**kwargs):
        return rm_names(client.search_registered_models(flt, **kwargs), p)

    by_name = ["alpha", "beta", "delta", "epsilon", "gamma", "notprompt"]
    by_update = ["beta", "notprompt", "epsilon", "delta", "gamma", "alpha"]
    assert search(order_by=["name ASC"]) == by_name
    assert search(order_by=["name"]) == by_name
    assert search(order_by=["name DESC"]) == by_name[::-1]
    assert search(order_by=["last_updated_timestamp DESC"]) == by_update
    assert search(order_by=["last_updated_timestamp ASC"]) == by_update[::-1]
    assert search(order_by=["timestamp DESC"]) == by_update  # `timestamp` = last update

    # Pages of 2 cover everything once, in order; the last page has no token.
    pages, token = [], None
    while True:
        page = client.search_registered_models(flt, max_results=2, page_token=token)
        pages.append(rm_names(page, p))
        token = page.token
        if not token:
            break
    assert pages == [["alpha", "beta"], ["delta", "epsilon"], ["gamma", "notprompt"]]
    pages, token = [], None
    while True:
        page = client.search_registered_models(flt, max_results=4, order_by=["name DESC"], page_token=token)
        pages.append(rm_names(page, p))
        token = page.token
        if not token:
            break
    assert pages == [by_name[::-1][:4], by_name[::-1][4:]]
    # A page that ends exactly at the last row carries no token.
    status, body = rest("GET", "registered-models/search", params={"filter": flt, "max_results": 6})
    assert status == 200 and len(body["registered_models"]) == 6 and not body.get("next_page_token"), body
    status, body = rest("GET", "registered-models/search", params={"filter": flt, "max_results": 1000})
    assert status == 200 and len(body["registered_models"]) == 6, body


def test_search_registered_models_bad_input(rest, rm_corpus):
    p = rm_corpus
    bad = (400, "INVALID_PARAMETER_VALUE")
    S = "registered-models/search"
    either = rest("GET", S, params={"filter": f"name = '{p}-alpha' OR name = '{p}-beta'"})
    if ORACLE == "mlflow":
        assert_error(either, *bad)  # MLflow refuses OR; Cairn's grammar has OR, NOT and parentheses
    else:
        assert either[0] == 200 and {m["name"] for m in either[1]["registered_models"]} == {f"{p}-alpha", f"{p}-beta"}, either
    assert_error(rest("GET", S, params={"filter": "description = 'x'"}), *bad)  # only name and tags
    assert_error(rest("GET", S, params={"filter": "name > 'a'"}), *bad)
    assert_error(rest("GET", S, params={"filter": "name = "}), *bad)
    assert_error(rest("GET", S, params={"order_by": ["creation_timestamp DESC"]}), *bad)
    assert_error(rest("GET", S, params={"order_by": ["bogus"]}), *bad)
    assert_error(rest("GET", S, params={"order_by": ["name SIDEWAYS"]}), *bad)
    assert_error(rest("GET", S, params={"max_results": 1001}), *bad)
    assert_error(rest("GET", S, params={"page_token": "garbage"}), *bad)
    # MLflow answers these with a 500 (an unhandled exception); a client error is a 400.
    dup = rest("GET", S, params={"filter": f"name LIKE '{p}-%'", "order_by": ["name", "name DESC"]})
    if ORACLE == "mlflow":
        assert dup[0] == 500, dup
    else:
        assert_error(dup, *bad)


# --------------------------------------------------------------------------------------------------
# 3. model versions
# --------------------------------------------------------------------------------------------------


def test_create_version_from_logged_model(client, rest, new_model, logged_model, run_id):
    name = new_model()
    other = new_model()
    mid = logged_model.model_id
    source = f"models:/{mid}"

    status, body = rest("POST", "model-versions/create", json={"name": name, "source": source, "model_id": mid})
    assert status == 200, body
    assert_no_nulls(body)
    mv = body["model_version"]
    assert mv["name"] == name
    assert mv["version"] == "1"
    assert mv["source"] == source  # kept as given
    assert mv["run_id"] == run_id  # from the logged model's source_run_id
    assert mv["status"] == "READY"
    assert mv["current_stage"] == "None"
    assert is_int(mv["creation_timestamp"]) and mv["last_updated_timestamp"] == mv["creation_timestamp"]
    assert not mv.get("aliases") and not mv.get("tags")

    # Through the client (which also updates the logged model's tag itself): numbering goes on per model.
    mv2 = client.create_model_version(name, source, model_id=mid, tags={"t": "1"}, description="second")
    assert mv2.version == "2"
    assert mv2.run_id == run_id and mv2.source == source and mv2.status == "READY"
    assert mv2.tags == {"t": "1"} and mv2.description == "second"
    assert mv2.model_id in (None, mid)  # MLflow 3.17.2 never returns model_id on a version
    assert client.create_model_version(other, source, model_id=mid).version == "1"
    assert client.create_model_version(name, source, model_id=mid).version == "3"

    got = client.get_model_version(name, "2")
    assert (got.version, got.source, got.run_id) == ("2", source, run_id)
    assert (got.description, got.tags) == ("second", {"t": "1"})
    assert got.current_stage == "None"
    assert client.get_model_version_download_uri(name, "1") == logged_model.artifact_location
    status, body = rest("GET", "model-versions/get-download-uri", params={"name": name, "version": "2"})
    assert status == 200 and body == {"artifact_uri": logged_model.artifact_location}, body

    # The server records every version made from the logged model in its mlflow.modelVersions tag.
    assert tag_versions(client.get_logged_model(mid)) >= {(name, "1"), (name, "2"), (name, "3"), (other, "1")}
    # The registered model now lists the newest version.
    assert [v.version for v in client.get_registered_model(name).latest_versions] == ["3"]


def test_create_version_from_runs_uri_and_other_sources(client, rest, new_model, run_id):
    name = new_model()
    run = client.get_run(run_id)
    source = f"runs:/{run_id}/model"
    mv = client.create_model_version(name, source, run_id=run_id, run_link="http://example/run")
    assert mv.version == "1"
    assert mv.source == source
    assert mv.run_id == run_id
    assert mv.run_link == "http://example/run"
    assert mv.status == "READY"
    assert client.get_model_version_download_uri(name, "1") == source  # verbatim

    artifact_source = f"{run.info.artifact_uri}/model"
    mv = add_version(rest, name, source=artifact_source, run_id=run_id)
    assert mv["version"] == "2" and mv["source"] == artifact_source and mv["run_id"] == run_id
    assert client.get_model_version_download_uri(name, "2") == artifact_source

    s3 = f"s3://compat-bucket/{unique_name('x')}/model"
    mv = add_version(rest, name, source=s3)
    assert mv["version"] == "3" and mv["source"] == s3 and not mv.get("run_id")
    assert client.get_model_version_download_uri(name, "3") == s3

    # A version of another registered model as source: kept as given, run_id copied from that version,
    # download URI = that version's download URI.
    copy = new_model()
    mv = add_version(rest, copy, source=f"models:/{name}/1")
    assert mv["source"] == f"models:/{name}/1" and mv["run_id"] == run_id
    assert client.get_model_version_download_uri(copy, "1") == source
    mv = add_version(rest, copy, source=f"models:/{name}/3")
    assert client.get_model_version_download_uri(copy, "2") == s3
    assert_error(rest("POST", "model-versions/create", json={"name": copy, "source": f"models:/{name}/9"}),
                 404, "RESOURCE_DOES_NOT_EXIST")
    assert versions_of(client, copy) == [1, 2]


def test_model_version_source_validation(client, rest, new_model, run_id, logged_model, experiment):
    name = new_model()
    other_run = client.create_run(experiment.experiment_id).info.run_id
    mid = logged_model.model_id
    bad = (400, "INVALID_PARAMETER_VALUE")
    create = lambda **body: rest("POST", "model-versions/create", json={"name": name, **body})  # noqa: E731

    # Relative path segments are refused whatever the scheme.
    assert_error(create(source="s3://compat-bucket/a/../b"), *bad)
    assert_error(create(source=f"runs:/{run_id}/../model", run_id=run_id), *bad)
    assert_error(create(source=f"{client.get_run(run_id).info.artifact_uri}/../../x", run_id=run_id), *bad)
    assert_error(create(source="s3://compat-bucket/a/%2E%2E/b"), *bad)
    # A runs:/ source needs the run_id of that very run; a models:/m- source the model_id of that model.
    assert_error(create(source=f"runs:/{run_id}/model"), *bad)
    assert_error(create(source=f"runs:/{run_id}/model", run_id=other_run), *bad)
    assert_error(create(source=f"models:/{mid}"), *bad)
    assert_error(create(source=f"models:/{mid}", model_id="m-0123456789abcdef0123456789abcdef"), *bad)
    # An unknown logged model (MLflow fails with a 500 here).
    unknown = "m-0123456789abcdef0123456789abcdef"
    resp = create(source=f"models:/{unknown}", model_id=unknown)
    if ORACLE == "mlflow":
        assert resp[0] == 500, resp
    else:
        assert resp[0] in (400, 404), resp
        assert resp[1]["error_code"] in ("INVALID_PARAMETER_VALUE", "RESOURCE_DOES_NOT_EXIST"), resp
    # Host-addressed schemes (http, https, ...) are refused unless the server allows them.
    assert_error(create(source="http://example.com/models/x"), *bad)
    # Local paths on the server are refused.
    assert_error(create(source="/etc/passwd"), *bad)
    assert_error(create(source="file:///etc/passwd"), *bad)
    # Missing fields.
    assert_error(create(), *bad)
    assert_error(create(source=""), *bad)
    assert_error(rest("POST", "model-versions/create", json={"source": "s3://b/m"}), *bad)
    assert_error(rest("POST", "model-versions/create", json={"name": "", "source": "s3://b/m"}), *bad)
    # Nothing was created.
    assert versions_of(client, name) == []
    assert client.get_registered_model(name).latest_versions == []
    assert add_version(rest, name)["version"] == "1"


def test_update_and_delete_model_version(client, rest, new_model):
    name = new_model()
    for _ in range(3):
        add_version(rest, name)
    v2 = client.get_model_version(name, "2")
    rm_before = client.get_registered_model(name)
    time.sleep(0.01)

    updated = client.update_model_version(name, "2", description="better")
    assert updated.description == "better" and updated.version == "2"
    got = client.get_model_version(name, "2")
    assert got.description == "better"
    assert got.last_updated_timestamp > v2.last_updated_timestamp
    assert got.creation_timestamp == v2.creation_timestamp
    status, body = rest("PATCH", "model-versions/update", json={"name": name, "version": "2", "description": "raw"})
    assert status == 200 and body["model_version"]["description"] == "raw", body
    status, body = rest("PATCH", "model-versions/update", json={"name": name, "version": "2", "description": ""})
    assert status == 200, body
    assert not client.get_model_version(name, "2").description

    client.set_registered_model_alias(name, "gone", "3")
    client.delete_model_version(name, "3")
    assert client_error(client.get_model_version, name, "3") == "RESOURCE_DOES_NOT_EXIST"
    assert_error(rest("DELETE", "model-versions/delete", json={"name": name, "version": "3"}),
                 404, "RESOURCE_DOES_NOT_EXIST")
    assert versions_of(client, name) == [1, 2]
    rm = client.get_registered_model(name)
    assert rm.aliases == {}  # the alias went with the version
    assert [v.version for v in rm.latest_versions] == ["2"]
    assert rm.last_updated_timestamp >= rm_before.last_updated_timestamp
    # Numbers are never reused: the next version is 4, not 3.
    assert add_version(rest, name)["version"] == "4"
    client.delete_model_version(name, "1")
    assert versions_of(client, name) == [2, 4]


def test_model_version_tags(client, rest, new_model):
    name = new_model()
    add_version(rest, name, tags=[{"key": "initial", "value": "0"}])
    client.set_model_version_tag(name, "1", "k", "v")
    client.set_model_version_tag(name, "1", "k", "v2")
    client.set_model_version_tag(name, "1", "other", "x")
    assert client.get_model_version(name, "1").tags == {"initial": "0", "k": "v2", "other": "x"}
    client.delete_model_version_tag(name, "1", "k")
    assert client.get_model_version(name, "1").tags == {"initial": "0", "other": "x"}
    status, body = rest("DELETE", "model-versions/delete-tag", json={"name": name, "version": "1", "key": "k"})
    assert status == 200, body  # absent tag: no-op

    missing = (404, "RESOURCE_DOES_NOT_EXIST")
    assert_error(rest("POST", "model-versions/set-tag", json={"name": name, "version": "9", "key": "k", "value": "v"}),
                 *missing)
    assert_error(rest("DELETE", "model-versions/delete-tag", json={"name": name, "version": "9", "key": "k"}), *missing)
    assert_error(rest("POST", "model-versions/set-tag", json={"name": name, "version": "1", "key": "", "value": "v"}),
                 400, "INVALID_PARAMETER_VALUE")
    assert_error(rest("POST", "model-versions/set-tag",
                      json={"name": name, "version": "x", "key": "k", "value": "v"}), 400, "INVALID_PARAMETER_VALUE")
    assert client.get_model_version(name, "1").tags == {"initial": "0", "other": "x"}


def test_unknown_and_malformed_versions(client, rest, new_model):
    name = new_model()
    add_version(rest, name)
    missing = (404, "RESOURCE_DOES_NOT_EXIST")
    bad = (400, "INVALID_PARAMETER_VALUE")
    assert client_error(client.get_model_version, name, "2") == "RESOURCE_DOES_NOT_EXIST"
    assert_error(rest("GET", "model-versions/get", params={"name": name, "version": "2"}), *missing)
    assert_error(rest("GET", "model-versions/get", params={"name": unique_name("absent"), "version": "1"}), *missing)
    assert_error(rest("GET", "model-versions/get-download-uri", params={"name": name, "version": "2"}), *missing)
    assert_error(rest("PATCH", "model-versions/update", json={"name": name, "version": "2", "description": "x"}),
                 *missing)
    assert_error(rest("DELETE", "model-versions/delete", json={"name": name, "version": "2"}), *missing)
    assert_error(rest("POST", "model-versions/transition-stage",
                      json={"name": name, "version": "2", "stage": "Staging", "archive_existing_versions": False}),
                 *missing)
    # A version that is not an integer is a bad request, not an unknown version.
    assert_error(rest("GET", "model-versions/get", params={"name": name, "version": "abc"}), *bad)
    assert_error(rest("GET", "model-versions/get", params={"name": name}), *bad)
    assert_error(rest("GET", "model-versions/get", params={"version": "1"}), *bad)
    assert client.get_model_version(name, "1").version == "1"


# --------------------------------------------------------------------------------------------------
# model version search
# --------------------------------------------------------------------------------------------------


def test_search_model_versions(client, rest, experiment):
    eid = experiment.experiment_id
    r1 = client.create_run(eid).info.run_id
    r2 = client.create_run(eid).info.run_id
    p = unique_name("compat-mvs")
    a, b = f"{p}-a", f"{p}-b"
    client.create_registered_model(a)
    client.create_registered_model(b)
    s3 = f"s3://compat-bucket/{p}"
    add_version(rest, a, source=f"runs:/{r1}/model", run_id=r1, tags=[{"key": "t", "value": "x"}])
    add_version(rest, a, source=f"runs:/{r2}/model", run_id=r2)
    add_version(rest, a, source=f"{s3}/m")
    add_version(rest, b, source=f"runs:/{r1}/model", run_id=r1)
    add_version(rest, b, source=f"{s3}/m2", tags=[{"key": "t", "value": "y"}])

    def search(filter_string, **kwargs):
        return [(mv.name[len(p) + 1:], int(mv.version)) for mv in client.search_model_versions(filter_string, **kwargs)]

    # Default order: last_updated_timestamp DESC, then name ASC, version DESC.
    assert search(f"name='{a}'") == [("a", 3), ("a", 2), ("a", 1)]
    assert search(f"name = '{a}'", order_by=["version_number ASC"]) == [("a", 1), ("a", 2), ("a", 3)]
    assert search(f"name LIKE '{p}-%'") == [("b", 2), ("b", 1), ("a", 3), ("a", 2), ("a", 1)]
    assert search(f"name ILIKE '{p.upper()}-B'") == [("b", 2), ("b", 1)]
    assert search(f"name IN ('{b}')") == [("b", 2), ("b", 1)]
    assert search(f"run_id = '{r1}'") == [("b", 1), ("a", 1)]
    assert search(f"run_id IN ('{r1}', '{r2}')") == [("b", 1), ("a", 2), ("a", 1)]
    assert search(f"run_id = '{r1}' AND name = '{b}'") == [("b", 1)]
    assert search(f"name = '{a}' AND version_number > 1") == [("a", 3), ("a", 2)]
    assert search(f"name = '{a}' AND version_number >= 2 AND version_number != 3") == [("a", 2)]
    assert search(f"name = '{a}' AND version_number <= 2 AND version_number < 2") == [("a", 1)]
    assert search(f"name = '{a}' AND version_number = 2") == [("a", 2)]
    assert search(f"source_path = '{s3}/m'") == [("a", 3)]
    assert search(f"source_path LIKE '{s3}/%'") == [("b", 2), ("a", 3)]
    assert search(f"name LIKE '{p}-%' AND tags.t = 'x'") == [("a", 1)]
    assert search(f"name LIKE '{p}-%' AND tags.t != 'x'") == [("b", 2)]
    assert search(f"name = '{p}-nothing'") == []
    assert search(f"name LIKE '{p}-%'", order_by=["name DESC", "version_number ASC"]) == [
        ("b", 1), ("b", 2), ("a", 1), ("a", 2), ("a", 3)]
    assert search(f"name LIKE '{p}-%'", order_by=["creation_timestamp ASC"]) == [
        ("a", 1), ("a", 2), ("a", 3), ("b", 1), ("b", 2)]

    # Pages cover everything once.
    seen, token, pages = [], None, 0
    while True:
        page = client.search_model_versions(f"name LIKE '{p}-%'", max_results=2, page_token=token)
        seen += [(mv.name, mv.version) for mv in page]
        pages += 1
        token = page.token
        if not token:
            break
    assert pages == 3 and len(seen) == 5 and len(set(seen)) == 5

    # Wire form of the raw search (the client sends max_results=10000).
    status, body = rest("GET", "model-versions/search", params={"filter": f"name = '{b}'", "max_results": 10000})
    assert status == 200, body
    assert_no_nulls(body)
    assert [mv["version"] for mv in body["model_versions"]] == ["2", "1"]
    assert not body.get("next_page_token")
    status, body = rest("GET", "model-versions/search", params={"filter": f"name = '{p}-nothing'"})
    assert status == 200 and not body.get("model_versions"), body

    bad = (400, "INVALID_PARAMETER_VALUE")
    S = "model-versions/search"
    assert_error(rest("GET", S, params={"filter": "current_stage = 'None'"}), *bad)
    assert_error(rest("GET", S, params={"filter": f"name = '{a}' AND version_number = 2.5"}), *bad)
    either = rest("GET", S, params={"filter": f"name = '{a}' OR name = '{b}'"})
    if ORACLE == "mlflow":
        assert_error(either, *bad)  # MLflow refuses OR; Cairn's grammar has OR, NOT and parentheses
    else:
        assert either[0] == 200 and {mv["name"] for mv in either[1]["model_versions"]} == {a, b}, either
    assert_error(rest("GET", S, params={"filter": f"name = '{a}'", "order_by": ["bogus"]}), *bad)
    assert_error(rest("GET", S, params={"filter": f"name = '{a}'", "max_results": 200001}), *bad)
    assert_error(rest("GET", S, params={"filter": f"name = '{a}'", "max_results": 0}), *bad)
    assert_error(rest("GET", S, params={"filter": f"name = '{a}'", "page_token": "garbage"}), *bad)


# --------------------------------------------------------------------------------------------------
# stages and latest versions
# --------------------------------------------------------------------------------------------------


def latest(client, name, stages=None):
    return {mv.current_stage: mv.version for mv in client.get_latest_versions(name, stages=stages)}


def test_stages_and_latest_versions(client, rest, new_model):
    name = new_model()
    for _ in range(4):
        add_version(rest, name)
    mv = client.transition_model_version_stage(name, "1", "Staging")
    assert mv.current_stage == "Staging" and mv.version == "1"
    # Stage names are case-insensitive on input and canonical on output.
    assert client.transition_model_version_stage(name, "2", "production").current_stage == "Production"
    status, body = rest("POST", "model-versions/transition-stage",
                        json={"name": name, "version": "3", "stage": "STAGING", "archive_existing_versions": False})
    assert status == 200 and body["model_version"]["current_stage"] == "Staging", body
    assert client.get_model_version(name, "3").current_stage == "Staging"

    # Latest version per stage: every stage when none is asked for.
    assert latest(client, name) == {"Staging": "3", "Production": "2", "None": "4"}
    assert latest(client, name, ["Staging"]) == {"Staging": "3"}
    assert latest(client, name, ["production"]) == {"Production": "2"}
    assert latest(client, name, ["None", "Staging"]) == {"None": "4", "Staging": "3"}
    assert latest(client, name, ["Archived"]) == {}
    rm = client.get_registered_model(name)
    assert {v.current_stage: v.version for v in rm.latest_versions} == {"Staging": "3", "Production": "2", "None": "4"}
    status, body = rest("POST", "registered-models/get-latest-versions", json={"name": name, "stages": ["Staging"]})
    assert status == 200, body
    assert [(v["version"], v["current_stage"]) for v in body["model_versions"]] == [("3", "Staging")]
    status, body = rest("GET", "registered-models/get-latest-versions", params={"name": name, "stages": "Production"})
    assert status == 200 and [v["version"] for v in body["model_versions"]] == ["2"], body

    # archive_existing_versions moves the other versions of the target stage to Archived.
    mv = client.transition_model_version_stage(name, "4", "Production", archive_existing_versions=True)
    assert mv.current_stage == "Production"
    assert client.get_model_version(name, "2").current_stage == "Archived"
    assert client.get_model_version(name, "1").current_stage == "Staging"  # other stages untouched
    assert latest(client, name) == {"Staging": "3", "Production": "4", "Archived": "2"}
    # Back to None.
    assert client.transition_model_version_stage(name, "2", "None").current_stage == "None"
    assert latest(client, name) == {"Staging": "3", "Production": "4", "None": "2"}
    assert {mv.current_stage for mv in client.search_model_versions(f"name = '{name}'")} <= set(STAGES)

    bad = (400, "INVALID_PARAMETER_VALUE")
    assert_error(rest("POST", "model-versions/transition-stage",
                      json={"name": name, "version": "1", "stage": "Retired", "archive_existing_versions": False}),
                 *bad)
    assert_error(rest("POST", "model-versions/transition-stage", json={"name": name, "version": "1"}), *bad)
    assert_error(rest("POST", "registered-models/get-latest-versions", json={"name": name, "stages": ["Retired"]}),
                 *bad)
    assert client.get_model_version(name, "1").current_stage == "Staging"
    # archive_existing_versions only makes sense for Staging/Production; MLflow raises a 500 here.
    resp = rest("POST", "model-versions/transition-stage",
                json={"name": name, "version": "1", "stage": "Archived", "archive_existing_versions": True})
    if ORACLE == "mlflow":
        assert resp[0] == 500, resp
    else:
        assert_error(resp, *bad)
    assert client.get_model_version(name, "1").current_stage == "Staging"


# --------------------------------------------------------------------------------------------------
# 4. aliases
# --------------------------------------------------------------------------------------------------


def test_aliases(client, rest, new_model):
    name = new_model()
    for _ in range(3):
        add_version(rest, name)
    client.set_registered_model_alias(name, "champion", "1")
    client.set_registered_model_alias(name, "Stable_2-b", "1")
    client.set_registered_model_alias(name, "challenger", "2")
    client.set_registered_model_alias(name, "v1a", "2")  # only v<digits> is reserved

    mv = client.get_model_version_by_alias(name, "champion")
    assert mv.version == "1" and mv.name == name
    assert sorted(mv.aliases) == ["Stable_2-b", "champion"]
    assert sorted(client.get_model_version(name, "2").aliases) == ["challenger", "v1a"]
    assert client.get_model_version(name, "3").aliases == []
    assert client.get_registered_model(name).aliases == {
        "champion": "1", "Stable_2-b": "1", "challenger": "2", "v1a": "2"}
    status, body = rest("GET", "registered-models/alias", params={"name": name, "alias": "challenger"})
    assert status == 200, body
    assert body["model_version"]["version"] == "2"
    assert sorted(body["model_version"]["aliases"]) == ["challenger", "v1a"]

    # Setting an existing alias moves it.
    client.set_registered_model_alias(name, "champion", "3")
    assert client.get_model_version_by_alias(name, "champion").version == "3"
    assert client.get_model_version(name, "1").aliases == ["Stable_2-b"]
    assert client.get_registered_model(name).aliases["champion"] == "3"

    client.delete_registered_model_alias(name, "champion")
    assert "champion" not in client.get_registered_model(name).aliases
    assert client.get_model_version(name, "3").aliases == []
    status, body = rest("DELETE", "registered-models/alias", json={"name": name, "alias": "champion"})
    assert status == 200, body  # deleting an absent alias of an existing model is a no-op

    # A missing alias is INVALID_PARAMETER_VALUE (400), not RESOURCE_DOES_NOT_EXIST.
    assert client_error(client.get_model_version_by_alias, name, "champion") == "INVALID_PARAMETER_VALUE"
    assert_error(rest("GET", "registered-models/alias", params={"name": name, "alias": "champion"}),
                 400, "INVALID_PARAMETER_VALUE", contains="not found")
    # `latest` cannot be set, but looking it up answers the highest version.
    status, body = rest("GET", "registered-models/alias", params={"name": name, "alias": "latest"})
    assert status == 200 and body["model_version"]["version"] == "3", body


def test_invalid_aliases(client, rest, new_model):
    name = new_model()
    add_version(rest, name)
    client.set_registered_model_alias(name, "keep", "1")
    bad = (400, "INVALID_PARAMETER_VALUE")

    def set_alias(alias, version="1"):
        return rest("POST", "registered-models/alias", json={"name": name, "alias": alias, "version": version})

    assert_error(set_alias("latest"), *bad, contains="reserved")
    assert_error(set_alias("LaTeSt"), *bad, contains="reserved")
    assert_error(set_alias("v1"), *bad, contains="reserved")
    assert_error(set_alias("V42"), *bad, contains="reserved")
    for alias in ("bad alias", "a.b", "a/b", "a:b", "é!", "x" * 256):
        assert_error(set_alias(alias), *bad)
    assert_error(set_alias("bad alias"), *bad, contains="Invalid alias name")
    assert_error(set_alias(""), *bad)
    assert_error(set_alias("fine", version="abc"), *bad)
    assert_error(rest("POST", "registered-models/alias", json={"name": name, "alias": "fine"}), *bad)
    assert_error(rest("GET", "registered-models/alias", params={"name": name, "alias": "bad alias"}), *bad)
    assert_error(rest("DELETE", "registered-models/alias", json={"name": name, "alias": "bad alias"}), *bad)
    with pytest.raises(MlflowException) as err:
        client.set_registered_model_alias(name, "latest", "1")
    assert err.value.error_code == "INVALID_PARAMETER_VALUE"

    # An alias on an unknown version or model.
    missing = (404, "RESOURCE_DOES_NOT_EXIST")
    assert_error(set_alias("fine", version="7"), *missing)
    assert_error(rest("POST", "registered-models/alias",
                      json={"name": unique_name("absent"), "alias": "fine", "version": "1"}), *missing)
    assert client.get_registered_model(name).aliases == {"keep": "1"}
    assert client.get_model_version(name, "1").aliases == ["keep"]


# --------------------------------------------------------------------------------------------------
# 5. bad input: names and request bodies
# --------------------------------------------------------------------------------------------------


def test_invalid_registered_model_names(client, rest):
    bad = (400, "INVALID_PARAMETER_VALUE")
    for name in ("a/b", "a:b", "../x", ".", "..", "", "   "):
        assert_error(rest("POST", "registered-models/create", json={"name": name}), *bad)
    assert_error(rest("POST", "registered-models/create", json={}), *bad)
    assert_error(rest("POST", "registered-models/create", json={"description": "no name"}), *bad)
    assert_error(rest("POST", "registered-models/create", json={"name": 123}), *bad)
    assert_error(rest("GET", "registered-models/get", params={}), *bad)
    assert_error(rest("DELETE", "registered-models/delete", json={}), *bad)
    assert client_error(client.create_registered_model, "team/model") == "INVALID_PARAMETER_VALUE"
    # Nothing was created.
    for name in ("a/b", "a:b", "team/model"):
        assert_error(rest("GET", "registered-models/get", params={"name": name}), 400, "INVALID_PARAMETER_VALUE")

    # Dots, spaces, % and non-ASCII are fine.
    p = unique_name("compat-names")
    for name in (f"{p}.v1", f"{p} with space", f"{p}..x", f"{p}-50%", f"{p}-naïve"):
        status, body = rest("POST", "registered-models/create", json={"name": name})
        assert status == 200, (name, body)
        assert client.get_registered_model(name).name == name
        assert add_version(rest, name)["version"] == "1"
        assert client.get_model_version(name, "1").name == name


def test_malformed_registry_bodies(rest, new_model):
    name = new_model()
    assert_error(rest("POST", "registered-models/create", data="{not json",
                      headers={"Content-Type": "application/json"}), 400, "INVALID_PARAMETER_VALUE")
    assert_error(rest("POST", "model-versions/create", json={"name": name, "source": "s3://b/m", "tags": "nope"}),
                 400, "INVALID_PARAMETER_VALUE")
    assert_error(rest("POST", "model-versions/transition-stage",
                      json={"name": name, "version": "1", "stage": "Staging", "archive_existing_versions": "maybe"}),
                 400, "INVALID_PARAMETER_VALUE")


# --------------------------------------------------------------------------------------------------
# 6. Cairn only: version history and lineage
# --------------------------------------------------------------------------------------------------


def leaf_values(obj):
    if isinstance(obj, dict):
        return [v for x in obj.values() for v in leaf_values(x)]
    if isinstance(obj, list):
        return [v for x in obj for v in leaf_values(x)]
    return [obj]


VERSION_ACTIONS = ("create", "update_description", "set_tag", "delete_tag", "set_alias", "delete_alias",
                   "transition_stage")


def history(rest, name, version):
    """The version's events, oldest first. Values inside `changes` may be null (e.g. "from": null)."""
    status, body = rest("GET", "/api/cairn/v1/model-versions/history", params={"name": name, "version": str(version)})
    assert status == 200, body
    events = body["events"]
    for event in events:
        assert is_int(event["timestamp"]), event
        assert isinstance(event["user"], str), event
        assert isinstance(event["action"], str), event
        assert isinstance(event["changes"], dict), event
    assert [e["timestamp"] for e in events] == sorted(e["timestamp"] for e in events)  # oldest first
    return events


def version_events(events):
    """The version-level events (the history may also carry registered-model events such as its creation)."""
    return [e for e in events if e["action"] in VERSION_ACTIONS]


@pytest.mark.cairn_only
def test_version_history_records_every_change(client, rest, new_model):
    name = new_model()
    add_version(rest, name, source="s3://compat-bucket/history/model", description="initial")
    add_version(rest, name)
    client.set_registered_model_alias(name, "champion", "1")
    client.update_model_version(name, "1", description="better model")
    client.transition_model_version_stage(name, "1", "Production")
    client.set_model_version_tag(name, "1", "reviewed", "yes")
    client.delete_model_version_tag(name, "1", "reviewed")
    client.delete_registered_model_alias(name, "champion")

    events = version_events(history(rest, name, 1))
    assert [e["action"] for e in events] == [
        "create", "set_alias", "update_description", "transition_stage", "set_tag", "delete_tag", "delete_alias",
    ]
    create, set_alias, describe, transition, set_tag, delete_tag, delete_alias = events
    assert "s3://compat-bucket/history/model" in leaf_values(create["changes"])
    assert "champion" in leaf_values(set_alias["changes"])
    assert "better model" in leaf_values(describe["changes"])
    assert "Production" in leaf_values(transition["changes"])
    assert "reviewed" in leaf_values(set_tag["changes"]) and "yes" in leaf_values(set_tag["changes"])
    assert "reviewed" in leaf_values(delete_tag["changes"])
    assert "champion" in leaf_values(delete_alias["changes"])
    # Version 2 saw none of that.
    assert [e["action"] for e in version_events(history(rest, name, 2))] == ["create"]

    # Archiving through another version's transition is recorded on the archived version too.
    client.transition_model_version_stage(name, "2", "Production", archive_existing_versions=True)
    last = version_events(history(rest, name, 1))[-1]
    assert last["action"] == "transition_stage" and "Archived" in leaf_values(last["changes"])
    assert version_events(history(rest, name, 2))[-1]["action"] == "transition_stage"

    assert_error(rest("GET", "/api/cairn/v1/model-versions/history", params={"name": name, "version": "9"}),
                 404, "RESOURCE_DOES_NOT_EXIST")
    assert_error(rest("GET", "/api/cairn/v1/model-versions/history", params={"name": name}),
                 400, "INVALID_PARAMETER_VALUE")


def _lineage(rest, name, version):
    status, body = rest("GET", "/api/cairn/v1/model-versions/lineage", params={"name": name, "version": str(version)})
    assert status == 200, body
    assert_no_nulls(body)
    return body


def _field(obj, key):
    """A field of a wire entity, at the top or under `info` (run / logged model wire forms)."""
    return obj.get(key) or obj.get("info", {}).get(key)


@pytest.mark.cairn_only
def test_version_lineage(client, rest, new_model, experiment):
    eid = experiment.experiment_id
    df = pd.DataFrame({"x": [0.0, 1.0, 2.0], "y": [0.0, 1.0, 0.0]})
    dataset = mlflow.data.from_pandas(df, source="/tmp/compat-data/lineage.csv", name="lineage-train", targets="y")
    with mlflow.start_run(experiment_id=eid) as run:
        mlflow.log_input(dataset, context="training")
    rid = run.info.run_id
    lm = client.create_logged_model(eid, name="model", source_run_id=rid)
    client.finalize_logged_model(lm.model_id, LoggedModelStatus.READY)
    name = new_model()
    client.create_model_version(name, f"models:/{lm.model_id}", model_id=lm.model_id)  # v1: logged model
    client.create_model_version(name, f"runs:/{rid}/model", run_id=rid)  # v2: run only
    add_version(rest, name)  # v3: neither

    body = _lineage(rest, name, 1)
    assert body["model_version"]["name"] == name and body["model_version"]["version"] == "1"
    assert _field(body["logged_model"], "model_id") == lm.model_id
    assert _field(body["run"], "run_id") == rid
    inputs = json.dumps(body["run"]["inputs"])
    assert "lineage-train" in inputs and dataset.digest in inputs

    body = _lineage(rest, name, 2)
    assert body["model_version"]["version"] == "2"
    assert not body.get("logged_model")
    assert _field(body["run"], "run_id") == rid

    body = _lineage(rest, name, 3)
    assert body["model_version"]["version"] == "3"
    assert not body.get("logged_model") and not body.get("run")

    assert_error(rest("GET", "/api/cairn/v1/model-versions/lineage", params={"name": name, "version": "9"}),
                 404, "RESOURCE_DOES_NOT_EXIST")


# --------------------------------------------------------------------------------------------------
# 7. Versions and logged models that name runs this server does not hold (as MLflow allows)
# --------------------------------------------------------------------------------------------------


def test_version_may_name_a_run_of_another_server(client, rest, new_model, experiment):
    name = new_model()
    source = f"runs:/{UNKNOWN_RUN}/model"
    mv = client.create_model_version(name, source, run_id=UNKNOWN_RUN)
    assert (mv.version, mv.source, mv.run_id, mv.status) == ("1", source, UNKNOWN_RUN, "READY")
    # MLflow cannot resolve the run: the download URI is the source, verbatim.
    assert client.get_model_version_download_uri(name, "1") == source
    assert client.get_model_version(name, "1").run_id == UNKNOWN_RUN
    # Another remote source with an unknown run_id is kept as given.
    mv = add_version(rest, name, source="s3://compat-bucket/elsewhere/model", run_id=UNKNOWN_RUN)
    assert mv["version"] == "2" and mv["run_id"] == UNKNOWN_RUN

    # What MLflow still checks: the runs:/ source names the run_id's run, and comes without a model_id.
    bad = (400, "INVALID_PARAMETER_VALUE")
    other = "fedcba9876543210fedcba9876543210"
    resp = rest("POST", "model-versions/create", json={"name": name, "source": source, "run_id": other})
    assert_error(resp, *bad)
    assert resp[1]["message"] == (f"Invalid model version source: '{source}'. The run_id request parameter must identify "
                                  "the resource that contains the source.")
    lm = client.create_logged_model(experiment.experiment_id, name="model")
    resp = rest("POST", "model-versions/create", json={"name": name, "source": source, "run_id": UNKNOWN_RUN, "model_id": lm.model_id})
    assert_error(resp, *bad)
    assert "The model_id request parameter must identify the resource that contains the source." in resp[1]["message"]
    # An mlflow-artifacts: source inside an unknown run cannot be checked: refused.
    inside = f"mlflow-artifacts:/{experiment.experiment_id}/{UNKNOWN_RUN}/artifacts/model"
    resp = rest("POST", "model-versions/create", json={"name": name, "source": inside, "run_id": UNKNOWN_RUN})
    assert_error(resp, *bad)
    assert "The run_id request parameter must identify the resource that contains the source." in resp[1]["message"]
    assert versions_of(client, name) == [1, 2]


def test_logged_model_of_a_run_elsewhere_registers_from_its_own_artifacts(client, rest, new_model, experiment):
    lm = client.create_logged_model(experiment.experiment_id, name="model", source_run_id=UNKNOWN_RUN)
    assert lm.source_run_id == UNKNOWN_RUN
    client.finalize_logged_model(lm.model_id, LoggedModelStatus.READY)
    assert client.get_logged_model(lm.model_id).source_run_id == UNKNOWN_RUN
    name = new_model()
    # The logged model's own mlflow-artifacts: location, its model_id and no run_id: the run comes from the model.
    status, body = rest("POST", "model-versions/create", json={"name": name, "source": lm.artifact_location, "model_id": lm.model_id})
    assert status == 200, body
    assert body["model_version"]["run_id"] == UNKNOWN_RUN and body["model_version"]["source"] == lm.artifact_location
    assert client.get_model_version_download_uri(name, "1") == lm.artifact_location
    mv = client.create_model_version(name, f"models:/{lm.model_id}", model_id=lm.model_id)
    assert mv.run_id == UNKNOWN_RUN
    assert client.get_model_version_download_uri(name, "2") == lm.artifact_location
    # A path outside the model's artifacts is refused.
    resp = rest("POST", "model-versions/create",
                json={"name": name, "source": f"mlflow-artifacts:/{experiment.experiment_id}/models/m-other/artifacts",
                      "model_id": lm.model_id})
    assert_error(resp, 400, "INVALID_PARAMETER_VALUE")
    assert versions_of(client, name) == [1, 2]


@pytest.mark.cairn_only
def test_lineage_marks_a_run_not_on_this_server(client, rest, new_model, experiment):
    name = new_model()
    client.create_model_version(name, f"runs:/{UNKNOWN_RUN}/model", run_id=UNKNOWN_RUN)
    body = _lineage(rest, name, 1)
    assert body["run_id"] == UNKNOWN_RUN and body["run_is_local"] is False and not body.get("run")
    lm = client.create_logged_model(experiment.experiment_id, name="model", source_run_id=UNKNOWN_RUN)
    client.create_model_version(name, f"models:/{lm.model_id}", model_id=lm.model_id)
    body = _lineage(rest, name, 2)
    assert _field(body["logged_model"], "model_id") == lm.model_id
    assert body["run_id"] == UNKNOWN_RUN and body["run_is_local"] is False and not body.get("run")
    with mlflow.start_run(experiment_id=experiment.experiment_id) as run:
        pass
    client.create_model_version(name, f"runs:/{run.info.run_id}/model", run_id=run.info.run_id)
    body = _lineage(rest, name, 3)
    assert body["run_id"] == run.info.run_id and body["run_is_local"] is True and _field(body["run"], "run_id") == run.info.run_id


@pytest.mark.cairn_only
def test_model_page_learns_which_version_runs_are_held(client, rest, new_model, experiment):
    name = new_model()
    with mlflow.start_run(experiment_id=experiment.experiment_id, run_name="held") as run:
        pass
    local = run.info.run_id
    client.create_model_version(name, f"runs:/{local}/model", run_id=local)
    client.create_model_version(name, f"runs:/{UNKNOWN_RUN}/model", run_id=UNKNOWN_RUN)
    status, body = rest("GET", "/api/cairn/v1/model-versions/runs", params={"run_ids": [UNKNOWN_RUN, local, local]})
    assert status == 200, body
    assert body == {"runs": [{"run_id": local, "experiment_id": experiment.experiment_id, "run_name": "held",
                              "lifecycle_stage": "active"}]}
    # A deleted run is still held (its page shows it as deleted).
    client.delete_run(local)
    status, body = rest("GET", "/api/cairn/v1/model-versions/runs", params={"run_ids": local})
    assert status == 200 and body["runs"][0]["lifecycle_stage"] == "deleted", body
    assert rest("GET", "/api/cairn/v1/model-versions/runs", params={"run_ids": UNKNOWN_RUN}) == (200, {})
    status, body = rest("GET", "/api/cairn/v1/model-versions/runs", params={"run_ids": [f"{i:032x}" for i in range(1001)]})
    assert status == 400 and body["error_code"] == "INVALID_PARAMETER_VALUE", body
