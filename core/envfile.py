"""Reads and updates a KEY=VALUE env file (the local stack's var/local.env)."""

from __future__ import annotations

from pathlib import Path


def env_file_read(path: Path) -> dict[str, str]:
    values: dict[str, str] = {}
    if not path.exists():
        return values
    for line in path.read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#") and "=" in line:
            key, value = line.split("=", 1)
            values[key.strip()] = value.strip()
    return values


def env_file_update(path: Path, updates: dict[str, str]) -> None:
    values = env_file_read(path)
    values.update(updates)
    path.parent.mkdir(parents=True, exist_ok=True)
    body = "".join(f"{key}={value}\n" for key, value in values.items())
    tmp = path.with_suffix(".tmp")
    tmp.write_text("# Written by the local stack (make dev). Local dev keys only.\n" + body)
    tmp.chmod(0o600)
    tmp.replace(path)
