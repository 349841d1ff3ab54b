"""A loopback TCP proxy in front of PostgreSQL that injects faults where they happen: on the wire.

It reads the PostgreSQL frontend/backend protocol just far enough to know a COMMIT and a write
statement from the rest (psycopg2 sends every statement as a simple Query message), and can

- drop the reply to every Nth COMMIT: the COMMIT reaches the server and commits, its reply never
  reaches the client, whose connection is then reset (the outcome is unknown to the client);
- reset connections mid-transaction: every Nth write statement is not forwarded, both sides of its
  connection are reset instead (the server rolls the transaction back);
- refuse connections for a while, starting after the Nth COMMIT: the listening socket is closed (a
  connect is refused) and every live connection is reset, as when the database restarts;
- call back after each COMMIT's reply has been delivered (another writer can act mid-run).

Clients must connect with `sslmode=disable` so the protocol stays readable (`url()` does so).
"""

from __future__ import annotations

import selectors
import socket
import struct
import threading
import time
from collections.abc import Callable

SSL_REQUEST = 80877103
GSSENC_REQUEST = 80877104
WRITE_STATEMENTS = ("UPDATE", "INSERT", "DELETE")


def _reset(sock: socket.socket) -> None:
    """Close with a TCP reset instead of an orderly FIN, as a dropped connection looks to its peer."""
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    except OSError:
        pass
    sock.close()


class _Messages:
    """Splits a byte stream into protocol messages; the client's first message has no type byte."""

    def __init__(self, untyped_first: bool):
        self.buffer = b""
        self.untyped = untyped_first

    def feed(self, data: bytes) -> list[tuple[bytes, bytes]]:
        """Complete messages as (type, whole message bytes); type is b"" for an untyped one."""
        self.buffer += data
        messages = []
        while True:
            if self.untyped:
                if len(self.buffer) < 4:
                    break
                length = struct.unpack("!I", self.buffer[:4])[0]
                if len(self.buffer) < length:
                    break
                message, self.buffer = self.buffer[:length], self.buffer[length:]
                code = struct.unpack("!I", message[4:8])[0] if length >= 8 else 0
                # After an SSL or GSS request the client sends its real startup message, untyped too.
                self.untyped = code in (SSL_REQUEST, GSSENC_REQUEST)
                messages.append((b"", message))
            else:
                if len(self.buffer) < 5:
                    break
                length = struct.unpack("!I", self.buffer[1:5])[0]
                if len(self.buffer) < length + 1:
                    break
                message, self.buffer = self.buffer[: length + 1], self.buffer[length + 1 :]
                messages.append((message[:1], message))
        return messages


def _statement(message: bytes) -> str:
    """The first keyword of a simple Query message, upper case."""
    text = message[5:].split(b"\0", 1)[0].decode("utf-8", "replace").lstrip()
    return text.split(None, 1)[0].upper() if text else ""


class PostgresFaultProxy:
    def __init__(self, upstream_host: str = "127.0.0.1", upstream_port: int = 5432):
        self.upstream = (upstream_host, upstream_port)
        self.port = 0
        self._lock = threading.Lock()
        self._listener: socket.socket | None = None
        self._connections: set[_Connection] = set()
        self._stopped = threading.Event()
        self._refusing_until = 0.0
        self._accepting = threading.Thread(target=self._accept_loop, name="pg-fault-proxy", daemon=True)
        # Fault rules, set by the test; None switches a rule off.
        self.drop_commit_reply_every: int | None = None
        self.reset_write_every: int | None = None
        self.on_commit: Callable[[int], None] | None = None
        self._outage_after_commits: int | None = None
        self._outage_seconds = 0.0
        # What happened, for the test to assert on.
        self.commits = 0
        self.commit_requests = 0
        self.writes = 0
        self.dropped_commit_replies = 0
        self.reset_writes = 0
        self.outages = 0
        self.connections_refused_from: float | None = None

    # -- life cycle ------------------------------------------------------------------------------
    def __enter__(self) -> PostgresFaultProxy:
        self._listen()
        self._accepting.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stopped.set()
        self._accepting.join(timeout=5)
        with self._lock:
            listener, self._listener = self._listener, None
            connections = list(self._connections)
        if listener is not None:
            listener.close()
        for connection in connections:
            connection.reset()

    def url(self, database: str) -> str:
        return (f"postgresql+psycopg2://postgres@127.0.0.1:{self.port}/{database}"
                "?sslmode=disable&gssencmode=disable&connect_timeout=5")

    def _listen(self) -> None:
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(64)
        listener.settimeout(0.05)
        self.port = listener.getsockname()[1]
        with self._lock:
            self._listener = listener

    # -- faults ----------------------------------------------------------------------------------
    def refuse_connections(self, after_commits: int, seconds: float) -> None:
        """Once `after_commits` more COMMITs have been answered (0: now), refuse connections for `seconds`."""
        with self._lock:
            self._outage_after_commits = self.commits + after_commits
            self._outage_seconds = seconds
        if after_commits == 0:
            self._start_outage()

    def _start_outage(self) -> None:
        with self._lock:
            self._refusing_until = time.monotonic() + self._outage_seconds
            self._outage_after_commits = None
            listener, self._listener = self._listener, None
            connections = list(self._connections)
            self.outages += 1
            self.connections_refused_from = time.monotonic()
        if listener is not None:
            listener.close()  # a connect now finds nothing listening: refused
        for connection in connections:
            connection.reset()

    def _commit_answered(self) -> None:
        """After the client has the whole reply to a COMMIT: the callback, then an outage if one is due."""
        with self._lock:
            self.commits += 1
            count = self.commits
            outage_due = self._outage_after_commits is not None and count >= self._outage_after_commits
        if self.on_commit is not None:
            self.on_commit(count)
        if outage_due:
            self._start_outage()

    def _drops_this_commit(self) -> bool:
        with self._lock:
            self.commit_requests += 1
            every = self.drop_commit_reply_every
            drop = bool(every) and self.commit_requests % every == 0
            if drop:
                self.dropped_commit_replies += 1
            return drop

    def _resets_this_write(self) -> bool:
        with self._lock:
            self.writes += 1
            every = self.reset_write_every
            reset = bool(every) and self.writes % every == 0
            if reset:
                self.reset_writes += 1
            return reset

    # -- plumbing --------------------------------------------------------------------------------
    def _accept_loop(self) -> None:
        while not self._stopped.is_set():
            with self._lock:
                listener, refusing_until = self._listener, self._refusing_until
            if listener is None:
                if time.monotonic() >= refusing_until:
                    self._listen()  # the outage is over: the same port listens again
                else:
                    time.sleep(0.02)
                continue
            try:
                client, _ = listener.accept()
            except (TimeoutError, OSError):
                continue
            try:
                server = socket.create_connection(self.upstream, timeout=5)
            except OSError:
                _reset(client)
                continue
            connection = _Connection(self, client, server)
            with self._lock:
                self._connections.add(connection)
            threading.Thread(target=connection.pump, name="pg-fault-proxy-connection", daemon=True).start()

    def _forget(self, connection: _Connection) -> None:
        with self._lock:
            self._connections.discard(connection)


class _Connection:
    """One client connection and its server connection, pumped by one thread."""

    def __init__(self, proxy: PostgresFaultProxy, client: socket.socket, server: socket.socket):
        self.proxy = proxy
        self.client, self.server = client, server
        self.from_client = _Messages(untyped_first=True)
        self.from_server = _Messages(untyped_first=False)
        self.swallowing_commit_reply = False
        self.answering_commit = False
        self.closed = threading.Event()
        self._close_lock = threading.Lock()

    def reset(self) -> None:
        with self._close_lock:
            if self.closed.is_set():
                return
            self.closed.set()
            _reset(self.client)
            _reset(self.server)
        self.proxy._forget(self)

    def pump(self) -> None:
        selector = selectors.DefaultSelector()
        try:
            selector.register(self.client, selectors.EVENT_READ, self._client_data)
            selector.register(self.server, selectors.EVENT_READ, self._server_data)
            while not self.closed.is_set():
                for key, _ in selector.select(timeout=0.05):
                    data = key.fileobj.recv(65536)
                    if not data:
                        self.reset()
                        return
                    key.data(data)
                    if self.closed.is_set():
                        return
        except (OSError, ValueError):
            self.reset()
        finally:
            selector.close()

    def _client_data(self, data: bytes) -> None:
        outgoing = []
        for kind, message in self.from_client.feed(data):
            if kind == b"Q":
                statement = _statement(message)
                if statement == "COMMIT" and self.proxy._drops_this_commit():
                    self.swallowing_commit_reply = True
                elif statement in WRITE_STATEMENTS and self.proxy._resets_this_write():
                    self.server.sendall(b"".join(outgoing))
                    self.reset()  # mid-transaction: the server rolls back, the client loses its connection
                    return
            outgoing.append(message)
        self.server.sendall(b"".join(outgoing))

    def _server_data(self, data: bytes) -> None:
        outgoing = []
        for kind, message in self.from_server.feed(data):
            if self.swallowing_commit_reply:
                if kind == b"Z":  # the COMMIT's reply is complete, and lost: the client never hears of it
                    self.client.sendall(b"".join(outgoing))
                    self.reset()
                    return
                continue
            outgoing.append(message)
            if kind == b"C" and message[5:].rstrip(b"\0") == b"COMMIT":
                self.answering_commit = True
            elif kind == b"Z" and self.answering_commit:
                self.answering_commit = False
                self.client.sendall(b"".join(outgoing))
                outgoing = []
                self.proxy._commit_answered()
                if self.closed.is_set():
                    return
        if outgoing:
            self.client.sendall(b"".join(outgoing))
