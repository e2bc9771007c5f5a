"""Durability under SIGKILL: concurrent ingest clients, the server killed mid-stream several times.

The test starts its OWN `cairn server` (from $CAIRN_BINARY) on a free loopback port with a fresh data
folder; it never touches the shared server of the suite. Four client threads stream `runs/log-batch`
requests (each batch: K points on key "m", one tag `batch-<i>` = "done", one param `p<i>` = "<i>") until
they are told to stop. A chaos controller SIGKILLs the server and restarts it on the same port and data
folder each time the clients together have had a few more batches acknowledged (a random number between
1 and ACKS_PER_KILL_MAX, with at least one request in flight at the moment of the kill), and stops the
clients only after exactly KILLS kills. Nothing waits for wall-clock time: the number of kills, and how
much is written between them, do not depend on the speed of the machine. The only time limits are hang
protection (HANG_TIMEOUT, minutes), and hitting one fails the test with a message saying what hung.

A batch answered 200 is "acknowledged": it must survive. A batch whose request failed at the transport
level (connection reset/refused) is "unknown": it may or may not have committed. Two kinds of client:
  - retrying clients (even index) send an unknown batch again, unchanged, once the server is back, until
    it is acknowledged: the server must store a point it already holds only once, so a retried batch that
    had in fact committed before the kill leaves no duplicate;
  - moving-on clients (odd index) never resend: they go on with a new batch id, so each unknown batch
    stays as the kill left it and must be all there or not there at all (no partial commit).
A batch answered non-200 is "rejected"; if that was its only attempt, it must have changed nothing.

Every point is unique (step = a per-client sequence number, value and timestamp functions of it), so a
replayed or doubled point shows up as two rows for one step. After the chaos the clients stop, the server
is killed one last time with nothing in flight, restarted, and every run's full history is read back:
  1. every acknowledged point is present exactly once (no duplicate step anywhere);
  2. every batch that is present at all is complete: all its points, its tag and its param;
  3. no point exists that belongs to no batch a client sent (and every point has the value/timestamp sent);
  4. data.metrics (latest per key) matches the max-step point of the history.

It runs on SQLite, on one replica on PostgreSQL, and on two replicas on one PostgreSQL database with the
clients spread over both and the kills alternating between them (the PostgreSQL layouts need
CAIRN_TEST_POSTGRES_URL, which scripts/test sets).

Scale with CAIRN_DURABILITY_SCALE (default 1: 8 kills during the stream plus the final one). The chaos is
random; the seed is printed and CAIRN_DURABILITY_SEED=<seed> repeats the same choices.
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

pytestmark = [
    pytest.mark.cairn_only,
    pytest.mark.single_server("starts, SIGKILLs and restarts a server of its own on a local data folder; "
                              "the suite's servers are not involved, so it is the first pass again"),
]

API = "/api/2.0/mlflow/"
N_CLIENTS = 4
K = 200  # points per batch
SCALE = float(os.environ.get("CAIRN_DURABILITY_SCALE", "1") or "1")
KILLS = max(3, round(8 * SCALE))  # SIGKILLs while the clients stream (the quiet final kill is extra)
ACKS_PER_KILL_MAX = 80  # between two kills the clients get 1..ACKS_PER_KILL_MAX more batches acknowledged
TAIL_ACKS = 8
# A valid batch answered non-200 is tolerated (and checked to have changed nothing), but a server that keeps
# refusing them would keep the clients spinning: the controller gives up after this many.
MAX_REJECTED = 50  # acknowledged batches on the last incarnation before the clients are stopped
# Hang protection only: no wait of this test is expected to come anywhere near it, even on a slow, busy
# machine. Reaching it means something hung (a server that never answers, a client stuck), and the test
# fails saying what.
HANG_TIMEOUT = float(os.environ.get("CAIRN_DURABILITY_HANG_TIMEOUT", "300") or "300")
REQUEST_TIMEOUT = (HANG_TIMEOUT, HANG_TIMEOUT)  # (connect, read) for log-batch: a SIGKILL resets at once
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

    def __init__(self, binary, data_dir, port, store_args=()):
        self.binary = binary
        self.data_dir = data_dir
        self.port = port
        self.store_args = list(store_args)
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

    def _spawn(self):
        self.starts += 1
        with open(self.log_path, "a") as log:
            log.write(f"\n--- start #{self.starts} ---\n")
            log.flush()
            self.proc = subprocess.Popen(
                [self.binary, "server", "--host", "127.0.0.1", "--port", str(self.port),
                 "--data-dir", self.data_dir, "--log-level", "warning", *self.store_args],
                stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            )

    def start(self):
        """Starts the server and polls /health until it answers "OK". A process that exits before
        answering (e.g. the port is briefly taken) is started again. Fails, with the log tail, only when
        nothing answers within HANG_TIMEOUT."""
        deadline = time.monotonic() + HANG_TIMEOUT
        exits = []
        self._spawn()
        while True:
            code = self.proc.poll()
            if code is not None:
                exits.append(code)
                if len(exits) >= 20:
                    raise AssertionError(f"cairn server on port {self.port} exited {len(exits)} times in a row "
                                         f"before answering /health (exit codes {exits}); log tail:\n"
                                         f"{self.log_tail()}")
                self._spawn()
                continue
            try:
                r = requests.get(self.uri + "/health", timeout=5)
                if r.status_code == 200 and r.text.strip() == "OK":
                    return
            except requests.RequestException:
                pass
            if time.monotonic() > deadline:
                self.kill()
                raise AssertionError(f"hang protection: cairn server (start #{self.starts}, port {self.port}) did "
                                     f"not answer /health within {HANG_TIMEOUT:.0f} s; log tail:\n{self.log_tail()}")
            time.sleep(0.02)  # poll interval, not a timing assumption

    def kill(self):
        if self.proc is not None and self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGKILL)
        if self.proc is not None:
            self.proc.wait(timeout=HANG_TIMEOUT)


class Progress:
    """What the controller waits for: acknowledgements, requests in flight, clients that ended."""

    def __init__(self):
        self.cond = threading.Condition()
        self.acks = 0
        self.in_flight = 0

    def wait_until(self, predicate, clients, what):
        """Blocks until predicate() (called under the lock) is true. Fails at once if a client thread
        ended (they run until told to stop), and after HANG_TIMEOUT with `what` in the message."""
        deadline = time.monotonic() + HANG_TIMEOUT
        with self.cond:
            while not predicate():
                refusals = {cl.idx: dict(list(cl.rejected.items())[:2]) for cl in clients if cl.rejected}
                if sum(len(cl.rejected) for cl in clients) >= MAX_REJECTED:
                    raise AssertionError(f"the server answered {MAX_REJECTED} valid batches with an error, e.g. "
                                         f"{refusals}")
                ended = [cl for cl in clients if cl.ended]
                if ended:
                    raise AssertionError(f"ingest client(s) {[cl.idx for cl in ended]} ended before being told to "
                                         f"stop: {[repr(cl.error) for cl in ended]}")
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise AssertionError(f"hang protection: {what} did not happen within {HANG_TIMEOUT:.0f} s "
                                         f"(acks so far {self.acks}, in flight {self.in_flight}, "
                                         f"non-200 answers {refusals})")
                self.cond.wait(remaining)


class IngestClient(threading.Thread):
    def __init__(self, idx, run_id, uri, server_up, stop, progress):
        super().__init__(name=f"ingest-{idx}", daemon=True)
        self.idx = idx
        self.retries = idx % 2 == 0  # resend an unknown batch unchanged (True) or move on to a new id
        self.run_id = run_id
        self.url = uri + API + "runs/log-batch"
        self.server_up = server_up
        self.stop = stop
        self.progress = progress
        self.sent = set()  # batch ids whose request was sent (or attempted)
        self.attempts = {}  # batch id -> number of requests sent for it
        self.acked = set()  # batch ids answered 200
        self.unknown = set()  # batch ids whose last request failed at the transport level, never answered 200
        self.rejected = {}  # batch id -> (status, body) for a non-200 answer
        self.error = None
        self.ended = False

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
            while True:
                self.server_up.wait()  # the controller sets it when the server is up, and when stopping
                if self.stop.is_set():
                    break
                body = self.batch(i)
                self.sent.add(i)
                self.attempts[i] = self.attempts.get(i, 0) + 1
                with self.progress.cond:
                    self.progress.in_flight += 1
                    self.progress.cond.notify_all()
                try:
                    r = session.post(self.url, json=body, timeout=REQUEST_TIMEOUT)
                except requests.RequestException:
                    r = None
                    self.unknown.add(i)
                    session.close()
                    session = requests.Session()  # do not reuse a pooled connection to a dead process
                with self.progress.cond:
                    self.progress.in_flight -= 1
                    if r is not None and r.status_code == 200:
                        self.acked.add(i)
                        self.unknown.discard(i)
                        self.progress.acks += 1
                    elif r is not None:
                        self.rejected[i] = (r.status_code, r.text[:300])
                    self.progress.cond.notify_all()
                if r is None and self.retries:
                    continue  # the same batch again, once the server is back
                i += 1
            session.close()
        except BaseException as exc:  # surfaced by the main thread
            self.error = exc
        finally:
            with self.progress.cond:
                self.ended = True
                self.progress.cond.notify_all()


def _get(uri, path, params):
    r = requests.get(uri + API + path, params=params, timeout=HANG_TIMEOUT)
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


POSTGRES_URL = os.environ.get("CAIRN_TEST_POSTGRES_URL", "").strip()


def _postgres_database():
    """A new database on the test PostgreSQL server (CAIRN_TEST_POSTGRES_URL, which scripts/test sets); its URI."""
    name = f"cairn_durability_{os.getpid()}_{random.randrange(2**31)}"
    subprocess.run(["psql", POSTGRES_URL, "-v", "ON_ERROR_STOP=1", "-q", "-c", f"CREATE DATABASE {name}"], check=True)
    return POSTGRES_URL.rsplit("/", 1)[0] + "/" + name


# sqlite: one server on its data folder. postgres: one replica on PostgreSQL. postgres-2-replicas: two
# replicas on one database, half the clients on each, the kills alternating between them while the other
# replica keeps serving its clients.
LAYOUTS = ["sqlite", "postgres", "postgres-2-replicas"]


@pytest.mark.parametrize("layout", LAYOUTS)
def test_sigkill_durability(layout):
    binary = os.environ.get("CAIRN_BINARY", "").strip()
    if not binary:
        pytest.skip("CAIRN_BINARY is not set: this test starts its own cairn server from that binary "
                    "(scripts/test exports it)")
    assert os.access(binary, os.X_OK), f"CAIRN_BINARY={binary} is not an executable"
    if layout != "sqlite" and not POSTGRES_URL:
        pytest.skip("CAIRN_TEST_POSTGRES_URL is not set: scripts/test starts a throwaway PostgreSQL and sets it")

    seed = int(os.environ.get("CAIRN_DURABILITY_SEED", "") or random.randrange(2**32))
    rng = random.Random(seed)
    data_dir = tempfile.mkdtemp(prefix="cairn-durability.")
    database = None if layout == "sqlite" else _postgres_database()
    store_args = [] if database is None else ["--backend-store-uri", database]
    if database is not None:
        # Replicas on one PostgreSQL sign one audit chain: one key file, outside the database.
        key_file = os.path.join(data_dir, "audit.key")
        with open(key_file, "wb") as fh:
            fh.write(os.urandom(32))
        os.chmod(key_file, 0o600)
        store_args += ["--audit-key-file", key_file]
    replicas = 2 if layout == "postgres-2-replicas" else 1
    servers = []
    for r in range(replicas):
        folder = os.path.join(data_dir, f"replica-{r}")
        os.makedirs(folder)
        servers.append(Server(binary, folder, _free_port(), store_args))
    server = servers[0]
    clients = []
    stop = threading.Event()
    ups = [threading.Event() for _ in servers]
    progress = Progress()
    keep_data = False
    try:
        for s in servers:
            s.start()
        run_ids = []
        for _ in range(N_CLIENTS):
            r = requests.post(server.uri + API + "runs/create", json={"experiment_id": "0"}, timeout=HANG_TIMEOUT)
            assert r.status_code == 200, r.text
            run_ids.append(r.json()["run"]["info"]["run_id"])

        clients = [IngestClient(c, run_ids[c], servers[c % replicas].uri, ups[c % replicas], stop, progress)
                   for c in range(N_CLIENTS)]
        for up in ups:
            up.set()
        for cl in clients:
            cl.start()

        # Chaos: after n more acknowledged batches, with a request in flight, SIGKILL and restart on the same
        # port and data folder. Exactly KILLS times, whatever the speed of the machine.
        kills = 0
        in_flight_at_kill = []
        while kills < KILLS:
            with progress.cond:
                target = progress.acks + rng.randint(1, ACKS_PER_KILL_MAX)
            progress.wait_until(lambda: progress.acks >= target and progress.in_flight > 0, clients,
                                f"ack #{target} with a request in flight (before kill #{kills + 1})")
            with progress.cond:
                in_flight_at_kill.append(progress.in_flight)  # requests started and not yet answered
            victim = kills % replicas
            ups[victim].clear()
            servers[victim].kill()
            kills += 1
            servers[victim].start()
            ups[victim].set()

        # The clients land a few acknowledged batches on the last incarnation, then stop.
        with progress.cond:
            target = progress.acks + TAIL_ACKS
        progress.wait_until(lambda: progress.acks >= target, clients, f"ack #{target} after the last restart")
        stop.set()
        for up in ups:
            up.set()
        for cl in clients:
            cl.join(timeout=HANG_TIMEOUT)
            assert not cl.is_alive(), f"hang protection: client {cl.idx} did not stop within {HANG_TIMEOUT:.0f} s"
            assert cl.error is None, f"client {cl.idx} crashed: {cl.error!r}"

        # One last SIGKILL of every replica with nothing in flight: what was acknowledged must be on disk,
        # not in memory. Everything is read back through the first replica.
        for s in servers:
            s.kill()
        for s in servers:
            s.start()

        # Verify.
        lost = duplicated = partial = foreign = wrong_value = summary_bad = 0
        problems = []
        acked_batches = acked_points = unknown_batches = unknown_committed = rejected_batches = 0
        rejected_committed = retried_acked = 0
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
                    retried_acked += cl.attempts[i] > 1
                    if not complete:
                        lost += K - steps_there + (not tag_ok) + (not param_ok)
                        if len(problems) < 20:
                            problems.append(f"client {cl.idx}: ACKNOWLEDGED batch {i} incomplete: "
                                            f"{steps_there}/{K} points, tag={tag_ok}, param={param_ok}")
                    continue
                if i in cl.rejected:
                    rejected_batches += 1
                    if cl.attempts[i] == 1:  # after an earlier unknown attempt it may hold that one's commit
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
            f"layout={layout} seed={seed} kills={kills}+1 quiet server_starts={[s.starts for s in servers]} "
            f"in_flight_at_kills={in_flight_at_kill} "
            f"batches_acknowledged={acked_batches} (after a retry={retried_acked}) points_acknowledged={acked_points} "
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
        assert kills == KILLS, detail
        assert acked_batches >= KILLS + TAIL_ACKS, detail  # by construction; a failure here is a test bug
        assert lost == 0, "acknowledged data lost: " + detail
        assert duplicated == 0, "duplicated points: " + detail
        assert partial == 0, "partially committed batches: " + detail
        assert foreign == 0 and wrong_value == 0, "points nobody sent: " + detail
        assert rejected_committed == 0, "a batch answered non-200 was (partly) committed: " + detail
        assert summary_bad == 0, "latest-metric summary disagrees with history: " + detail
    finally:
        stop.set()
        for up in ups:
            up.set()
        for s in servers:
            s.kill()
        for cl in clients:
            cl.join(timeout=10)
        if not keep_data:
            shutil.rmtree(data_dir, ignore_errors=True)
            if database is not None:
                name = database.rsplit("/", 1)[1]
                subprocess.run(["psql", POSTGRES_URL, "-q", "-c", f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"], check=False)
