"""Stack detection: which Dockerfile to build a source directory with.

Pure apart from listing and reading the directory: a Dockerfile in the source
is used as is; otherwise the stack is recognised from its marker files and a
Dockerfile is generated from the `[builder]` base images, so offline boxes
and tests point those settings at locally built images.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from ..config import BuilderSettings
from ..errors import InvalidSpec


@dataclass(frozen=True)
class Recipe:
    stack: str  # dockerfile | go | node | python | static
    dockerfile: str
    generated: bool


def _procfile_web(src: Path) -> str | None:
    """The `web:` command of a Procfile (Heroku's convention), if there is one."""
    path = src / "Procfile"
    if not path.is_file():
        return None
    for line in path.read_text(errors="replace").splitlines():
        key, sep, command = line.partition(":")
        if sep and key.strip() == "web" and command.strip():
            return command.strip()
    return None


def _shell_cmd(command: str) -> str:
    return f"CMD {json.dumps(['sh', '-c', 'exec ' + command])}"


def _python(src: Path, s: BuilderSettings) -> str:
    web = _procfile_web(src)
    if web:
        start = _shell_cmd(web)
    else:
        for candidate in ("app.py", "main.py", "server.py"):
            if (src / candidate).is_file():
                start = f'CMD ["python", "{candidate}"]'
                break
        else:
            raise InvalidSpec(f"{src}: a Python source needs a start command: add a Procfile "
                              "with a `web: ...` line, or an app.py / main.py")
    install = ("RUN pip install --no-cache-dir -r requirements.txt"
               if (src / "requirements.txt").is_file()
               else "RUN pip install --no-cache-dir .")
    return "\n".join([
        f"FROM {s.python_image}",
        "WORKDIR /app",
        "ENV PYTHONUNBUFFERED=1",
        "COPY . /app",
        install,
        start,
        "",
    ])


def _node(src: Path, s: BuilderSettings) -> str:
    web = _procfile_web(src)
    start = _shell_cmd(web) if web else 'CMD ["npm", "start"]'
    return "\n".join([
        f"FROM {s.node_image}",
        "WORKDIR /app",
        "ENV NODE_ENV=production",
        "COPY . /app",
        "RUN npm install --omit=dev",
        start,
        "",
    ])


def _go(src: Path, s: BuilderSettings) -> str:
    return "\n".join([
        f"FROM {s.go_image} AS build",
        "WORKDIR /src",
        "COPY . /src",
        "RUN CGO_ENABLED=0 go build -o /app .",
        f"FROM {s.go_run_image}",
        "COPY --from=build /app /app",
        'ENTRYPOINT ["/app"]',
        "",
    ])


def _static(src: Path, s: BuilderSettings) -> str:
    return "\n".join([
        f"FROM {s.static_image}",
        "COPY . /site",
        _shell_cmd(s.static_command),
        "",
    ])


# Marker files in the order they are looked for (the first found decides).
STACKS = (
    ("go", ("go.mod",), _go),
    ("node", ("package.json",), _node),
    ("python", ("requirements.txt", "pyproject.toml"), _python),
    ("static", ("index.html",), _static),
)


def detect(src: Path, settings: BuilderSettings) -> Recipe:
    """The recipe for `src`; InvalidSpec names what is missing."""
    if not src.is_dir():
        raise InvalidSpec(f"source directory {src} does not exist; pass an existing "
                          "directory with --source DIR")
    dockerfile = src / "Dockerfile"
    if dockerfile.is_file():
        return Recipe("dockerfile", dockerfile.read_text(errors="replace"), False)
    for stack, markers, generate in STACKS:
        if any((src / m).is_file() for m in markers):
            return Recipe(stack, generate(src, settings), True)
    known = ", ".join(f"{stack} ({' or '.join(markers)})" for stack, markers, _ in STACKS)
    raise InvalidSpec(f"{src}: no Dockerfile and no supported stack recognised; add a "
                      f"Dockerfile, or one of the marker files: {known}")


__all__ = ["STACKS", "Recipe", "detect"]
