"""What lives in ``config`` stays there: app code never imports it (issue 9, point 5), and the
file-system broker keeps all its files under var/ (the repository root stays clean)."""

from __future__ import annotations

import ast
from pathlib import Path

from config.settings.base import celery_settings

REPO = Path(__file__).resolve().parents[2]
NOT_APP_CODE = {"config", "tests", "bench", ".venv", "node_modules", "var", "staticfiles"}


def _imported_modules(path: Path) -> list[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.append(node.module)
    return found


def test_no_module_outside_config_imports_config():
    offenders = []
    checked = 0
    for path in sorted(REPO.rglob("*.py")):
        relative = path.relative_to(REPO)
        if relative.parts[0] in NOT_APP_CODE or relative.parts[0].startswith("."):
            continue
        checked += 1
        for module in _imported_modules(path):
            if module == "config" or module.startswith("config."):
                offenders.append(f"{relative}: {module}")
    assert checked > 100  # the walk found the apps
    assert offenders == []


def test_the_file_broker_keeps_its_queue_and_control_folders_under_var(tmp_path):
    options = celery_settings(broker_url="filesystem://", var_dir=tmp_path)[
        "CELERY_BROKER_TRANSPORT_OPTIONS"
    ]
    folders = {name: Path(value) for name, value in options.items() if "folder" in name}
    assert set(folders) == {
        "data_folder_in",
        "data_folder_out",
        "processed_folder",
        "control_folder",
    }
    for name, folder in folders.items():
        assert folder.is_relative_to(tmp_path / "celery"), name
        assert folder.is_dir(), name
    assert folders["control_folder"] == tmp_path / "celery" / "control"


def test_the_repository_root_has_no_broker_control_folder():
    assert not (REPO / "control").exists()
    assert "/control/" in (REPO / ".gitignore").read_text().splitlines()
