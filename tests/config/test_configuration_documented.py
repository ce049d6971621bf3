"""Every environment variable the settings read is documented (issue 16, point 7).

The variables are found by reading the source of config/settings/*.py and gunicorn.conf.py
with ``ast``: the name arguments of the ``core.env`` readers, of django-environ's ``env.*``
calls, of ``require([...])`` and of ``os.environ`` look-ups. Each must be a row of
docs/configuration.md and a ``NAME=`` line of .env.example; an alias (a further name a reader
accepts, such as NEXT_PUBLIC_APP_URL for APP_URL) must at least be named in both.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
SOURCES = sorted((REPO / "config" / "settings").glob("*.py")) + [REPO / "gunicorn.conf.py"]
CONFIGURATION = REPO / "docs" / "configuration.md"
ENV_EXAMPLE = REPO / ".env.example"

# core.env readers: which positional arguments are variable names. (name, default, *aliases)
# readers take the first and the third onwards; (name, *aliases) readers take them all.
NAME_THEN_DEFAULT_THEN_ALIASES = {"read_str", "read_url"}
NAMES_ONLY = {"raw", "read_address"}
NAME_FIRST = {
    "read_int",
    "read_int_or_default",
    "read_bool",
    "read_list",
    "read_private_key",
    "read_address_map",
    "read_eth_as_wei",
    "read_database",
}
ENV_NAME = re.compile(r"^[A-Z][A-Z0-9_]*$")


def _strings(nodes) -> list[str]:
    return [n.value for n in nodes if isinstance(n, ast.Constant) and isinstance(n.value, str)]


def _is_os_environ(node: ast.AST) -> bool:
    return (
        isinstance(node, ast.Attribute)
        and node.attr == "environ"
        and isinstance(node.value, ast.Name)
        and node.value.id == "os"
    )


def _call_names(call: ast.Call) -> tuple[list[str], list[str]]:
    """(names, aliases) a call reads from the environment."""
    func = call.func
    name = func.id if isinstance(func, ast.Name) else None
    args = call.args
    if name in NAME_FIRST:
        return _strings(args[:1]), []
    if name in NAMES_ONLY:
        found = _strings(args)
        return found[:1], found[1:]
    if name in NAME_THEN_DEFAULT_THEN_ALIASES:
        return _strings(args[:1]), _strings(args[2:])
    if name == "require" and args and isinstance(args[0], ast.List):
        return _strings(args[0].elts), []
    if isinstance(func, ast.Attribute):
        owner = func.value
        if isinstance(owner, ast.Name) and owner.id == "env":  # django-environ: env.email_url
            return _strings(args[:1]), []
        if _is_os_environ(owner) and func.attr in {"get", "setdefault"}:
            return _strings(args[:1]), []
        if isinstance(owner, ast.Name) and owner.id == "os" and func.attr == "getenv":
            return _strings(args[:1]), []
    return [], []


def variables_read() -> tuple[set[str], set[str]]:
    names: set[str] = set()
    aliases: set[str] = set()
    for source in SOURCES:
        tree = ast.parse(source.read_text(), filename=str(source))
        for node in ast.walk(tree):
            if isinstance(node, ast.Call):
                found, also = _call_names(node)
                names.update(found)
                aliases.update(also)
            elif isinstance(node, ast.Subscript) and _is_os_environ(node.value):
                names.update(_strings([node.slice]))
    # A dict of variables handed to os.environ.setdefault in a loop (the local profile's
    # defaults) is read too: its keys are names.
    for source in SOURCES:
        tree = ast.parse(source.read_text(), filename=str(source))
        for node in ast.walk(tree):
            if isinstance(node, ast.For) and isinstance(node.iter, ast.Call):
                target = node.iter.func
                if isinstance(target, ast.Attribute) and isinstance(target.value, ast.Dict):
                    names.update(_strings(target.value.keys))
    names = {n for n in names if ENV_NAME.match(n)}
    aliases = {a for a in aliases if ENV_NAME.match(a)} - names
    return names, aliases


NAMES, ALIASES = variables_read()


def test_the_source_scan_finds_the_settings_it_must():
    # Guards the scan itself: if the readers were renamed the other tests would pass empty.
    assert len(NAMES) >= 70, sorted(NAMES)
    assert {
        "SECRET_KEY",  # read_str
        "DATABASE_URL",  # read_database and require()
        "DATABASE_POOLER",  # production only
        "EMAIL_URL",  # env.email_url
        "BEAT_LOCK_TTL_S",
        "NTZS_VAR_DIR",  # os.environ.get
        "WEB_CONCURRENCY",  # gunicorn.conf.py
        "TOKEN_ROLE_EXPECTED_HOLDERS",  # read_address_map
        "MINTER_MIN_GAS_ETH",  # read_eth_as_wei
    } <= NAMES
    assert "NEXT_PUBLIC_APP_URL" in ALIASES


def _documented_names() -> set[str]:
    """Variables named in backticks in a table row of docs/configuration.md."""
    rows = [line for line in CONFIGURATION.read_text().splitlines() if line.startswith("|")]
    return {name for row in rows for name in re.findall(r"`([A-Z][A-Z0-9_]*)`", row)}


def _example_names() -> set[str]:
    return set(re.findall(r"^([A-Z][A-Z0-9_]*)=", ENV_EXAMPLE.read_text(), flags=re.MULTILINE))


@pytest.mark.parametrize("name", sorted(NAMES))
def test_every_variable_read_is_a_row_of_the_configuration_page(name):
    assert name in _documented_names(), (
        f"{name} is read by the settings but has no row in docs/configuration.md"
    )


@pytest.mark.parametrize("name", sorted(NAMES))
def test_every_variable_read_has_a_line_in_env_example(name):
    assert name in _example_names(), (
        f"{name} is read by the settings but has no {name}= line in .env.example"
    )


@pytest.mark.parametrize("name", sorted(ALIASES))
def test_every_alias_is_named_in_both(name):
    assert name in _documented_names()
    assert re.search(rf"\b{name}\b", ENV_EXAMPLE.read_text())


def test_a_variable_missing_from_the_docs_is_caught(tmp_path):
    # The scan and the check fail for a new setting nobody documented.
    settings_file = tmp_path / "extra.py"
    settings_file.write_text('X = read_int("NTZS_NEW_KNOB", 3, minimum=1)\n')
    call = ast.parse(settings_file.read_text()).body[0].value
    found, _ = _call_names(call)
    assert found == ["NTZS_NEW_KNOB"]
    assert "NTZS_NEW_KNOB" not in _documented_names()
    assert "NTZS_NEW_KNOB" not in _example_names()
