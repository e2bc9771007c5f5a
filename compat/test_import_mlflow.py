"""`cairn import mlflow --from URL`: a real `mlflow server` is populated with the real client, imported into a new
Cairn data folder by the real `cairn` binary ($CAIRN_BINARY), and a `cairn server` on that folder is compared with the
MLflow server entity by entity through the `mlflow` client: experiments, runs, every metric point, datasets, artifact
bytes, logged models, registered models, versions and aliases; the registered model is loaded back by alias and
predicts the same. A second import changes nothing; an import killed after its first run line is completed by
running it again. The same server's files read directly (`--from-store sqlite:///mlflow.db --artifacts mlartifacts`)
give the same store as the REST import.

Cairn-only (an import into Cairn), and it starts servers of its own (single_server).
"""

import math
import os
import signal
import subprocess
import time

import numpy as np
import pytest

from conftest import fluent_uris, start_mlflow_server, start_own_server

pytestmark = [
    pytest.mark.cairn_only,
    pytest.mark.single_server("starts its own MLflow and cairn servers and imports between them"),
]

BINARY = os.environ.get("CAIRN_BINARY", "").strip()
POINTS = 5000
SPECIAL = [float("nan"), float("inf"), float("-inf"), 1.7976931348623157e308, -0.0, 0.1 + 0.2, 5e-324]


def start_mlflow(tmp, backend=None, *options, **env_extra):
    """`mlflow server` on `backend` (default: the SQLite file tmp/mlflow.db), artifacts proxied from tmp/mlartifacts,
    with more command-line `options` and environment variables."""
    return start_mlflow_server(tmp, "--artifacts-destination", f"{tmp}/mlartifacts", *options, env=env_extra, backend=backend)


def populate(uri, tmp):
    """Everything the import must carry, logged with the real client. Returns what the test checks against."""
    import mlflow

    with fluent_uris(uri):
        return _populate(uri, tmp)


def _populate(uri, tmp):
    import mlflow
    from mlflow.entities import Metric
    from mlflow.tracking import MlflowClient
    from sklearn.linear_model import LogisticRegression

    client = MlflowClient(uri)
    alpha = client.create_experiment("import-alpha", tags={"team": "nlp", "ünïcode": "✓ ü"})
    with mlflow.start_run(experiment_id=alpha, run_name="parent ü") as parent:
        mlflow.log_params({"lr": "0.01", "long": "x" * 5000, "ünï": "cödé"})
        mlflow.set_tag("mlflow.note.content", "A note with unicode ✓\nand a second line")
        now = int(time.time() * 1000)
        values = [SPECIAL[i] if i < len(SPECIAL) else math.sin(i) / (i + 1) for i in range(POINTS)]
        metrics = [Metric("loss", v, now + i, i) for i, v in enumerate(values)]
        for start in range(0, POINTS, 1000):
            client.log_batch(parent.info.run_id, metrics=metrics[start:start + 1000])
        with mlflow.start_run(run_name="child", nested=True) as child:
            mlflow.log_metric("acc", 0.91, step=3)
            import pandas as pd
            df = pd.DataFrame({"x": [1.0, 2.0, 3.0], "y": [0, 1, 0]})
            mlflow.log_input(mlflow.data.from_pandas(df, source="data/train.csv", name="train", targets="y"), context="training")
            folder = os.path.join(tmp, "files")
            os.makedirs(os.path.join(folder, "dir", "sub"), exist_ok=True)
            open(os.path.join(folder, "a.txt"), "w").write("hello ✓\n")
            open(os.path.join(folder, "dir", "b.txt"), "w").write("b" * 1000)
            open(os.path.join(folder, "dir", "sub", "c.bin"), "wb").write(os.urandom(300_000))
            open(os.path.join(folder, "empty.txt"), "w").close()
            mlflow.log_artifacts(folder, "outputs")
    with mlflow.start_run(experiment_id=alpha, run_name="doomed") as doomed:
        mlflow.log_param("p", "1")
    client.delete_run(doomed.info.run_id)

    models = client.create_experiment("import-models")
    rng = np.random.default_rng(7)
    X = rng.normal(size=(40, 3))
    y = (X[:, 0] + X[:, 1] > 0).astype(int)
    with mlflow.start_run(experiment_id=models, run_name="train"):
        model = LogisticRegression().fit(X, y)
        mlflow.log_param("C", "1.0")
        info = mlflow.sklearn.log_model(model, name="model", input_example=X[:2], registered_model_name="import-clf")
        mlflow.log_metric("val_acc", float(model.score(X, y)), model_id=info.model_id)
    client.set_registered_model_alias("import-clf", "champion", "1")
    client.transition_model_version_stage("import-clf", "1", "Staging")
    client.update_registered_model("import-clf", description="A classifier ✓")
    client.set_registered_model_tag("import-clf", "owner", "ml-team")
    client.set_model_version_tag("import-clf", "1", "validated", "yes")

    gone = client.create_experiment("import-gone")
    with mlflow.start_run(experiment_id=gone, run_name="in deleted experiment"):
        mlflow.log_metric("m", 1.5)
    client.delete_experiment(gone)
    return {"X": X, "predictions": model.predict(X)}


def cairn_import(target, *args, env=None):
    """`cairn import mlflow ARGS --data-dir TARGET`, its output captured."""
    return subprocess.run([BINARY, "import", "mlflow", *args, "--data-dir", target], capture_output=True, text=True,
                          timeout=900, env=env)


def run_import(target, source_uri, *extra):
    return cairn_import(target, "--from", source_uri, *extra)


def stop_all(procs):
    """Terminates the servers, then waits for each (killing one that does not stop)."""
    for proc in procs:
        proc.terminate()
    for proc in procs:
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    if not BINARY:
        pytest.skip("CAIRN_BINARY is not set: this test runs the real cairn binary (scripts/test sets it)")
    tmp = str(tmp_path_factory.mktemp("import-mlflow"))
    mlflow_proc, source_uri = start_mlflow(tmp)
    procs = [mlflow_proc]
    try:
        populated = populate(source_uri, tmp)
        target = os.path.join(tmp, "cairn-data")
        first = run_import(target, source_uri)
        assert first.returncode == 0, first.stdout + first.stderr
        log = open(os.path.join(tmp, "cairn.log"), "w")
        cairn_proc, cairn_uri = start_own_server(BINARY, target, log, "--log-level", "warning")
        procs.append(cairn_proc)
        yield {"tmp": tmp, "source": source_uri, "cairn": cairn_uri, "target": target, "first": first,
               "procs": procs, **populated}
    finally:
        stop_all(procs)


def same_float(a, b):
    return (math.isnan(a) and math.isnan(b)) or (a == b and math.copysign(1, a) == math.copysign(1, b))


def compare_stores(source_uri, cairn_uri, tmp):
    """Every entity of the source read back from Cairn through the mlflow client, field by field."""
    from mlflow.entities import ViewType
    from mlflow.tracking import MlflowClient

    src, dst = MlflowClient(source_uri), MlflowClient(cairn_uri)
    src_exps = {e.experiment_id: e for e in src.search_experiments(view_type=ViewType.ALL)}
    dst_exps = {e.experiment_id: e for e in dst.search_experiments(view_type=ViewType.ALL)}
    assert set(src_exps) <= set(dst_exps)
    for eid, e in src_exps.items():
        d = dst_exps[eid]
        assert (d.name, d.lifecycle_stage, d.tags) == (e.name, e.lifecycle_stage, e.tags), eid
        if eid != "0":  # the Default experiment is merged into Cairn's own
            assert (d.artifact_location, d.creation_time, d.last_update_time) == (e.artifact_location, e.creation_time, e.last_update_time)

    ids = sorted(src_exps)
    src_runs = {r.info.run_id: r for r in src.search_runs(ids, run_view_type=ViewType.ALL, max_results=1000)}
    dst_runs = {r.info.run_id: r for r in dst.search_runs(ids, run_view_type=ViewType.ALL, max_results=1000)}
    assert set(src_runs) == set(dst_runs)
    assert len(src_runs) == 5
    points = 0
    for run_id, s in src_runs.items():
        d = dst_runs[run_id]
        for field in ("run_id", "run_name", "experiment_id", "user_id", "status", "start_time", "end_time", "artifact_uri", "lifecycle_stage"):
            assert getattr(d.info, field) == getattr(s.info, field), (run_id, field)
        assert d.data.params == s.data.params
        assert d.data.tags == s.data.tags
        assert set(d.data.metrics) == set(s.data.metrics)
        for key, value in s.data.metrics.items():
            assert same_float(d.data.metrics[key], value), (run_id, key)
            sh = sorted(src.get_metric_history(run_id, key), key=lambda m: (m.step, m.timestamp))
            dh = sorted(dst.get_metric_history(run_id, key), key=lambda m: (m.step, m.timestamp))
            assert len(dh) == len(sh)
            for a, b in zip(sh, dh):
                assert (a.step, a.timestamp) == (b.step, b.timestamp) and same_float(a.value, b.value), (key, a, b)
            points += len(sh)

        def datasets(run):
            return sorted((i.dataset.name, i.dataset.digest, i.dataset.source_type, i.dataset.source, i.dataset.schema,
                           i.dataset.profile, tuple(sorted((t.key, t.value) for t in i.tags))) for i in run.inputs.dataset_inputs)
        assert datasets(d) == datasets(s)
        if s.info.lifecycle_stage == "active":
            def files(client, path=None):
                out = {}
                for f in client.list_artifacts(run_id, path):
                    if f.is_dir:
                        out.update(files(client, f.path))
                    else:
                        out[f.path] = f.file_size or 0  # MLflow lists an empty file without a size
                return out
            listed = files(src)
            assert files(dst) == listed
            import mlflow
            for path in listed:
                a = mlflow.artifacts.download_artifacts(run_id=run_id, artifact_path=path, tracking_uri=source_uri,
                                                        dst_path=os.path.join(tmp, "dl-src", run_id))
                b = mlflow.artifacts.download_artifacts(run_id=run_id, artifact_path=path, tracking_uri=cairn_uri,
                                                        dst_path=os.path.join(tmp, "dl-dst", run_id))
                assert open(a, "rb").read() == open(b, "rb").read(), path
    assert points >= POINTS

    src_models = {m.model_id: m for m in src.search_logged_models(experiment_ids=ids)}
    dst_models = {m.model_id: m for m in dst.search_logged_models(experiment_ids=ids)}
    assert set(src_models) == set(dst_models) and len(src_models) == 1
    for model_id, s in src_models.items():
        d = dst_models[model_id]
        for field in ("name", "experiment_id", "artifact_location", "status", "source_run_id", "creation_timestamp", "tags", "params"):
            assert getattr(d, field) == getattr(s, field), field
        def model_metrics(m):
            return sorted((x.key, x.value, x.timestamp, x.step, x.run_id) for x in m.metrics or [])
        assert model_metrics(d) == model_metrics(s) and len(model_metrics(s)) == 1

    src_reg = {m.name: m for m in src.search_registered_models()}
    dst_reg = {m.name: m for m in dst.search_registered_models()}
    assert set(src_reg) == set(dst_reg) == {"import-clf"}
    for name, s in src_reg.items():
        d = dst_reg[name]
        assert (d.description, d.tags, d.aliases, d.creation_timestamp) == (s.description, s.tags, s.aliases, s.creation_timestamp)
        sv = {v.version: v for v in src.search_model_versions(f"name = '{name}'")}
        dv = {v.version: v for v in dst.search_model_versions(f"name = '{name}'")}
        assert set(sv) == set(dv)
        for number, v in sv.items():
            w = dv[number]
            for field in ("source", "run_id", "current_stage", "status", "tags", "model_id", "creation_timestamp", "user_id", "description"):
                assert getattr(w, field) == getattr(v, field), (number, field)
        assert dst.get_model_version_by_alias(name, "champion").version == src.get_model_version_by_alias(name, "champion").version
    return len(src_runs), points


def test_import_carries_every_entity_exactly(world):
    first = world["first"].stdout
    assert "OK: everything selected is in this store" in first, first
    assert "DIFFERENT" not in first
    compare_stores(world["source"], world["cairn"], world["tmp"])


def test_imported_registered_model_loads_by_alias_and_predicts(world):
    import mlflow

    with fluent_uris(world["cairn"]):
        model = mlflow.pyfunc.load_model("models:/import-clf@champion")
    assert list(model.predict(world["X"])) == list(world["predictions"])


def test_second_import_changes_nothing(world):
    again = run_import(world["target"], world["source"])
    assert again.returncode == 0, again.stdout + again.stderr
    assert "Nothing changed" in again.stdout, again.stdout
    assert "Written: 0 metric points, 0 artifact files" in again.stdout
    assert "new" not in " ".join(line for line in again.stdout.splitlines() if line.startswith("run "))


def test_killed_import_completes_when_run_again(world):
    target = os.path.join(world["tmp"], "interrupted")
    proc = subprocess.Popen([BINARY, "import", "mlflow", "--from", world["source"], "--data-dir", target],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    seen = []
    for line in proc.stdout:
        seen.append(line)
        if line.startswith("run "):
            proc.send_signal(signal.SIGKILL)
            break
    proc.wait(timeout=120)
    assert any(line.startswith("run ") for line in seen), "".join(seen)
    resumed = run_import(target, world["source"])
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    # The run printed before the kill was committed: the second import finds it as it is.
    assert "unchanged" in resumed.stdout
    log = open(os.path.join(world["tmp"], "cairn-interrupted.log"), "w")
    proc, uri = start_own_server(BINARY, target, log, "--log-level", "warning")
    try:
        compare_stores(world["source"], uri, world["tmp"])
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def export_tables(data, folder):
    """The table digests of `cairn export` of the data folder `data` (artifacts by path, size and digest). The
    `experiments` table is given as rows instead, with the times of Cairn's own Default experiment 0 left out: each
    new data folder creates it at its own moment (the import merges MLflow's Default into it, keeping Cairn's). The
    audit log is left out: each folder's log records its own import (times, actor)."""
    import json

    import pyarrow.parquet as pq

    done = subprocess.run([BINARY, "export", "--data-dir", data, folder], capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout + done.stderr
    manifest = json.load(open(os.path.join(folder, "manifest.json")))
    tables = {t["name"]: (t["rows"], t["sha256"]) for t in manifest["tables"] if t["name"] != "audit_events"}
    experiments = pq.read_table(os.path.join(folder, "tables", "experiments.parquet")).to_pylist()
    for row in experiments:
        if str(row["experiment_id"]) == "0":
            row.pop("creation_time"), row.pop("last_update_time")
    tables["experiments"] = experiments
    return tables, sorted((a["path"], a["size"], a["sha256"]) for a in manifest["artifacts"])


def test_from_store_gives_the_same_store_as_the_api(world):
    """`--from-store sqlite:///mlflow.db --artifacts mlartifacts` reads the same MLflow server's files directly: its
    store equals a REST import made at the same moment, table by table (`cairn export` digests) and through the mlflow
    client field by field; a second run changes nothing."""
    check_store_import_equals_api(world["source"], world["tmp"], "--from-store", f"sqlite:///{world['tmp']}/mlflow.db",
                                  "--artifacts", f"{world['tmp']}/mlartifacts")


def check_store_import_equals_api(source_uri, tmp, *store_args):
    """An import with `store_args` equals a REST import of `source_uri` made at the same moment, table by table and
    through the mlflow client field by field; a second run changes nothing."""
    via_api, via_store = os.path.join(tmp, "via-api"), os.path.join(tmp, "via-store")
    api = run_import(via_api, source_uri)
    assert api.returncode == 0, api.stdout + api.stderr
    direct = cairn_import(via_store, *store_args)
    assert direct.returncode == 0, direct.stdout + direct.stderr
    assert "OK: everything selected is in this store" in direct.stdout, direct.stdout
    assert export_tables(via_store, os.path.join(tmp, "export-store")) == export_tables(via_api, os.path.join(tmp, "export-api"))

    log = open(os.path.join(tmp, "cairn-via-store.log"), "w")
    proc, uri = start_own_server(BINARY, via_store, log, "--log-level", "warning")
    try:
        compare_stores(source_uri, uri, tmp)
    finally:
        stop_all([proc])

    again = cairn_import(via_store, *store_args)
    assert again.returncode == 0, again.stdout + again.stderr
    assert "Nothing changed" in again.stdout, again.stdout


def test_from_store_refuses_what_it_cannot_read(world):
    tmp = world["tmp"]
    target = os.path.join(tmp, "refused")
    cases = [
        (["--from-store", f"sqlite:///{tmp}/absent.db"], "There is no file"),
        (["--from-store", f"sqlite:///{tmp}/mlflow.log"], "MLflow"),
        (["--from-store", "mysql://u:p@db:3306/mlflow"], "MySQL stores are not read directly"),
        (["--from-store", f"{tmp}/absent-mlruns"], "There is no folder"),
        (["--from-store", f"sqlite:///{tmp}/mlflow.db", "--from", world["source"]], "exclusive"),
        (["--from-store", f"sqlite:///{tmp}/mlflow.db", "--artifacts", f"{tmp}/absent"], "not a folder"),
    ]
    for args, expected in cases:
        done = subprocess.run([BINARY, "import", "mlflow", *args, "--data-dir", target], capture_output=True, text=True, timeout=120)
        assert done.returncode != 0, args
        lines = [line for line in done.stderr.splitlines() if line.strip()]
        assert len(lines) == 1 and expected in lines[0], (args, done.stderr)


def test_unrepresentable_and_conflicts_are_listed_and_never_overwritten(world):
    """Runs last: it adds to the source. Artifacts neither behind the MLflow server's proxy nor in a folder on this
    machine (a file: location of the MLflow host: the folder is moved away here) are listed and make the import exit 1
    unless --skip-unrepresentable; a run changed at the source after its import is a conflict, listed, and the imported
    copy stays as it was."""
    from mlflow.tracking import MlflowClient

    src = MlflowClient(world["source"])
    local = os.path.join(world["tmp"], "local-artifacts")
    eid = src.create_experiment("import-local-artifacts", artifact_location="file://" + local)
    run = src.create_run(eid, run_name="local files")
    src.log_text(run.info.run_id, "kept on the MLflow host", "notes/f.txt")
    src.log_metric(run.info.run_id, "m", 2.5)
    src.set_terminated(run.info.run_id)
    os.rename(local, local + "-on-another-host")
    target = os.path.join(world["tmp"], "selected")

    refused = run_import(target, world["source"], "--experiment", "import-local-artifacts")
    assert refused.returncode == 1, refused.stdout + refused.stderr
    assert "NOT IMPORTED" in refused.stdout and "file://" + local in refused.stdout, refused.stdout
    accepted = run_import(target, world["source"], "--filter", "name = 'import-local-artifacts'", "--skip-unrepresentable")
    assert accepted.returncode == 0, accepted.stdout + accepted.stderr
    assert "SKIPPED" in accepted.stdout and "runs: 1 unchanged" in accepted.stdout, accepted.stdout

    src.set_tag(run.info.run_id, "changed.later", "yes")
    conflicted = run_import(target, world["source"], "--experiment", "import-local-artifacts", "--skip-unrepresentable")
    assert conflicted.returncode == 1, conflicted.stdout
    assert f"CONFLICT  run {run.info.run_id}" in conflicted.stdout and "changed.later" in conflicted.stdout, conflicted.stdout

    log = open(os.path.join(world["tmp"], "cairn-selected.log"), "w")
    proc, uri = start_own_server(BINARY, target, log, "--log-level", "warning")
    try:
        dst = MlflowClient(uri)
        kept = dst.get_run(run.info.run_id)
        assert "changed.later" not in kept.data.tags
        assert kept.data.metrics == {"m": 2.5}
        assert {e.name for e in dst.search_experiments()} == {"Default", "import-local-artifacts"}
    finally:
        proc.terminate()
        proc.wait(timeout=30)
