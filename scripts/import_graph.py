"""Draw the import graph of the topics of events (grimp, the graph import-linter checks): for each topic, the
other topics it imports; then every import that runs from a lower layer up to a higher one, per the layers
contracts in pyproject.toml. Exits 1 if one does.

    .venv/bin/python scripts/import_graph.py
"""

from __future__ import annotations

import re
import sys
import tomllib
from pathlib import Path

import grimp

ROOT = Path(__file__).resolve().parents[1]
TOPICS = ("views", "management", "ops", "staff", "registration", "notifications", "feeds", "accounts", "live",
          "catalog", "rules")


def topic_imports(graph: grimp.ImportGraph) -> dict[str, list[str]]:
    return {topic: [other for other in TOPICS if other != topic and graph.direct_import_exists(
        importer=f"events.{topic}", imported=f"events.{other}", as_packages=True)] for topic in TOPICS}


def upward_imports(graph: grimp.ImportGraph, pyproject: dict) -> list[str]:
    """Each chain of imports from a module of a layer to one of a layer above it, in any layers contract."""
    found = []
    for contract in pyproject["tool"]["importlinter"]["contracts"]:
        if contract["type"] != "layers":
            continue
        # A layer is one module or several side by side ("a | b" independent, "a : b" not).
        layers = [re.split(r"\s*[|:]\s*", layer.strip()) for layer in contract["layers"]]
        for higher_index, higher in enumerate(layers):
            for lower in layers[higher_index + 1:]:
                for low in lower:
                    for high in higher:
                        for chain in sorted(graph.find_shortest_chains(importer=low, imported=high, as_packages=True)):
                            found.append(" -> ".join(chain) + f"   ({low} is below {high})")
    return found


def main() -> int:
    sys.path.insert(0, str(ROOT))
    graph = grimp.build_graph("events", "hyperion", cache_dir=None)
    print("The other topics each topic of events imports:")
    for topic, imported in topic_imports(graph).items():
        print(f"  {topic:<14} {', '.join(imported) or '-'}")
    upward = upward_imports(graph, tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8")))
    print("Imports running back up (a lower layer importing a higher one, per pyproject.toml's layers contracts):")
    for line in upward or ["none"]:
        print(f"  {line}")
    return 1 if upward else 0


if __name__ == "__main__":
    sys.exit(main())
