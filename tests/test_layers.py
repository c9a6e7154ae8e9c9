"""The house's shape, checked: no import cycle; each stage imports only stages upstream of it."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "src" / "publisher"

# The flow `source → Article → Edition → plan → channels → ledger`, upstream first. A package may
# import its own modules and those of any earlier layer, never a later one. A layer names top-level
# packages or modules, or one module of a package: config.load reads the registries, and what a
# channel is (channels/__init__.py, its facts) and which exist (registry.py) come before the plan.
LAYERS: tuple[frozenset[str], ...] = tuple(frozenset(layer.split()) for layer in (
    "errors model",
    "text",
    "networks",
    "config",
    "web",
    "source",
    "edition",
    "schedule",
    "channels.__init__ channels.registry",
    "plan",
    "stores channels",
    "config.load",
    "unsubscribe",
    "delivery",
    "cli",
    "__main__",
))


def module_name(path: Path) -> str:
    """`publisher.source.read` for src/publisher/source/read.py; packages by their folder."""
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(path): path for path in PACKAGE.rglob("*.py")}


def type_checking_nodes(tree: ast.Module) -> set[int]:
    """Nodes under `if TYPE_CHECKING:`, which never run."""
    return {id(node) for block in ast.walk(tree)
            if isinstance(block, ast.If) and "TYPE_CHECKING" in ast.unparse(block.test)
            for node in ast.walk(block)}


def imports_of(name: str, *, lazy: bool = True) -> set[str]:
    """The project modules `name` imports when it runs: at the top, and inside functions if lazy."""
    tree = ast.parse(MODULES[name].read_text(encoding="utf-8"))
    skipped = type_checking_nodes(tree)
    top = {id(node) for node in tree.body}
    found: set[str] = set()
    for node in ast.walk(tree):
        if id(node) in skipped or not (lazy or id(node) in top):
            continue
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("publisher"):
            module = str(node.module)
            found.update(f"{module}.{alias.name}" if f"{module}.{alias.name}" in MODULES
                         else module for alias in node.names)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names if alias.name.startswith("publisher"))
    return {module for module in found if module in MODULES and module != name}


GRAPH = {name: imports_of(name) for name in MODULES}
# What a channel is and which exist come before the plan, but the registry's loaders (and the
# context's default HTTP client) import a channel's module only when that channel is used.
LOADERS = frozenset({"publisher.channels", "publisher.channels.registry"})


def layered_imports(name: str) -> set[str]:
    """The imports the layering rule judges: a loader may reach into its own package lazily."""
    if name not in LOADERS:
        return GRAPH[name]
    package = name.split(".")[1]
    return {target for target in GRAPH[name] if target.split(".")[1:2] != [package]} | imports_of(
        name, lazy=False)


def cycle_from(start: str) -> list[str] | None:
    """One import cycle through `start`, if there is one (depth-first, the path kept)."""
    path: list[str] = [start]
    seen: set[str] = set()

    def walk(node: str) -> bool:
        for target in sorted(GRAPH[node]):
            if target == start:
                return True
            if target not in seen:
                seen.add(target)
                path.append(target)
                if walk(target):
                    return True
                path.pop()
        return False

    return [*path, start] if walk(start) else None


@pytest.mark.parametrize("name", sorted(MODULES))
def test_no_module_imports_itself_back(name: str) -> None:
    assert cycle_from(name) is None, " → ".join(cycle_from(name) or [])


def layer_of(name: str) -> int:
    """The index in LAYERS of `name`: its own entry (`config.load`), else its top package's."""
    parts = name.split(".")[1:]
    if not parts:
        return 0  # the package itself: only its docstring and version
    if MODULES[name].name == "__init__.py" and len(parts) == 1:
        parts = [*parts, "__init__"]
    for key in (".".join(parts[:2]), parts[0] if parts else ""):
        for index, layer in enumerate(LAYERS):
            if key in layer:
                return index
    raise AssertionError(f"{name}: add `{parts[0]}` to a layer in LAYERS")


def test_every_package_has_a_layer() -> None:
    tops = {name.split(".")[1] for name in MODULES if "." in name}
    named = {entry.split(".")[0] for layer in LAYERS for entry in layer}
    assert tops <= named, sorted(tops - named)


@pytest.mark.parametrize("name", sorted(name for name in MODULES if "." in name))
def test_imports_only_upstream(name: str) -> None:
    downstream = sorted(
        target for target in layered_imports(name)
        if layer_of(target) > layer_of(name)
        or (layer_of(target) == layer_of(name) and target.split(".")[1:2] != name.split(".")[1:2]))
    assert not downstream, f"{name} imports downstream or sideways: {downstream}"


def test_the_checker_finds_a_cycle() -> None:
    """The cycle check itself can fail: a made-up back edge is found."""
    GRAPH["publisher.errors"].add("publisher.model")
    GRAPH["publisher.model"].add("publisher.errors")
    try:
        assert cycle_from("publisher.errors") is not None
    finally:
        GRAPH["publisher.errors"].discard("publisher.model")
        GRAPH["publisher.model"].discard("publisher.errors")
