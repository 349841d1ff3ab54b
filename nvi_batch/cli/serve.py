"""`nvi-batch serve code-server|webserver`: Dagster's servers, bound to the address of their own task.

The code server's gRPC and the webserver carry no authentication. On ECS (awsvpc) each task has an
address of its own, which the task metadata endpoint tells; binding to it rather than 0.0.0.0 keeps
them off every other interface, and the security groups in deploy/README.md decide who may reach that
address. Outside a task (no metadata endpoint) they bind to 127.0.0.1.
"""

from __future__ import annotations

import argparse
import json
import os
import urllib.request

from nvi_batch.cli import CliError
from nvi_batch.settings import CODE_SERVER_PORT, SettingInvalid

LOOPBACK = "127.0.0.1"
TASK_METADATA_VARIABLE = "ECS_CONTAINER_METADATA_URI_V4"
CODE_LOCATION_MODULE = "nvi_batch.definitions"
SERVERS = ("code-server", "webserver")
WEBSERVER_PORT = 3000


def task_address() -> str:
    """The task's own IPv4 address from the ECS task metadata endpoint (v4), or 127.0.0.1 outside ECS."""
    metadata_uri = os.environ.get(TASK_METADATA_VARIABLE)
    if not metadata_uri:
        return LOOPBACK
    with urllib.request.urlopen(metadata_uri, timeout=10) as response:  # noqa: S310 - ECS sets this URL
        container = json.load(response)
    for network in container.get("Networks", []):
        for address in network.get("IPv4Addresses", []):
            return address
    raise CliError(f"the task metadata at {metadata_uri} names no IPv4 address of this task")


def server_command(server: str, address: str, port: int, workspace: str) -> list[str]:
    if server == "code-server":
        return ["dagster", "code-server", "start", "-m", CODE_LOCATION_MODULE, "-h", address, "-p", str(port)]
    return ["dagster-webserver", "-h", address, "-p", str(port), "-w", workspace]


def default_port(server: str) -> int:
    """The code server's port is the one the daemon and the webserver are told (NVI_CODE_SERVER_PORT)."""
    if server == "code-server":
        try:
            return CODE_SERVER_PORT.read()
        except SettingInvalid as problem:
            raise CliError(str(problem)) from None
    return WEBSERVER_PORT


def cmd_serve(args) -> int:
    address = task_address()
    port = args.port or default_port(args.server)
    command = server_command(args.server, address, port, args.workspace)
    print(f"{args.server} on {address}:{port}", flush=True)
    os.execvp(command[0], command)  # noqa: S606 - the server replaces this process, as in the image's CMD


def register(commands: argparse._SubParsersAction) -> None:
    serve = commands.add_parser(
        "serve",
        help="run the code server or the webserver on this task's own address",
        description=(
            "Start `dagster code-server` or `dagster-webserver` bound to the address of the ECS task this runs "
            "in (from the task metadata endpoint), or to 127.0.0.1 outside ECS. The image's command."
        ),
    )
    serve.add_argument("server", choices=SERVERS)
    serve.add_argument(
        "--port", type=int, help="default: NVI_CODE_SERVER_PORT (4000) for the code server, 3000 for the webserver"
    )
    serve.add_argument(
        "--workspace", default="deploy/workspace.yaml", help="the webserver's workspace file (default: %(default)s)"
    )
    serve.set_defaults(handler=cmd_serve)
