"""The minting app imports one way (docs/architecture.md, "minting"): every module imports
on its own in a fresh interpreter, no function-level import of a minting module dodges a
circle, and minting.services follows its layers."""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
APP = REPO / "minting"

# Function-level imports of minting modules that are not about circles, each with its reason.
ALLOWED_FUNCTION_IMPORTS = {
    ("minting/apps.py", "ready"): "AppConfig.ready: the app registry is not ready when "
    "apps.py itself is imported, so services (which import models) load here",
}

# The one-way order of minting.services: a module imports only modules of a lower layer.
LAYERS = {
    "rotation": -1,  # the guided key rotation: calls token_admin and operator
    "runner": 0,
    "lanes": 0,
    "token_admin": 0,
    "pipeline": 1,
    "confirm": 1,
    "safe": 1,
    "operator": 1,
    "recording": 2,
    "sending": 3,
    "ledger": 3,
    "deposit_refs": 3,
    "deploy": 2,
}
# Below minting.services: the clients and the models never import it.
BELOW_SERVICES = ("chain", "rpc", "signing", "breaker", "contract_artifact", "models")


def app_modules() -> list[str]:
    names = []
    for path in sorted(APP.rglob("*.py")):
        parts = path.relative_to(REPO).with_suffix("").parts
        if "migrations" in parts:
            continue
        names.append(".".join(parts[:-1] if parts[-1] == "__init__" else parts))
    return names


def minting_imports(tree: ast.AST, module: str) -> list[tuple[ast.AST, str]]:
    """(node, imported module) for every import of a minting module in the tree."""
    package = module.rsplit(".", 1)[0]  # a package's __init__ and its modules alike
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(anchor + ([base] if base else []))
            found.append((node, base))
            found += [(node, f"{base}.{alias.name}") for alias in node.names]
    return [(node, name) for node, name in found if name.split(".")[0] == "minting"]


def test_every_minting_module_imports_first_in_a_fresh_interpreter():
    """Each module is imported as the first of the app's (all but models and apps, which
    Django loads first) in a fresh interpreter: an import circle fails whichever module of
    the circle comes first, so every one gets its turn."""
    script = f"""
import importlib, sys, django
django.setup()
kept = {{"minting", "minting.models", "minting.apps"}}
failures = []
for name in {app_modules()!r}:
    for loaded in [m for m in sys.modules if m.startswith("minting.") and m not in kept]:
        del sys.modules[loaded]
    try:
        importlib.import_module(name)
    except Exception as exc:
        failures.append(f"{{name}}: {{type(exc).__name__}}: {{exc}}")
print("\\n".join(failures))
sys.exit(1 if failures else 0)
"""
    result = subprocess.run(
        [sys.executable, "-c", script],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "DJANGO_SETTINGS_MODULE": "config.settings.test"},
    )
    assert result.returncode == 0, result.stdout + result.stderr[-3000:]


def test_no_function_level_import_of_a_minting_module():
    found = []
    for path in sorted(APP.rglob("*.py")):
        if "migrations" in path.parts:
            continue
        relative = path.relative_to(REPO).as_posix()
        module = ".".join(path.relative_to(REPO).with_suffix("").parts)
        tree = ast.parse(path.read_text())
        for function in ast.walk(tree):
            if not isinstance(function, ast.FunctionDef | ast.AsyncFunctionDef):
                continue
            for node, name in minting_imports(function, module):
                if (relative, function.name) not in ALLOWED_FUNCTION_IMPORTS:
                    found.append(f"{relative}:{node.lineno} {function.name}() imports {name}")
    assert found == []


def test_minting_services_import_one_way():
    wrong = []
    for name, layer in LAYERS.items():
        path = APP / "services" / f"{name}.py"
        module = f"minting.services.{name}"
        for _node, imported in minting_imports(ast.parse(path.read_text()), module):
            parts = imported.split(".")
            if parts[:2] != ["minting", "services"] or len(parts) < 3:
                continue
            target = parts[2]
            if target in LAYERS and LAYERS[target] <= layer:
                wrong.append(f"{name} (layer {layer}) imports {target} (layer {LAYERS[target]})")
    assert wrong == []
    assert set(LAYERS) == {
        p.stem for p in (APP / "services").glob("*.py") if p.stem != "__init__"
    }, "a new module of minting.services needs its place in LAYERS and docs/architecture.md"


def test_the_clients_and_models_never_import_the_services():
    wrong = []
    for name in BELOW_SERVICES:
        module = f"minting.{name}"
        tree = ast.parse((APP / f"{name}.py").read_text())
        for node, imported in minting_imports(tree, module):
            if imported.startswith("minting.services"):
                wrong.append(f"minting/{name}.py:{node.lineno} imports {imported}")
    assert wrong == []
