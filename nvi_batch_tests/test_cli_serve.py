"""`nvi-batch serve` binds Dagster's servers to the address the ECS task metadata gives the task."""

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from nvi_batch.cli.serve import default_port, server_command, task_address


@pytest.fixture
def task_metadata(monkeypatch):
    """A task metadata endpoint (v4) on loopback, for a task whose address is 127.0.0.9."""

    class Metadata(BaseHTTPRequestHandler):
        def do_GET(self):
            body = json.dumps({"Name": "run", "Networks": [{"NetworkMode": "awsvpc", "IPv4Addresses": ["127.0.0.9"]}]})
            self.send_response(200 if self.path == "/v4/task-1" else 404)
            self.end_headers()
            self.wfile.write(body.encode())

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Metadata)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    monkeypatch.setenv("ECS_CONTAINER_METADATA_URI_V4", f"http://127.0.0.1:{server.server_port}/v4/task-1")
    yield
    server.shutdown()


def test_in_a_task_the_servers_bind_to_the_task_address(task_metadata):
    address = task_address()

    assert address == "127.0.0.9"
    assert server_command("code-server", address, 4000, "w.yaml") == [
        "dagster", "code-server", "start", "-m", "nvi_batch.definitions", "-h", "127.0.0.9", "-p", "4000"]
    assert server_command("webserver", address, 3000, "w.yaml") == [
        "dagster-webserver", "-h", "127.0.0.9", "-p", "3000", "-w", "w.yaml"]


def test_outside_a_task_they_bind_to_loopback(monkeypatch):
    monkeypatch.delenv("ECS_CONTAINER_METADATA_URI_V4", raising=False)

    assert task_address() == "127.0.0.1"


def test_the_code_server_listens_where_the_daemon_and_webserver_are_told_to_look(monkeypatch):
    monkeypatch.setenv("NVI_CODE_SERVER_PORT", "4711")

    assert (default_port("code-server"), default_port("webserver")) == (4711, 3000)
