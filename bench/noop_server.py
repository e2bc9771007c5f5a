#!/usr/bin/env python3
"""A server that answers the MLflow write calls trackbench makes at once and stores nothing.

bench/run drives it with the same harness as the real servers (scenarios s1-s3) to show the
harness's own ceiling on this machine: no server can be measured faster than this. Standard
library only (asyncio); HTTP/1.1 keep-alive, Content-Length bodies.

usage: noop_server.py PORT
"""
import asyncio
import json
import sys
import uuid


async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while True:
            head = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1").split("\r\n")
            path = head[0].split(" ")[1]
            length = 0
            for line in head[1:]:
                if line.lower().startswith("content-length:"):
                    length = int(line.split(":", 1)[1])
            if length:
                await reader.readexactly(length)
            if path.startswith("/health"):
                body = b"OK"
            elif "experiments/create" in path:
                body = b'{"experiment_id": "1"}'
            elif "runs/create" in path:
                body = json.dumps({"run": {"info": {"run_id": uuid.uuid4().hex}}}).encode()
            elif "experiments/search" in path:
                body = b'{"experiments": []}'
            else:
                body = b"{}"
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s"
                         % (len(body), body))
            await writer.drain()
    except (asyncio.IncompleteReadError, ConnectionResetError):
        pass
    finally:
        writer.close()


async def main() -> None:
    server = await asyncio.start_server(handle, "127.0.0.1", int(sys.argv[1]))
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    asyncio.run(main())
