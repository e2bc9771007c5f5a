"""One `cairn import mlflow` measured over a window, on a source `bench/import_mlflow.py --keep` filled (for loads whose
whole import does not fit a session): runs the import (`rest`: --from URI; `store`: --from-store sqlite:///TMP/mlflow.db
--artifacts TMP/mlartifacts) into TMP/w-MODE for at most WINDOW seconds, then interrupts it (an import resumes); prints
wall time, the runs, points and artifact bytes the store then holds (counted from its SQLite file) and their rates, the
CPU of Cairn (rusage) and of the MLflow server's process tree (/proc, MLFLOW_PID) over the same time, and the load.

usage: bench/import_window.py BINARY MLFLOW_URI TMP MLFLOW_PID rest|store WINDOW_SECONDS"""
import json, os, resource, signal, sqlite3, subprocess, sys, time
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from import_mlflow import tree_cpu_seconds
binary, uri, tmp, mlflow_pid, mode, window = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), sys.argv[5], float(sys.argv[6])
target = os.path.join(tmp, "w-" + mode)
args = ["--from", uri] if mode == "rest" else ["--from-store", f"sqlite:///{tmp}/mlflow.db", "--artifacts", f"{tmp}/mlartifacts"]
load = [os.getloadavg()[0]]
before = resource.getrusage(resource.RUSAGE_CHILDREN)
m0 = tree_cpu_seconds(mlflow_pid)
t0 = time.monotonic()
p = subprocess.Popen([binary, "import", "mlflow", *args, "--data-dir", target, "--json"], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
interrupted = False
while p.poll() is None:
    if time.monotonic() - t0 > window:
        p.send_signal(signal.SIGINT)
        interrupted = True
        break
    time.sleep(0.5)
wall = time.monotonic() - t0
m1 = tree_cpu_seconds(mlflow_pid)
out, err = p.communicate()
after = resource.getrusage(resource.RUSAGE_CHILDREN)
load.append(os.getloadavg()[0])
db = sqlite3.connect(os.path.join(target, "cairn.sqlite"))
runs = db.execute("SELECT COUNT(*) FROM runs").fetchone()[0]
points = db.execute("SELECT COALESCE(SUM(point_count), 0) FROM latest_metrics").fetchone()[0]
files, size = db.execute("SELECT COUNT(*), COALESCE(SUM(size), 0) FROM artifact_files").fetchone()
cairn_cpu = after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime
result = {"mode": mode, "interrupted_after_window": interrupted, "wall_s": round(wall, 1), "runs": runs, "points": points,
          "artifact_files": files, "artifact_bytes": size, "runs_per_s": round(runs / wall, 2), "points_per_s": round(points / wall),
          "artifact_mib_per_s": round(size / 2**20 / wall, 2), "cairn_cpu_s": round(cairn_cpu, 1), "cairn_cores": round(cairn_cpu / wall, 3),
          "mlflow_cpu_s": round(m1 - m0, 1), "mlflow_cores": round((m1 - m0) / wall, 3), "cairn_peak_rss_mib": round(after.ru_maxrss / 1024),
          "load_before_after": load, "exit": p.returncode}
if not interrupted:
    result["report_tail"] = out.decode()[-600:]
print(json.dumps(result, indent=1), flush=True)
