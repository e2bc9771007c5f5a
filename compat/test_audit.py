"""Issue 13, audit log: every change appends an event in the same transaction, hash-chained, with
the head signed by a key outside the database.

The first test logs a run with the real `mlflow` client (params, metrics, an artifact, registry
changes) against the suite's server and reads the events back through GET /api/cairn/v1/audit.
The second starts a server of its own, then edits, deletes and inserts rows of its SQLite database
behind its back (Python's sqlite3, as the `sqlite3` shell would) and shows that `cairn audit verify`
names each change, and is satisfied again once the row is put back.
"""

import json
import os
import sqlite3
import subprocess

import pytest

import mlflow
from conftest import unique_name
from mlflow.tracking import MlflowClient

pytestmark = pytest.mark.cairn_only

BINARY = os.environ.get("CAIRN_BINARY", "").strip()


def audit(rest, **params):
    status, body = rest("GET", "/api/cairn/v1/audit", params={"max_results": 1000, **params})
    assert status == 200, body
    return body.get("events", [])


def test_a_run_logged_with_mlflow_leaves_one_event_per_change(client, experiment, rest, tmp_path):
    client.set_experiment_tag(experiment.experiment_id, "team", "vision")
    run = client.create_run(experiment.experiment_id)
    run_id = run.info.run_id
    client.log_param(run_id, "lr", "0.01")
    client.log_batch(run_id, metrics=[mlflow.entities.Metric("loss", 1.0 / (i + 1), 1000 + i, i) for i in range(300)])
    client.log_metric(run_id, "acc", 0.9, step=3)
    (tmp_path / "notes.txt").write_text("hello audit\n")
    client.log_artifact(run_id, str(tmp_path / "notes.txt"))
    client.set_terminated(run_id)
    name = unique_name("audit-model")
    client.create_registered_model(name)
    version = client.create_model_version(name, f"runs:/{run_id}/model", run_id=run_id)
    client.set_registered_model_alias(name, "champion", version.version)
    client.delete_registered_model_alias(name, "champion")

    run_events = list(reversed(audit(rest, target=f"run:{run_id}")))
    actions = [e["action"] for e in run_events]
    assert actions == ["run.create", "run.params.log", "run.metrics.log", "run.metrics.log", "run.update"], actions
    batch = run_events[2]
    assert batch["details"]["points"] == 300 and batch["details"]["metric_keys"] == ["loss"]
    assert len(batch["digest"]) == 64 and batch["digest"] != run_events[3]["digest"]
    assert run_events[3]["details"]["points"] == 1
    assert run_events[4]["details"]["status"] == "FINISHED"
    for e in run_events:
        assert e["client_address"] and e["request_id"] and len(e["hash"]) == 64
    # Later events come later in the chain.
    assert [e["seq"] for e in run_events] == sorted(e["seq"] for e in run_events)

    uploads = [e for e in audit(rest, action="artifact.upload") if run_id in e["target"]]
    assert len(uploads) == 1
    detail = uploads[0]["details"]
    assert detail["path"].endswith(f"{run_id}/artifacts/notes.txt") and detail["size"] == len("hello audit\n")
    import hashlib
    assert detail["sha256"] == hashlib.sha256(b"hello audit\n").hexdigest()

    model_events = list(reversed(audit(rest, target=f"registered_model:{name}")))
    assert [e["action"] for e in model_events] == ["registered_model.create", "registered_model.alias.set", "registered_model.alias.delete"]
    assert model_events[1]["details"] == {"alias": "champion", "version": int(version.version)}
    versions = audit(rest, target=f"model_version:{name}/{version.version}")
    assert [e["action"] for e in versions] == ["model_version.create"]
    assert versions[0]["details"]["run_id"] == run_id

    tags = [e for e in audit(rest, target=f"experiment:{experiment.experiment_id}")]
    assert [e["action"] for e in reversed(tags)] == ["experiment.create", "experiment.tag.set"]
    assert "vision" not in json.dumps(tags[0]["details"])

    # Paging: newest first, a page token for the rest.
    status, page = rest("GET", "/api/cairn/v1/audit", params={"target": f"run:{run_id}", "max_results": 2})
    assert status == 200 and len(page["events"]) == 2 and page["next_page_token"]
    status, rest_page = rest("GET", "/api/cairn/v1/audit", params={"target": f"run:{run_id}", "max_results": 10,
                                                                    "page_token": page["next_page_token"]})
    assert [e["seq"] for e in page["events"] + rest_page["events"]] == [e["seq"] for e in reversed(run_events)]
    status, body = rest("GET", "/api/cairn/v1/audit", params={"max_results": 0})
    assert status == 400 and body["error_code"] == "INVALID_PARAMETER_VALUE"


def chain_hash(previous, row):
    """The README's chain rule: SHA-256 over the previous hash and the event's canonical text (each
    field as its UTF-8 length, a colon and the field)."""
    import hashlib
    seq, time, actor, authenticated, client_address, request_id, action, target, digest, details = row[:10]
    fields = ["cairn-audit-v1", str(seq), str(time), "-" if actor is None else "u" + actor, "1" if authenticated else "0",
              client_address, request_id, action, target, digest, details]
    text = "".join(f"{len(f.encode())}:{f}" for f in fields)
    return hashlib.sha256(previous.encode() + text.encode()).hexdigest()


def verify(data):
    result = subprocess.run([BINARY, "audit", "verify", "--data-dir", data], capture_output=True, text=True, timeout=600)
    return result.returncode, result.stdout + result.stderr


@pytest.mark.single_server("runs a server of its own and edits its SQLite file; the suite's servers are not involved")
def test_verify_names_each_row_edited_deleted_or_inserted_behind_the_servers_back(own_server, tmp_path):
    uri, data = own_server
    client = MlflowClient(tracking_uri=uri)
    exp = client.create_experiment("tamper")
    for i in range(3):
        run = client.create_run(exp)
        client.log_metric(run.info.run_id, "m", i)
    assert os.path.exists(os.path.join(data, "audit.key"))
    assert oct(os.stat(os.path.join(data, "audit.key")).st_mode & 0o777) == "0o600"
    code, out = verify(data)
    assert code == 0 and out.startswith("OK: 7 events"), out

    db = sqlite3.connect(os.path.join(data, "cairn.sqlite"), timeout=60, isolation_level=None)
    # The guard against UPDATE and DELETE is a trigger: whoever holds the file can drop it.
    with pytest.raises(sqlite3.DatabaseError):
        db.execute("DELETE FROM audit_events WHERE seq = 1")
    db.execute("DROP TRIGGER audit_events_no_update")
    db.execute("DROP TRIGGER audit_events_no_delete")

    # Edited: the actor of event 3 rewritten.
    (actor,) = db.execute("SELECT actor FROM audit_events WHERE seq = 3").fetchone()
    db.execute("UPDATE audit_events SET actor = 'mallory' WHERE seq = 3")
    code, out = verify(data)
    assert code == 1 and "BROKEN  event 3 was edited" in out, out
    db.execute("UPDATE audit_events SET actor = ? WHERE seq = 3", (actor,))
    assert verify(data)[0] == 0

    # Deleted: event 4 removed from the middle.
    row = db.execute("SELECT * FROM audit_events WHERE seq = 4").fetchone()
    db.execute("DELETE FROM audit_events WHERE seq = 4")
    code, out = verify(data)
    assert code == 1 and "event 4 is missing" in out, out
    db.execute(f"INSERT INTO audit_events VALUES ({', '.join('?' * len(row))})", row)
    assert verify(data)[0] == 0

    # Inserted: a forged event after the last one (its hash even links correctly), head untouched.
    last = db.execute("SELECT * FROM audit_events ORDER BY seq DESC LIMIT 1").fetchone()
    forged = (last[0] + 1,) + tuple(last[1:10]) + (last[11],)
    forged += (chain_hash(last[11], forged),)
    db.execute(f"INSERT INTO audit_events VALUES ({', '.join('?' * len(forged))})", forged)
    code, out = verify(data)
    assert code == 1 and out.count("BROKEN") == 1, out
    assert f"past the signed head (event {last[0]}) to event {last[0] + 1}" in out, out
    # Re-pointing the head at it without the key does not help: its HMAC no longer matches.
    db.execute("UPDATE audit_head SET last_seq = ?, last_hash = (SELECT hash FROM audit_events WHERE seq = ?)", (last[0] + 1, last[0] + 1))
    code, out = verify(data)
    assert code == 1 and "event 8" in out and "HMAC DOES NOT MATCH" in out, out

    # The tail cut back: the head still names the event that is gone.
    db.execute("UPDATE audit_head SET last_seq = ?, last_hash = ?, signature = (SELECT signature FROM audit_head)", (last[0], last[-1]))
    db.execute("DELETE FROM audit_events WHERE seq >= ?", (last[0],))
    code, out = verify(data)
    assert code == 1 and f"names event {last[0]} but the log ends at event {last[0] - 1}" in out, out
    db.close()

    # export writes what is there, one JSON object per line.
    out_file = tmp_path / "audit.jsonl"
    result = subprocess.run([BINARY, "audit", "export", "--data-dir", data, "--since", "2", "--output", str(out_file)],
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr
    lines = [json.loads(x) for x in out_file.read_text().splitlines()]
    assert [x["seq"] for x in lines] == list(range(3, last[0]))
