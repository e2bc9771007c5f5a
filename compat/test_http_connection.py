"""The server's HTTP/1.1 connection handling, over raw sockets: keep-alive, requests a client
pipelines, Connection: close, a client that half-closes after its request, bodies large enough
to stream, and a route that answers without reading its body. (Malformed framing is in
test_bad_input.py.)"""
import json
import socket
from urllib.parse import urlparse

from conftest import SERVER_URI, unique_name

API = "/api/2.0/mlflow/"


def connect():
    url = urlparse(SERVER_URI)
    return socket.create_connection((url.hostname, url.port), timeout=30)


def post(path, body, extra=b""):
    data = json.dumps(body).encode()
    return (f"POST {API}{path} HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(data)}\r\n").encode() + extra + b"\r\n" + data


def get(path, extra=b""):
    return f"GET {path} HTTP/1.1\r\nHost: t\r\n".encode() + extra + b"\r\n"


class Replies:
    """Reads replies one after another from a connection (Content-Length framed)."""

    def __init__(self, sock):
        self.sock = sock
        self.buffer = b""

    def _fill(self):
        chunk = self.sock.recv(65536)
        if not chunk:
            raise EOFError("the server closed the connection")
        self.buffer += chunk

    def next(self):
        while b"\r\n\r\n" not in self.buffer:
            self._fill()
        head, _, rest = self.buffer.partition(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        headers = {}
        for line in lines[1:]:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        length = int(headers["content-length"])
        self.buffer = rest
        while len(self.buffer) < length:
            self._fill()
        body, self.buffer = self.buffer[:length], self.buffer[length:]
        return int(lines[0].split(" ")[1]), headers, body

    def closed(self):
        """True once the server has closed the connection (nothing more to read)."""
        try:
            return self.sock.recv(1) == b"" and not self.buffer
        except ConnectionResetError:
            return True


def test_many_requests_on_one_keep_alive_connection_each_get_their_reply():
    with connect() as sock:
        replies = Replies(sock)
        names = [unique_name("ka") for _ in range(20)]
        for name in names:
            sock.sendall(post("experiments/create", {"name": name}))
            status, headers, body = replies.next()
            assert status == 200, body
            assert headers["content-type"] == "application/json"
            assert headers["date"].endswith(" GMT") and headers["server"].startswith("cairn/")
            experiment_id = json.loads(body)["experiment_id"]
            sock.sendall(get(f"{API}experiments/get?experiment_id={experiment_id}"))
            status, _, body = replies.next()
            assert status == 200 and json.loads(body)["experiment"]["name"] == name


def test_pipelined_requests_are_answered_in_order():
    names = [unique_name("pipe") for _ in range(10)]
    with connect() as sock:
        # Every request in one write: the server answers them one by one, in order.
        sock.sendall(b"".join(post("experiments/create", {"name": n}) for n in names) + get("/health"))
        replies = Replies(sock)
        ids = []
        for _ in names:
            status, _, body = replies.next()
            assert status == 200, body
            ids.append(json.loads(body)["experiment_id"])
        status, _, body = replies.next()
        assert status == 200 and body == b"OK"
        sock.sendall(b"".join(get(f"{API}experiments/get?experiment_id={i}") for i in ids))
        assert [json.loads(replies.next()[2])["experiment"]["name"] for _ in ids] == names


def test_connection_close_is_honoured_after_the_reply():
    with connect() as sock:
        sock.sendall(get("/health") + get("/health", b"Connection: close\r\n"))
        replies = Replies(sock)
        status, _, body = replies.next()
        assert status == 200 and body == b"OK"
        status, _, body = replies.next()
        assert status == 200 and body == b"OK"
        assert replies.closed(), "the server kept the connection open after Connection: close"


def test_a_client_that_half_closes_after_its_request_still_gets_the_reply():
    name = unique_name("half")
    with connect() as sock:
        sock.sendall(post("experiments/create", {"name": name}))
        sock.shutdown(socket.SHUT_WR)
        replies = Replies(sock)
        status, _, body = replies.next()
        assert status == 200, body
        assert replies.closed()
    with connect() as sock:
        sock.sendall(get(f"{API}experiments/get-by-name?experiment_name={name}"))
        status, _, body = Replies(sock).next()
        assert status == 200 and json.loads(body)["experiment"]["name"] == name


def test_a_large_body_streams_to_the_route_and_the_connection_stays_usable():
    # Over the size the server collects before the route runs (1 MiB): an artifact upload
    # through the proxy with Content-Length, then a chunked one, then reading both back.
    exp = json.loads(http_json("experiments/create", {"name": unique_name("big")}))["experiment_id"]
    run = json.loads(http_json("runs/create", {"experiment_id": exp}))["run"]["info"]
    root = run["artifact_uri"].split("mlflow-artifacts:/", 1)[1]
    payload = bytes(range(256)) * (12 * 1024)  # 3 MiB
    proxy = f"/api/2.0/mlflow-artifacts/artifacts/{root}"
    with connect() as sock:
        replies = Replies(sock)
        sock.sendall(f"PUT {proxy}/big.bin HTTP/1.1\r\nHost: t\r\nContent-Length: {len(payload)}\r\n\r\n".encode() + payload)
        status, _, body = replies.next()
        assert status == 200, body
        chunks = b"".join(b"%x\r\n" % len(payload[i:i + 300_000]) + payload[i:i + 300_000] + b"\r\n"
                          for i in range(0, len(payload), 300_000)) + b"0\r\n\r\n"
        sock.sendall(f"PUT {proxy}/chunked.bin HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n".encode() + chunks)
        status, _, body = replies.next()
        assert status == 200, body
        for name in ("big.bin", "chunked.bin"):
            sock.sendall(get(f"{proxy}/{name}"))
            status, _, body = replies.next()
            assert status == 200 and body == payload, name


def test_a_route_that_answers_without_reading_a_large_body_leaves_the_connection_usable():
    body = b"x" * (3 * 1024 * 1024)
    with connect() as sock:
        replies = Replies(sock)
        # An unknown route never reads its body; the server drops the rest and answers the next request.
        sock.sendall(f"POST {API}no-such-endpoint HTTP/1.1\r\nHost: t\r\nContent-Length: {len(body)}\r\n\r\n".encode() + body)
        status, _, _ = replies.next()
        assert status == 404
        sock.sendall(get("/health"))
        status, _, reply = replies.next()
        assert status == 200 and reply == b"OK"


def http_json(path, body):
    with connect() as sock:
        sock.sendall(post(path, body, b"Connection: close\r\n"))
        status, _, reply = Replies(sock).next()
        assert status == 200, reply
        return reply
