"""Issue 11: a full disk is said as such (and where), shows on /health, and Cairn recovers
without a restart once space returns; nothing acknowledged is lost, nothing refused is kept.

The server under test runs on its own 8 MiB tmpfs (mounted by the test; needs root, as the
test command runs in CI).
"""

import os
import shutil
import subprocess
import tempfile

import pytest
import requests

from conftest import start_own_server

pytestmark = [
    pytest.mark.cairn_only,
    pytest.mark.single_server("runs a server of its own on its own small tmpfs (a full local disk); "
                              "the suite's servers are not involved, so it is the first pass again"),
]

BINARY = os.environ.get("CAIRN_BINARY", "")


@pytest.fixture
def small_disk():
    if not BINARY:
        pytest.fail("CAIRN_BINARY is not set (scripts/test sets it)")
    mount_point = tempfile.mkdtemp(prefix="cairn-full-")
    result = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=8m", "tmpfs", mount_point], capture_output=True, text=True)
    if result.returncode != 0:
        os.rmdir(mount_point)
        pytest.skip(f"cannot mount a small tmpfs here (needs root): {result.stderr.strip()}")
    try:
        yield mount_point
    finally:
        subprocess.run(["umount", "-l", mount_point], check=False)
        shutil.rmtree(mount_point, ignore_errors=True)


@pytest.fixture
def server(small_disk):
    data = os.path.join(small_disk, "data")
    log = open(os.path.join(tempfile.gettempdir(), f"cairn-full-{os.getpid()}.log"), "w")
    proc, uri = start_own_server(BINARY, data, log)
    try:
        yield uri, small_disk, data
    finally:
        proc.terminate()
        proc.wait(timeout=60)
        log.close()


def fill(folder):
    """Writes a file until the disk is full; returns its path."""
    path = os.path.join(folder, "filler")
    # Unbuffered: a buffered file would keep the bytes of the last, partial write and raise
    # ENOSPC again when closed (whether it does depends on how full the disk already was).
    with open(path, "wb", buffering=0) as f:
        try:
            while True:
                f.write(b"\0" * 65536)
        except OSError:
            pass
    return path


def test_full_disk_is_reported_and_recovered_without_restart(server):
    uri, disk, data = server
    api = uri + "/api/2.0/mlflow/"
    run = requests.post(api + "runs/create", json={"experiment_id": "0"}, timeout=120).json()["run"]["info"]
    run_id = run["run_id"]
    ok = requests.post(api + "runs/log-batch", json={"run_id": run_id, "metrics": [
        {"key": "before", "value": float(i), "timestamp": 1, "step": i} for i in range(100)]}, timeout=120)
    assert ok.status_code == 200, ok.text

    filler = fill(disk)
    big = {"run_id": run_id, "params": [{"key": f"p{i}", "value": "v" * 9000} for i in range(100)]}
    refused = requests.post(api + "runs/log-batch", json=big, timeout=120)
    assert refused.status_code == 503, refused.text
    body = refused.json()
    assert body["error_code"] == "TEMPORARILY_UNAVAILABLE"
    assert "Storage is full" in body["message"] and data in body["message"], body

    upload = requests.put(uri + f"/api/2.0/mlflow-artifacts/artifacts/0/{run_id}/artifacts/big.bin",
                          data=b"x" * (2 << 20), timeout=120)
    assert upload.status_code == 503, upload.text
    assert "Storage is full" in upload.json()["message"]

    health = requests.get(uri + "/health", timeout=120)
    assert health.status_code == 503 and "storage full" in health.text, health.text

    # Space returns: the same server takes writes again.
    os.unlink(filler)
    assert requests.get(uri + "/health", timeout=120).text == "OK"
    again = requests.post(api + "runs/log-batch", json=big, timeout=120)
    assert again.status_code == 200, again.text
    upload = requests.put(uri + f"/api/2.0/mlflow-artifacts/artifacts/0/{run_id}/artifacts/big.bin",
                          data=b"x" * (2 << 20), timeout=120)
    assert upload.status_code == 200, upload.text

    got = requests.get(api + "runs/get", params={"run_id": run_id}, timeout=120).json()["run"]["data"]
    assert len(got["params"]) == 100
    history = requests.get(api + "metrics/get-history", params={"run_id": run_id, "metric_key": "before"}, timeout=120).json()
    assert [m["step"] for m in history["metrics"]] == list(range(100))
    assert not [n for n in os.listdir(os.path.join(data, "artifacts", "tmp"))], "a refused upload left a temp file"
    verify = subprocess.run([BINARY, "verify", "--data-dir", data], capture_output=True, text=True)
    assert verify.returncode == 0, verify.stdout + verify.stderr
