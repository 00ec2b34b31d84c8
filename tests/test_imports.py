"""The package's layering, held by reading its source (nothing imported, no Ray started): each
stage reads the artifacts of the stages below it through their readers, and never imports
the stages above it, directly or through another weft module. Imports inside functions count.
"""

from __future__ import annotations

import ast
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "platform" / "weft"
STAGES = ("weft.curate", "weft.train", "weft.tune", "weft.serve", "weft.registry", "weft.quality")
# Above every stage: the offline corpora (which build on curation), the demo, the command.
ABOVE = ("weft.data", "weft.demo", "weft.cli")
# A package (or module) → what none of its modules may import.
FORBIDDEN = {
    "weft.specs": (*STAGES, *ABOVE),  # the bottom layer: every stage's specs build on it
    "weft.audit": (*STAGES, *ABOVE, "weft.jobs"),
    # Ray Jobs send specs to the stages' commands and import none of them: the Serve ingress
    # submits training jobs through it.
    "weft.jobs": (*STAGES, *ABOVE),
    "weft.serve": ("weft.train", "weft.tune", "weft.quality", *ABOVE),
    "weft.models": ("ray", "mlflow", *ABOVE),
    "weft.curate": ("weft.train", "weft.tune", "weft.serve", "weft.registry", *ABOVE),
    "weft.registry": ("weft.train", "weft.tune", "weft.serve", *ABOVE),
    "weft.train": ABOVE,
    "weft.tune": ABOVE,
    "weft.quality": ("weft.demo", "weft.cli"),  # its figures read the emoji corpus (weft.data)
    "weft.data": ("weft.demo", "weft.cli"),  # it builds on weft.curate; weft.demo on anything
}


@dataclass(frozen=True)
class Import:
    where: str  # the importing file and line, `weft/serve/index.py:32`
    target: str  # the weft module imported, or the name of anything else imported


def within(name: str, package: str) -> bool:
    return name == package or name.startswith(package + ".")


def import_graph(root: Path) -> dict[str, list[Import]]:
    """Each module under `root` (the `weft` package folder) → the imports in its source."""
    paths = {
        ".".join((root.name, *p.relative_to(root).with_suffix("").parts)).removesuffix(
            ".__init__"
        ): p
        for p in sorted(root.rglob("*.py"))
    }
    return {name: list(_imports(name, path, root, set(paths))) for name, path in paths.items()}


def _imports(name: str, path: Path, root: Path, known: set[str]) -> Iterator[Import]:
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative: from this package, `level - 1` packages up
                parts = package.split(".")
                up = parts[: len(parts) - node.level + 1]
                base = ".".join([*up, base] if base else up)
            # `from weft import storage` imports the module weft.storage
            targets = [
                f"{base}.{a.name}" if f"{base}.{a.name}" in known else base for a in node.names
            ]
        else:
            continue
        where = f"{path.relative_to(root.parent)}:{node.lineno}"
        yield from (Import(where, target) for target in targets)


def violations(graph: dict[str, list[Import]], package: str) -> list[str]:
    """Each import chain from a module of `package` to what FORBIDDEN says it may not import,
    with the file and line of each step: its own imports, and those of the weft modules
    outside `package` it reaches (one inside is checked as a start of its own)."""
    found = []
    for start in (m for m in graph if within(m, package)):
        seen, queue = {start}, deque([(start, ())])
        while queue:
            module, via = queue.popleft()
            for imp in graph[module]:
                chain: tuple[Import, ...] = (*via, imp)
                banned = [b for b in FORBIDDEN[package] if within(imp.target, b)]
                found += [
                    f"{start} "
                    + ", which ".join(f"imports {i.target} ({i.where})" for i in chain)
                    + f": {package}.* may import nothing from {b}"
                    for b in banned
                ]
                onward = imp.target in graph and not within(imp.target, package)
                if onward and not banned and imp.target not in seen:
                    seen.add(imp.target)
                    queue.append((imp.target, chain))
    return found


def test_the_walk_sees_every_module_and_its_imports_inside_functions() -> None:
    graph = import_graph(PACKAGE)
    assert {"weft.cli", "weft.serve.index", "weft.serve.search", "weft.train.run"} <= set(graph)
    # weft.cli.train imports the training run inside its command functions
    assert "weft.train.run" in {imp.target for imp in graph["weft.cli.train"]}


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_each_stage_imports_nothing_from_the_stages_above_it(package: str) -> None:
    found = violations(import_graph(PACKAGE), package)
    if found:
        pytest.fail("layering broken:\n" + "\n".join(found), pytrace=False)


def test_a_violation_names_the_module_the_line_and_the_forbidden_import(tmp_path: Path) -> None:
    root = tmp_path / "weft"
    for name, source in {
        "__init__.py": "",
        "helpers.py": "import os\n\n\ndef late() -> None:\n    from weft.train import loop\n",
        "storage.py": "",
        "serve/__init__.py": "",
        "serve/app.py": "from weft import storage\nfrom .. import helpers\n",
        "train/__init__.py": "",
        "train/loop.py": "",
        "models/__init__.py": "",
        "models/clip.py": "import numpy\nfrom ray import serve\n",
    }.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(source)
    graph = import_graph(root)

    assert violations(graph, "weft.models") == [
        "weft.models.clip imports ray (weft/models/clip.py:2): weft.models.* may import nothing "
        "from ray"
    ]
    assert violations(graph, "weft.serve") == [
        "weft.serve.app imports weft.helpers (weft/serve/app.py:2), which imports "
        "weft.train.loop (weft/helpers.py:5): weft.serve.* may import nothing from weft.train"
    ]
    assert violations(graph, "weft.curate") == violations(graph, "weft.registry") == []
