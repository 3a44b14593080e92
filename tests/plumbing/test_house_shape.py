"""The house's size limits (README's layout): no module of hyperion/ or events/ over MODULE_LINES lines, no view
over VIEW_LINES lines. A module past the limit holds more than one topic; a view past it does work that belongs
to a query, a service or a helper beside it."""

from __future__ import annotations

import ast
from pathlib import Path

from tests.support import ROOT

# ~400 in the house rules, with a little room so that a small change to a module near it does not force a split.
MODULE_LINES = 430
VIEW_LINES = 30


def long_modules(root: Path) -> list[str]:
    found = []
    for package in ("hyperion", "events"):
        for path in sorted((root / package).rglob("*.py")):
            lines = len(path.read_text(encoding="utf-8").splitlines())
            if lines > MODULE_LINES:
                found.append(f"{path.relative_to(root)}: {lines} lines (at most {MODULE_LINES}): split it by topic")
    return found


def long_views(root: Path) -> list[str]:
    """Top-level functions of events/views/ whose first parameter is the request, measured from the def line
    (decorators left out) to the last line."""
    found = []
    for path in sorted((root / "events/views").glob("*.py")):
        for node in ast.parse(path.read_text(encoding="utf-8")).body:
            if not isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                continue
            arguments = [*node.args.posonlyargs, *node.args.args]
            if not arguments or arguments[0].arg != "request":
                continue
            assert node.end_lineno is not None
            lines = node.end_lineno - node.lineno + 1
            if lines > VIEW_LINES:
                found.append(f"{path.relative_to(root)}: {node.name} is {lines} lines (at most {VIEW_LINES}): "
                             "move its work to a query, a service or a helper")
    return found


def test_no_module_is_over_the_limit():
    assert long_modules(ROOT) == []


def test_no_view_is_over_the_limit():
    assert long_views(ROOT) == []


def test_the_limits_name_the_module_and_the_view(tmp_path):
    (tmp_path / "events/views").mkdir(parents=True)
    (tmp_path / "hyperion").mkdir()
    (tmp_path / "hyperion/big.py").write_text("x = 1\n" * (MODULE_LINES + 1))
    (tmp_path / "hyperion/fine.py").write_text("x = 1\n" * MODULE_LINES)
    body = "    x = 1\n" * (VIEW_LINES - 2)
    (tmp_path / "events/views/pages.py").write_text(
        "@decorated\n@twice\n"
        f"async def fits(request):\n{body}    return x\n"
        f"async def page(request, slug):\n{body}    x += 1\n    return x\n"
        f"def helper(rows):\n{body * 2}    return x\n")
    assert long_modules(tmp_path) == [
        f"hyperion/big.py: {MODULE_LINES + 1} lines (at most {MODULE_LINES}): split it by topic"]
    assert long_views(tmp_path) == [
        f"events/views/pages.py: page is {VIEW_LINES + 1} lines (at most {VIEW_LINES}): "
        "move its work to a query, a service or a helper"]
