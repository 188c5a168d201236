"""The HTTP load generator, run in a process of its own: `python -m bench.loadgen < SPEC_JSON`.

Keep-alive HTTP/1.1 over raw asyncio streams on uvloop, one task per connection, each sending its
next request as soon as the previous answer is read (closed loop). SPEC: `host`, `port`,
`connections`, `seconds`, `headers` (dict), `requests` (a list of [method, path, body or null];
connection c sends requests c, c + connections, c + 2 * connections, ... cycling, so two
connections never share a request while there are enough); `warmup_seconds` of requests first,
not counted; at least `min_requests` counted, however long they take. Prints one JSON line:
requests, seconds, statuses and every latency in milliseconds.
"""

import asyncio
import json
import sys
import time
from collections import Counter
from typing import Any

import uvloop


def encode_request(
    method: str, path: str, body: str | None, host: str, headers: dict[str, str]
) -> bytes:
    lines = [f"{method} {path} HTTP/1.1", f"Host: {host}"]
    lines += [f"{name}: {value}" for name, value in headers.items()]
    payload = body.encode() if body is not None else b""
    if body is not None:
        lines += ["Content-Type: application/json", f"Content-Length: {len(payload)}"]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + payload


async def read_response(reader: asyncio.StreamReader) -> int:
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head[9:12])
    length = 0
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
    if length:
        await reader.readexactly(length)
    return status


async def run(spec: dict[str, Any]) -> dict[str, Any]:
    host, port, connections = spec["host"], spec["port"], spec["connections"]
    requests = [
        encode_request(method, path, body, host, spec.get("headers", {}))
        for method, path, body in spec["requests"]
    ]
    latencies: list[float] = []
    statuses: Counter[int] = Counter()
    min_requests = spec.get("min_requests", 0)
    warm_until = time.perf_counter() + spec.get("warmup_seconds", 0)
    deadline = warm_until + spec["seconds"]

    async def connection(index: int) -> None:
        reader, writer = await asyncio.open_connection(host, port)
        n = index
        try:
            while (started := time.perf_counter()) < deadline or len(latencies) < min_requests:
                writer.write(requests[n % len(requests)])
                status = await read_response(reader)
                if started >= warm_until:
                    statuses[status] += 1
                    latencies.append((time.perf_counter() - started) * 1000)
                n += connections
        finally:
            writer.close()

    await asyncio.gather(*(connection(index) for index in range(connections)))
    elapsed = time.perf_counter() - warm_until
    return {
        "requests": len(latencies),
        "seconds": elapsed,
        "statuses": {str(code): count for code, count in statuses.items()},
        "latencies_ms": latencies,
    }


def main() -> None:
    spec = json.loads(sys.argv[1] if len(sys.argv) > 1 else sys.stdin.read())
    print(json.dumps(uvloop.run(run(spec))))


if __name__ == "__main__":
    main()
