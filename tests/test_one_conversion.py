"""One shilling ↔ base-unit conversion (core/money.py): no other app code writes
``10**18``, ``pow(10, 18)``, ``10**DECIMALS``, the number itself or a ``UNITS_PER_TZS``-style
constant. Tests and the benchmark are excepted (they check the conversion from outside)."""

from __future__ import annotations

import ast
import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SKIPPED_DIRS = {"tests", "bench", ".venv", "node_modules", "var", ".git", "__pycache__"}
THE_CONVERSION = REPO / "core" / "money.py"
# Functions whose 10**18 is not shillings, each with its reason.
ALLOWED_FUNCTIONS = {
    "read_eth_as_wei": "ETH to wei (gas thresholds in settings), not a shilling amount",
}
UNIT_CONSTANT = re.compile(
    r"^(UNITS?_PER_TZS|TZS_PER_UNITS?|[A-Z_]*UNITS_PER_[A-Z_]*|[A-Z_]*DECIMALS)$"
)


def _decimals_like(node: ast.AST) -> bool:
    if isinstance(node, ast.Constant):
        return node.value == 18
    name = getattr(node, "id", None) or getattr(node, "attr", None) or ""
    return "DECIMALS" in name.upper()


def _ten(node: ast.AST) -> bool:
    return isinstance(node, ast.Constant) and node.value == 10


def _problems(node: ast.AST) -> str | None:
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Pow):
        if _ten(node.left) and _decimals_like(node.right):
            return "10 ** 18 (or 10 ** DECIMALS)"
    if isinstance(node, ast.Call):
        func = getattr(node.func, "id", None) or getattr(node.func, "attr", None)
        if func == "pow" and len(node.args) >= 2:
            if _ten(node.args[0]) and _decimals_like(node.args[1]):
                return "pow(10, 18)"
    if isinstance(node, ast.Constant) and not isinstance(node.value, bool):
        if isinstance(node.value, int | float) and node.value == 10**18:
            return "the number 10**18 written out"
    name = getattr(node, "id", None) or getattr(node, "attr", None)
    if isinstance(node, ast.alias):
        name = node.name.rsplit(".", 1)[-1]  # what is imported, whatever it is called here
    if isinstance(name, str) and UNIT_CONSTANT.match(name):
        return f"the unit constant {name}"
    return None


def _walk(tree: ast.AST, allowed: bool = False):
    for child in ast.iter_child_nodes(tree):
        inside = allowed or (
            isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef)
            and child.name in ALLOWED_FUNCTIONS
        )
        if not inside:
            yield child
        yield from _walk(child, inside)


def app_files() -> list[Path]:
    return [
        path
        for path in sorted(REPO.rglob("*.py"))
        if not SKIPPED_DIRS & set(path.relative_to(REPO).parts) and path != THE_CONVERSION
    ]


def test_no_shilling_unit_arithmetic_outside_core_money():
    found = []
    for path in app_files():
        for node in _walk(ast.parse(path.read_text(), filename=str(path))):
            problem = _problems(node)
            if problem:
                found.append(f"{path.relative_to(REPO)}:{node.lineno}: {problem}")
    assert found == [], "use core.money (tzs_to_units, units_to_tzs, units_format):\n" + "\n".join(
        found
    )


def test_the_rule_sees_each_spelling():
    """The walker itself: each spelling it must catch, and the allowed ETH → wei reader."""
    source = """
a = amount_tzs * 10**18
b = units // 10 ** NTZS_DECIMALS
c = pow(10, 18)
d = 1_000_000_000_000_000_000
UNITS_PER_TZS = 1
from core.money import UNITS_PER_TZS as PER
def read_eth_as_wei(value):
    return int(value * 10**18)
"""
    problems = [p for node in _walk(ast.parse(source)) if (p := _problems(node))]
    assert sorted(problems) == sorted(
        [
            "10 ** 18 (or 10 ** DECIMALS)",  # a
            "10 ** 18 (or 10 ** DECIMALS)",  # b
            "the unit constant NTZS_DECIMALS",  # b
            "pow(10, 18)",  # c
            "the number 10**18 written out",  # d
            "the unit constant UNITS_PER_TZS",  # the assignment
            "the unit constant UNITS_PER_TZS",  # the import
        ]
    )
