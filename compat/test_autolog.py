"""sklearn autologging (MLFLOW-API.md §5f): params, metrics, the logged model with its metrics,
run outputs and the plot artifacts, all read back."""

import mlflow
import numpy as np
from mlflow.entities import LoggedModelStatus
from sklearn.linear_model import LogisticRegression


def test_sklearn_autolog_records_everything(client, experiment):
    mlflow.set_experiment(experiment_id=experiment.experiment_id)
    mlflow.sklearn.autolog()
    try:
        X = np.random.RandomState(0).rand(40, 3)
        y = (X[:, 0] > 0.5).astype(int)
        with mlflow.start_run() as active:
            fitted = LogisticRegression(C=0.5).fit(X, y)
    finally:
        mlflow.sklearn.autolog(disable=True)
    run = client.get_run(active.info.run_id)
    assert run.info.status == "FINISHED"
    assert run.data.params["C"] == "0.5"
    assert run.data.tags["estimator_class"] == "sklearn.linear_model._logistic.LogisticRegression"
    assert abs(run.data.metrics["training_accuracy_score"] - fitted.score(X, y)) < 1e-12
    [output] = run.outputs.model_outputs
    model = client.get_logged_model(output.model_id)
    assert model.status == LoggedModelStatus.READY
    assert model.source_run_id == run.info.run_id
    assert model.params["C"] == "0.5"
    by_key = {m.key: m for m in model.metrics}
    assert by_key["training_accuracy_score"].value == run.data.metrics["training_accuracy_score"]
    assert by_key["training_accuracy_score"].run_id == run.info.run_id
    assert by_key["training_accuracy_score"].dataset_name == "dataset"
    artifacts = {a.path for a in client.list_artifacts(run.info.run_id)}
    assert {"estimator.html", "training_confusion_matrix.png"} <= artifacts
    [dataset_input] = run.inputs.dataset_inputs
    assert dataset_input.dataset.name == "dataset"
    assert {t.key: t.value for t in dataset_input.tags}["mlflow.data.context"] == "train"
    loaded = mlflow.pyfunc.load_model(f"models:/{model.model_id}")
    assert loaded.predict(X).tolist() == fitted.predict(X).tolist()
