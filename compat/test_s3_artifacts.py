"""Artifacts on S3 end to end: the real `cairn` binary ($CAIRN_BINARY) serving with
`--artifacts-destination s3://<bucket>/<prefix>` against the S3 test server
($CAIRN_TEST_S3_ENDPOINT, moto in server mode), and the real `mlflow` client logging and
downloading artifacts through the proxy. Runs only when CAIRN_TEST_S3_ENDPOINT is set.

The server is started here (not the suite's server) so the bucket and its contents are known.
"""

import hashlib
import json
import os
import re
import socket
import subprocess
import sys
import tempfile
import time
import uuid

import pytest
import requests

S3_ENDPOINT = os.environ.get("CAIRN_TEST_S3_ENDPOINT", "").strip().rstrip("/")

pytestmark = [
    pytest.mark.cairn_only,
    pytest.mark.skipif(not S3_ENDPOINT, reason="CAIRN_TEST_S3_ENDPOINT is not set (the S3 test server, e.g. moto)"),
]

# Run by the real mlflow client in its own process, pointed at the S3-backed server.
CLIENT_SCRIPT = r"""
import hashlib, json, os, sys
import mlflow
from mlflow.tracking import MlflowClient

work = sys.argv[1]
client = MlflowClient()
experiment = client.create_experiment("s3-e2e-" + os.urandom(4).hex())
run = client.create_run(experiment)
run_id = run.info.run_id
src = os.path.join(work, "src")
os.makedirs(os.path.join(src, "nested", "déjà vu"))
files = {
    "notes.txt": b"hello from the mlflow client\n",
    "nested/weights.bin": os.urandom(6 * 1024 * 1024 + 123),
    "nested/déjà vu/empty.txt": b"",
}
for rel, data in files.items():
    with open(os.path.join(src, rel), "wb") as f:
        f.write(data)
client.log_artifact(run_id, os.path.join(src, "notes.txt"))
client.log_artifacts(run_id, os.path.join(src, "nested"), artifact_path="nested")
client.set_terminated(run_id)
dst = client.download_artifacts(run_id, "", os.path.join(work, "dst"))
out = {}
for rel in files:
    with open(os.path.join(dst, rel), "rb") as f:
        out[rel] = hashlib.sha256(f.read()).hexdigest()
listed = sorted(a.path for a in client.list_artifacts(run_id, "nested"))
print(json.dumps({
    "run_id": run_id,
    "artifact_uri": client.get_run(run_id).info.artifact_uri,
    "sent": {rel: hashlib.sha256(data).hexdigest() for rel, data in files.items()},
    "sizes": {rel: len(data) for rel, data in files.items()},
    "downloaded": out,
    "listed": listed,
}))
"""


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def bucket_keys(bucket):
    """Every key in the bucket (moto answers unsigned requests)."""
    resp = requests.get(f"{S3_ENDPOINT}/{bucket}", params={"list-type": "2"}, timeout=30)
    assert resp.status_code == 200, resp.text
    return sorted(re.findall(r"<Key>([^<]*)</Key>", resp.text))


@pytest.fixture
def s3_server():
    binary = os.environ.get("CAIRN_BINARY", "").strip()
    if not binary:
        pytest.skip("CAIRN_BINARY is not set: this test starts the real cairn binary (scripts/test sets it)")
    bucket = "cairn-e2e-" + uuid.uuid4().hex[:16]
    assert requests.put(f"{S3_ENDPOINT}/{bucket}", timeout=30).status_code == 200
    port = free_port()
    env = dict(os.environ)
    env.update({
        "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing-secret-value",
        "AWS_REGION": "us-east-1", "MLFLOW_S3_ENDPOINT_URL": S3_ENDPOINT,
    })
    with tempfile.TemporaryDirectory(prefix="cairn-s3-e2e-") as data:
        log = open(os.path.join(data, "server.log"), "w+")
        proc = subprocess.Popen(
            [binary, "server", "--port", str(port), "--data-dir", data,
             "--artifacts-destination", f"s3://{bucket}/team/artifacts"],
            env=env, stdout=log, stderr=subprocess.STDOUT)
        url = f"http://127.0.0.1:{port}"
        try:
            for _ in range(600):
                if proc.poll() is not None:
                    break
                try:
                    if requests.get(url + "/health", timeout=2).status_code == 200:
                        break
                except requests.RequestException:
                    time.sleep(0.1)
            log.seek(0)
            assert proc.poll() is None, f"cairn server exited: {log.read()}"
            yield url, bucket, log
        finally:
            proc.terminate()
            proc.wait(timeout=30)
            log.close()


def test_mlflow_client_logs_and_downloads_artifacts_through_the_proxy_on_s3(s3_server, tmp_path):
    url, bucket, log = s3_server
    env = dict(os.environ, MLFLOW_TRACKING_URI=url)
    result = subprocess.run([sys.executable, "-c", CLIENT_SCRIPT, str(tmp_path)], env=env,
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["downloaded"] == report["sent"]
    assert report["listed"] == ["nested/déjà vu", "nested/weights.bin"]
    assert report["artifact_uri"].startswith("mlflow-artifacts:")

    # The bytes are in the bucket, content-addressed, and nothing else is left there.
    keys = bucket_keys(bucket)
    assert keys == sorted(f"team/artifacts/blobs/{digest}" for digest in set(report["sent"].values()))

    # Range requests through the proxy behave as with local files.
    root = report["artifact_uri"].split("mlflow-artifacts:", 1)[1].lstrip("/")
    weights = f"{url}/api/2.0/mlflow-artifacts/artifacts/{root}/nested/weights.bin"
    size = report["sizes"]["nested/weights.bin"]
    whole = requests.get(weights, timeout=60)
    assert whole.status_code == 200 and whole.headers["Accept-Ranges"] == "bytes"
    assert hashlib.sha256(whole.content).hexdigest() == report["sent"]["nested/weights.bin"]
    part = requests.get(weights, headers={"Range": "bytes=1000-1999"}, timeout=60)
    assert part.status_code == 206
    assert part.headers["Content-Range"] == f"bytes 1000-1999/{size}"
    assert part.content == whole.content[1000:2000]
    tail = requests.get(weights, headers={"Range": "bytes=-10"}, timeout=60)
    assert tail.status_code == 206 and tail.content == whole.content[-10:]
    beyond = requests.get(weights, headers={"Range": f"bytes={size}-"}, timeout=60)
    assert beyond.status_code == 416 and beyond.headers["Content-Range"] == f"bytes */{size}"

    # Credentials never appear in what the server printed.
    log.seek(0)
    assert "testing-secret-value" not in log.read()
