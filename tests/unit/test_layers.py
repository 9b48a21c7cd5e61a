"""The floor plan holds: the import graph of the app's modules obeys the layers of docs/architecture.md.

Every app module is parsed (nothing is imported) and each of its imports of another app module
is an arrow. The checks fail on an import cycle, on an app import placed inside a function, on
an arrow to a higher layer or a forbidden room, and on session-store access outside sessions/.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

# Module (or package) -> layer; the longest matching prefix wins.
LAYERS = {
    # 1 platform
    "config": 1,
    "server_settings": 1,
    "provider_settings": 1,
    "redis_targets": 1,
    "limits_storage": 1,
    "proxies": 1,
    "logs": 1,
    "web": 1,
    "extensions": 1,
    "connections": 1,
    "metrics": 1,
    "clients.outbound": 1,
    # 2 vocabulary and protocol
    "users": 2,
    "models": 2,
    "oidc": 2,
    "clients": 2,
    # 3 state and machinery
    "sessions": 3,
    "jobs": 3,
    "audit": 3,
    # 4 flows
    "signin": 4,
    "accounts": 4,
    # 5 delivery
    "blueprints": 5,
    "commands": 5,
    "errors": 5,
    "security": 5,
    "rate_limits": 5,
    # 6 composition
    "app": 6,
    "devstack": 6,
    "examples": 6,
}
# Rooms of one layer that must not use each other (importer -> what it may not import).
FORBIDDEN_ROOMS = {
    "sessions": ("jobs", "audit"),
    "jobs": ("sessions", "audit"),
    "accounts": ("signin",),
    "blueprints": ("commands",),
}
# Only these may reach the session store's Redis, its keys and its scripts.
STORE_OWNERS = ("sessions", "connections", "app")
STORE_NAMES = {
    "connections": {"session_redis"},
    "sessions.store": {"session_store", "RedisSessionStore"},
}
STORE_MODULES = ("sessions.keys", "sessions.scripts")
# Not app modules: the tests, migrations, benchmarks, type stubs, gunicorn's settings file.
SKIPPED = {"tests", "migrations", "bench", "typings", ".venv", "node_modules", "instance", ".git"}


@dataclass(frozen=True)
class Arrow:
    """One import of an app module by another."""

    importer: str
    imported: str
    names: frozenset[str]
    line: int
    in_function: bool

    def __str__(self) -> str:
        return f"{self.importer}:{self.line} imports {self.imported}"


def module_name(path: Path) -> str:
    """The dotted name of an app module's file."""
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def app_modules() -> dict[str, Path]:
    """Every module of the app, by name."""
    found = {}
    for path in sorted(ROOT.rglob("*.py")):
        relative = path.relative_to(ROOT)
        if relative.parts[0] in SKIPPED or (len(relative.parts) == 1 and "." in path.stem):
            continue  # gunicorn.conf.py is a settings file, not a module
        found[module_name(path)] = path
    return found


def layer_of(module: str) -> int:
    """The layer of a module (the longest listed prefix); KeyError for a module no layer claims."""
    candidates = [prefix for prefix in LAYERS if module == prefix or module.startswith(prefix + ".")]
    return LAYERS[max(candidates, key=len)]


def room_of(module: str) -> str:
    """The top-level package or module a module lives in."""
    return module.split(".")[0]


class ImportVisitor(ast.NodeVisitor):
    """Collects (module, names, line, inside a function) for every import, skipping `if TYPE_CHECKING:` blocks."""

    def __init__(self, importer: str, is_package: bool):
        self.importer = importer
        self.is_package = is_package
        self.depth = 0
        self.found: list[tuple[str, frozenset[str], int, bool]] = []

    def visit_FunctionDef(self, node: ast.FunctionDef) -> None:
        self.depth += 1
        self.generic_visit(node)
        self.depth -= 1

    visit_AsyncFunctionDef = visit_FunctionDef  # type: ignore[assignment]

    def visit_If(self, node: ast.If) -> None:
        test = node.test
        if isinstance(test, ast.Name) and test.id == "TYPE_CHECKING":
            for child in node.orelse:
                self.visit(child)
            return
        self.generic_visit(node)

    def visit_Import(self, node: ast.Import) -> None:
        for alias in node.names:
            self.found.append((alias.name, frozenset(), node.lineno, self.depth > 0))

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        if node.level:
            base = self.importer.split(".")
            if not self.is_package:
                base = base[:-1]
            base = base[: len(base) - node.level + 1]
            module = ".".join([*base, *([node.module] if node.module else [])])
        else:
            module = node.module or ""
        names = frozenset(alias.name for alias in node.names)
        self.found.append((module, names, node.lineno, self.depth > 0))


def resolve(name: str, modules: dict[str, Path]) -> str | None:
    """The app module an imported name lives in (None for a third-party module)."""
    while name:
        if name in modules:
            return name
        name = name.rpartition(".")[0]
    return None


def arrows() -> Iterator[Arrow]:
    """Every import of an app module by an app module."""
    modules = app_modules()
    for importer, path in modules.items():
        visitor = ImportVisitor(importer, path.name == "__init__.py")
        visitor.visit(ast.parse(path.read_text(), filename=str(path)))
        for module, names, line, in_function in visitor.found:
            # `from package import module` names a module; `from module import name` a name in it.
            targets = [resolve(f"{module}.{name}", modules) for name in names] or [resolve(module, modules)]
            for target in {target for target in targets if target and target != importer}:
                yield Arrow(importer, target, names, line, in_function)


ALL_ARROWS = list(arrows())


def test_every_app_module_has_a_layer() -> None:
    unclaimed = [module for module in app_modules() if not any(module.startswith(prefix) for prefix in LAYERS)]
    assert unclaimed == []
    for module in app_modules():
        layer_of(module)


def test_the_scan_sees_the_app() -> None:
    # A scan that found nothing would pass every check below.
    imported = {(arrow.importer, arrow.imported) for arrow in ALL_ARROWS}
    assert ("app", "sessions.store") in imported
    assert ("signin.session", "accounts.persistence") in imported
    assert len(ALL_ARROWS) > 200


def test_no_import_cycle() -> None:
    graph: dict[str, set[str]] = {}
    for arrow in ALL_ARROWS:
        graph.setdefault(arrow.importer, set()).add(arrow.imported)
    cycles = strongly_connected(graph)
    assert [sorted(cycle) for cycle in cycles if len(cycle) > 1] == []


def test_no_app_import_inside_a_function() -> None:
    # Third-party imports may wait for a function (gunicorn's logger class); the app's own never do:
    # one that does is dodging a cycle. devstack's process-start code imports nothing of the app.
    assert [str(arrow) for arrow in ALL_ARROWS if arrow.in_function] == []


def test_no_arrow_runs_upward() -> None:
    upward = [str(arrow) for arrow in ALL_ARROWS if layer_of(arrow.imported) > layer_of(arrow.importer)]
    assert upward == []


@pytest.mark.parametrize(("importer", "forbidden"), sorted(FORBIDDEN_ROOMS.items()))
def test_rooms_that_must_not_use_each_other_do_not(importer: str, forbidden: tuple[str, ...]) -> None:
    found = [
        str(arrow)
        for arrow in ALL_ARROWS
        if room_of(arrow.importer) == importer and room_of(arrow.imported) in forbidden
    ]
    assert found == []


def test_a_blueprint_never_imports_another_blueprint() -> None:
    def blueprint(module: str) -> str | None:
        parts = module.split(".")
        return parts[1] if parts[0] == "blueprints" and len(parts) > 1 else None

    crossing = [
        str(arrow)
        for arrow in ALL_ARROWS
        if blueprint(arrow.importer)
        and blueprint(arrow.imported)
        and blueprint(arrow.importer) != blueprint(arrow.imported)
    ]
    assert crossing == []


def test_only_sessions_touches_the_session_store() -> None:
    outside = [arrow for arrow in ALL_ARROWS if room_of(arrow.importer) not in STORE_OWNERS]
    reaching = [
        str(arrow)
        for arrow in outside
        if arrow.imported in STORE_MODULES or arrow.names & STORE_NAMES.get(arrow.imported, set())
    ]
    assert reaching == []


def test_nothing_outside_sessions_reaches_for_the_app_session_interface() -> None:
    found = []
    for module, path in app_modules().items():
        if room_of(module) in STORE_OWNERS:
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Attribute) and node.attr == "session_interface":
                found.append(f"{module}:{node.lineno}")
    assert found == []


def strongly_connected(graph: dict[str, set[str]]) -> list[set[str]]:
    """Tarjan's strongly connected components of a directed graph."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components: list[set[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for following in graph.get(node, ()):
            if following not in index:
                visit(following)
                low[node] = min(low[node], low[following])
            elif following in on_stack:
                low[node] = min(low[node], index[following])
        if low[node] == index[node]:
            component = set()
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.add(member)
                if member == node:
                    break
            components.append(component)

    for node in list(graph):
        if node not in index:
            visit(node)
    return components


# The checks themselves can fail: each is shown a graph that breaks its rule.


def test_the_cycle_check_finds_a_cycle() -> None:
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert [sorted(cycle) for cycle in strongly_connected(graph) if len(cycle) > 1] == [["a", "b", "c"]]


def test_the_scan_sees_a_function_level_import_and_skips_type_checking(tmp_path: Path) -> None:
    source = (
        "from typing import TYPE_CHECKING\n"
        "if TYPE_CHECKING:\n    from sessions.store import StoredSession\n"
        "def late():\n    from audit.events import record\n"
    )
    visitor = ImportVisitor("sessions.example", is_package=False)
    visitor.visit(ast.parse(source))
    assert [(module, in_function) for module, _, _, in_function in visitor.found] == [
        ("typing", False),
        ("audit.events", True),
    ]


def test_layers_rank_the_longest_prefix() -> None:
    assert layer_of("clients.outbound") == 1
    assert layer_of("clients.downstream") == 2
    assert layer_of("blueprints.auth.routes") == 5
    assert layer_of("metrics") < layer_of("signin.failures")
