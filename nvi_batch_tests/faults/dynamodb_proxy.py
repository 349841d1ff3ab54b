"""An HTTP proxy on loopback in front of moto's DynamoDB that injects the faults DynamoDB has:

- throttling: every Nth request is answered 400 ThrottlingException without reaching the table;
- lost responses: every Nth request reaches the table and is applied, and its response is lost (the
  connection closes without an answer), so the client cannot know whether it happened.

Rules count the requests of the operations they name (`X-Amz-Target`), e.g. TransactWriteItems, or
of all; a request meets a fault when any of the rules of that fault applies.
"""

from __future__ import annotations

import http.client
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

THROTTLED = json.dumps({
    "__type": "com.amazonaws.dynamodb.v20120810#ThrottlingException",
    "message": "Rate of requests exceeds the allowed throughput.",
}).encode()
NOT_RELAYED = {"connection", "keep-alive", "transfer-encoding", "content-length", "server", "date"}


class FaultRule:
    """Of every `every` requests of the operations named (all when none are), the last `burst` meet the
    fault: a burst longer than the client's own retries (botocore's standard mode tries 3 times)
    reaches the caller."""

    def __init__(self, every: int, burst: int = 1, operations: tuple[str, ...] = ()):
        if not 1 <= burst <= every:
            raise ValueError("a burst is 1 to `every` requests")
        self.every, self.burst, self.operations = every, burst, operations
        self.seen = self.hit = 0

    def applies(self, operation: str) -> bool:
        if self.operations and operation not in self.operations:
            return False
        position = self.seen % self.every  # 0 .. every - 1
        self.seen += 1
        if position < self.every - self.burst:
            return False
        self.hit += 1
        return True


class DynamoDbFaultProxy:
    def __init__(self, upstream_url: str):
        upstream = urlsplit(upstream_url)
        self.upstream = (upstream.hostname, upstream.port)
        self.throttle: list[FaultRule] = []
        self.lose_response: list[FaultRule] = []
        self.requests: dict[str, int] = {}
        self._lock = threading.Lock()
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # keep-alive, as botocore's connection pool expects

            def log_message(self, *args) -> None:
                pass

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                operation = (self.headers.get("X-Amz-Target") or "").rsplit(".", 1)[-1]
                throttled, lost = proxy._faults_for(operation)
                if throttled:
                    self._answer(400, {"Content-Type": "application/x-amz-json-1.0"}, THROTTLED)
                    return
                status, headers, answer = proxy._forward(self.command, self.path, dict(self.headers), body)
                if lost:  # applied by the table; the answer never arrives
                    self.close_connection = True
                    return
                self._answer(status, headers, answer)

            def _answer(self, status: int, headers: dict, body: bytes) -> None:
                self.send_response(status)
                for name, value in headers.items():
                    if name.lower() not in NOT_RELAYED:
                        self.send_header(name, value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, name="dynamodb-fault-proxy", daemon=True)

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def __enter__(self) -> DynamoDbFaultProxy:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._server.shutdown()
        self._server.server_close()

    def _faults_for(self, operation: str) -> tuple[bool, bool]:
        with self._lock:
            self.requests[operation] = self.requests.get(operation, 0) + 1
            throttled = any([rule.applies(operation) for rule in self.throttle])  # every rule counts the request
            lost = not throttled and any([rule.applies(operation) for rule in self.lose_response])
            return throttled, lost

    def _forward(self, method: str, path: str, headers: dict, body: bytes) -> tuple[int, dict, bytes]:
        connection = http.client.HTTPConnection(*self.upstream, timeout=30)
        try:
            connection.request(method, path, body=body, headers=headers)
            response = connection.getresponse()
            return response.status, dict(response.getheaders()), response.read()
        finally:
            connection.close()
