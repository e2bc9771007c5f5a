"""Durability under SIGKILL: concurrent ingest clients, the server killed mid-stream several times.

The test starts its OWN `cairn server` (from $CAIRN_BINARY) on a free loopback port with a fresh data
folder; it never touches the shared server of the suite. Four client threads stream `runs/log-batch`
requests (each batch: K points on key "m", one tag `batch-<i>` = "done", one param `p<i>` = "<i>") while
the main thread SIGKILLs the server every 0.5-1.5 s and restarts it on the same port and data folder.

A batch answered 200 is "acknowledged": it must survive. A batch whose request failed at the transport
level (connection reset/refused, timeout) is "unknown": it may or may not have committed, but it must be
all there or not there at all. Failed batches are never retried as such; the client moves on to a new
batch id once the server is back.

Every point is unique (step = a per-client sequence number, value and timestamp functions of it), so a
replayed or doubled point shows up as two rows for one step. After the chaos the server is killed one last
time, restarted, and every run is checked:
  1. every acknowledged point is present exactly once (no duplicate step anywhere);
  2. every batch that is present at all is complete: all its points, its tag and its param;
  3. no point exists that belongs to no batch a client sent (and every point has the value/timestamp sent);
  4. data.metrics (latest per key) matches the max-step point of the history.

Scale with CAIRN_DURABILITY_SCALE (default 1: ~10 s of chaos, >= 5 kills).
"""

import os
import random
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time

import pytest
import requests

pytestmark = pytest.mark.cairn_only

API = "/api/2.0/mlflow/"
N_CLIENTS = 4
K = 200  # points per batch
SCALE = float(os.environ.get("CAIRN_DURABILITY_SCALE", "1") or "1")
CHAOS_SECONDS = 8.0 * SCALE
MIN_KILLS = max(3, int(5 * SCALE))
MAX_BATCHES_PER_CLIENT = int(400 * SCALE)  # point budget: N_CLIENTS * MAX_BATCHES_PER_CLIENT * K
REQUEST_TIMEOUT = (2.0, 5.0)  # (connect, read) for log-batch
TS_BASE = 1_700_000_000_000


def _free_port():
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
    finally:
        s.close()


def _point(client, seq):
    """The one point a client sends for sequence number `seq` (value exact in binary floating point)."""
    return {"key": "m", "value": seq * 0.25 + client, "timestamp": TS_BASE + seq, "step": seq}


class Server:
    """A `cairn server` child process that can be SIGKILLed and restarted on the same port and data folder."""

    def __init__(self, binary, data_dir, port):
        self.binary = binary
        self.data_dir = data_dir
        self.port = port
        self.uri = f"http://127.0.0.1:{port}"
        self.log_path = os.path.join(data_dir, "server.log")
        self.proc = None
        self.starts = 0

    def log_tail(self, n=40):
        try:
            with open(self.log_path, "r", errors="replace") as fh:
                return "".join(fh.readlines()[-n:])
        except OSError:
            return "<no log>"

    def start(self):
        for attempt in range(5):
            self.starts += 1
            with open(self.log_path, "a") as log:
                log.write(f"\n--- start #{self.starts} ---\n")
                log.flush()
                self.proc = subprocess.Popen(
                    [self.binary, "server", "--host", "127.0.0.1", "--port", str(self.port),
                     "--data-dir", self.data_dir, "--log-level", "warning"],
                    stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                )
            if self._wait_health(timeout=15.0):
                return
            if self.proc.poll() is None:  # alive but not answering: give up on it
                self.kill()
                break
            time.sleep(0.05 * (attempt + 1))  # it exited (e.g. port not yet free); try again
        raise AssertionError(f"cairn server did not come up on port {self.port}; log tail:\n{self.log_tail()}")

    def _wait_health(self, timeout):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                return False
            try:
                r = requests.get(self.uri + "/health", timeout=0.5)
                if r.status_code == 200 and r.text.strip() == "OK":
                    return True
            except requests.RequestException:
                pass
            time.sleep(0.02)
        return False

    def kill(self):
        if self.proc is not None and self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGKILL)
        if self.proc is not None:
            self.proc.wait(timeout=30)


class IngestClient(threading.Thread):
    def __init__(self, idx, run_id, uri, server_up, stop):
        super().__init__(name=f"ingest-{idx}", daemon=True)
        self.idx = idx
        self.run_id = run_id
        self.url = uri + API + "runs/log-batch"
        self.server_up = server_up
        self.stop = stop
        self.sent = set()  # batch ids whose request was sent (or attempted)
        self.acked = set()  # batch ids answered 200
        self.unknown = set()  # batch ids whose request failed at the transport level
        self.rejected = {}  # batch id -> (status, body) for a non-200 answer
        self.error = None
        self.acks_total = 0

    def batch(self, i):
        return {
            "run_id": self.run_id,
            "metrics": [_point(self.idx, seq) for seq in range(i * K, (i + 1) * K)],
            "params": [{"key": f"p{i}", "value": str(i)}],
            "tags": [{"key": f"batch-{i}", "value": "done"}],
        }

    def run(self):
        try:
            session = requests.Session()
            i = 0
            while not self.stop.is_set() and i < MAX_BATCHES_PER_CLIENT:
                self.server_up.wait(timeout=30)
                if self.stop.is_set():
                    break
                body = self.batch(i)
                self.sent.add(i)
                try:
                    r = session.post(self.url, json=body, timeout=REQUEST_TIMEOUT)
                except requests.RequestException:
                    self.unknown.add(i)
                    session.close()
                    session = requests.Session()  # do not reuse a pooled connection to a dead process
                    time.sleep(0.01)
                else:
                    if r.status_code == 200:
                        self.acked.add(i)
                        self.acks_total += 1
                    else:
                        self.rejected[i] = (r.status_code, r.text[:300])
                        time.sleep(0.01)
                i += 1  # never reuse a batch id, whatever happened
            session.close()
        except BaseException as exc:  # surfaced by the main thread
            self.error = exc


def _get(uri, path, params):
    r = requests.get(uri + API + path, params=params, timeout=30)
    assert r.status_code == 200, (path, params, r.status_code, r.text[:500])
    return r.json()


def _history(uri, run_id):
    points, token = [], None
    while True:
        params = {"run_id": run_id, "metric_key": "m"}
        if token:
            params["page_token"] = token
        body = _get(uri, "metrics/get-history", params)
        points.extend(body.get("metrics", []))
        token = body.get("next_page_token")
        if not token:
            return points


def test_sigkill_durability():
    binary = os.environ.get("CAIRN_BINARY", "").strip()
    if not binary:
        pytest.skip("CAIRN_BINARY is not set: this test starts its own cairn server from that binary "
                    "(scripts/test exports it)")
    assert os.access(binary, os.X_OK), f"CAIRN_BINARY={binary} is not an executable"

    data_dir = tempfile.mkdtemp(prefix="cairn-durability.")
    server = Server(binary, data_dir, _free_port())
    clients = []
    stop = threading.Event()
    server_up = threading.Event()
    keep_data = False
    try:
        server.start()
        server_up.set()
        run_ids = []
        for _ in range(N_CLIENTS):
            r = requests.post(server.uri + API + "runs/create", json={"experiment_id": "0"}, timeout=10)
            assert r.status_code == 200, r.text
            run_ids.append(r.json()["run"]["info"]["run_id"])

        clients = [IngestClient(c, run_ids[c], server.uri, server_up, stop) for c in range(N_CLIENTS)]
        for cl in clients:
            cl.start()

        # Chaos: SIGKILL mid-stream, restart on the same port and data folder.
        rng = random.Random()
        kills = 0
        t_end = time.monotonic() + CHAOS_SECONDS
        while (time.monotonic() < t_end or kills < MIN_KILLS) and any(cl.is_alive() for cl in clients):
            time.sleep(rng.uniform(0.5, 1.5))
            # Make sure the kill lands mid-stream: at least one ack since the last restart (bounded wait).
            acks0 = sum(cl.acks_total for cl in clients)
            wait_until = time.monotonic() + 5.0
            while sum(cl.acks_total for cl in clients) == acks0 and time.monotonic() < wait_until:
                time.sleep(0.01)
            time.sleep(rng.uniform(0.0, 0.05))
            server_up.clear()
            server.kill()
            kills += 1
            server.start()
            server_up.set()

        # Let the clients land a few acknowledged batches on the last incarnation, then stop them.
        time.sleep(0.3)
        stop.set()
        server_up.set()
        for cl in clients:
            cl.join(timeout=30)
            assert not cl.is_alive(), f"client {cl.idx} did not stop"
            assert cl.error is None, f"client {cl.idx} crashed: {cl.error!r}"

        # One last SIGKILL with nothing in flight: what was acknowledged must be on disk, not in memory.
        server_up.clear()
        server.kill()
        kills += 1
        server.start()

        # Verify.
        lost = duplicated = partial = foreign = wrong_value = summary_bad = 0
        problems = []
        acked_batches = acked_points = unknown_batches = unknown_committed = rejected_batches = 0
        rejected_committed = 0
        for cl in clients:
            hist = _history(server.uri, cl.run_id)
            run = _get(server.uri, "runs/get", {"run_id": cl.run_id})["run"]
            data = run.get("data", {})
            tags = {t["key"]: t["value"] for t in data.get("tags", [])}
            params = {p["key"]: p["value"] for p in data.get("params", [])}
            latest = {m["key"]: m for m in data.get("metrics", [])}

            by_step = {}
            for p in hist:
                by_step.setdefault(int(p["step"]), []).append(p)
            for step, pts in by_step.items():
                want = _point(cl.idx, step)
                if len(pts) > 1:
                    duplicated += len(pts) - 1
                    if len(problems) < 20:
                        problems.append(f"client {cl.idx}: step {step} stored {len(pts)} times: {pts}")
                if step // K not in cl.sent or step < 0:
                    foreign += len(pts)
                    if len(problems) < 20:
                        problems.append(f"client {cl.idx}: point of unsent batch {step // K}: {pts}")
                for p in pts:
                    if float(p["value"]) != want["value"] or int(p["timestamp"]) != want["timestamp"]:
                        wrong_value += 1
                        if len(problems) < 20:
                            problems.append(f"client {cl.idx}: step {step} is {p}, sent {want}")

            present_batches = {s // K for s in by_step} | {
                int(k[len("batch-"):]) for k in tags if k.startswith("batch-") and k[len("batch-"):].isdigit()
            } | {int(k[1:]) for k in params if k.startswith("p") and k[1:].isdigit()}
            for i in sorted(cl.sent):
                steps_there = sum(1 for s in range(i * K, (i + 1) * K) if s in by_step)
                tag_ok = tags.get(f"batch-{i}") == "done"
                param_ok = params.get(f"p{i}") == str(i)
                complete = steps_there == K and tag_ok and param_ok
                absent = steps_there == 0 and f"batch-{i}" not in tags and f"p{i}" not in params
                if i in cl.acked:
                    acked_batches += 1
                    acked_points += K
                    if not complete:
                        lost += K - steps_there + (not tag_ok) + (not param_ok)
                        if len(problems) < 20:
                            problems.append(f"client {cl.idx}: ACKNOWLEDGED batch {i} incomplete: "
                                            f"{steps_there}/{K} points, tag={tag_ok}, param={param_ok}")
                    continue
                if i in cl.rejected:
                    rejected_batches += 1
                    rejected_committed += not absent
                elif i in cl.unknown:
                    unknown_batches += 1
                    unknown_committed += complete
                if not complete and not absent:
                    partial += 1
                    if len(problems) < 20:
                        problems.append(f"client {cl.idx}: batch {i} PARTIAL: {steps_there}/{K} points, "
                                        f"tag={tags.get(f'batch-{i}')!r}, param={params.get(f'p{i}')!r}")
            for i in present_batches - cl.sent:
                foreign += 1
                if len(problems) < 20:
                    problems.append(f"client {cl.idx}: batch {i} present but never sent")

            # 4. the latest-value summary agrees with the history
            if by_step:
                top = _point(cl.idx, max(by_step))
                got = latest.get("m")
                if (got is None or int(got["step"]) != top["step"] or float(got["value"]) != top["value"]
                        or int(got["timestamp"]) != top["timestamp"]):
                    summary_bad += 1
                    problems.append(f"client {cl.idx}: data.metrics latest {got} but max-step point is {top}")
            elif "m" in latest:
                summary_bad += 1
                problems.append(f"client {cl.idx}: data.metrics has {latest['m']} but the history is empty")

        figures = (
            f"kills={kills} server_starts={server.starts} "
            f"batches_acknowledged={acked_batches} points_acknowledged={acked_points} "
            f"unknown_batches={unknown_batches} (committed={unknown_committed}) "
            f"rejected_batches={rejected_batches} (committed={rejected_committed}) "
            f"lost={lost} duplicated={duplicated} partial={partial} foreign={foreign} "
            f"wrong_value={wrong_value} summary_mismatch={summary_bad}"
        )
        print("\ndurability:", figures)
        for cl in clients:
            if cl.rejected:
                print(f"client {cl.idx} non-200 answers: {dict(list(cl.rejected.items())[:3])}")

        detail = figures + ("\n" + "\n".join(problems) if problems else "")
        keep_data = bool(lost or duplicated or partial or foreign or wrong_value or summary_bad or rejected_committed)
        if keep_data:
            detail += f"\ndata folder kept for inspection: {data_dir}\nserver log tail:\n{server.log_tail()}"
        assert kills >= MIN_KILLS, detail
        assert acked_batches > 0, "no batch was ever acknowledged: " + detail
        assert lost == 0, "acknowledged data lost: " + detail
        assert duplicated == 0, "duplicated points: " + detail
        assert partial == 0, "partially committed batches: " + detail
        assert foreign == 0 and wrong_value == 0, "points nobody sent: " + detail
        assert rejected_committed == 0, "a batch answered non-200 was (partly) committed: " + detail
        assert summary_bad == 0, "latest-metric summary disagrees with history: " + detail
    finally:
        stop.set()
        server_up.set()
        server.kill()
        for cl in clients:
            cl.join(timeout=10)
        if not keep_data:
            shutil.rmtree(data_dir, ignore_errors=True)
