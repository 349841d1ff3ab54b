"""deploy/Dockerfile as this machine can run it: the image's environment, working directory, files and
command, without Docker.

The stand-in ECS and Batch agent starts a task's command the way the container would: with the image's
`ENV`, in its `WORKDIR`, the files its `COPY` lines put in place, and its `CMD` unless the task
overrides it. The image's tree is a folder here (`root`); absolute paths of the image in environment
values (DAGSTER_HOME) are read inside it. `RUN` lines are not replayed: this checkout's virtualenv is
what `pip install .` installs.
"""

from __future__ import annotations

import json
import os
import re
import shlex
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

VARIABLE = re.compile(r"\$(?:\{(\w+)\}|(\w+))")


@dataclass(frozen=True)
class Copy:
    sources: list[str]
    destination: str
    into_directory: bool


@dataclass
class Dockerfile:
    """The instructions of a Dockerfile that shape a container: ENV, WORKDIR, COPY and CMD."""

    environment: dict[str, str] = field(default_factory=dict)
    workdir: str = "/"
    copies: list[Copy] = field(default_factory=list)
    command: list[str] = field(default_factory=list)

    @classmethod
    def parse(cls, text: str) -> Dockerfile:
        dockerfile = cls()
        for instruction, arguments in _instructions(text):
            if instruction == "ENV":
                dockerfile.environment.update(_env_pairs(arguments, dockerfile.environment))
            elif instruction == "WORKDIR":
                dockerfile.workdir = str(PurePosixPath(dockerfile.workdir) / _expand(arguments, dockerfile.environment))
            elif instruction == "COPY":
                *sources, destination = (_expand(word, dockerfile.environment) for word in shlex.split(arguments))
                into_directory = destination.endswith("/") or len(sources) > 1
                dockerfile.copies.append(
                    Copy(sources, str(PurePosixPath(dockerfile.workdir) / destination), into_directory)
                )
            elif instruction == "CMD":
                dockerfile.command = json.loads(arguments)
        return dockerfile


def _instructions(text: str) -> list[tuple[str, str]]:
    joined = re.sub(r"\\\n", " ", text)
    instructions = []
    for line in joined.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            instruction, _, arguments = line.partition(" ")
            instructions.append((instruction.upper(), arguments.strip()))
    return instructions


def _expand(value: str, environment: dict[str, str]) -> str:
    return VARIABLE.sub(lambda match: environment.get(match.group(1) or match.group(2), ""), value)


def _env_pairs(arguments: str, environment: dict[str, str]) -> dict[str, str]:
    pairs = {}
    for word in shlex.split(arguments):
        name, _, value = word.partition("=")
        pairs[name] = _expand(value, {**environment, **pairs})
    return pairs


@dataclass
class LocalImage:
    """An image's tree under `root`, with its COPY sources linked from the build context."""

    dockerfile: Dockerfile
    root: Path

    @classmethod
    def build(cls, dockerfile_path: Path, context: Path, root: Path) -> LocalImage:
        dockerfile = Dockerfile.parse(dockerfile_path.read_text())
        image = cls(dockerfile, root)
        image.path(dockerfile.workdir).mkdir(parents=True, exist_ok=True)
        for copy in dockerfile.copies:
            for source in copy.sources:
                origin = (context / source).resolve()
                if copy.into_directory and origin.is_dir():
                    raise ValueError(f"{dockerfile_path}: COPY of the folder {source} into a folder is not something this stand-in lays out; copy its files")
                link = image.path(copy.destination)
                if copy.into_directory:
                    link = link / origin.name
                link.parent.mkdir(parents=True, exist_ok=True)
                if not link.exists():
                    link.symlink_to(origin)
        return image

    def path(self, image_path: str) -> Path:
        """Where a path of the image is on this machine."""
        return self.root / PurePosixPath(image_path).relative_to("/")

    def in_image(self, value: str) -> str:
        """An environment value, with an absolute path of the image read inside the image's tree."""
        if value.startswith("/") and self.path(value).parent.exists():
            return str(self.path(value))
        return value

    @property
    def workdir(self) -> Path:
        return self.path(self.dockerfile.workdir)

    def environment(self, overrides: dict[str, str]) -> dict[str, str]:
        """The container's environment: the image's, then the definition's and the task's on top."""
        merged = {**self.dockerfile.environment, **overrides}
        return {name: self.in_image(value) for name, value in merged.items()}


def executable_path(venv_bin: Path) -> str:
    """PATH inside the image: the installed package's scripts first, as `pip install .` puts them."""
    return os.pathsep.join([str(venv_bin), "/usr/local/bin", "/usr/bin", "/bin"])
