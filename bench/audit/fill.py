"""Appends N audit events to a Cairn SQLite data folder, chained and signed as the server does
(README, "Audit log": SHA-256 over the previous hash and the canonical text; HMAC-SHA256 of the
head under <data-dir>/audit.key). For bench/audit/run only: a real server writes events one per
change, in the change's own transaction."""

import hashlib
import hmac
import json
import os
import sqlite3
import sys
import time

data, count = sys.argv[1], int(sys.argv[2])
key = open(os.path.join(data, "audit.key"), "rb").read()
db = sqlite3.connect(os.path.join(data, "cairn.sqlite"))
seq, previous = db.execute("SELECT last_seq, last_hash FROM audit_head WHERE id = 1").fetchone()
start = time.monotonic()
now = int(time.time() * 1000)
actions = ["run.create", "run.metrics.log", "run.params.log", "run.tags.set", "artifact.upload", "run.update"]
batch = []
for i in range(count):
    seq += 1
    action = actions[i % len(actions)]
    run = f"{i // 6:032x}"
    details = json.dumps({"points": 1000, "metric_keys": ["loss", "acc"]} if action == "run.metrics.log" else {},
                         separators=(",", ":"), sort_keys=True)
    digest = hashlib.sha256(f"{i}".encode()).hexdigest()
    row = (seq, now + i, "alice", 1, "10.0.0.7", f"req-{i:08x}", action, f"run:{run}", digest, details)
    fields = ["cairn-audit-v1", str(seq), str(row[1]), "u" + row[2], "1", row[4], row[5], action, row[7], digest, details]
    text = "".join(f"{len(f.encode())}:{f}" for f in fields)
    h = hashlib.sha256(previous.encode() + text.encode()).hexdigest()
    batch.append(row + (previous, h))
    previous = h
    if len(batch) == 50_000 or i == count - 1:
        db.executemany("INSERT INTO audit_events VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", batch)
        batch.clear()
signature = hmac.new(key, f"cairn-audit-head-v1:{seq}:{previous}".encode(), hashlib.sha256).hexdigest()
db.execute("UPDATE audit_head SET last_seq = ?, last_hash = ?, signature = ? WHERE id = 1", (seq, previous, signature))
db.commit()
db.close()
print(f"wrote {count} events in {time.monotonic() - start:.1f} s (last {seq})")
