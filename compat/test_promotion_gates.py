"""Promotion gates (issue 14): a registered model's tag `cairn.gate[.<alias|stage>]` lists what a
version's run must show before the version takes the alias or stage; the unmodified mlflow
client gets a readable 400 naming each failed condition, an override with a reason is accepted
and recorded, and every evaluation is in the version's history."""

import pandas as pd
import pytest
import mlflow
from mlflow.exceptions import MlflowException

from conftest import unique_name

pytestmark = pytest.mark.cairn_only


def _version(client, model, exp_id, acc, with_data):
    run = client.create_run(exp_id, tags={"mlflow.source.git.commit": "abc123"})
    rid = run.info.run_id
    client.log_metric(rid, "val_acc", acc)
    if with_data:
        with mlflow.start_run(run_id=rid):
            mlflow.log_input(mlflow.data.from_pandas(pd.DataFrame({"x": [1, 2]}), name="train"), context="training")
    client.log_text(rid, "weights", "model/weights.txt")
    client.set_terminated(rid)
    return client.create_model_version(model, f"runs:/{rid}/model", run_id=rid).version


def _history(rest, model, version):
    status, body = rest("GET", "/api/cairn/v1/model-versions/history", params={"name": model, "version": version})
    assert status == 200, body
    return body["events"]


def test_gate_refuses_then_override_is_recorded(client, rest):
    model = unique_name("gated")
    exp_id = client.create_experiment(unique_name("gated-exp"))
    client.create_registered_model(model)
    # A bad gate is refused when it is set, with the reason.
    with pytest.raises(MlflowException) as bad:
        client.set_registered_model_tag(model, "cairn.gate", "require=code,telepathy")
    assert "telepathy" in str(bad.value)
    client.set_registered_model_tag(model, "cairn.gate", "require=code,data,finished; artifact=model/")
    client.set_registered_model_tag(model, "cairn.gate.champion", "metric=val_acc>=0.8; not_worse=val_acc")

    good = _version(client, model, exp_id, 0.90, with_data=True)
    client.set_registered_model_alias(model, "champion", good)
    assert client.get_model_version_by_alias(model, "champion").version == good

    # Worse than the holder and no dataset: refused, each failure named.
    weak = _version(client, model, exp_id, 0.85, with_data=False)
    with pytest.raises(MlflowException) as refused:
        client.set_registered_model_alias(model, "champion", weak)
    message = str(refused.value)
    assert refused.value.error_code == "INVALID_PARAMETER_VALUE"
    assert "promotion gate failed" in message and "data: no dataset input" in message and "not worse on val_acc" in message
    assert "cairn.gate.override" in message
    assert client.get_model_version_by_alias(model, "champion").version == good  # nothing changed

    # The general gate applies to stages too.
    with pytest.raises(MlflowException):
        client.transition_model_version_stage(model, weak, "Production")

    # An override with a reason lets it through, and the history says who, why and what failed.
    client.set_model_version_tag(model, weak, "cairn.gate.override", "hotfix for incident 42, approved by the on-call lead")
    client.set_registered_model_alias(model, "champion", weak)
    assert client.get_model_version_by_alias(model, "champion").version == weak
    actions = [e["action"] for e in _history(rest, model, weak)]
    assert actions.count("gate_failed") == 2 and "gate_overridden" in actions and actions[-1] == "set_alias"
    overridden = next(e for e in _history(rest, model, weak) if e["action"] == "gate_overridden")
    assert overridden["changes"]["override_reason"].startswith("hotfix for incident 42")
    assert any(c["requirement"] == "data" and not c["passed"] for c in overridden["changes"]["checks"])
    passed = next(e for e in _history(rest, model, good) if e["action"] == "gate_passed")
    assert passed["changes"]["alias"] == "champion" and all(c["passed"] for c in passed["changes"]["checks"])


def test_models_without_gates_are_unchanged(client):
    model = unique_name("ungated")
    exp_id = client.create_experiment(unique_name("ungated-exp"))
    client.create_registered_model(model)
    version = _version(client, model, exp_id, 0.1, with_data=False)
    client.set_registered_model_alias(model, "anything", version)
    client.transition_model_version_stage(model, version, "Production")
    assert client.get_model_version(model, version).current_stage == "Production"


def test_a_version_of_a_run_on_another_server_fails_its_gate_readably(client, rest):
    # MLflow lets a version name a run this server does not hold: the gate cannot check that run,
    # says so, and an override with a reason still lets it through.
    remote = "0123456789abcdef0123456789abcdef"
    model = unique_name("gated-remote")
    exp_id = client.create_experiment(unique_name("gated-remote-exp"))
    client.create_registered_model(model)
    client.set_registered_model_tag(model, "cairn.gate", "require=code; metric=val_acc>=0.5")
    elsewhere = client.create_model_version(model, f"runs:/{remote}/model", run_id=remote).version
    here = _version(client, model, exp_id, 0.9, with_data=False)
    with pytest.raises(MlflowException) as refused:
        client.set_registered_model_alias(model, "champion", elsewhere)
    assert refused.value.error_code == "INVALID_PARAMETER_VALUE"
    assert f"its run {remote} is not on this server" in refused.value.message
    with pytest.raises(MlflowException):
        client.get_model_version_by_alias(model, "champion")
    client.set_registered_model_alias(model, "champion", here)
    # "Not worse" against a holder whose run is elsewhere has nothing to compare with: not a failure.
    client.set_registered_model_tag(model, "cairn.gate", "not_worse=val_acc")
    client.set_model_version_tag(model, elsewhere, "cairn.gate.override", "trained on the team server, checked there")
    client.set_registered_model_alias(model, "champion", elsewhere)
    client.set_registered_model_tag(model, "cairn.gate", "require=code; not_worse=val_acc")
    client.set_registered_model_alias(model, "champion", here)
    assert client.get_model_version_by_alias(model, "champion").version == here
    actions = [e["action"] for e in _history(rest, model, elsewhere)]
    assert "gate_failed" in actions and "gate_overridden" in actions
