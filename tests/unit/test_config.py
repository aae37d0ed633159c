"""Config validation: every problem names file, line and field."""

from __future__ import annotations

from pathlib import Path

import pytest

from paasd import config as paasd_config
from paasd.config import Config
from paasd.errors import ConfigError
from paasd.runtime import schemas
from paasd.runtime.catalog import BUILTIN
from paasd.spec.model import MIN_SCALE

RUNTIMES = schemas(BUILTIN)


def parse_config(text: str, source: str) -> Config:
    return paasd_config.parse_config(text, source, runtimes=RUNTIMES)


def load_config(path: Path) -> Config:
    return paasd_config.load_config(path, RUNTIMES)


def problems(text: str) -> list[str]:
    with pytest.raises(ConfigError) as info:
        parse_config(text, "/etc/paasd/paasd.toml")
    return info.value.problems


def test_empty_file_gives_knative_like_defaults() -> None:
    config = parse_config("", "/x/paasd.toml")
    assert config.daemon.runtime == "process"
    assert (config.ingress.host, config.ingress.port) == ("127.0.0.1", 8080)
    assert config.ingress.domain == "example.com"
    assert config.services == ()


def test_the_shipped_default_config_is_valid() -> None:
    root = Path(__file__).resolve().parents[2]
    config = load_config(root / "paasd.toml")
    assert config.daemon.runtime == "process"
    assert config.ingress.domain == "example.com"
    demo = load_config(root / "examples" / "demo.toml")
    assert [s.name for s in demo.services] == ["welcome"]


def test_unknown_field_names_line_and_nearest_name() -> None:
    text = '[daemon]\nsocket = "/tmp/s"\nruntme = "process"\n'
    assert problems(text) == [
        '/etc/paasd/paasd.toml:3: daemon.runtme: unknown field "runtme" '
        '(did you mean "runtime"?)']


def test_unknown_section() -> None:
    assert problems("[ingres]\nlisten = '127.0.0.1:1'\n") == [
        '/etc/paasd/paasd.toml:1: [ingres]: unknown section "ingres" (did you mean "ingress"?)']


def test_syntax_error_names_the_line() -> None:
    (problem,) = problems('[daemon]\nsocket = \n')
    assert problem.startswith("/etc/paasd/paasd.toml:2: not valid TOML")


@pytest.mark.parametrize(("line", "needle"), [
    ('listen = "localhost"', "is not HOST:PORT"),
    ('listen = "127.0.0.1:70000"', "out of range"),
    ('domain = "Example..com"', "not a valid DNS domain"),
])
def test_bad_ingress_values(line: str, needle: str) -> None:
    (problem,) = problems(f"[ingress]\n{line}\n")
    assert problem.startswith("/etc/paasd/paasd.toml:2: ingress.")
    assert needle in problem


def test_bad_duration_says_the_accepted_forms() -> None:
    (problem,) = problems('[process]\nstop_grace = "ten seconds"\n')
    assert "process.stop_grace" in problem and '"6s"' in problem


def test_unknown_runtime_suggests() -> None:
    (problem,) = problems('[daemon]\nruntime = "proces"\n')
    assert 'did you mean "process"' in problem


def test_services_are_translated() -> None:
    config = parse_config(
        '[[service]]\nname = "hello"\ncommand = ["python3", "app.py"]\n'
        'env = { TARGET = "World" }\nmin_scale = 2\n', "/x/paasd.toml")
    (svc,) = config.services
    assert str(svc.key) == "default/hello"
    assert svc.template.container.command == ("python3", "app.py")
    assert svc.template.container.env[0].value == "World"
    assert svc.template.annotation(MIN_SCALE) == "2"


def test_service_timeouts_and_port_name() -> None:
    config = parse_config(
        '[[service]]\nname = "grpc"\ncommand = ["app"]\nport_name = "h2c"\n'
        'timeout_seconds = 20\nresponse_start_timeout_seconds = 5\n'
        'idle_timeout_seconds = 3\n', "/x/paasd.toml")
    (svc,) = config.services
    t = svc.template
    assert t.container.protocol == "h2c"
    assert (t.timeout_seconds, t.response_start_timeout_seconds, t.idle_timeout_seconds) \
        == (20, 5, 3)
    (problem,) = problems('[[service]]\nname = "x"\ncommand = ["app"]\nport_name = "h3"\n')
    assert "service[0].port_name" in problem and "h2c" in problem


def test_service_problems_name_the_table_and_line() -> None:
    text = ('[[service]]\nname = "ok"\ncommand = ["x"]\n\n'
            '[[service]]\nname = "second"\ncomand = ["x"]\n')
    found = problems(text)
    assert found[0] == ('/etc/paasd/paasd.toml:7: service[1].comand: unknown field "comand" '
                        '(did you mean "command"?)')


def test_image_without_command_on_process_runtime_names_image_runtimes() -> None:
    (problem,) = problems('[[service]]\nname = "web"\nimage = "nginx"\n')
    assert "service[0].image" in problem
    assert "process runtime" in problem and "docker or kubernetes" in problem


def test_invalid_service_name_and_duplicate() -> None:
    found = problems('[[service]]\nname = "Web_1"\ncommand = ["x"]\n'
                     '[[service]]\nname = "a"\ncommand = ["x"]\n'
                     '[[service]]\nname = "a"\ncommand = ["x"]\n')
    assert any("DNS-1035" in p and "service[0].name" in p for p in found)
    assert any("duplicate service 'default/a'" in p for p in found)


def test_command_given_as_a_string_suggests_a_list() -> None:
    (problem,) = problems('[[service]]\nname = "a"\ncommand = "python3 app.py"\n')
    assert 'command = ["python3 app.py"]' in problem


def test_min_scale_above_max_scale() -> None:
    (problem,) = problems('[[service]]\nname = "a"\ncommand = ["x"]\nmin_scale = 3\n'
                          'max_scale = 2\n')
    assert "min_scale 3 is greater than max_scale 2" in problem


def test_relative_paths_resolve_against_the_config_file(tmp_path: Path) -> None:
    path = tmp_path / "conf" / "paasd.toml"
    path.parent.mkdir()
    path.write_text('[daemon]\nstate_dir = "state"\nsocket = "run/paasd.sock"\n')
    config = load_config(path)
    assert config.daemon.state_dir == str(tmp_path / "conf" / "state")
    assert config.daemon.socket == str(tmp_path / "conf" / "run" / "paasd.sock")


def test_missing_file_says_what_to_do(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        load_config(tmp_path / "nope.toml")
    assert "no such file" in str(info.value)
