#!/usr/bin/env python3
"""Bytes on disk per metric point in a Cairn or MLflow SQLite database, after bench/run stopped
the server.

Counts the pages (SQLite's dbstat) of the table that holds metric points and of its indexes —
Cairn's metric_segments, MLflow's metrics — divided by the points they hold. Standard library only.

usage: bytes_per_point.py DATABASE OUT.json
"""
import json
import sqlite3
import sys

db = sqlite3.connect(f"file:{sys.argv[1]}?mode=ro", uri=True)
tables = {row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
if "metric_segments" in tables:
    table = "metric_segments"
    points = db.execute("SELECT COALESCE(SUM(point_count), 0) FROM metric_segments").fetchone()[0]
else:
    table = "metrics"
    points = db.execute("SELECT COUNT(*) FROM metrics").fetchone()[0]
btrees = [row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE tbl_name = ?", (table,))]
marks = ",".join("?" * len(btrees))
pages = db.execute(f"SELECT COALESCE(SUM(pgsize), 0) FROM dbstat WHERE name IN ({marks})", btrees).fetchone()[0]
result = {"table": table, "btrees": btrees, "points": points, "bytes": pages,
          "bytes_per_point": round(pages / points, 2) if points else None}
json.dump(result, open(sys.argv[2], "w"), indent=2)
print(f"[disk] {points} metric points in {table}: {result['bytes_per_point']} bytes/point on disk")
