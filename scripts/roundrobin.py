#!/usr/bin/env python3
"""A small HTTP/1.1 load balancer for the tests: round robin per request over N backends.

    scripts/roundrobin.py --port 0 http://127.0.0.1:5001 http://127.0.0.1:5002

Listens on loopback and sends each request (not each connection) to the next backend in turn, so
one keep-alive client alternates between replicas. Bodies are streamed both ways, never held
whole: Content-Length, chunked (relayed as is, trailers included) and read-until-close framing;
request and response heads are passed through byte for byte (Range, status codes, every header),
1xx interim answers are relayed, HEAD/204/304 have no body. Backend connections are kept alive and
reused per client connection. Python standard library only.

Prints `listening on http://HOST:PORT` once it accepts connections (port 0 picks a free one) and,
on SIGTERM/SIGINT, `requests per backend: URL=N, URL=N` before it exits. A backend that cannot be
reached is answered 502 with an MLflow-style error body. Test infrastructure, not a product.
"""

import argparse
import itertools
import select
import signal
import socket
import socketserver
import sys
import threading
from urllib.parse import urlsplit

CHUNK = 64 * 1024
MAX_HEAD = 256 * 1024  # request/response head limit (Cairn refuses request lines over 80 KiB itself)


class BadMessage(Exception):
    """The client sent something this proxy cannot frame."""


class BackendGone(Exception):
    """The backend closed or broke the connection before a whole answer."""


def read_head(reader):
    """Reads an HTTP head (start line + header lines, up to the blank line).
    Returns (raw bytes, start line, [(lower-case name, value)]) or None on a clean EOF before any byte."""
    raw = bytearray()
    lines = []
    while True:
        line = reader.readline(MAX_HEAD + 1)
        if not line:
            if not raw:
                return None
            raise BadMessage("connection closed inside a message head")
        if not raw and line in (b"\r\n", b"\n"):
            continue  # tolerated empty line before a request (RFC 9112 2.2)
        raw += line
        if len(raw) > MAX_HEAD:
            raise BadMessage("message head too large")
        if line in (b"\r\n", b"\n"):
            break
        lines.append(line.rstrip(b"\r\n"))
    if not lines:
        raise BadMessage("empty message head")
    headers = []
    for line in lines[1:]:
        name, sep, value = line.partition(b":")
        if not sep:
            raise BadMessage("malformed header line")
        headers.append((name.strip().lower().decode("latin-1"), value.strip().decode("latin-1")))
    return bytes(raw), lines[0].decode("latin-1"), headers


def header(headers, name):
    values = [v for n, v in headers if n == name]
    return ",".join(values) if values else None


def tokens(value):
    return [t.strip().lower() for t in (value or "").split(",") if t.strip()]


def body_framing(headers):
    """('chunked', None), ('length', n) or ('none', None) from the headers of a message."""
    if "chunked" in tokens(header(headers, "transfer-encoding")):
        return "chunked", None
    length = header(headers, "content-length")
    if length is not None:
        values = {v.strip() for v in length.split(",")}
        if len(values) != 1 or not next(iter(values)).isdigit():
            raise BadMessage("invalid Content-Length")
        return "length", int(next(iter(values)))
    return "none", None


def copy_exact(reader, send, count, truncated):
    while count > 0:
        data = reader.read1(min(CHUNK, count)) if hasattr(reader, "read1") else reader.read(min(CHUNK, count))
        if not data:
            raise truncated("body ended early")
        send(data)
        count -= len(data)


def copy_chunked(reader, send, truncated):
    """Relays a chunked body as it is, chunk by chunk, up to and including the trailers."""
    while True:
        line = reader.readline(4096)
        if not line:
            raise truncated("chunked body ended early")
        if not line.endswith(b"\n"):
            raise BadMessage("chunk size line too long")
        size_text = line.split(b";", 1)[0].strip()
        try:
            size = int(size_text, 16)
        except ValueError:
            raise BadMessage("invalid chunk size %r" % size_text[:40])
        send(line)
        if size == 0:
            while True:  # trailers, then the blank line
                trailer = reader.readline(MAX_HEAD)
                if not trailer:
                    raise truncated("chunked body ended in its trailers")
                send(trailer)
                if trailer in (b"\r\n", b"\n"):
                    return
        copy_exact(reader, send, size, truncated)
        end = reader.readline(4096)
        if end not in (b"\r\n", b"\n"):
            raise BadMessage("chunk not followed by CRLF")
        send(end)


def copy_until_close(reader, send):
    while True:
        data = reader.read1(CHUNK)
        if not data:
            return
        send(data)


class Backend:
    def __init__(self, url):
        parts = urlsplit(url)
        if parts.scheme != "http" or not parts.hostname or not parts.port:
            raise SystemExit(f"backend {url!r}: expected http://HOST:PORT")
        self.url = url.rstrip("/")
        self.address = (parts.hostname, parts.port)
        self.requests = 0


class Connection:
    def __init__(self, backend):
        self.backend = backend
        self.sock = socket.create_connection(backend.address, timeout=600)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.reader = self.sock.makefile("rb", buffering=CHUNK)

    def stale(self):
        """A pooled idle connection that the backend closed (or wrote to) is not reused."""
        try:
            readable, _, _ = select.select([self.sock], [], [], 0)
        except (OSError, ValueError):
            return True
        return bool(readable)

    def close(self):
        for thing in (self.reader, self.sock):
            try:
                thing.close()
            except OSError:
                pass


class Balancer(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128

    def __init__(self, address, backends):
        self.backends = backends
        self._turn = itertools.cycle(range(len(backends)))
        self._lock = threading.Lock()
        super().__init__(address, Handler)

    def next_backend(self):
        with self._lock:
            backend = self.backends[next(self._turn)]
            backend.requests += 1
            return backend


def error_response(status, reason, message):
    body = ('{"error_code": "TEMPORARILY_UNAVAILABLE", "message": "%s"}' % message.replace('"', "'")).encode()
    return (b"HTTP/1.1 %d %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\nConnection: close\r\n\r\n"
            % (status, reason.encode(), len(body)) + body)


class Handler(socketserver.BaseRequestHandler):
    def setup(self):
        self.request.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.client_reader = self.request.makefile("rb", buffering=CHUNK)
        self.pool = {}  # backend url -> idle Connection

    def finish(self):
        for conn in self.pool.values():
            conn.close()
        try:
            self.client_reader.close()
        except OSError:
            pass

    def send_client(self, data):
        self.request.sendall(data)

    def handle(self):
        try:
            while self.one_exchange():
                pass
        except (BrokenPipeError, ConnectionResetError, TimeoutError, socket.timeout):
            pass
        except BadMessage as exc:
            try:
                self.send_client(error_response(400, "Bad Request", f"load balancer: {exc}"))
            except OSError:
                pass
        except BackendGone as exc:
            # Part of the answer may already be on its way: all that is left is to close.
            sys.stderr.write(f"roundrobin: {exc}\n")

    def backend_connection(self, backend):
        conn = self.pool.pop(backend.url, None)
        if conn is not None and conn.stale():
            conn.close()
            conn = None
        return conn or Connection(backend)

    def one_exchange(self):
        """Relays one request and its answer; returns whether the client connection stays open."""
        head = read_head(self.client_reader)
        if head is None:
            return False
        raw, request_line, headers = head
        parts = request_line.split(" ")
        if len(parts) != 3 or not parts[2].startswith("HTTP/1."):
            raise BadMessage("malformed request line")
        method, version = parts[0], parts[2]
        framing, length = body_framing(headers)
        connection_tokens = tokens(header(headers, "connection"))
        client_keeps = ("close" not in connection_tokens) and (version != "HTTP/1.0" or "keep-alive" in connection_tokens)

        backend = self.server.next_backend()
        try:
            conn = self.backend_connection(backend)
        except OSError as exc:
            self.send_client(error_response(502, "Bad Gateway", f"load balancer: backend {backend.url} unreachable: {exc}"))
            return False

        if "100-continue" in tokens(header(headers, "expect")):
            # Answered here, as proxies do: the body is streamed on to the backend as it comes.
            raw = b"".join(line for line in raw.splitlines(keepends=True)
                           if not line.lower().startswith(b"expect:"))
            self.send_client(b"HTTP/1.1 100 Continue\r\n\r\n")

        backend_refused = []

        def send_backend(data):
            if backend_refused:
                return  # the backend stopped reading (it answered early); drain the client's body
            try:
                conn.sock.sendall(data)
            except OSError as exc:
                backend_refused.append(exc)

        send_backend(raw)
        if framing == "length":
            copy_exact(self.client_reader, send_backend, length, BadMessage)
        elif framing == "chunked":
            copy_chunked(self.client_reader, send_backend, BadMessage)
        if backend_refused:
            client_keeps = False  # whatever the backend answered (if anything), this connection ends with it

        while True:
            try:
                response = read_head(conn.reader)
            except (BadMessage, OSError) as exc:
                raise BackendGone(f"reading the answer of {backend.url}: {exc}")
            if response is None:
                conn.close()
                self.send_client(error_response(502, "Bad Gateway", f"load balancer: backend {backend.url} closed the connection"))
                return False
            response_raw, status_line, response_headers = response
            try:
                status = int(status_line.split(" ")[1])
            except (IndexError, ValueError):
                raise BackendGone(f"{backend.url} answered a malformed status line")
            self.send_client(response_raw)
            if 100 <= status < 200 and status != 101:
                continue  # interim answer (100 Continue, 103 Early Hints): the real one follows
            break

        backend_keeps = "close" not in tokens(header(response_headers, "connection"))
        truncated = BackendGone
        if method == "HEAD" or status in (204, 304) or status == 101:
            pass
        else:
            try:
                response_framing, response_length = body_framing(response_headers)
            except BadMessage as exc:
                raise BackendGone(f"{backend.url}: {exc}")
            if response_framing == "length":
                copy_exact(conn.reader, self.send_client, response_length, truncated)
            elif response_framing == "chunked":
                copy_chunked(conn.reader, self.send_client, truncated)
            else:
                copy_until_close(conn.reader, self.send_client)
                backend_keeps = False
                client_keeps = False  # the client can only see the end of this body by the close
        if backend_keeps:
            self.pool[backend.url] = conn
        else:
            conn.close()
        return client_keeps


def main(argv=None):
    parser = argparse.ArgumentParser(description="Round-robin HTTP/1.1 load balancer for tests (per request).")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port (default)")
    parser.add_argument("backends", nargs="+", help="http://HOST:PORT of each backend")
    args = parser.parse_args(argv)
    backends = [Backend(url) for url in args.backends]
    server = Balancer((args.host, args.port), backends)

    def stop(signum, frame):
        counts = ", ".join(f"{b.url}={b.requests}" for b in backends)
        print(f"requests per backend: {counts}", flush=True)
        sys.exit(0)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    host, port = server.server_address[:2]
    print(f"listening on http://{host}:{port}", flush=True)
    server.serve_forever(poll_interval=0.2)


if __name__ == "__main__":
    main()
