"""MLflow 3 evaluation datasets with the real client (`mlflow.genai.datasets`): created in an experiment,
records merged by their inputs, read back into pandas, searched, tagged, linked to experiments, deleted,
and used by `mlflow.genai.evaluate` with a custom code scorer. Passes against `mlflow server` too."""

import os

os.environ["MLFLOW_ENABLE_ASYNC_TRACE_LOGGING"] = "false"

import mlflow  # noqa: E402
import pytest  # noqa: E402
from mlflow.genai import datasets  # noqa: E402

from conftest import unique_name  # noqa: E402


def records_by_question(dataset):
    return {r["inputs"]["question"]: r for r in dataset.to_df().to_dict("records")}


def test_a_dataset_is_created_merged_searched_tagged_and_deleted(client, rest):
    exp = client.create_experiment(unique_name("compat-ds"))
    other = client.create_experiment(unique_name("compat-ds-other"))
    name = unique_name("qa")
    ds = datasets.create_dataset(name=name, experiment_id=[exp], tags={"team": "nlp"})
    assert ds.dataset_id.startswith("d-") and ds.name == name and ds.tags["team"] == "nlp"

    ds.merge_records([
        {"inputs": {"question": "Capital of France?"}, "expectations": {"expected_response": "Paris"}},
        {"inputs": {"question": "Capital of Spain?"}, "expectations": {"expected_response": "Madrid"}, "tags": {"level": "easy"}},
    ])
    first_digest = datasets.get_dataset(dataset_id=ds.dataset_id).digest
    # The same inputs again update that record: expectations merged key by key, nothing added.
    ds.merge_records([{"inputs": {"question": "Capital of France?"}, "expectations": {"alternative": "Paree"}}])
    got = datasets.get_dataset(dataset_id=ds.dataset_id)
    assert got.digest != first_digest
    rows = records_by_question(got)
    assert set(rows) == {"Capital of France?", "Capital of Spain?"}
    assert rows["Capital of France?"]["expectations"] == {"expected_response": "Paris", "alternative": "Paree"}
    assert rows["Capital of Spain?"]["tags"]["level"] == "easy"
    assert all(r["dataset_record_id"].startswith("dr-") for r in rows.values())

    found = datasets.search_datasets(experiment_ids=[exp])
    assert [d.dataset_id for d in found] == [ds.dataset_id]
    assert [d.name for d in datasets.search_datasets(experiment_ids=[exp], filter_string=f"name = '{name}'")] == [name]
    assert datasets.search_datasets(experiment_ids=[exp], filter_string="name = 'nothing-like-it'") == []
    assert datasets.search_datasets(experiment_ids=[other]) == []

    datasets.set_dataset_tags(dataset_id=ds.dataset_id, tags={"stage": "dev"})
    datasets.delete_dataset_tag(dataset_id=ds.dataset_id, key="team")
    tags = datasets.get_dataset(dataset_id=ds.dataset_id).tags
    assert tags["stage"] == "dev" and "team" not in tags

    client_store = mlflow.tracking._tracking_service.utils._get_store()
    client_store.add_dataset_to_experiments(ds.dataset_id, [other])
    assert sorted(client_store.get_dataset_experiment_ids(ds.dataset_id)) == sorted([exp, other])
    assert [d.dataset_id for d in datasets.search_datasets(experiment_ids=[other])] == [ds.dataset_id]
    client_store.remove_dataset_from_experiments(ds.dataset_id, [other])
    assert client_store.get_dataset_experiment_ids(ds.dataset_id) == [exp]

    datasets.delete_dataset(dataset_id=ds.dataset_id)
    with pytest.raises(mlflow.exceptions.MlflowException) as failure:
        datasets.get_dataset(dataset_id=ds.dataset_id)
    assert failure.value.error_code == "RESOURCE_DOES_NOT_EXIST"
    # Deleting again changes nothing and is no error, as in MLflow.
    assert rest("DELETE", f"/api/3.0/mlflow/datasets/{ds.dataset_id}")[0] == 200


def test_genai_evaluate_runs_on_a_dataset_with_a_custom_scorer(client):
    from mlflow.genai.scorers import scorer

    exp = client.create_experiment(unique_name("compat-ds-eval"))
    mlflow.set_experiment(experiment_id=exp)
    ds = datasets.create_dataset(name=unique_name("eval"), experiment_id=[exp])
    ds.merge_records([
        {"inputs": {"question": "Capital of France?"}, "expectations": {"expected_response": "Paris"}},
        {"inputs": {"question": "Capital of Spain?"}, "expectations": {"expected_response": "Madrid"}},
        {"inputs": {"question": "Capital of Italy?"}, "expectations": {"expected_response": "Rome"}},
    ])

    @scorer
    def exact_match(outputs, expectations):
        return outputs == expectations["expected_response"]

    answers = {"Capital of France?": "Paris", "Capital of Spain?": "Madrid"}
    result = mlflow.genai.evaluate(data=datasets.get_dataset(dataset_id=ds.dataset_id),
                                   predict_fn=lambda question: answers.get(question, "?"), scorers=[exact_match])
    assert result.metrics["exact_match/mean"] == pytest.approx(2 / 3)
    assert client.get_run(result.run_id).data.metrics["exact_match/mean"] == pytest.approx(2 / 3)
    traces = mlflow.search_traces(run_id=result.run_id, return_type="list")
    assert len(traces) == 3
    verdicts = {}
    for t in traces:
        question = t.data.spans[0].inputs["question"]
        verdicts[question] = next(a.value for a in t.info.assessments if a.name == "exact_match" and a.feedback is not None)
    assert verdicts == {"Capital of France?": True, "Capital of Spain?": True, "Capital of Italy?": False}


def test_bad_dataset_requests_get_mlflow_errors(rest, client):
    assert rest("GET", "/api/3.0/mlflow/datasets/d-" + "0" * 32)[0] == 404
    status, body = rest("POST", "/api/3.0/mlflow/datasets/create", json={"experiment_ids": []})
    assert (status, body["error_code"]) == (400, "INVALID_PARAMETER_VALUE")
    status, body = rest("POST", "/api/3.0/mlflow/datasets/search", json={"filter_string": "bogus = 1"})
    assert (status, body["error_code"]) == (400, "INVALID_PARAMETER_VALUE")
