#!/usr/bin/env python3
"""`make audit`: known vulnerabilities in the locked Python packages (uv.lock), by pip-audit.

    uv export --frozen --no-emit-project --format requirements-txt > <tmp>
    .venv/bin/pip-audit -r <tmp> --no-deps --disable-pip -f json

The run fails only on a vulnerability that has a fixed version and is not in the committed
ignore list (.pip-audit-ignore.toml), or whose ignore entry is past its review date: an
accepted risk is accepted until a named day, then someone must look again. A vulnerability
without a fixed version is reported and does not fail (there is nothing to upgrade to).
Packages pip-audit could not look up (an index without vulnerability data, as on an offline
mirror) are counted and reported, not failed.

`--report FILE` decides from a pip-audit JSON report instead of running it (tests use a
recorded sample); `--today YYYY-MM-DD` fixes the date the review dates are compared with.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import shutil
import subprocess
import sys
import tempfile
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
IGNORE_FILE = REPO / ".pip-audit-ignore.toml"
PIP_AUDIT = REPO / ".venv" / "bin" / "pip-audit"


class AuditError(Exception):
    """The audit could not be run or its input is malformed; the message says what to fix."""


@dataclass(frozen=True)
class Ignore:
    id: str
    reason: str
    review_by: dt.date
    package: str = ""  # optional: the entry applies to this package only


@dataclass
class Decision:
    failures: list[str] = field(default_factory=list)  # each a line; any fails the run
    notices: list[str] = field(default_factory=list)  # reported, not failed
    audited: int = 0
    skipped: int = 0

    @property
    def ok(self) -> bool:
        return not self.failures


def ignores_load(text: str, *, source: str = ".pip-audit-ignore.toml") -> list[Ignore]:
    """Read the ignore list: ``[[ignore]]`` tables with ``id``, ``reason`` and ``review_by``
    (a TOML date), optionally ``package``."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise AuditError(f"{source} is not valid TOML: {exc}.") from None
    entries = data.get("ignore", [])
    if not isinstance(entries, list):
        raise AuditError(f"{source}: 'ignore' must be a list of [[ignore]] tables.")
    ignores = []
    for number, entry in enumerate(entries, start=1):
        vid, reason, review_by = (entry.get("id"), entry.get("reason"), entry.get("review_by"))
        if not isinstance(vid, str) or not vid.strip():
            raise AuditError(f"{source}: ignore entry {number} needs an id.")
        if not isinstance(reason, str) or not reason.strip():
            raise AuditError(f"{source}: ignore entry {vid} needs a reason.")
        if not isinstance(review_by, dt.date) or isinstance(review_by, dt.datetime):
            raise AuditError(
                f"{source}: ignore entry {vid} needs review_by, a date such as "
                "2027-01-31 (unquoted)."
            )
        ignores.append(
            Ignore(
                id=vid.strip(),
                reason=reason.strip(),
                review_by=review_by,
                package=str(entry.get("package", "")).strip().lower(),
            )
        )
    return ignores


def _matching_ignore(ignores: list[Ignore], package: str, ids: set[str]) -> Ignore | None:
    for ignore in ignores:
        if ignore.id in ids and (not ignore.package or ignore.package == package.lower()):
            return ignore
    return None


def audit_decide(report: dict, ignores: list[Ignore], *, today: dt.date) -> Decision:
    """What a pip-audit JSON report means for CI (see the module docstring)."""
    if not isinstance(report, dict) or not isinstance(report.get("dependencies"), list):
        raise AuditError(
            "the pip-audit report has no 'dependencies' list; is it pip-audit's "
            "JSON output (-f json)?"
        )
    decision = Decision()
    used: set[str] = set()
    for dependency in report["dependencies"]:
        name = dependency.get("name", "?")
        if "skip_reason" in dependency:
            decision.skipped += 1
            continue
        decision.audited += 1
        version = dependency.get("version", "?")
        for vuln in dependency.get("vulns", []):
            vid = vuln.get("id", "?")
            ids = {vid, *vuln.get("aliases", [])}
            fixes = vuln.get("fix_versions") or []
            what = f"{name} {version}: {vid}"
            ignore = _matching_ignore(ignores, name, ids)
            if ignore is not None:
                used.add(ignore.id)
                if ignore.review_by < today:
                    decision.failures.append(
                        f"{what} is ignored only until {ignore.review_by} ({ignore.reason}); "
                        "review it: upgrade, or extend review_by in .pip-audit-ignore.toml."
                    )
                else:
                    decision.notices.append(
                        f"{what} ignored until {ignore.review_by}: {ignore.reason}"
                    )
            elif fixes:
                decision.failures.append(
                    f"{what} is fixed in {', '.join(fixes)}; upgrade "
                    "(uv lock --upgrade-package) or add it to "
                    ".pip-audit-ignore.toml with a reason and a review date."
                )
            else:
                decision.notices.append(f"{what} has no fixed version yet (not failed).")
    for ignore in ignores:
        if ignore.id not in used:
            decision.notices.append(
                f"ignore entry {ignore.id} matched nothing; remove it if the package was upgraded."
            )
    return decision


def _uv() -> str:
    # scripts/bootstrap.sh may have put uv in ~/.local/bin without it being on PATH.
    return shutil.which("uv") or str(Path.home() / ".local" / "bin" / "uv")


def pip_audit_run() -> dict:
    """Export the locked requirements and run pip-audit on them; its JSON report."""
    with tempfile.TemporaryDirectory() as tmp:
        requirements = Path(tmp) / "requirements.txt"
        exported = subprocess.run(
            [
                _uv(),
                "export",
                "--frozen",
                "--no-emit-project",
                "--format",
                "requirements-txt",
                "--output-file",
                str(requirements),
            ],
            cwd=REPO,
            capture_output=True,
            text=True,
        )
        if exported.returncode != 0:
            raise AuditError(f"uv export failed: {exported.stderr.strip()}")
        audited = subprocess.run(
            [str(PIP_AUDIT), "-r", str(requirements), "--no-deps", "--disable-pip", "-f", "json"],
            cwd=REPO,
            capture_output=True,
            text=True,
        )
    # pip-audit exits 1 when it finds vulnerabilities: the report decides, not the code.
    try:
        return json.loads(audited.stdout)
    except json.JSONDecodeError:
        raise AuditError(
            f"pip-audit did not produce a JSON report (exit {audited.returncode})"
            f": {audited.stderr.strip()[-2000:]}"
        ) from None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--report", type=Path, help="decide from this pip-audit JSON report")
    parser.add_argument("--ignore-file", type=Path, default=IGNORE_FILE)
    parser.add_argument(
        "--today", type=dt.date.fromisoformat, default=dt.datetime.now(dt.UTC).date()
    )
    args = parser.parse_args(argv)
    try:
        ignore_text = args.ignore_file.read_text() if args.ignore_file.exists() else ""
        ignores = ignores_load(ignore_text, source=args.ignore_file.name)
        report = json.loads(args.report.read_text()) if args.report else pip_audit_run()
        decision = audit_decide(report, ignores, today=args.today)
    except (AuditError, OSError, json.JSONDecodeError) as exc:
        print(f"audit: {exc}", file=sys.stderr)
        return 2
    if decision.skipped and not decision.audited:
        decision.notices.append(
            "no package could be looked up (an index without "
            "vulnerability data?): nothing was checked."
        )
    for line in decision.notices:
        print(f"audit: note: {line}")
    for line in decision.failures:
        print(f"audit: FAIL: {line}")
    print(
        f"audit: {decision.audited} package(s) audited, {decision.skipped} could not be "
        f"looked up (skipped), {len(decision.failures)} failing finding(s)."
    )
    return 0 if decision.ok else 1


if __name__ == "__main__":
    sys.exit(main())
