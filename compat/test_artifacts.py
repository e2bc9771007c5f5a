"""Artifacts (MLFLOW-API.md §0 uploads, §1b artifact proxy, §5b call sequences).

Every test reads the bytes back (through the real client and/or the raw proxy) and compares them with
what was logged: the client ignores most of what the server answers, so "no exception" proves nothing.

Raw proxy calls go through `raw()`, which sends the URL byte for byte: `requests` would otherwise
decode `%2e` to `.` and urllib3 would resolve `../` before the request leaves the machine.
"""

import hashlib
import io
import json
import os
import posixpath
import re
import urllib.parse

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import mlflow  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import requests  # noqa: E402
import yaml  # noqa: E402
from mlflow.exceptions import MlflowException  # noqa: E402
from PIL import Image  # noqa: E402

from conftest import ORACLE, SERVER_URI, unique_name  # noqa: E402

PROXY = "/api/2.0/mlflow-artifacts/artifacts"
HEX64 = re.compile(r"^[0-9a-f]{64}$")
MIB = 1024 * 1024

_raw_session = requests.Session()


# --------------------------------------------------------------------------------------------
# helpers


def raw(method, url_path, data=None, headers=None):
    """`method SERVER_URI + url_path`, with url_path sent exactly as given (no re-encoding, no
    dot-segment removal, no redirects followed)."""
    url = SERVER_URI + url_path
    for attempt in (1, 2):
        req = requests.Request(method, url, data=data, headers=headers).prepare()
        req.url = url
        try:
            return _raw_session.send(req, allow_redirects=False, timeout=120)
        except requests.ConnectionError:
            # A server may close a kept-alive connection after an error answer (MLflow does after a
            # 500 on PUT); the pool only notices on the next request. Retry once on a new connection.
            if attempt == 2 or not isinstance(data, (bytes, type(None))):
                raise


def q(path):
    """Percent-encode an artifact path the way the client does (UTF-8, '/' kept)."""
    return urllib.parse.quote(path, safe="/")


def body_of(resp):
    try:
        return resp.json()
    except ValueError:
        return resp.text


def proxy_list(rest, path):
    """The proxy listing of `path` (relative to the artifact root): (status, body)."""
    return rest("GET", PROXY, params={"path": path})


def walk(rest, prefix):
    """Every entry below `prefix` on the proxy, recursively: {relative path: (is_dir, file_size)}."""
    out = {}

    def visit(rel):
        status, body = proxy_list(rest, posixpath.join(prefix, rel) if rel else prefix)
        assert status == 200, body
        assert isinstance(body, dict), body
        for f in body.get("files", []):
            child = posixpath.join(rel, f["path"]) if rel else f["path"]
            size = f.get("file_size")
            out[child] = (f["is_dir"], None if size is None else int(size))
            if f["is_dir"]:
                visit(child)

    visit("")
    return out


def local_tree(root):
    """{posix relative path: bytes} of every file under a local directory."""
    out = {}
    for dirpath, _, filenames in os.walk(root):
        for name in filenames:
            full = os.path.join(dirpath, name)
            rel = os.path.relpath(full, root).replace(os.sep, "/")
            with open(full, "rb") as fh:
                out[rel] = fh.read()
    return out


def write(path, data):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    mode = "wb" if isinstance(data, bytes) else "w"
    kwargs = {} if isinstance(data, bytes) else {"encoding": "utf-8"}
    with open(path, mode, **kwargs) as fh:
        fh.write(data)
    return str(path)


def read(path):
    with open(path, "rb") as fh:
        return fh.read()


def sha256_file(path):
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(MIB), b""):
            h.update(chunk)
    return h.hexdigest()


def download(run_id, artifact_path, dst):
    os.makedirs(dst, exist_ok=True)
    return mlflow.artifacts.download_artifacts(run_id=run_id, artifact_path=artifact_path, dst_path=str(dst))


def listing(client, run_id, path=None):
    """client.list_artifacts as {path: (is_dir, file_size)}."""
    return {f.path: (f.is_dir, f.file_size) for f in client.list_artifacts(run_id, path)}


def empty_size(size):
    """MLflow omits file_size 0 (a proto default); 0 is as good."""
    return size in (None, 0)


def root_of(run):
    """The run's artifact root relative to the proxy: `<eid>/<run_id>/artifacts`."""
    prefix = "mlflow-artifacts:/"
    assert run.info.artifact_uri.startswith(prefix), run.info.artifact_uri
    return run.info.artifact_uri[len(prefix):]


def mime(resp):
    return resp.headers.get("Content-Type", "").split(";")[0].strip().lower()


def disposition_filename(value):
    """The file name a Content-Disposition header carries (filename*= wins over filename=)."""
    assert value.lower().startswith("attachment"), value
    star = re.search(r"filename\*\s*=\s*UTF-8''([^;\s]+)", value, re.IGNORECASE)
    if star:
        return urllib.parse.unquote(star.group(1))
    plain = re.search(r'filename\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^;\s]+))', value, re.IGNORECASE)
    assert plain, value
    return plain.group(1) if plain.group(1) is not None else plain.group(2)


def assert_error(resp, status, code):
    body = body_of(resp)
    assert resp.status_code == status, (resp.status_code, body)
    assert isinstance(body, dict), body
    assert body.get("error_code") == code, body
    assert isinstance(body.get("message"), str) and body["message"], body


def assert_invalid_path(resp):
    assert_error(resp, 400, "INVALID_PARAMETER_VALUE")


@pytest.fixture
def run(client, experiment):
    """A finished run with nothing logged."""
    r = client.create_run(experiment.experiment_id)
    client.set_terminated(r.info.run_id)
    return client.get_run(r.info.run_id)


# --------------------------------------------------------------------------------------------
# the real client


def test_artifact_uri_and_uploads_land_under_it(client, experiment, rest, tmp_path):
    eid = experiment.experiment_id
    with mlflow.start_run(experiment_id=eid) as active:
        run_id = active.info.run_id
        assert active.info.artifact_uri == f"mlflow-artifacts:/{eid}/{run_id}/artifacts"
        assert mlflow.get_artifact_uri() == active.info.artifact_uri
        assert mlflow.get_artifact_uri("a/b.txt") == f"mlflow-artifacts:/{eid}/{run_id}/artifacts/a/b.txt"
        mlflow.log_text("landed", "where/x.txt")
    run = client.get_run(run_id)
    assert run.info.artifact_uri == f"mlflow-artifacts:/{eid}/{run_id}/artifacts"

    # The upload is under <eid>/<run_id>/artifacts on the proxy, nowhere else.
    resp = raw("GET", f"{PROXY}/{eid}/{run_id}/artifacts/where/x.txt")
    assert resp.status_code == 200 and resp.content == b"landed"
    assert walk(rest, f"{eid}/{run_id}/artifacts") == {"where": (True, None), "where/x.txt": (False, 6)}
    assert raw("GET", f"{PROXY}/{eid}/{run_id}/where/x.txt").status_code == 404
    assert raw("GET", f"{PROXY}/{eid}/where/x.txt").status_code == 404

    # Logging artifacts does not touch the run's metadata.
    assert run.data.params == {} and run.data.metrics == {}
    assert not any(k.startswith("mlflow.log-model") for k in run.data.tags)


def test_empty_run_lists_nothing(client, run, rest, tmp_path):
    assert client.list_artifacts(run.info.run_id) == []
    assert client.list_artifacts(run.info.run_id, "nothing/here") == []
    status, body = proxy_list(rest, root_of(run))
    assert status == 200 and body == {}, body
    # download of the whole (empty) root: no files, no error
    dst = download(run.info.run_id, None, tmp_path / "dl")
    assert local_tree(dst) == {}


def test_log_artifact_file_and_artifact_path(client, experiment, tmp_path):
    src = write(tmp_path / "src" / "notes.txt", "hello artifacts\n")
    other = write(tmp_path / "src" / "weights.bin", bytes(range(256)) * 4)
    with mlflow.start_run(experiment_id=experiment.experiment_id) as active:
        mlflow.log_artifact(src)
        mlflow.log_artifact(other, artifact_path="a/b")
    run_id = active.info.run_id

    # Paths are relative to the run root; folders have no size, files their byte count.
    assert listing(client, run_id) == {"notes.txt": (False, 16), "a": (True, None)}
    assert listing(client, run_id, "a") == {"a/b": (True, None)}
    assert listing(client, run_id, "a/b") == {"a/b/weights.bin": (False, 1024)}
    # Listing a file gives nothing (the client turns the server's `{}` into []).
    assert client.list_artifacts(run_id, "notes.txt") == []

    got = download(run_id, "notes.txt", tmp_path / "d1")
    assert os.path.basename(got) == "notes.txt" and read(got) == read(src)
    got = download(run_id, "a/b/weights.bin", tmp_path / "d2")
    assert read(got) == read(other)
    # A folder comes down with its structure.
    got = download(run_id, "a", tmp_path / "d3")
    assert local_tree(got) == {"b/weights.bin": read(other)}
    # The whole run.
    got = download(run_id, None, tmp_path / "d4")
    assert local_tree(got) == {"notes.txt": read(src), "a/b/weights.bin": read(other)}


def test_log_artifacts_nested_folder_and_download(client, experiment, tmp_path):
    rng = np.random.default_rng(7)
    files = {
        "top.txt": b"top level\n",
        "sub/one.csv": b"a,b\n1,2\n",
        "sub/deeper/two.bin": rng.integers(0, 256, 4096, dtype=np.uint8).tobytes(),
        "sub/deeper/three.json": b'{"k": [1, 2, 3]}',
        "other/four.txt": b"four",
    }
    src = tmp_path / "tree"
    for rel, data in files.items():
        write(src / rel, data)
    with mlflow.start_run(experiment_id=experiment.experiment_id) as active:
        mlflow.log_artifacts(str(src), "data")
    run_id = active.info.run_id

    assert listing(client, run_id) == {"data": (True, None)}
    assert listing(client, run_id, "data") == {
        "data/top.txt": (False, 10),
        "data/sub": (True, None),
        "data/other": (True, None),
    }
    assert listing(client, run_id, "data/sub") == {"data/sub/one.csv": (False, 8), "data/sub/deeper": (True, None)}
    assert listing(client, run_id, "data/sub/deeper") == {
        "data/sub/deeper/two.bin": (False, 4096),
        "data/sub/deeper/three.json": (False, 16),
    }
    # list_artifacts sorts by path
    paths = [f.path for f in client.list_artifacts(run_id, "data")]
    assert paths == sorted(paths)

    got = download(run_id, "data", tmp_path / "dl")
    assert os.path.basename(got.rstrip("/")) == "data"
    assert local_tree(got) == files
    got = download(run_id, "data/sub/deeper", tmp_path / "dl2")
    assert local_tree(got) == {"two.bin": files["sub/deeper/two.bin"], "three.json": files["sub/deeper/three.json"]}
    got = download(run_id, "data/sub/deeper/two.bin", tmp_path / "dl3")
    assert read(got) == files["sub/deeper/two.bin"]


def test_log_text_and_log_dict(client, experiment, tmp_path, rest):
    text = "línea 1 ✓\nzweite Zeile\n"
    data = {"lr": 0.001, "layers": [64, 32], "name": "ünï", "nested": {"a": True, "b": None}}
    with mlflow.start_run(experiment_id=experiment.experiment_id) as active:
        mlflow.log_text(text, "notes/readme.txt")
        mlflow.log_dict(data, "cfg/params.json")
        mlflow.log_dict(data, "cfg/params.yaml")
    run_id = active.info.run_id
    root = root_of(active)

    assert read(download(run_id, "notes/readme.txt", tmp_path / "t")) == text.encode("utf-8")
    assert mlflow.artifacts.load_text(f"runs:/{run_id}/notes/readme.txt") == text

    raw_json = read(download(run_id, "cfg/params.json", tmp_path / "j"))
    assert json.loads(raw_json) == data
    raw_yaml = read(download(run_id, "cfg/params.yaml", tmp_path / "y"))
    assert yaml.safe_load(raw_yaml) == data
    assert mlflow.artifacts.load_dict(f"runs:/{run_id}/cfg/params.json") == data
    # (load_dict parses JSON only, whatever the extension)

    # The proxy serves exactly those bytes, with the sizes the listing reports.
    for rel, expected in (("notes/readme.txt", text.encode()), ("cfg/params.json", raw_json), ("cfg/params.yaml", raw_yaml)):
        resp = raw("GET", f"{PROXY}/{root}/{rel}")
        assert resp.status_code == 200 and resp.content == expected
    assert listing(client, run_id, "cfg") == {
        "cfg/params.json": (False, len(raw_json)),
        "cfg/params.yaml": (False, len(raw_yaml)),
    }


def test_log_image_numpy(client, experiment, tmp_path):
    rng = np.random.default_rng(11)
    rgb = rng.integers(0, 256, (12, 17, 3), dtype=np.uint8)
    gray = rng.integers(0, 256, (5, 9), dtype=np.uint8)
    with mlflow.start_run(experiment_id=experiment.experiment_id) as active:
        mlflow.log_image(rgb, "images/rgb.png")
        mlflow.log_image(gray, artifact_file="images/gray.png")
    run_id = active.info.run_id

    for name, array in (("rgb.png", rgb), ("gray.png", gray)):
        got = read(download(run_id, f"images/{name}", tmp_path / name))
        assert got.startswith(b"\x89PNG\r\n\x1a\n")
        assert np.array_equal(np.asarray(Image.open(io.BytesIO(got))), array)
    sizes = listing(client, run_id, "images")
    assert set(sizes) == {"images/rgb.png", "images/gray.png"}
    assert all(not is_dir and size > 0 for is_dir, size in sizes.values())

    resp = raw("GET", f"{PROXY}/{root_of(active)}/images/rgb.png")
    assert resp.status_code == 200 and mime(resp) == "image/png"


def test_log_figure_matplotlib(client, experiment, tmp_path):
    fig, ax = plt.subplots(figsize=(2, 1.5), dpi=50)
    ax.plot([0, 1, 2], [2, 0, 1])
    try:
        with mlflow.start_run(experiment_id=experiment.experiment_id) as active:
            mlflow.log_figure(fig, "plots/curve.png")
        local = tmp_path / "local.png"
        fig.savefig(local)  # Agg output is deterministic: the same figure gives the same bytes
    finally:
        plt.close(fig)
    got = read(download(active.info.run_id, "plots/curve.png", tmp_path / "dl"))
    assert got.startswith(b"\x89PNG\r\n\x1a\n")
    assert Image.open(io.BytesIO(got)).size == (100, 75)
    assert got == read(local)
    assert listing(client, active.info.run_id, "plots") == {"plots/curve.png": (False, len(got))}


# --------------------------------------------------------------------------------------------
# round trips


def test_round_trip_text_binary_and_empty(client, experiment, tmp_path, rest):
    text = write(tmp_path / "src" / "plain.txt", "some text\r\nwith CRLF and trailing spaces   \n")
    binary = write(tmp_path / "src" / "random.bin", os.urandom(MIB))
    empty = write(tmp_path / "src" / "empty.dat", b"")
    with mlflow.start_run(experiment_id=experiment.experiment_id) as active:
        for path in (text, binary, empty):
            mlflow.log_artifact(path, "rt")  # the empty file travels with Transfer-Encoding: chunked
    run_id = active.info.run_id

    found = listing(client, run_id, "rt")
    assert set(found) == {"rt/plain.txt", "rt/random.bin", "rt/empty.dat"}
    assert found["rt/plain.txt"] == (False, os.path.getsize(text))
    assert found["rt/random.bin"] == (False, MIB)
    assert found["rt/empty.dat"][0] is False and empty_size(found["rt/empty.dat"][1])

    got = download(run_id, "rt", tmp_path / "dl")
    assert local_tree(got) == {"plain.txt": read(text), "random.bin": read(binary), "empty.dat": b""}
    assert read(download(run_id, "rt/empty.dat", tmp_path / "dl2")) == b""

    resp = raw("GET", f"{PROXY}/{root_of(active)}/rt/empty.dat")
    assert resp.status_code == 200 and resp.content == b""

    # A raw chunked PUT of nothing (what the client sends for an empty file) also stores an empty file.
    resp = raw("PUT", f"{PROXY}/{root_of(active)}/rt/chunked-empty.txt", data=iter([b""]))
    assert resp.status_code == 200, resp.text
    resp = raw("GET", f"{PROXY}/{root_of(active)}/rt/chunked-empty.txt")
    assert resp.status_code == 200 and resp.content == b""
    # ...and a chunked PUT of several pieces is stored whole.
    pieces = [b"alpha-", b"", b"beta-", os.urandom(70000), b"-omega"]
    resp = raw("PUT", f"{PROXY}/{root_of(active)}/rt/chunked.bin", data=iter(pieces))
    assert resp.status_code == 200, resp.text
    assert raw("GET", f"{PROXY}/{root_of(active)}/rt/chunked.bin").content == b"".join(pieces)


def test_large_file_sha256(client, experiment, tmp_path):
    size = 50 * MIB
    src = tmp_path / "big.bin"
    chunk = os.urandom(MIB)
    with open(src, "wb") as fh:
        for i in range(50):
            fh.write(chunk[i:] + chunk[:i])  # 50 distinct MiB, cheaply
    expected = sha256_file(src)
    with mlflow.start_run(experiment_id=experiment.experiment_id) as active:
        mlflow.log_artifact(str(src), "large")
    assert listing(client, active.info.run_id, "large") == {"large/big.bin": (False, size)}
    got = download(active.info.run_id, "large/big.bin", tmp_path / "dl")
    assert os.path.getsize(got) == size
    assert sha256_file(got) == expected


def test_unicode_and_space_names(client, experiment, tmp_path, rest):
    files = {
        "dir with space/naïve ✓.txt": "naïve ✓ content\n".encode(),
        "dir with space/plain name.bin": b"\x00\xff spaced",
        "步骤/模型 1.json": '{"ok": "是"}'.encode(),
        "a+b=c&d/%41 literal percent.txt": b"percent-A stays literal",
    }
    src = tmp_path / "u"
    for rel, data in files.items():
        write(src / rel, data)
    with mlflow.start_run(experiment_id=experiment.experiment_id) as active:
        mlflow.log_artifacts(str(src), "u")
    run_id = active.info.run_id
    root = root_of(active)

    assert listing(client, run_id, "u") == {
        "u/dir with space": (True, None),
        "u/步骤": (True, None),
        "u/a+b=c&d": (True, None),
    }
    assert listing(client, run_id, "u/dir with space") == {
        "u/dir with space/naïve ✓.txt": (False, len(files["dir with space/naïve ✓.txt"])),
        "u/dir with space/plain name.bin": (False, len(files["dir with space/plain name.bin"])),
    }
    # The client does not percent-encode artifact paths itself, and `requests` normalises the
    # escape `%41` in the URL to `A` before sending, so through the client this file arrives (and is
    # stored, by both servers) as `A literal percent.txt`. The raw checks below send `%2541`.
    stored = "A literal percent.txt"
    assert listing(client, run_id, "u/a+b=c&d") == {f"u/a+b=c&d/{stored}": (False, 23)}

    got = download(run_id, "u", tmp_path / "dl")
    expected_tree = dict(files)
    expected_tree[f"a+b=c&d/{stored}"] = expected_tree.pop("a+b=c&d/%41 literal percent.txt")
    assert local_tree(got) == expected_tree
    got = download(run_id, "u/dir with space/naïve ✓.txt", tmp_path / "dl2")
    assert os.path.basename(got) == "naïve ✓.txt" and read(got) == files["dir with space/naïve ✓.txt"]

    # Raw: the wire form is percent-encoded UTF-8; the listing carries the decoded names.
    resp = raw("GET", f"{PROXY}/{root}/{q('u/dir with space/naïve ✓.txt')}")
    assert resp.status_code == 200 and resp.content == files["dir with space/naïve ✓.txt"]
    assert mime(resp) == "text/plain"
    assert disposition_filename(resp.headers["Content-Disposition"]) == "naïve ✓.txt"
    status, body = proxy_list(rest, f"{root}/u/dir with space")
    assert status == 200
    assert sorted(f["path"] for f in body["files"]) == ["naïve ✓.txt", "plain name.bin"]
    # `%2541` on the wire is the name `%41`, decoded once, never twice.
    resp = raw("PUT", f"{PROXY}/{root}/{q('u/raw/%41 raw.txt')}", data=b"percent-A stays literal")
    assert resp.status_code == 200
    resp = raw("GET", f"{PROXY}/{root}/{q('u/raw/%41 raw.txt')}")
    assert resp.status_code == 200 and resp.content == b"percent-A stays literal"
    other = raw("GET", f"{PROXY}/{root}/{q('u/raw/A raw.txt')}")
    if ORACLE == "mlflow":
        assert other.status_code == 200  # MLflow decodes until nothing changes: both spellings reach it
    else:
        assert_error(other, 404, "RESOURCE_DOES_NOT_EXIST")
        status, body = proxy_list(rest, f"{root}/u/raw")
        assert status == 200 and [f["path"] for f in body["files"]] == ["%41 raw.txt"]


def test_deeply_nested_folders(client, experiment, tmp_path):
    depth = 16
    parts = [f"level{i:02d}" for i in range(depth)]
    files = {
        "/".join(parts) + "/leaf.txt": b"bottom",
        "/".join(parts[:8]) + "/middle.txt": b"middle",
        "level00/shallow.txt": b"shallow",
    }
    src = tmp_path / "deep"
    for rel, data in files.items():
        write(src / rel, data)
    with mlflow.start_run(experiment_id=experiment.experiment_id) as active:
        mlflow.log_artifacts(str(src), "deep")
    run_id = active.info.run_id

    deepest = "deep/" + "/".join(parts)
    assert listing(client, run_id, deepest) == {deepest + "/leaf.txt": (False, 6)}
    assert listing(client, run_id, "deep/level00") == {
        "deep/level00/level01": (True, None),
        "deep/level00/shallow.txt": (False, 7),
    }
    got = download(run_id, "deep", tmp_path / "dl")
    assert local_tree(got) == files
    assert read(download(run_id, deepest + "/leaf.txt", tmp_path / "dl2")) == b"bottom"


def test_download_absent_path_raises(run, tmp_path):
    with pytest.raises(MlflowException) as err:
        download(run.info.run_id, "no/such/file.txt", tmp_path / "dl")
    assert err.value.error_code == "RESOURCE_DOES_NOT_EXIST"


def test_overwrite_replaces_content(client, experiment, tmp_path, rest):
    long_text = "first version, quite a bit longer than the second\n" * 20
    with mlflow.start_run(experiment_id=experiment.experiment_id) as active:
        mlflow.log_text(long_text, "ow/f.txt")
        mlflow.log_text("v2", "ow/f.txt")  # shorter: a stale tail must not survive
        first = write(tmp_path / "a" / "model.bin", os.urandom(3000))
        second = write(tmp_path / "b" / "model.bin", os.urandom(1000))
        mlflow.log_artifact(first, "ow")
        mlflow.log_artifact(second, "ow")
    with mlflow.start_run(experiment_id=experiment.experiment_id) as other:
        mlflow.log_text("other run", "ow/f.txt")
    run_id = active.info.run_id

    assert read(download(run_id, "ow/f.txt", tmp_path / "d1")) == b"v2"
    assert read(download(run_id, "ow/model.bin", tmp_path / "d2")) == read(second)
    # Still one entry per path, with the new size.
    assert listing(client, run_id, "ow") == {"ow/f.txt": (False, 2), "ow/model.bin": (False, 1000)}
    # Another run's file at the same relative path is separate.
    assert read(download(other.info.run_id, "ow/f.txt", tmp_path / "d3")) == b"other run"

    # Raw PUT over an existing file replaces it too, and the old bytes are not served.
    path = f"{PROXY}/{root_of(active)}/ow/f.txt"
    assert raw("PUT", path, data=b"third").status_code == 200
    assert raw("GET", path).content == b"third"
    assert raw("PUT", path, data=b"").status_code == 200
    assert raw("GET", path).content == b""
    assert walk(rest, root_of(active) + "/ow")["f.txt"][1] in (None, 0)


# --------------------------------------------------------------------------------------------
# the raw proxy


def test_proxy_put_get_bytes_and_headers(run):
    root = root_of(run)
    png = b"\x89PNG\r\n\x1a\n" + os.urandom(64)
    cases = [
        # name, body, Content-Type the client sends, Content-Type MLflow answers
        ("h/a.txt", b"hello proxy\n", "text/plain", "text/plain"),
        ("h/b.json", b'{"a": 1}', "application/json", "text/plain"),  # MLflow serves json as text/plain
        ("h/c.png", png, "image/png", "image/png"),
        ("h/d.bin", os.urandom(300), "application/octet-stream", "application/octet-stream"),
        ("h/noext", b"no extension", "application/octet-stream", "application/octet-stream"),
    ]
    for name, data, sent_type, _ in cases:
        resp = raw("PUT", f"{PROXY}/{root}/{name}", data=data, headers={"Content-Type": sent_type})
        assert resp.status_code == 200, resp.text
        # MLflow answers an empty body; `{}` is as good (the client only checks the status).
        assert resp.content in (b"", b"{}") or body_of(resp) == {}, resp.content
    for name, data, _, served_type in cases:
        resp = raw("GET", f"{PROXY}/{root}/{name}")
        assert resp.status_code == 200, resp.text
        assert resp.content == data
        assert mime(resp) == served_type, (name, resp.headers.get("Content-Type"))
        assert disposition_filename(resp.headers["Content-Disposition"]) == posixpath.basename(name)
        if "Content-Length" in resp.headers:
            assert int(resp.headers["Content-Length"]) == len(data)
        assert resp.headers.get("X-Content-Type-Options", "").lower() == "nosniff"

    # A PUT with a Content-Type that does not match the name changes neither bytes nor served type.
    resp = raw("PUT", f"{PROXY}/{root}/h/e.txt", data=b"\x00\x01binary", headers={"Content-Type": "image/png"})
    assert resp.status_code == 200
    resp = raw("GET", f"{PROXY}/{root}/h/e.txt")
    assert resp.content == b"\x00\x01binary" and mime(resp) == "text/plain"


def test_proxy_listing_shape(client, run, rest):
    root = root_of(run)
    for rel, data in (("top.txt", b"12345"), ("sub/inner.bin", b"abc"), ("sub/deeper/x.txt", b"x"), ("zero", b"")):
        assert raw("PUT", f"{PROXY}/{root}/{rel}", data=data).status_code == 200

    status, body = proxy_list(rest, root)
    assert status == 200 and set(body) == {"files"}, body
    files = {f["path"]: f for f in body["files"]}
    assert set(files) == {"top.txt", "sub", "zero"}  # basenames, direct children only
    for f in body["files"]:
        assert isinstance(f["is_dir"], bool), f  # always present: the client indexes it directly
        assert set(f) <= {"path", "is_dir", "file_size"}, f
    assert files["top.txt"]["is_dir"] is False and int(files["top.txt"]["file_size"]) == 5
    assert files["sub"]["is_dir"] is True and not files["sub"].get("file_size")
    assert files["zero"]["is_dir"] is False and int(files["zero"].get("file_size", 0)) == 0

    status, body = proxy_list(rest, f"{root}/sub")
    assert status == 200
    assert sorted((f["path"], f["is_dir"]) for f in body["files"]) == [("deeper", True), ("inner.bin", False)]
    # A trailing slash names the same folder.
    status, body2 = proxy_list(rest, f"{root}/sub/")
    assert status == 200 and sorted(f["path"] for f in body2["files"]) == ["deeper", "inner.bin"]

    # A file, an absent path, an absent run: `{}` with 200, not an error.
    for path in (f"{root}/top.txt", f"{root}/sub/inner.bin", f"{root}/absent", f"{root}/absent/deeper",
                 f"{run.info.experiment_id}/0123456789abcdef0123456789abcdef/artifacts"):
        status, body = proxy_list(rest, path)
        assert (status, body) == (200, {}), (path, status, body)

    # The client's list_artifacts over the same data: paths relative to the run root.
    assert {f.path: f.is_dir for f in client.list_artifacts(run.info.run_id)} == {
        "top.txt": False, "sub": True, "zero": False}


def test_proxy_get_absent_is_404_json(run):
    root = root_of(run)
    assert raw("PUT", f"{PROXY}/{root}/present.txt", data=b"here").status_code == 200
    for rel in ("absent.txt", "no/such/dir/file.txt", "present.txt/child"):
        assert_error(raw("GET", f"{PROXY}/{root}/{rel}"), 404, "RESOURCE_DOES_NOT_EXIST")
    assert_error(raw("GET", f"{PROXY}/{run.info.experiment_id}/{'f' * 32}/artifacts/x.txt"), 404,
                 "RESOURCE_DOES_NOT_EXIST")


def test_proxy_get_of_a_folder_is_an_error(run):
    root = root_of(run)
    assert raw("PUT", f"{PROXY}/{root}/folder/file.txt", data=b"in folder").status_code == 200
    resp = raw("GET", f"{PROXY}/{root}/folder")
    if ORACLE == "mlflow":
        # MLflow: 400 with a FastAPI-style body {"detail": "Artifact path refers to a directory, ..."}
        assert resp.status_code == 400, resp.text
        assert "directory" in body_of(resp)["detail"]
    else:
        assert resp.status_code in (400, 404), resp.text
        assert body_of(resp).get("error_code") in ("INVALID_PARAMETER_VALUE", "RESOURCE_DOES_NOT_EXIST")
    assert b"in folder" not in resp.content


def test_proxy_delete_file_and_folder(client, run, rest):
    root = root_of(run)
    for rel in ("keep.txt", "gone.txt", "dir/a.txt", "dir/sub/b.txt", "dir2/c.txt"):
        assert raw("PUT", f"{PROXY}/{root}/{rel}", data=rel.encode()).status_code == 200

    resp = raw("DELETE", f"{PROXY}/{root}/gone.txt")
    assert resp.status_code == 200 and body_of(resp) == {}, resp.text
    assert_error(raw("GET", f"{PROXY}/{root}/gone.txt"), 404, "RESOURCE_DOES_NOT_EXIST")
    assert set(walk(rest, root)) == {"keep.txt", "dir", "dir/a.txt", "dir/sub", "dir/sub/b.txt", "dir2", "dir2/c.txt"}

    resp = raw("DELETE", f"{PROXY}/{root}/dir")  # a folder: everything below it goes
    assert resp.status_code == 200 and body_of(resp) == {}, resp.text
    assert walk(rest, root) == {"keep.txt": (False, 8), "dir2": (True, None), "dir2/c.txt": (False, 10)}
    for rel in ("dir/a.txt", "dir/sub/b.txt"):
        assert_error(raw("GET", f"{PROXY}/{root}/{rel}"), 404, "RESOURCE_DOES_NOT_EXIST")
    assert proxy_list(rest, f"{root}/dir") == (200, {})
    assert raw("GET", f"{PROXY}/{root}/keep.txt").content == b"keep.txt"
    assert listing(client, run.info.run_id) == {"keep.txt": (False, 8), "dir2": (True, None)}

    # The path can be used again after a delete.
    assert raw("PUT", f"{PROXY}/{root}/dir/a.txt", data=b"again").status_code == 200
    assert raw("GET", f"{PROXY}/{root}/dir/a.txt").content == b"again"


def test_file_and_folder_cannot_share_a_path(run, rest):
    root = root_of(run)
    assert raw("PUT", f"{PROXY}/{root}/f", data=b"a file").status_code == 200
    assert raw("PUT", f"{PROXY}/{root}/d/child.txt", data=b"child").status_code == 200
    over_folder = raw("PUT", f"{PROXY}/{root}/d", data=b"file over folder")
    under_file = raw("PUT", f"{PROXY}/{root}/f/child.txt", data=b"file under file")
    if ORACLE == "mlflow":
        # MLflow's local store fails with a bare 500 (IsADirectoryError / NotADirectoryError).
        assert over_folder.status_code == 500 and under_file.status_code == 500
    else:
        assert_invalid_path(over_folder)
        assert_invalid_path(under_file)
    assert raw("GET", f"{PROXY}/{root}/f").content == b"a file"
    assert raw("GET", f"{PROXY}/{root}/d/child.txt").content == b"child"
    assert walk(rest, root) == {"f": (False, 6), "d": (True, None), "d/child.txt": (False, 5)}


# --------------------------------------------------------------------------------------------
# path attacks: each must be refused and must write/read nothing outside the run's root


@pytest.fixture(scope="module")
def victims(client):
    """Two runs of one experiment: the attacker's (with one file) and a victim holding a secret.
    Shared by the attack tests: each compares the trees before and after its own request."""
    eid = client.create_experiment(unique_name("compat-attack"))
    attacker = client.create_run(eid)
    victim = client.create_run(eid)
    secret = f"SECRET-{victim.info.run_id}".encode()
    assert raw("PUT", f"{PROXY}/{root_of(attacker)}/own.txt", data=b"own").status_code == 200
    assert raw("PUT", f"{PROXY}/{root_of(victim)}/secret.txt", data=secret).status_code == 200
    return attacker, victim, secret


def snapshot(rest, attacker, victim):
    eid = attacker.info.experiment_id
    status, top = proxy_list(rest, "")
    assert status == 200
    return {
        "experiment": walk(rest, eid),
        "attacker-root": walk(rest, root_of(attacker)),
        "victim-root": walk(rest, root_of(victim)),
        "top": sorted((f["path"], f["is_dir"]) for f in top.get("files", [])),
    }


# (id, URL suffix after PROXY ({root} = the attacker's run root, {x} = a unique name),
#  what MLflow does, what Cairn must do). Outcomes: "400" = 400 INVALID_PARAMETER_VALUE and nothing
#  written; "500" = a bare 500 and nothing written; "inside" = accepted (200) and written inside the
#  attacker's run root under some literal name, nowhere else.
WRITE_ATTACKS = [
    ("dotdot", "/{root}/../{x}", "400", "400"),
    ("dotdot-nested", "/{root}/a/../../{x}", "400", "400"),
    ("dotdot-to-experiment", "/{root}/../../{x}", "400", "400"),
    ("pct-dotdot", "/{root}/%2e%2e/{x}", "400", "400"),
    ("pct-dotdot-upper", "/{root}/%2E%2E/%2E%2E/{x}", "400", "400"),
    ("pct-slash", "/{root}/..%2f{x}", "400", "400"),
    ("pct-slash-root", "/..%2f..%2f{x}", "400", "400"),
    ("absolute", "//etc/{x}", "400", "400"),
    ("absolute-pct", "/%2Fetc/{x}", "400", "400"),
    ("absolute-file-uri", "/file:///tmp/{x}", "400", "400"),
    ("nul", "/{root}/{x}%00.txt", "inside", "400"),  # MLflow stores the literal name `<x>%00.txt`
    ("backslash", "/{root}/a%5c..%5c{x}", "inside", "400"),  # MLflow stores the literal name `a\..\<x>`
    ("backslash-dotdot", "/{root}/..%5c..%5c{x}", "inside", "400"),
    ("empty-component", "/{root}//{x}", "inside", "400"),  # MLflow merges `//` into `/`
    ("dot", "/{root}/./{x}", "500", "400"),  # MLflow: 500 INTERNAL_ERROR "Invalid artifact path"
    # `%252e%252e` is the literal name `%2e%2e` when decoded once (Cairn may store it as such, or
    # refuse it); MLflow decodes until stable, sees `..` and refuses.
    ("double-encoded", "/{root}/%252e%252e/%252e%252e/{x}", "400", "400|inside"),
]


@pytest.mark.parametrize(
    "suffix,outcome",
    [(s, o if ORACLE == "mlflow" else c) for _, s, o, c in WRITE_ATTACKS],
    ids=[i for i, *_ in WRITE_ATTACKS],
)
def test_put_path_attack_is_refused(rest, victims, suffix, outcome):
    attacker, victim, secret = victims
    x = unique_name("pwn")
    before = snapshot(rest, attacker, victim)
    resp = raw("PUT", PROXY + suffix.format(root=root_of(attacker), x=x), data=b"PWNED")
    after = snapshot(rest, attacker, victim)

    if outcome == "500":
        assert resp.status_code == 500, resp.text
        assert after == before
    elif outcome == "inside" or (outcome == "400|inside" and resp.status_code == 200):
        assert resp.status_code == 200, resp.text
        assert after["victim-root"] == before["victim-root"] and after["top"] == before["top"]
        new = set(after["experiment"]) - set(before["experiment"])
        prefix = attacker.info.run_id + "/artifacts/"
        assert new and all(p.startswith(prefix) for p in new), new
        assert set(after["attacker-root"]) - set(before["attacker-root"])
    else:
        assert_invalid_path(resp)
        assert after == before, "a refused upload changed the artifact tree"

    # Nothing at the places an escape would have reached.
    eid = attacker.info.experiment_id
    for landing in (f"{eid}/{attacker.info.run_id}/{x}", f"{eid}/{x}", x, f"etc/{x}", f"tmp/{x}"):
        assert raw("GET", f"{PROXY}/{q(landing)}").status_code == 404, landing
    assert raw("GET", f"{PROXY}/{root_of(victim)}/secret.txt").content == secret


READ_ATTACKS = [
    ("dotdot", "/{root}/../../{victim}/artifacts/secret.txt", "400"),
    ("dotdot-nested", "/{root}/a/b/../../../../{victim}/artifacts/secret.txt", "400"),
    ("pct-dotdot", "/{root}/%2e%2e/%2e%2e/{victim}/artifacts/secret.txt", "400"),
    ("pct-slash", "/{root}/..%2f..%2f{victim}%2fartifacts%2fsecret.txt", "400"),
    ("backslash", "/{root}/..%5c..%5c{victim}%5cartifacts%5csecret.txt", "404"),  # MLflow: a literal name
    ("nul", "/{root}/../../{victim}/artifacts/secret.txt%00", "400"),
]


@pytest.mark.parametrize("suffix,oracle", [(s, o) for _, s, o in READ_ATTACKS], ids=[i for i, _, _ in READ_ATTACKS])
def test_get_path_attack_reads_nothing(victims, suffix, oracle):
    attacker, victim, secret = victims
    resp = raw("GET", PROXY + suffix.format(root=root_of(attacker), victim=victim.info.run_id))
    assert secret not in resp.content
    if ORACLE == "mlflow" and oracle == "404":
        assert_error(resp, 404, "RESOURCE_DOES_NOT_EXIST")
    else:
        assert_invalid_path(resp)


PASSWD_URLS = [
    ("dotdot", "/../../etc/passwd"),
    ("dotdot-many", "/../../../../../../../../etc/passwd"),
    ("pct-dotdot", "/%2e%2e/%2e%2e/%2e%2e/%2e%2e/%2e%2e/%2e%2e/etc/passwd"),
    ("pct-slash", "/..%2f..%2f..%2f..%2f..%2f..%2fetc%2fpasswd"),
    ("absolute", "//etc/passwd"),
    ("absolute-pct", "/%2Fetc%2Fpasswd"),
    ("from-run-root", "/{root}/../../../../../../../../../../etc/passwd"),
]


@pytest.mark.parametrize("suffix", [s for _, s in PASSWD_URLS], ids=[i for i, _ in PASSWD_URLS])
def test_get_etc_passwd_never_served(victims, suffix):
    resp = raw("GET", PROXY + suffix.format(root=root_of(victims[0])))
    assert b"root:" not in resp.content and b"/bin/" not in resp.content
    assert_invalid_path(resp)


def test_list_and_delete_path_attacks(rest, victims):
    attacker, victim, secret = victims
    root, vid = root_of(attacker), victim.info.run_id
    for query in (f"{root}/../../{vid}/artifacts", "../x", "..", f"{q(root)}%2F..%2F..%2F{vid}%2Fartifacts",
                  "/etc", "%2Fetc", f"{root}/%2e%2e"):
        resp = raw("GET", f"{PROXY}?path={query}")
        assert "secret.txt" not in resp.text, query
        assert_invalid_path(resp)

    before = snapshot(rest, attacker, victim)
    for suffix in (f"/{root}/../../{vid}/artifacts/secret.txt", f"/{root}/%2e%2e/%2e%2e/{vid}/artifacts",
                   f"/{root}/..%2f..%2f{vid}", f"/{root}/..", "/..", "/%2e%2e"):
        assert_invalid_path(raw("DELETE", PROXY + suffix))
    assert snapshot(rest, attacker, victim) == before
    assert raw("GET", f"{PROXY}/{root_of(victim)}/secret.txt").content == secret


# --------------------------------------------------------------------------------------------
# Cairn extensions


@pytest.mark.cairn_only
def test_cairn_listing_reports_sha256_and_dedups(client, experiment, rest, tmp_path):
    same = os.urandom(200_000)
    different = os.urandom(1000)
    runs = []
    for i in range(2):
        with mlflow.start_run(experiment_id=experiment.experiment_id) as active:
            mlflow.log_artifact(write(tmp_path / f"r{i}" / "same.bin", same), "data")
            mlflow.log_artifact(write(tmp_path / f"r{i}" / "own.bin", different if i else b"run zero"), "data")
            mlflow.log_text("", "data/sub/empty.txt")
        runs.append(active.info.run_id)

    digests = []
    for run_id in runs:
        status, body = rest("GET", "/api/cairn/v1/artifacts", params={"run_id": run_id, "path": "data"})
        assert status == 200, body
        assert body["root_uri"] == client.get_run(run_id).info.artifact_uri
        files = {f["path"]: f for f in body["files"]}
        assert set(files) == {"data/same.bin", "data/own.bin", "data/sub"}
        for f in body["files"]:
            assert isinstance(f["is_dir"], bool)
            if not f["is_dir"]:
                assert HEX64.match(f["sha256"]), f
        assert files["data/same.bin"]["sha256"] == hashlib.sha256(same).hexdigest()
        assert int(files["data/same.bin"]["file_size"]) == len(same)
        assert files["data/sub"]["is_dir"] is True and "sha256" not in files["data/sub"]
        digests.append(files)
        status, body = rest("GET", "/api/cairn/v1/artifacts", params={"run_id": run_id, "path": "data/sub"})
        assert status == 200 and len(body["files"]) == 1, body
        empty = body["files"][0]
        assert (empty["path"], empty["is_dir"]) == ("data/sub/empty.txt", False)
        assert int(empty.get("file_size", 0)) == 0 and empty["sha256"] == hashlib.sha256(b"").hexdigest()
    assert digests[0]["data/same.bin"]["sha256"] == digests[1]["data/same.bin"]["sha256"]
    assert digests[0]["data/own.bin"]["sha256"] == hashlib.sha256(b"run zero").hexdigest()
    assert digests[1]["data/own.bin"]["sha256"] == hashlib.sha256(different).hexdigest()

    # The whole root, path omitted.
    status, body = rest("GET", "/api/cairn/v1/artifacts", params={"run_id": runs[0]})
    assert status == 200 and [(f["path"], f["is_dir"]) for f in body["files"]] == [("data", True)]
    # Unknown run: 404.
    status, body = rest("GET", "/api/cairn/v1/artifacts", params={"run_id": "0123456789abcdef0123456789abcdef"})
    assert status == 404 and body["error_code"] == "RESOURCE_DOES_NOT_EXIST", body


@pytest.mark.cairn_only
def test_cairn_download_carries_sha256_header(run):
    root = root_of(run)
    for rel, data in (("h/x.bin", os.urandom(5000)), ("h/empty.txt", b"")):
        assert raw("PUT", f"{PROXY}/{root}/{rel}", data=data).status_code == 200
        resp = raw("GET", f"{PROXY}/{root}/{rel}")
        assert resp.status_code == 200 and resp.content == data
        assert resp.headers["X-Cairn-SHA256"] == hashlib.sha256(data).hexdigest()
