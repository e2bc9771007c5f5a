"""Dataset inputs (MLFLOW-API.md §5c): mlflow.data.from_pandas + mlflow.log_input, read back via get_run."""

import json

import mlflow
import pandas as pd
from mlflow.entities import Dataset, DatasetInput, InputTag


def make_df(n=3):
    return pd.DataFrame({"x": [float(i) for i in range(n)], "y": [float(i % 2) for i in range(n)]})


def inputs_by_name(client, run_id):
    return {di.dataset.name: di for di in client.get_run(run_id).inputs.dataset_inputs}


def test_log_input_round_trip(client, experiment, rest):
    df = make_df()
    ds = mlflow.data.from_pandas(df, source="/tmp/compat-data/train.csv", name="train-data", targets="y")
    expected = ds._to_mlflow_entity()
    assert expected.schema, "client could not infer a schema (is scipy installed?)"

    with mlflow.start_run(experiment_id=experiment.experiment_id) as active:
        mlflow.log_input(ds, context="training", tags={"split": "train"})
    run_id = active.info.run_id

    (di,) = client.get_run(run_id).inputs.dataset_inputs
    got = di.dataset
    assert got.name == "train-data"
    assert got.digest == ds.digest == expected.digest
    assert got.source_type == "local"
    assert json.loads(got.source) == {"uri": "/tmp/compat-data/train.csv"}
    # schema/profile are opaque JSON strings: they must come back exactly as sent.
    assert got.schema == expected.schema
    assert got.profile == expected.profile
    assert json.loads(got.profile)["num_rows"] == 3
    colspec = json.loads(got.schema)["mlflow_colspec"]
    assert {c["name"] for c in colspec} == {"x", "y"}

    tags = {t.key: t.value for t in di.tags}
    assert tags["mlflow.data.context"] == "training"
    assert tags["split"] == "train"

    # The raw wire form carries the same fields.
    status, body = rest("GET", "runs/get", params={"run_id": run_id})
    assert status == 200
    (wire,) = body["run"]["inputs"]["dataset_inputs"]
    assert wire["dataset"]["name"] == "train-data"
    assert wire["dataset"]["digest"] == ds.digest
    assert wire["dataset"]["source_type"] == "local"
    assert {t["key"]: t["value"] for t in wire["tags"]}["mlflow.data.context"] == "training"


def test_log_same_dataset_twice_is_deduplicated(client, experiment):
    df = make_df(5)
    ds = mlflow.data.from_pandas(df, source="/tmp/compat-data/a.csv", name="dedup")
    other = mlflow.data.from_pandas(make_df(7), source="/tmp/compat-data/b.csv", name="other")

    with mlflow.start_run(experiment_id=experiment.experiment_id) as active:
        mlflow.log_input(ds, context="training")
        mlflow.log_input(ds, context="training")
        # Same (name, digest) again with other tags: still one input, and the FIRST input's tags are kept.
        mlflow.log_input(ds, context="eval", tags={"extra": "1"})
        mlflow.log_input(other, context="eval")
    run_id = active.info.run_id

    dataset_inputs = client.get_run(run_id).inputs.dataset_inputs
    assert sorted(di.dataset.name for di in dataset_inputs) == ["dedup", "other"]
    by_name = inputs_by_name(client, run_id)
    assert by_name["dedup"].dataset.digest == ds.digest
    assert {t.key: t.value for t in by_name["dedup"].tags} == {"mlflow.data.context": "training"}
    assert {t.key: t.value for t in by_name["other"].tags}["mlflow.data.context"] == "eval"
    assert json.loads(by_name["other"].dataset.profile)["num_rows"] == 7


def test_same_dataset_in_two_runs(client, experiment):
    ds = mlflow.data.from_pandas(make_df(4), source="/tmp/compat-data/shared.csv", name="shared")
    run_ids = []
    for context in ("training", "validation"):
        with mlflow.start_run(experiment_id=experiment.experiment_id) as active:
            mlflow.log_input(ds, context=context)
        run_ids.append(active.info.run_id)

    for run_id, context in zip(run_ids, ("training", "validation")):
        (di,) = client.get_run(run_id).inputs.dataset_inputs
        assert di.dataset.name == "shared"
        assert di.dataset.digest == ds.digest
        assert {t.key: t.value for t in di.tags}["mlflow.data.context"] == context


def test_log_inputs_with_client_entities(client, experiment):
    """MlflowClient.log_inputs with hand-built entities (no schema/profile: optional fields stay absent)."""
    run_id = client.create_run(experiment.experiment_id).info.run_id
    dataset = Dataset(name="manual", digest="abc123", source_type="http", source='{"url": "https://x/y.csv"}')
    client.log_inputs(run_id, datasets=[DatasetInput(dataset, tags=[InputTag("mlflow.data.context", "test")])])

    (di,) = client.get_run(run_id).inputs.dataset_inputs
    assert di.dataset.name == "manual"
    assert di.dataset.digest == "abc123"
    assert di.dataset.source_type == "http"
    assert di.dataset.source == '{"url": "https://x/y.csv"}'
    assert not di.dataset.schema
    assert not di.dataset.profile
    assert [(t.key, t.value) for t in di.tags] == [("mlflow.data.context", "test")]
