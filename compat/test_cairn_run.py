"""`cairn run` and `cairn reproduce` end to end: a real Python training script that logs with the
real `mlflow` client, wrapped by the real `cairn` binary ($CAIRN_BINARY), against the suite's server.
"""

import json
import os
import subprocess
import sys
import tempfile

import pytest
from mlflow.tracking import MlflowClient

from conftest import SERVER_URI, unique_name

pytestmark = pytest.mark.cairn_only

TRAIN = '''
import argparse, os, random
import mlflow

parser = argparse.ArgumentParser()
parser.add_argument("--seed", type=int, default=0)
parser.add_argument("--lr", type=float, default=0.1)
parser.add_argument("--noise", action="store_true")
args = parser.parse_args()
random.seed(args.seed if not args.noise else os.urandom(8))
rows = [line.split(",") for line in open(os.environ["DATA"]).read().split()[1:]]
w = 0.0
with mlflow.start_run():
    mlflow.log_param("lr", args.lr)
    for step in range(20):
        x, y = float(rows[step % len(rows)][0]), float(rows[step % len(rows)][1])
        w -= args.lr * 2 * (w * x - y) * x * random.uniform(0.5, 1.5)
        mlflow.log_metric("loss", (w * x - y) ** 2, step=step)
    mlflow.log_metric("w", w)
print("trained w=%.6f" % w)
'''


def _cairn(args, cwd, env_extra=None, check=False):
    binary = os.environ.get("CAIRN_BINARY", "").strip()
    if not binary:
        pytest.skip("CAIRN_BINARY is not set: these tests drive the real cairn binary (scripts/test sets it)")
    env = dict(os.environ)
    for name in ("MLFLOW_RUN_ID", "MLFLOW_EXPERIMENT_ID", "MLFLOW_EXPERIMENT_NAME"):
        env.pop(name, None)
    env.update(env_extra or {})
    result = subprocess.run([binary] + args, cwd=cwd, env=env, capture_output=True, text=True, timeout=300)
    if check:
        assert result.returncode == 0, result.stderr
    return result


def _run_id(stderr):
    marker = "recording run "
    assert marker in stderr, stderr
    return stderr.split(marker, 1)[1][:32]


@pytest.fixture
def project():
    with tempfile.TemporaryDirectory(prefix="cairn-run-e2e-") as root:
        repo = os.path.join(root, "repo")
        os.makedirs(repo)
        with open(os.path.join(repo, "train.py"), "w") as f:
            f.write(TRAIN)
        data = os.path.join(root, "data.csv")
        with open(data, "w") as f:
            f.write("x,y\n1,2\n2,4\n3,6\n")
        subprocess.run("git init -q -b main . && git config user.email t@example.com && git config user.name T "
                       "&& git add train.py && git commit -q -m init", shell=True, cwd=repo, check=True)
        yield {"repo": repo, "data": data, "journal": os.path.join(root, "journal")}


def test_cairn_run_wraps_a_python_script_whose_own_mlflow_calls_land_in_the_same_run(project):
    experiment = unique_name("cairn-run")
    result = _cairn(["run", "--tracking-uri", SERVER_URI, "--experiment", experiment, "--input", project["data"],
                     "--system-metrics-interval", "1", "--", sys.executable, "train.py", "--seed", "3"],
                    cwd=project["repo"], env_extra={"DATA": project["data"], "CAIRN_JOURNAL_DIR": project["journal"]}, check=True)
    assert "trained w=" in result.stdout
    run_id = _run_id(result.stderr)
    client = MlflowClient(SERVER_URI)
    run = client.get_run(run_id)
    assert run.info.status == "FINISHED"
    # Logged by the script itself with the real client:
    assert run.data.params["lr"] == "0.1"
    assert len(client.get_metric_history(run_id, "loss")) == 20
    assert "w" in run.data.metrics
    # Captured by cairn run:
    tags = run.data.tags
    assert len(tags["cairn.git.commit"]) == 40 and tags["mlflow.source.git.commit"] == tags["cairn.git.commit"]
    assert tags["cairn.git.dirty"] == "false"
    assert tags["cairn.python.version"].startswith("Python 3.")
    assert tags["mlflow.source.name"] == "train.py"
    assert tags["cairn.command"].endswith("train.py --seed 3")
    assert run.data.params["cairn.seed.--seed"] == "3"
    assert run.data.metrics["cairn.peak_rss_bytes"] > 1_000_000
    assert run.data.metrics["cairn.wall_time_s"] > 0
    # System metrics every second while the script ran (importing mlflow alone takes longer).
    assert run.data.metrics["system.memory_bytes"] > 0
    assert 0 <= run.data.metrics["system.cpu_percent"] <= 100
    assert run.inputs.dataset_inputs[0].dataset.digest.startswith("sha256:")
    paths = {f.path for f in client.list_artifacts(run_id, "cairn")}
    assert {"cairn/pip-freeze.txt", "cairn/stdout.log", "cairn/stderr.log", "cairn/environment.json"} <= paths
    freeze = open(client.download_artifacts(run_id, "cairn/pip-freeze.txt", tempfile.mkdtemp())).read()
    assert "mlflow==" in freeze
    environment = json.load(open(client.download_artifacts(run_id, "cairn/environment.json", tempfile.mkdtemp())))
    assert environment["git"]["commit"] == tags["cairn.git.commit"]


def test_cairn_reproduce_reruns_the_recorded_state_and_judges_it(project):
    experiment = unique_name("cairn-repro")
    env = {"DATA": project["data"], "CAIRN_JOURNAL_DIR": project["journal"]}
    # An uncommitted change that reproduce must re-apply: a different default learning rate.
    with open(os.path.join(project["repo"], "train.py")) as f:
        text = f.read()
    with open(os.path.join(project["repo"], "train.py"), "w") as f:
        f.write(text.replace('default=0.1', 'default=0.05'))
    first = _cairn(["run", "--tracking-uri", SERVER_URI, "--experiment", experiment, "--input", project["data"], "--seed", "4",
                    "--system-metrics-interval", "0", "--", sys.executable, "train.py", "--seed", "4"],
                   cwd=project["repo"], env_extra=env, check=True)
    original = _run_id(first.stderr)
    # Undo the change in the work tree: reproduce must use the recorded diff, not the work tree.
    subprocess.run(["git", "checkout", "train.py"], cwd=project["repo"], check=True)

    again = _cairn(["reproduce", original, "--tracking-uri", SERVER_URI], cwd=project["repo"], env_extra=env)
    assert again.returncode == 0, again.stdout + again.stderr
    assert "Reproduced" in again.stdout
    client = MlflowClient(SERVER_URI)
    exp = client.get_experiment_by_name(experiment)
    runs = client.search_runs([exp.experiment_id], "tags.`cairn.reproduce.of` = '%s'" % original)
    assert len(runs) == 1
    assert runs[0].data.tags["cairn.reproduce.status"] == "reproduced"
    assert runs[0].data.params["lr"] == "0.05"
    assert runs[0].data.metrics["w"] == client.get_run(original).data.metrics["w"]

    # Changed data: reproduce refuses (exit 2) and says why.
    with open(project["data"], "a") as f:
        f.write("4,8\n")
    refused = _cairn(["reproduce", original, "--tracking-uri", SERVER_URI], cwd=project["repo"], env_extra=env)
    assert refused.returncode == 2
    assert "has changed" in refused.stderr and "Restore the original data" in refused.stderr


def test_a_nondeterministic_script_is_reported_not_reproduced(project):
    experiment = unique_name("cairn-noise")
    env = {"DATA": project["data"], "CAIRN_JOURNAL_DIR": project["journal"]}
    first = _cairn(["run", "--tracking-uri", SERVER_URI, "--experiment", experiment, "--system-metrics-interval", "0",
                    "--", sys.executable, "train.py", "--noise"], cwd=project["repo"], env_extra=env, check=True)
    original = _run_id(first.stderr)
    again = _cairn(["reproduce", original, "--tracking-uri", SERVER_URI], cwd=project["repo"], env_extra=env)
    assert again.returncode == 1, again.stdout + again.stderr
    assert "Not reproduced" in again.stdout
    report = json.loads(_cairn(["report", "--json", "--tracking-uri", SERVER_URI, "--experiment", experiment],
                               cwd=project["repo"], check=True).stdout)
    assert report["reproducibility"] == {"attempted": 1, "reproduced": 0}
    assert report["runs"]["total"] == 2


# --- The wrapped command's own logging survives a server outage -------------------------------

OUTAGE_SCRIPT = '''
import os, sys
import mlflow

here = os.path.dirname(os.path.abspath(__file__))


def checkpoint(label):
    """Tell the test where we are (stdout) and, when it drives the outage, wait for its go (stdin)."""
    print(label, flush=True)
    if os.environ.get("PAUSE") == "1":
        line = sys.stdin.readline()
        assert line.strip() == "go", repr(line)


# A common pattern: name the experiment in the script too (the same one cairn run was given).
mlflow.set_experiment(os.environ["EXPERIMENT"])
with mlflow.start_run() as run:
    print("run id " + run.info.run_id, flush=True)
    mlflow.log_param("lr", "0.1")
    mlflow.set_tag("phase", "one")
    mlflow.set_tag("scratch", "x")
    for step in range(5):
        mlflow.log_metric("loss", 1.0 / (step + 1), step=step)
    mlflow.log_artifact(os.path.join(here, "notes.txt"))
    checkpoint("part-1-done")
    mlflow.log_params({"batch": "32", "epochs": "3"})
    for step in range(5, 10):
        mlflow.log_metric("loss", 1.0 / (step + 1), step=step)
    mlflow.log_metrics({"acc": 0.5, "f1": float("nan")}, step=9)
    mlflow.set_tag("phase", "two")
    mlflow.delete_tag("scratch")
    mlflow.log_artifact(os.path.join(here, "table.csv"), artifact_path="tables")
    mlflow.log_artifacts(os.path.join(here, "plots"), artifact_path="plots")
    checkpoint("part-2-done")
    for step in range(10, 15):
        mlflow.log_metric("loss", 1.0 / (step + 1), step=step)
    mlflow.set_tag("phase", "three")
    mlflow.log_text("final words", "final.txt")
    print("script done", flush=True)
'''

OUTAGE_ARTIFACTS = {
    "notes.txt": "first notes\n",
    "tables/table.csv": "a,b\n1,2\n",
    "plots/curve.txt": "0 1 2\n",
    "plots/sub/detail.txt": "détail\n",
    "final.txt": "final words",
}


def _free_port():
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class _Server:
    """A `cairn server` of this test's own, on a fixed port and data folder, to stop and restart."""

    def __init__(self, data_dir, port):
        self.data_dir, self.port, self.process = data_dir, port, None

    @property
    def uri(self):
        return "http://127.0.0.1:%d" % self.port

    def start(self):
        binary = os.environ["CAIRN_BINARY"]
        self.process = subprocess.Popen([binary, "server", "--port", str(self.port), "--data-dir", self.data_dir, "--log-level", "error"],
                                        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        banner = self.process.stdout.readline()  # printed once it listens
        assert "listening on" in banner, banner

    def stop(self):
        self.process.terminate()
        self.process.wait(timeout=60)
        self.process.stdout.close()


@pytest.fixture
def outage_project():
    if not os.environ.get("CAIRN_BINARY", "").strip():
        pytest.skip("CAIRN_BINARY is not set: these tests drive the real cairn binary (scripts/test sets it)")
    with tempfile.TemporaryDirectory(prefix="cairn-run-outage-") as root:
        work = os.path.join(root, "work")
        os.makedirs(os.path.join(work, "plots", "sub"))
        with open(os.path.join(work, "train.py"), "w") as f:
            f.write(OUTAGE_SCRIPT)
        for name, text in [("notes.txt", OUTAGE_ARTIFACTS["notes.txt"]), ("table.csv", OUTAGE_ARTIFACTS["tables/table.csv"]),
                           ("plots/curve.txt", OUTAGE_ARTIFACTS["plots/curve.txt"]),
                           ("plots/sub/detail.txt", OUTAGE_ARTIFACTS["plots/sub/detail.txt"])]:
            with open(os.path.join(work, name), "w", encoding="utf-8") as f:
                f.write(text)
        yield {"root": root, "work": work, "journal": os.path.join(root, "journal")}


def _outage_env(project, **extra):
    env = dict(os.environ)
    for name in ("MLFLOW_RUN_ID", "MLFLOW_EXPERIMENT_ID", "MLFLOW_EXPERIMENT_NAME", "MLFLOW_TRACKING_URI"):
        env.pop(name, None)
    env.update({"CAIRN_JOURNAL_DIR": project["journal"], "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "0",
                "MLFLOW_HTTP_REQUEST_TIMEOUT": "20", "MLFLOW_DISABLE_TELEMETRY": "true"})
    env.update(extra)
    return env


def _cairn_run_command(uri, experiment):
    return [os.environ["CAIRN_BINARY"], "run", "--tracking-uri", uri, "--experiment", experiment, "--system-metrics-interval", "0",
            "--no-pip-freeze", "--finish-timeout", "20", "--", sys.executable, "train.py"]


def _assert_whole_run(uri, experiment, script_run_id=None):
    """Every param, metric point, tag and artifact the script logged is on the server, once."""
    client = MlflowClient(uri)
    exp = client.get_experiment_by_name(experiment)
    assert exp is not None
    runs = client.search_runs([exp.experiment_id], run_view_type=3)
    assert len(runs) == 1, [r.info.run_id for r in runs]
    run = runs[0]
    if script_run_id is not None and script_run_id != run.info.run_id:
        # The script saw the placeholder id of a run journaled from the start; the run carries it.
        assert run.data.tags["cairn.journal.id"] == script_run_id
    assert run.info.status == "FINISHED"
    params = {k: v for k, v in run.data.params.items() if not k.startswith("cairn.")}
    assert params == {"lr": "0.1", "batch": "32", "epochs": "3"}
    history = client.get_metric_history(run.info.run_id, "loss")
    assert sorted(m.step for m in history) == list(range(15))
    assert {m.step: m.value for m in history} == {step: 1.0 / (step + 1) for step in range(15)}
    acc = client.get_metric_history(run.info.run_id, "acc")
    assert [(m.step, m.value) for m in acc] == [(9, 0.5)]
    f1 = client.get_metric_history(run.info.run_id, "f1")
    assert len(f1) == 1 and f1[0].value != f1[0].value  # NaN, once
    assert run.data.tags["phase"] == "three"
    assert "scratch" not in run.data.tags
    assert run.data.tags["cairn.exit_code"] == "0"

    def files(path=None):
        out = []
        for info in client.list_artifacts(run.info.run_id, path):
            out += files(info.path) if info.is_dir else [info.path]
        return out

    paths = [p for p in files() if not p.startswith("cairn/")]
    assert sorted(paths) == sorted(OUTAGE_ARTIFACTS)
    target = tempfile.mkdtemp()
    for path, text in OUTAGE_ARTIFACTS.items():
        with open(client.download_artifacts(run.info.run_id, path, target), encoding="utf-8") as f:
            assert f.read() == text, path
    assert "cairn/stdout.log" in files("cairn")
    return run


def test_a_wrapped_script_logging_while_the_server_is_down_for_the_whole_run_is_uploaded_whole_by_sync(outage_project):
    experiment = unique_name("cairn-run-offline")
    dead = "http://127.0.0.1:%d" % _free_port()  # nothing listens there
    result = subprocess.run(_cairn_run_command(dead, experiment), cwd=outage_project["work"], env=_outage_env(outage_project, EXPERIMENT=experiment),
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "script done" in result.stdout
    assert "unreachable; journaling run" in result.stderr
    script_run_id = result.stdout.split("run id ", 1)[1][:32]
    assert len(script_run_id) == 32

    synced = _cairn(["sync", "--json", "--tracking-uri", SERVER_URI], cwd=outage_project["root"],
                    env_extra={"CAIRN_JOURNAL_DIR": outage_project["journal"]}, check=True)
    entries = json.loads(synced.stdout)["synced"]
    assert len(entries) == 1 and entries[0]["created_run"] is True and entries[0]["refused"] == []
    run = _assert_whole_run(SERVER_URI, experiment, script_run_id)
    assert run.info.run_id == entries[0]["run_id"]
    # A second sync finds nothing left: nothing is uploaded twice.
    again = _cairn(["sync", "--tracking-uri", SERVER_URI], cwd=outage_project["root"],
                   env_extra={"CAIRN_JOURNAL_DIR": outage_project["journal"]}, check=True)
    assert again.stdout.startswith("Nothing to sync")
    _assert_whole_run(SERVER_URI, experiment, script_run_id)


@pytest.mark.single_server("stops and restarts a server of its own mid-run; the suite's servers are not "
                           "involved, so it is the first pass again")
def test_a_wrapped_script_keeps_logging_through_a_server_outage_in_the_middle_of_the_run(outage_project):
    experiment = unique_name("cairn-run-outage")
    server = _Server(os.path.join(outage_project["root"], "server-data"), _free_port())
    server.start()
    stderr_path = os.path.join(outage_project["root"], "cairn-run.stderr")
    try:
        with open(stderr_path, "w") as stderr:
            wrapped = subprocess.Popen(_cairn_run_command(server.uri, experiment), cwd=outage_project["work"],
                                       env=_outage_env(outage_project, PAUSE="1", EXPERIMENT=experiment), stdin=subprocess.PIPE,
                                       stdout=subprocess.PIPE, stderr=stderr, text=True)

            def wait_for(label):
                seen = []
                for line in wrapped.stdout:
                    seen.append(line)
                    if line.strip() == label:
                        return seen
                raise AssertionError("the script ended before %r: %s\n%s" % (label, "".join(seen), open(stderr_path).read()))

            lines = wait_for("part-1-done")
            script_run_id = [l for l in lines if l.startswith("run id ")][0][7:39]
            client = MlflowClient(server.uri)
            # Part 1 went straight to the server.
            assert [m.step for m in client.get_metric_history(script_run_id, "loss")] == list(range(5))
            server.stop()                      # down for part 2
            wrapped.stdin.write("go\n")
            wrapped.stdin.flush()
            wait_for("part-2-done")
            server.start()                     # back for part 3: still journaled, after part 2
            wrapped.stdin.write("go\n")
            wrapped.stdin.flush()
            rest, _ = wrapped.communicate(timeout=300)
        log = open(stderr_path).read()
        assert wrapped.returncode == 0, rest + log
        assert "script done" in rest
        assert "became unreachable during the run" in log
        # cairn run uploaded the journal itself once the server was back; sync has nothing left.
        synced = _cairn(["sync", "--json", "--tracking-uri", server.uri], cwd=outage_project["root"],
                        env_extra={"CAIRN_JOURNAL_DIR": outage_project["journal"]}, check=True)
        assert json.loads(synced.stdout)["synced"] == []
        run = _assert_whole_run(server.uri, experiment)
        assert run.info.run_id == script_run_id
    finally:
        if server.process and server.process.poll() is None:
            server.stop()
