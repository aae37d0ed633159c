"""Stack detection and the build context digest: pure, no engine needed."""

from __future__ import annotations

from pathlib import Path

import pytest

from paasd import config as paasd_config
from paasd.builder import context
from paasd.builder.stacks import detect
from paasd.config import BuilderSettings, Config
from paasd.errors import InvalidSpec
from paasd.runtime import schemas
from paasd.runtime.catalog import BUILTIN

pytestmark = pytest.mark.docker

S = BuilderSettings(python_image="py:base", node_image="node:base", go_image="go:base",
                    go_run_image="run:base", static_image="static:base")


def make(tmp: Path, **files: str) -> Path:
    for name, text in files.items():
        (tmp / name.replace("__", ".")).write_text(text)
    return tmp


@pytest.mark.parametrize(("files", "stack", "first"), [
    ({"go__mod": "module x\n", "main__go": ""}, "go", "FROM go:base AS build"),
    ({"package__json": "{}", "index__html": ""}, "node", "FROM node:base"),
    ({"requirements__txt": "", "app__py": ""}, "python", "FROM py:base"),
    ({"pyproject__toml": "", "main__py": ""}, "python", "FROM py:base"),
    ({"index__html": "<p>hi</p>"}, "static", "FROM static:base"),
])
def test_detects_each_stack(tmp_path: Path, files: dict[str, str], stack: str,
                            first: str) -> None:
    recipe = detect(make(tmp_path, **files), S)
    assert recipe.stack == stack and recipe.generated
    assert recipe.dockerfile.splitlines()[0] == first


def test_a_dockerfile_wins_and_is_used_as_is(tmp_path: Path) -> None:
    recipe = detect(make(tmp_path, Dockerfile="FROM scratch\n", package__json="{}"), S)
    assert recipe == recipe.__class__("dockerfile", "FROM scratch\n", False)


def test_python_pyproject_installs_the_project_and_procfile_sets_the_command(
        tmp_path: Path) -> None:
    df = detect(make(tmp_path, pyproject__toml="", Procfile="web: gunicorn app:app\n"),
                S).dockerfile
    assert "RUN pip install --no-cache-dir ." in df
    assert 'CMD ["sh", "-c", "exec gunicorn app:app"]' in df


def test_python_without_a_start_command_says_what_to_add(tmp_path: Path) -> None:
    with pytest.raises(InvalidSpec, match="Procfile"):
        detect(make(tmp_path, requirements__txt=""), S)


def test_missing_dir_and_unknown_stack(tmp_path: Path) -> None:
    with pytest.raises(InvalidSpec, match="does not exist"):
        detect(tmp_path / "nope", S)
    with pytest.raises(InvalidSpec, match="no Dockerfile and no supported stack"):
        detect(make(tmp_path, README="x"), S)


def test_digest_follows_content_mode_and_dockerfile_not_git_or_ignored(tmp_path: Path) -> None:
    src = make(tmp_path, index__html="a", __dockerignore="tmp\n")
    base = context.digest(src, "FROM x")
    (src / ".git").mkdir()
    (src / ".git" / "HEAD").write_text("ref")
    (src / "tmp").mkdir()
    (src / "tmp" / "junk").write_text("junk")
    assert context.digest(src, "FROM x") == base
    assert context.digest(src, "FROM y") != base
    (src / "index.html").chmod(0o755)
    assert context.digest(src, "FROM x") != base


def parse_config(text: str, source: str = "paasd.toml") -> Config:
    return paasd_config.parse_config(text, source, runtimes=schemas(BUILTIN))


def test_builder_settings_parse(tmp_path: Path) -> None:
    config = parse_config('[daemon]\nruntime = "docker"\n[builder]\nstatic_image = "s:1"\n'
                          'queue_limit = 3\n[docker]\nstart_timeout = "5s"\n')
    assert config.daemon.runtime == "docker"
    assert config.builder.static_image == "s:1" and config.builder.queue_limit == 3
    assert config.runtime_settings.start_timeout == 5.0


def test_service_source_in_config(tmp_path: Path) -> None:
    from paasd.errors import ConfigError

    path = tmp_path / "paasd.toml"
    config = parse_config('[daemon]\nruntime = "docker"\n[[service]]\nname = "web"\n'
                          'source = "app"\n', str(path))
    assert not config.services
    ((spec, src),) = config.sources
    assert spec.name == "web" and src == str(tmp_path / "app")
    with pytest.raises(ConfigError, match="needs the docker runtime"):
        parse_config('[[service]]\nname = "web"\nsource = "app"\n', str(path))
    with pytest.raises(ConfigError, match="not both"):
        parse_config('[daemon]\nruntime = "docker"\n[[service]]\nname = "web"\n'
                     'source = "app"\nimage = "x"\n', str(path))
