"""The web UI driven by a real headless Chromium (Debian's chromium + chromium-driver) against a
real `cairn server`, seeded through the real `mlflow` client.

    CAIRN_TRACKING_URI=http://127.0.0.1:5000 pytest -q ui-tests

Screenshots of every page (1280x800 and 420x900, light and dark) go to ui-tests/screenshots/.
"""

import hashlib
import io
import json
import os
import struct
import time
import zlib

import pytest

SERVER_URI = os.environ.get("CAIRN_TRACKING_URI", "").strip().rstrip("/")
os.environ["MLFLOW_TRACKING_URI"] = SERVER_URI
os.environ["MLFLOW_HTTP_REQUEST_MAX_RETRIES"] = "0"
# Hang protection only, generous so a slow answer on a busy machine is never a failure.
os.environ["MLFLOW_HTTP_REQUEST_TIMEOUT"] = "120"
os.environ["MLFLOW_DISABLE_TELEMETRY"] = "true"
os.environ["MLFLOW_ENABLE_ASYNC_LOGGING"] = "false"
for name in ("MLFLOW_EXPERIMENT_ID", "MLFLOW_EXPERIMENT_NAME", "MLFLOW_RUN_ID"):
    os.environ.pop(name, None)

import mlflow  # noqa: E402
from mlflow.tracking import MlflowClient  # noqa: E402
from selenium import webdriver  # noqa: E402
from selenium.webdriver.chrome.options import Options  # noqa: E402
from selenium.webdriver.chrome.service import Service  # noqa: E402
from selenium.webdriver.support.ui import WebDriverWait  # noqa: E402

SCREENSHOTS = os.path.join(os.path.dirname(__file__), "screenshots")
SIZES = {"wide": (1280, 800), "narrow": (420, 900)}
WAIT_TIMEOUT = 120  # seconds; hang protection for UI.wait / UI.wait_ready


def pytest_configure(config):
    if not SERVER_URI:
        raise pytest.UsageError("CAIRN_TRACKING_URI is not set: point it at a running cairn server.")


def png_bytes(width, height):
    """A small gradient PNG, written by hand (no imaging library needed)."""
    rows = b"".join(b"\x00" + b"".join(bytes(((x * 255) // width, (y * 255) // height, 160)) for x in range(width))
                    for y in range(height))

    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b""))


class Seed:
    """What the seeding logged, so tests can compare the UI with the truth."""

    def __init__(self):
        self.experiment_id = None
        self.second_experiment_id = None
        self.runs = []  # dicts: run_id, name, params, acc, loss_last, status
        self.spike_run = None
        self.child_run = None
        self.artifact_run = None
        self.csv_text = "epoch,loss,acc\n0,0.9,0.1\n1,0.5,0.6\n2,\"0,25\",0.8\n"
        self.json_doc = {"layers": [64, 32], "dropout": 0.1, "name": "mlp"}
        self.png = png_bytes(48, 32)
        self.diff = "diff --git a/train.py b/train.py\n--- a/train.py\n+++ b/train.py\n@@ -1 +1 @@\n-lr = 0.1\n+lr = 0.01\n"


@pytest.fixture(scope="session")
def seed(tmp_path_factory):
    s = Seed()
    client = MlflowClient()
    s.experiment_id = mlflow.create_experiment(f"ui-demo-{int(time.time() * 1000)}")
    s.second_experiment_id = mlflow.create_experiment(f"ui-second-{int(time.time() * 1000)}")
    mlflow.set_experiment(experiment_id=s.experiment_id)
    models = ["cnn", "mlp", "resnet"]
    for i in range(12):
        name = f"run-{i:02d}"
        params = {"lr": str([0.1, 0.01, 0.001][i % 3]), "batch": str(32 * (1 + i % 2)), "model": models[i % 3]}
        acc = round(0.3 + 0.05 * i, 4)
        with mlflow.start_run(run_name=name) as run:
            mlflow.log_params(params)
            mlflow.set_tag("team", "vision" if i % 2 else "nlp")
            rid = run.info.run_id
            metrics = []
            for step in range(300):
                value = 1.0 / (1 + step * (0.01 + i * 0.002))
                if i == 0 and step == 123:
                    value = 50.0  # a spike the charts must never lose
                metrics.append(mlflow.entities.Metric("loss", value, 1_700_000_000_000 + step * 1000, step))
            metrics.append(mlflow.entities.Metric("acc", acc, 1_700_000_000_000, 0))
            for k in range(0, len(metrics), 500):
                client.log_batch(rid, metrics=metrics[k:k + 500])
            status = "FAILED" if i == 5 else "FINISHED"
        if status == "FAILED":
            client.set_terminated(rid, "FAILED")
        s.runs.append({"run_id": rid, "name": name, "params": params, "acc": acc, "status": status})
    s.spike_run = s.runs[0]["run_id"]
    # A run with provenance as `cairn run` records it, a note, artifacts, a child and a model.
    with mlflow.start_run(run_name="provenance") as run:
        rid = run.info.run_id
        mlflow.set_tags({"cairn.git.commit": "0123456789abcdef0123456789abcdef01234567", "cairn.git.branch": "main",
                         "cairn.git.dirty": "true", "cairn.command": "python train.py --lr 0.01", "cairn.cwd": "/work/project",
                         "cairn.python.version": "3.11.7", "cairn.host.name": "gpu-box", "cairn.env.CUDA_VISIBLE_DEVICES": "0",
                         "mlflow.note.content": "# Findings\n\nLearning rate **0.01** works.\n\n- one\n- two\n"})
        mlflow.log_param("lr", "0.01")
        mlflow.log_metric("acc", 0.91)
        mlflow.log_text(s.diff, "cairn/git.diff")
        mlflow.log_text("epoch 1 done\n", "cairn/stdout.log")
        mlflow.log_text(s.csv_text, "eval/metrics.csv")
        mlflow.log_dict(s.json_doc, "config.json")
        d = tmp_path_factory.mktemp("artifacts")
        (d / "sample.png").write_bytes(s.png)
        mlflow.log_artifact(str(d / "sample.png"), "images")
        with mlflow.start_run(run_name="child", nested=True) as child:
            s.child_run = child.info.run_id
    s.artifact_run = rid
    mlflow.set_experiment(experiment_id=s.second_experiment_id)
    for i in range(3):
        with mlflow.start_run(run_name=f"other-{i}"):
            mlflow.log_param("lr", "0.5")
            mlflow.log_metric("acc", 0.1 * i)
    # The registry: a model with two versions and an alias.
    client.create_registered_model("ui-model", description="A model for the UI tests")
    for _ in range(2):
        client.create_model_version("ui-model", f"runs:/{rid}/config.json", run_id=rid)
    client.set_registered_model_alias("ui-model", "champion", "2")
    return s


@pytest.fixture(scope="session")
def browser():
    opts = Options()
    opts.binary_location = "/usr/bin/chromium"
    for arg in ["--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu", "--window-size=1280,800",
                "--force-device-scale-factor=1"]:
        opts.add_argument(arg)
    opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=opts)
    driver.set_window_size(1280, 800)
    yield driver
    driver.quit()


class UI:
    def __init__(self, driver):
        self.d = driver

    def open(self, hash_route, theme=None, size="wide"):
        w, h = SIZES[size]
        self.d.set_window_size(w, h)
        query = f"?theme={theme}" if theme else ""
        self.d.get("about:blank")  # a real page load each time, never a hash-only change
        self.d.get(f"{SERVER_URI}/{query}#{hash_route}")
        self.wait_ready()

    # The waits below end as soon as their condition holds; the timeout is hang protection only, generous
    # so that a slow page on a busy machine is never a failure.
    def wait_ready(self, timeout=WAIT_TIMEOUT):
        WebDriverWait(self.d, timeout).until(lambda d: d.execute_script("return window.__cairnReady === true"))

    def wait(self, script, timeout=WAIT_TIMEOUT):
        """Waits until `script` (an expression) is truthy and returns its value."""
        return WebDriverWait(self.d, timeout).until(lambda d: d.execute_script(f"return ({script})"))

    def js(self, script, *args):
        return self.d.execute_script(script, *args)

    def console_errors(self, allow=()):
        entries = self.d.get_log("browser")
        errors = [e["message"] for e in entries if e["level"] == "SEVERE"]
        return [m for m in errors if not any(a in m for a in allow)]

    def screenshot(self, name):
        os.makedirs(SCREENSHOTS, exist_ok=True)
        path = os.path.join(SCREENSHOTS, f"{name}.png")
        self.d.save_screenshot(path)
        return path


@pytest.fixture()
def ui(browser):
    u = UI(browser)
    browser.get_log("browser")  # drop what earlier tests left
    return u


def sha256(data):
    return hashlib.sha256(data if isinstance(data, bytes) else data.encode()).hexdigest()


class StatsSeed:
    """An offline comparison (2 configurations x 5 seeds) and an online A/B experiment."""

    def __init__(self):
        self.experiment_id = None
        self.run_ids = {}  # (model, seed) -> run id
        self.online_experiment_id = None
        self.model_name = None


def seed_stats(client):
    """Logs what the statistics pages read; returns a StatsSeed."""
    from mlflow.entities import Dataset, DatasetInput, InputTag, Metric, Param, RunTag

    s = StatsSeed()
    stamp = int(time.time() * 1000)
    s.experiment_id = client.create_experiment(f"ui-stats-{stamp}")
    # "large" beats "small" on acc by about 0.1 on every seed (noise about 0.005): clearly better.
    # The arms trained on different data (different digests): the comparison must warn about it.
    noise = [0.004, -0.006, 0.001, 0.007, -0.003]
    for model, base, digest in [("small", 0.70, "d1g3st-small"), ("large", 0.80, "d1g3st-large")]:
        for seed in range(5):
            run = client.create_run(s.experiment_id, run_name=f"{model}-seed{seed}")
            rid = run.info.run_id
            acc = base + noise[seed] + (0.002 * seed if model == "large" else 0.0)
            metrics = []
            for step in range(20):
                # Rises, then flat for the last third of the steps (no "still improving" warning).
                value = acc * min(1.0, (step + 1) / 13)
                metrics.append(Metric("acc", round(value, 6), stamp + step * 1000, step))
                metrics.append(Metric("loss", round(1.2 - value, 6), stamp + step * 1000, step))
            client.log_batch(rid, metrics=metrics, params=[Param("model", model), Param("lr", "0.01"), Param("seed", str(seed))],
                             tags=[RunTag("team", "stats")])
            client.log_inputs(rid, datasets=[DatasetInput(Dataset(name="train", digest=digest, source_type="local", source=f"/data/{model}"),
                                                          tags=[InputTag("mlflow.data.context", "training")])])
            client.set_terminated(rid, "FINISHED")
            s.run_ids[(model, seed)] = rid
    # An online experiment with a planted sample-ratio mismatch: a 50/50 plan, 10,000 exposures
    # to the control and 8,000 to the treatment over 10 days.
    s.online_experiment_id = client.create_experiment(f"ui-online-{stamp}")
    for name, control, per_day, rate in [("control", True, 1000, 0.10), ("treatment", False, 800, 0.12)]:
        run = client.create_run(s.online_experiment_id, run_name=name)
        rid = run.info.run_id
        metrics = []
        for day in range(10):
            conversions = round(per_day * rate + (day % 3 - 1) * 3)
            metrics.append(Metric("exposures", per_day, stamp + day, day))
            metrics.append(Metric("signup.conversions", conversions, stamp + day, day))
            revenue = per_day * (5.0 if control else 5.3)
            metrics.append(Metric("revenue.sum", revenue, stamp + day, day))
            metrics.append(Metric("revenue.sum_squares", per_day * (25.0 + 16.0) * (1.1 if not control else 1.0), stamp + day, day))
        tags = [RunTag("cairn.allocation", "0.5")] + ([RunTag("cairn.control", "true")] if control else [])
        client.log_batch(rid, metrics=metrics, tags=tags)
        client.set_terminated(rid, "FINISHED")
    # A model version that was tested in that experiment.
    s.model_name = f"ui-online-model-{stamp}"
    client.create_registered_model(s.model_name)
    source_run = s.run_ids[("large", 0)]
    version = client.create_model_version(s.model_name, f"runs:/{source_run}/model", run_id=source_run,
                                          tags={"cairn.online.experiment_id": s.online_experiment_id})
    s.model_version = version.version
    return s


@pytest.fixture(scope="session")
def stats_seed():
    return seed_stats(MlflowClient())


class SweepSeed:
    """A sweep as a researcher runs it: 3 learning rates x 2 model sizes x 2 seeds, metrics under
    train/ and val/ prefixes, one failed run, and a parent run with nested children."""

    def __init__(self):
        self.experiment_id = None
        self.run_ids = {}  # (lr, size, seed) -> run id
        self.parent_run = None
        self.child_runs = []
        self.metrics = ["train/loss", "train/acc", "val/loss", "val/acc", "lr"]


def seed_sweep(client):
    from mlflow.entities import Metric, Param, RunTag

    s = SweepSeed()
    stamp = int(time.time() * 1000)
    s.experiment_id = client.create_experiment(f"ui-sweep-{stamp}")
    for lr in ["0.1", "0.01", "0.001"]:
        for size in ["small", "large"]:
            for seed in range(2):
                run = client.create_run(s.experiment_id, run_name=f"lr{lr}-{size}-s{seed}", start_time=stamp)
                rid = run.info.run_id
                rate = {"0.1": 0.05, "0.01": 0.02, "0.001": 0.005}[lr] * (1.3 if size == "large" else 1.0)
                metrics = []
                for step in range(40):
                    loss = 2.0 / (1 + rate * step * (1 + 0.05 * seed))
                    metrics += [Metric("train/loss", loss, stamp + step * 1000, step), Metric("train/acc", 1 - loss / 2.2, stamp + step * 1000, step),
                                Metric("val/loss", loss * 1.1, stamp + step * 1000, step), Metric("val/acc", 1 - loss / 2.0, stamp + step * 1000, step),
                                Metric("lr", float(lr) * 0.999 ** step, stamp + step * 1000, step)]
                client.log_batch(rid, metrics=metrics, params=[Param("lr", lr), Param("size", size), Param("seed", str(seed))])
                client.set_terminated(rid, "FAILED" if (lr, size, seed) == ("0.1", "large", 1) else "FINISHED")
                s.run_ids[(lr, size, seed)] = rid
    parent = client.create_run(s.experiment_id, run_name="hp-search", start_time=stamp)
    s.parent_run = parent.info.run_id
    client.log_param(s.parent_run, "search", "random")
    for i in range(3):
        child = client.create_run(s.experiment_id, run_name=f"trial-{i}", start_time=stamp, tags={"mlflow.parentRunId": s.parent_run})
        cid = child.info.run_id
        client.log_batch(cid, metrics=[Metric("val/acc", 0.5 + 0.1 * i + 0.01 * step, stamp + step, step) for step in range(10)],
                         params=[Param("lr", str(0.02 * (i + 1)))], tags=[RunTag("trial", str(i))])
        client.set_terminated(cid, "FINISHED")
        s.child_runs.append(cid)
    client.set_terminated(s.parent_run, "FINISHED")
    return s


@pytest.fixture(scope="session")
def sweep_seed():
    return seed_sweep(MlflowClient())
