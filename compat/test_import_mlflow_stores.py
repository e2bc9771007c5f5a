"""`cairn import mlflow --from-store` on MLflow's other stores, each compared with a REST import of the same data:

- an `mlruns` folder (MLflow's file store) written by the real client (MLFLOW_ALLOW_FILE_STORE=true: MLflow 3.17
  refuses the file store without it), read directly and through `mlflow server --backend-store-uri file:…` on the same
  folder: the two stores are identical table by table (`cairn export`), the artifacts of the runs' and logged models'
  `file:` locations are copied (their URIs become `mlflow-artifacts:/…`), the registered model loads by alias from
  Cairn and predicts the same; `--filter` and `--experiment` select as through the server;
- an MLflow SQL store in PostgreSQL (`mlflow server --backend-store-uri postgresql://…`, proxied artifacts) read
  directly (`--from-store postgresql://… --artifacts DIR`): identical to the REST import, and equal to the MLflow
  server field by field through the mlflow client. Needs CAIRN_TEST_POSTGRES_URL (scripts/test sets it).

Cairn-only (an import into Cairn), and it starts servers of its own (single_server).
"""

import os
import subprocess
import uuid

import pytest

from conftest import environment, fluent_uris, start_own_server
from test_import_mlflow import (BINARY, cairn_import, check_store_import_equals_api, export_tables, populate, run_import,
                                start_mlflow, stop_all)

pytestmark = [
    pytest.mark.cairn_only,
    pytest.mark.single_server("starts its own MLflow and cairn servers and imports between them"),
]

POSTGRES_URL = os.environ.get("CAIRN_TEST_POSTGRES_URL", "").strip()


def store_import(target, store, *extra):
    return cairn_import(target, "--from-store", store, *extra)


@pytest.fixture(scope="module")
def mlruns(tmp_path_factory):
    if not BINARY:
        pytest.skip("CAIRN_BINARY is not set: this test runs the real cairn binary (scripts/test sets it)")
    tmp = str(tmp_path_factory.mktemp("import-mlruns"))
    folder = os.path.join(tmp, "mlruns")
    with environment(MLFLOW_ALLOW_FILE_STORE="true"):
        populated = populate("file://" + folder, tmp)
    proc, uri = start_mlflow(tmp, "file://" + folder, MLFLOW_ALLOW_FILE_STORE="true")
    try:
        yield {"tmp": tmp, "folder": folder, "source": uri, **populated}
    finally:
        stop_all([proc])


def test_mlruns_folder_gives_the_same_store_as_the_api(mlruns):
    tmp, folder = mlruns["tmp"], mlruns["folder"]
    via_api, via_store = os.path.join(tmp, "via-api"), os.path.join(tmp, "via-store")
    api = run_import(via_api, mlruns["source"])
    assert api.returncode == 0, api.stdout + api.stderr
    direct = store_import(via_store, folder)
    assert direct.returncode == 0, direct.stdout + direct.stderr
    assert "OK: everything selected is in this store" in direct.stdout, direct.stdout
    assert "NOT IMPORTED" not in direct.stdout
    store_tables, store_files = export_tables(via_store, os.path.join(tmp, "export-store"))
    api_tables, api_files = export_tables(via_api, os.path.join(tmp, "export-api"))
    assert store_tables == api_tables
    assert store_files == api_files
    # The runs' and the logged model's files, copied from their file: folders under mlruns.
    assert len(store_files) >= 4 + 5, store_files

    again = store_import(via_store, folder)
    assert again.returncode == 0, again.stdout + again.stderr
    assert "Nothing changed" in again.stdout, again.stdout

    from mlflow.entities import ViewType
    from mlflow.tracking import MlflowClient

    log = open(os.path.join(tmp, "cairn-via-store.log"), "w")
    proc, uri = start_own_server(BINARY, via_store, log, "--log-level", "warning")
    try:
        src, dst = MlflowClient(mlruns["source"]), MlflowClient(uri)
        experiments = [e.experiment_id for e in src.search_experiments(view_type=ViewType.ALL)]
        src_runs = {r.info.run_id: r for r in src.search_runs(experiments, run_view_type=ViewType.ALL)}
        dst_runs = {r.info.run_id: r for r in dst.search_runs(experiments, run_view_type=ViewType.ALL)}
        assert set(src_runs) == set(dst_runs) and len(src_runs) == 5
        for run_id, s in src_runs.items():
            d = dst_runs[run_id]
            assert (d.data.params, d.data.tags, d.info.run_name, d.info.status, d.info.start_time, d.info.end_time) == \
                (s.data.params, s.data.tags, s.info.run_name, s.info.status, s.info.start_time, s.info.end_time)
            assert d.info.artifact_uri == f"mlflow-artifacts:/{s.info.experiment_id}/{run_id}/artifacts"
            for key in s.data.metrics:
                assert len(dst.get_metric_history(run_id, key)) == len(src.get_metric_history(run_id, key))
            local = s.info.artifact_uri[len("file://"):]
            for root, _, names in os.walk(local):
                for name in names:
                    path = os.path.relpath(os.path.join(root, name), local)
                    got = dst.download_artifacts(run_id, path, os.path.join(tmp, "dl", run_id))
                    assert open(got, "rb").read() == open(os.path.join(root, name), "rb").read(), path
        import mlflow

        with fluent_uris(uri):
            model = mlflow.pyfunc.load_model("models:/import-clf@champion")
        assert list(model.predict(mlruns["X"])) == list(mlruns["predictions"])
    finally:
        stop_all([proc])


def test_mlruns_filter_and_experiment_select_as_through_the_api(mlruns):
    tmp, folder = mlruns["tmp"], mlruns["folder"]
    for name, args in [("filtered", ["--filter", "tags.team = 'nlp'"]), ("named", ["--experiment", "import-models"]),
                       ("like", ["--filter", "name LIKE 'import-%' AND name != 'import-alpha'"])]:
        direct = store_import(os.path.join(tmp, name + "-store"), folder, *args)
        assert direct.returncode == 0, direct.stdout + direct.stderr
        api = run_import(os.path.join(tmp, name + "-api"), mlruns["source"], *args)
        assert api.returncode == 0, api.stdout + api.stderr
        assert export_tables(os.path.join(tmp, name + "-store"), os.path.join(tmp, name + "-store-export")) == \
            export_tables(os.path.join(tmp, name + "-api"), os.path.join(tmp, name + "-api-export")), name
    assert "experiments: " in direct.stdout and " new" in direct.stdout, direct.stdout

    bad = store_import(os.path.join(tmp, "bad-filter"), folder, "--filter", "colour = 'red'")
    assert bad.returncode == 1
    assert "colour" in bad.stderr, bad.stderr


@pytest.fixture(scope="module")
def postgres_world(tmp_path_factory):
    if not BINARY:
        pytest.skip("CAIRN_BINARY is not set: this test runs the real cairn binary (scripts/test sets it)")
    if not POSTGRES_URL:
        pytest.skip("CAIRN_TEST_POSTGRES_URL is not set: scripts/test starts a throwaway PostgreSQL and sets it")
    tmp = str(tmp_path_factory.mktemp("import-postgres"))
    name = "mlflow_" + uuid.uuid4().hex[:12]
    subprocess.run(["psql", POSTGRES_URL, "-v", "ON_ERROR_STOP=1", "-q", "-c", f"CREATE DATABASE {name}"], check=True)
    # SQLAlchemy's driver named as MLflow users write it; Cairn reads the same URI form.
    database = POSTGRES_URL.replace("postgresql://", "postgresql+psycopg2://", 1).rsplit("/", 1)[0] + "/" + name
    proc, uri = start_mlflow(tmp, database)
    try:
        populated = populate(uri, tmp)
        yield {"tmp": tmp, "source": uri, "database": database, **populated}
    finally:
        stop_all([proc])
        subprocess.run(["psql", POSTGRES_URL, "-q", "-c", f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"], check=False)


def test_postgresql_store_gives_the_same_store_as_the_api(postgres_world):
    tmp, database = postgres_world["tmp"], postgres_world["database"]
    check_store_import_equals_api(postgres_world["source"], tmp, "--from-store", database, "--artifacts", os.path.join(tmp, "mlartifacts"))

    wrong = store_import(os.path.join(tmp, "refused"), database.rsplit("/", 1)[0] + "/no_such_database")
    assert wrong.returncode == 1
    assert len([line for line in wrong.stderr.splitlines() if line.strip()]) == 1, wrong.stderr


S3_ENDPOINT = os.environ.get("CAIRN_TEST_S3_ENDPOINT", "").strip()
S3_BUCKET = os.environ.get("CAIRN_TEST_S3_BUCKET", "").strip()


def test_s3_artifact_locations_are_copied_with_the_aws_variables(tmp_path):
    """A run whose artifacts MLflow keeps in S3 itself (an experiment with an s3:// artifact location, written by the
    client straight to the bucket: moto here) is imported with its files when the usual AWS_* and
    MLFLOW_S3_ENDPOINT_URL variables are set, its URI becoming mlflow-artifacts:/…; without credentials the files
    are listed as not imported."""
    if not BINARY:
        pytest.skip("CAIRN_BINARY is not set: this test runs the real cairn binary (scripts/test sets it)")
    if not S3_ENDPOINT or not S3_BUCKET:
        pytest.skip("CAIRN_TEST_S3_ENDPOINT is not set: scripts/test starts moto and sets it")
    tmp = str(tmp_path)
    aws = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1",
           "MLFLOW_S3_ENDPOINT_URL": S3_ENDPOINT}
    with environment(**aws):
        proc, source = start_mlflow(tmp)
        try:
            check_s3_import(tmp, source)
        finally:
            stop_all([proc])


def check_s3_import(tmp, source):
    from mlflow.tracking import MlflowClient

    client = MlflowClient(source)
    eid = client.create_experiment("s3-located", artifact_location=f"s3://{S3_BUCKET}/mlflow-{uuid.uuid4().hex}")
    run = client.create_run(eid, run_name="in s3")
    client.log_text(run.info.run_id, "kept in S3 ✓", "notes/a.txt")
    client.log_dict(run.info.run_id, {"k": [1, 2, 3]}, "d/b.json")
    client.set_terminated(run.info.run_id)

    plain = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    refused = cairn_import(os.path.join(tmp, "without-credentials"), "--from", source, "--experiment", "s3-located", env=plain)
    assert refused.returncode == 1, refused.stdout + refused.stderr
    assert "NOT IMPORTED" in refused.stdout and "s3://" in refused.stdout, refused.stdout

    target = os.path.join(tmp, "with-credentials")
    done = run_import(target, source, "--experiment", "s3-located")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "2 files" in done.stdout, done.stdout
    log = open(os.path.join(tmp, "cairn.log"), "w")
    cairn, uri = start_own_server(BINARY, target, log, "--log-level", "warning")
    try:
        dst = MlflowClient(uri)
        copied = dst.get_run(run.info.run_id)
        assert copied.info.artifact_uri == f"mlflow-artifacts:/{eid}/{run.info.run_id}/artifacts"
        for path in ("notes/a.txt", "d/b.json"):
            a = client.download_artifacts(run.info.run_id, path, os.path.join(tmp, "src"))
            b = dst.download_artifacts(run.info.run_id, path, os.path.join(tmp, "dst"))
            assert open(a, "rb").read() == open(b, "rb").read(), path
    finally:
        stop_all([cairn])


def test_password_protected_mlflow_server_is_imported_with_its_credentials(tmp_path):
    """`mlflow server --app-name basic-auth` (MLflow's own accounts): the import signs in with MLFLOW_TRACKING_USERNAME
    and MLFLOW_TRACKING_PASSWORD; without them, or with a wrong password, it stops with one line saying which."""
    if not BINARY:
        pytest.skip("CAIRN_BINARY is not set: this test runs the real cairn binary (scripts/test sets it)")
    from mlflow.tracking import MlflowClient

    tmp = str(tmp_path)
    config = os.path.join(tmp, "basic_auth.ini")
    with open(config, "w") as f:
        f.write("[mlflow]\ndefault_permission = READ\n"
                f"database_uri = sqlite:///{tmp}/basic_auth.db\n"
                "admin_username = admin\nadmin_password = import-admin-pw-1\n"
                "authorization_function = mlflow.server.auth:authenticate_request_basic_auth\n")
    proc, source = start_mlflow(tmp, None, "--app-name", "basic-auth", MLFLOW_AUTH_CONFIG_PATH=config,
                                MLFLOW_FLASK_SERVER_SECRET_KEY=uuid.uuid4().hex)
    try:
        with environment(MLFLOW_TRACKING_USERNAME="admin", MLFLOW_TRACKING_PASSWORD="import-admin-pw-1"):
            client = MlflowClient(source)
            eid = client.create_experiment("behind-a-password")
            run = client.create_run(eid, run_name="guarded")
            client.log_metric(run.info.run_id, "m", 0.5)
            client.log_text(run.info.run_id, "secret ✓", "a.txt")
            client.set_terminated(run.info.run_id)
            signed_in = run_import(os.path.join(tmp, "signed-in"), source)
        assert signed_in.returncode == 0, signed_in.stdout + signed_in.stderr
        assert "OK: everything selected is in this store" in signed_in.stdout, signed_in.stdout

        for password, expected in [(None, "needs credentials"), ("wrong", "refused the credentials")]:
            env = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_TRACKING_")}
            if password:
                env.update(MLFLOW_TRACKING_USERNAME="admin", MLFLOW_TRACKING_PASSWORD=password)
            refused = cairn_import(os.path.join(tmp, "refused"), "--from", source, env=env)
            assert refused.returncode == 1, refused.stdout + refused.stderr
            lines = [line for line in refused.stderr.splitlines() if line.strip()]
            assert len(lines) == 1 and expected in lines[0] and "401" in lines[0], refused.stderr
            assert "wrong" not in lines[0]
    finally:
        stop_all([proc])
