"""Tests of scripts/roundrobin.py, the load balancer of the two-replica compat pass.

Two stdlib HTTP backends that say who they are, the real balancer script as a child process in
front of them, and real HTTP clients (http.client and raw sockets):

    .venv-test/bin/python -m pytest -q -p no:cacheprovider scripts/test_roundrobin.py
"""

import hashlib
import http.client
import http.server
import json
import os
import socket
import subprocess
import sys
import threading
import time

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
MIB = 1024 * 1024


class BackendHandler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def read_body(self):
        """Returns (sha256, length) of the request body, read as it comes (length or chunked)."""
        digest, total = hashlib.sha256(), 0
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip(), 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    break
                left = size
                while left:
                    data = self.rfile.read(min(left, 65536))
                    digest.update(data)
                    left -= len(data)
                total += size
                self.rfile.readline()
        else:
            left = int(self.headers.get("Content-Length", "0"))
            while left:
                data = self.rfile.read(min(left, 65536))
                digest.update(data)
                total += len(data)
                left -= len(data)
        return digest.hexdigest(), total

    def reply(self, status, body=b"", headers=(), length=True):
        self.send_response(status)
        for name, value in headers:
            self.send_header(name, value)
        if length:
            self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if body and self.command != "HEAD":
            self.wfile.write(body)

    def do_HEAD(self):
        self.send_response(200)
        self.send_header("Content-Length", "12345")
        self.send_header("X-Backend", self.server.name)
        self.end_headers()

    def do_GET(self):
        path = self.path
        name = self.server.name
        if path == "/who":
            self.reply(200, json.dumps({"backend": name, "peer_port": self.client_address[1]}).encode(),
                       [("Content-Type", "application/json")])
        elif path.startswith("/big/"):
            size = int(path.split("/")[2])
            self.send_response(200)
            self.send_header("Content-Length", str(size))
            self.end_headers()
            block = bytes(range(256)) * 256
            left = size
            while left:
                self.wfile.write(block[: min(left, len(block))])
                left -= min(left, len(block))
        elif path == "/chunked":
            self.send_response(200)
            self.send_header("Transfer-Encoding", "chunked")
            self.send_header("Trailer", "X-Checksum")
            self.end_headers()
            for part in (b"hello ", b"chunked ", b"world"):
                self.wfile.write(b"%x;ext=1\r\n%s\r\n" % (len(part), part))
            self.wfile.write(b"0\r\nX-Checksum: abc\r\n\r\n")
        elif path == "/range":
            data = b"0123456789" * 10
            spec = self.headers.get("Range", "")
            if spec.startswith("bytes="):
                start, end = (int(x) for x in spec[6:].split("-"))
                self.reply(206, data[start:end + 1], [("Content-Range", f"bytes {start}-{end}/{len(data)}"),
                                                      ("Accept-Ranges", "bytes")])
            else:
                self.reply(200, data)
        elif path.startswith("/status/"):
            status = int(path.split("/")[2])
            if status in (204, 304):
                self.send_response(status)
                self.end_headers()
            else:
                self.reply(status, b'{"error_code": "X", "message": "status %d"}' % status,
                           [("Content-Type", "application/json"), ("X-Backend", name)])
        elif path == "/until-close":
            self.send_response(200)
            self.send_header("Connection", "close")
            self.end_headers()
            self.wfile.write(b"no length, ends at close " * 1000)
            self.close_connection = True
        elif path == "/headers":
            seen = {k.lower(): v for k, v in self.headers.items()}
            self.reply(200, json.dumps(seen).encode(), [("Set-Cookie", "a=1"), ("Set-Cookie", "b=2"), ("X-Backend", name)])
        else:
            self.reply(404, b"not found")

    def do_PUT(self):
        sha, size = self.read_body()
        self.reply(200, json.dumps({"backend": self.server.name, "sha256": sha, "size": size}).encode(),
                   [("Content-Type", "application/json")])

    do_POST = do_PUT


def start_backend(name):
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), BackendHandler)
    server.daemon_threads = True
    server.name = name
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def balancer():
    backends = [start_backend("a"), start_backend("b")]
    dead = free_port()  # nothing listens there
    urls = [f"http://127.0.0.1:{b.server_address[1]}" for b in backends]
    proc = subprocess.Popen([sys.executable, os.path.join(HERE, "roundrobin.py"), "--port", "0"] + urls,
                            stdout=subprocess.PIPE, text=True)
    line = proc.stdout.readline()
    assert line.startswith("listening on http://127.0.0.1:"), line
    port = int(line.rsplit(":", 1)[1])
    dead_proc = subprocess.Popen([sys.executable, os.path.join(HERE, "roundrobin.py"), "--port", "0",
                                  f"http://127.0.0.1:{dead}"], stdout=subprocess.PIPE, text=True)
    dead_port = int(dead_proc.stdout.readline().rsplit(":", 1)[1])
    yield {"port": port, "proc": proc, "dead_port": dead_port}
    for p in (proc, dead_proc):
        p.terminate()
        p.wait(timeout=30)
    for b in backends:
        b.shutdown()


def connect(balancer):
    return http.client.HTTPConnection("127.0.0.1", balancer["port"], timeout=60)


def get_json(conn, path):
    conn.request("GET", path)
    resp = conn.getresponse()
    assert resp.status == 200
    return json.loads(resp.read())


def test_one_keep_alive_connection_alternates_between_backends_per_request(balancer):
    conn = connect(balancer)
    seen = [get_json(conn, "/who")["backend"] for _ in range(6)]
    local = conn.sock.getsockname()
    assert seen in (["a", "b"] * 3, ["b", "a"] * 3), seen
    # Still the same client connection: the turn is per request, not per connection.
    get_json(conn, "/who")
    assert conn.sock.getsockname() == local
    conn.close()


def test_each_backend_connection_is_kept_alive_and_reused(balancer):
    conn = connect(balancer)
    ports = {}
    for _ in range(6):
        answer = get_json(conn, "/who")
        ports.setdefault(answer["backend"], set()).add(answer["peer_port"])
    assert set(ports) == {"a", "b"} and all(len(p) == 1 for p in ports.values()), ports
    conn.close()


def rss_peak_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        return int(next(line for line in f if line.startswith("VmHWM:")).split()[1])


def test_large_upload_with_content_length_is_streamed(balancer):
    size = 96 * MIB
    block = os.urandom(MIB)
    expected = hashlib.sha256(block * 96).hexdigest()
    conn = connect(balancer)

    def body():
        for _ in range(96):
            yield block

    conn.request("PUT", "/upload", body=body(), headers={"Content-Length": str(size)})
    resp = conn.getresponse()
    assert resp.status == 200
    answer = json.loads(resp.read())
    assert answer["size"] == size and answer["sha256"] == expected
    # Streamed, never held whole: the balancer's peak memory stays far below the body's size.
    assert rss_peak_kib(balancer["proc"].pid) < 48 * 1024, rss_peak_kib(balancer["proc"].pid)
    conn.close()


def test_chunked_upload_is_relayed(balancer):
    parts = [os.urandom(n) for n in (1, 1000, 70000, 5, 300000)]
    conn = connect(balancer)
    conn.request("POST", "/upload", body=iter(parts), encode_chunked=True, headers={"Transfer-Encoding": "chunked"})
    resp = conn.getresponse()
    answer = json.loads(resp.read())
    assert answer["size"] == sum(map(len, parts))
    assert answer["sha256"] == hashlib.sha256(b"".join(parts)).hexdigest()
    # The same connection goes on with the next request.
    assert get_json(conn, "/who")["backend"] in ("a", "b")
    conn.close()


def test_expect_100_continue_upload(balancer):
    with socket.create_connection(("127.0.0.1", balancer["port"]), timeout=30) as sock:
        sock.sendall(b"PUT /upload HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n")
        assert sock.recv(100).startswith(b"HTTP/1.1 100 Continue\r\n\r\n")
        sock.sendall(b"hello")
        reply = b""
        while b"}" not in reply:
            reply += sock.recv(65536)
        assert b" 200 " in reply.split(b"\r\n")[0]
        assert hashlib.sha256(b"hello").hexdigest().encode() in reply


def test_large_download_is_streamed_and_exact(balancer):
    size = 64 * MIB + 123
    conn = connect(balancer)
    conn.request("GET", f"/big/{size}")
    resp = conn.getresponse()
    assert resp.status == 200 and int(resp.getheader("Content-Length")) == size
    digest, total = hashlib.sha256(), 0
    while True:
        data = resp.read(MIB)
        if not data:
            break
        digest.update(data)
        total += len(data)
    block = bytes(range(256)) * 256
    expected = hashlib.sha256()
    left = size
    while left:
        expected.update(block[: min(left, len(block))])
        left -= min(left, len(block))
    assert total == size and digest.hexdigest() == expected.hexdigest()
    assert rss_peak_kib(balancer["proc"].pid) < 48 * 1024
    conn.close()


def raw_request(port, request, until=None):
    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        sock.sendall(request)
        received = b""
        while True:
            data = sock.recv(65536)
            if not data:
                break
            received += data
            if until and until in received:
                break
    return received


def test_chunked_response_with_extensions_and_trailers_is_relayed_byte_for_byte(balancer):
    reply = raw_request(balancer["port"], b"GET /chunked HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
    head, _, body = reply.partition(b"\r\n\r\n")
    assert b"Transfer-Encoding: chunked" in head
    assert body == (b"6;ext=1\r\nhello \r\n8;ext=1\r\nchunked \r\n5;ext=1\r\nworld\r\n0\r\nX-Checksum: abc\r\n\r\n")


def test_range_request_gets_206_and_content_range(balancer):
    conn = connect(balancer)
    conn.request("GET", "/range", headers={"Range": "bytes=10-24"})
    resp = conn.getresponse()
    assert resp.status == 206
    assert resp.getheader("Content-Range") == "bytes 10-24/100"
    assert resp.read() == (b"0123456789" * 10)[10:25]
    conn.close()


@pytest.mark.parametrize("status", [400, 404, 409, 413, 500, 503])
def test_error_statuses_and_bodies_pass_through(balancer, status):
    conn = connect(balancer)
    conn.request("GET", f"/status/{status}")
    resp = conn.getresponse()
    assert resp.status == status
    assert json.loads(resp.read()) == {"error_code": "X", "message": f"status {status}"}
    assert get_json(conn, "/who")  # same connection, still in step
    conn.close()


def test_bodiless_answers_keep_the_connection_in_step(balancer):
    conn = connect(balancer)
    for status in (204, 304):
        conn.request("GET", f"/status/{status}")
        resp = conn.getresponse()
        assert resp.status == status and resp.read() == b""
    conn.request("HEAD", "/anything")
    resp = conn.getresponse()
    assert resp.status == 200 and resp.getheader("Content-Length") == "12345" and resp.read() == b""
    assert get_json(conn, "/who")
    conn.close()


def test_headers_pass_through_both_ways(balancer):
    conn = connect(balancer)
    conn.request("GET", "/headers", headers={"Authorization": "Basic dTpw", "X-Custom": "v1", "Accept-Encoding": "identity"})
    resp = conn.getresponse()
    seen = json.loads(resp.read())
    assert seen["authorization"] == "Basic dTpw" and seen["x-custom"] == "v1"
    assert resp.headers.get_all("Set-Cookie") == ["a=1", "b=2"]
    conn.close()


def test_a_body_that_ends_at_close_is_relayed_whole(balancer):
    reply = raw_request(balancer["port"], b"GET /until-close HTTP/1.1\r\nHost: t\r\n\r\n")
    head, _, body = reply.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200")
    assert body == b"no length, ends at close " * 1000


def test_an_unreachable_backend_is_a_502_with_an_error_body(balancer):
    conn = http.client.HTTPConnection("127.0.0.1", balancer["dead_port"], timeout=30)
    conn.request("GET", "/who")
    resp = conn.getresponse()
    assert resp.status == 502
    assert json.loads(resp.read())["error_code"] == "TEMPORARILY_UNAVAILABLE"


def test_a_request_it_cannot_frame_is_a_400(balancer):
    reply = raw_request(balancer["port"], b"POST /upload HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n\r\n")
    assert reply.startswith(b"HTTP/1.1 400 ")


def test_concurrent_clients(balancer):
    results = []

    def worker():
        conn = connect(balancer)
        for _ in range(20):
            results.append(get_json(conn, "/who")["backend"])
        conn.close()

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert len(results) == 160
    assert results.count("a") == results.count("b") == 80


def test_it_reports_requests_per_backend_when_stopped():
    backend = start_backend("solo")
    url = f"http://127.0.0.1:{backend.server_address[1]}"
    proc = subprocess.Popen([sys.executable, os.path.join(HERE, "roundrobin.py"), url], stdout=subprocess.PIPE, text=True)
    port = int(proc.stdout.readline().rsplit(":", 1)[1])
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    for _ in range(3):
        get_json(conn, "/who")
    conn.close()
    time.sleep(0.1)
    proc.terminate()
    out, _ = proc.communicate(timeout=30)
    assert out.strip() == f"requests per backend: {url}=3"
    backend.shutdown()
