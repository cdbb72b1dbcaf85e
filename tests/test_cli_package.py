"""The CLI package's shape (issue 18): one Typer sub-app per area at module level, mounted by flows/cli/root.py;
no import circle between its modules; shared options defined once in flows/cli/common.py."""

from __future__ import annotations

import ast
import re
import subprocess
import sys

import pytest

from tests.conftest import REPO_ROOT

CLI = REPO_ROOT / "flows" / "cli"
MODULES = sorted(p.stem for p in CLI.glob("*.py") if p.stem != "__main__")
SHARED = ("WarehouseOpt", "ReviewArg", "JsonOpt", "ByOpt")


def _cli_imports(path) -> set[str]:
    """flows.cli modules a module imports, anywhere in it (also inside functions): `from flows.cli import x`
    names the submodule x when flows/cli/x.py exists, else the package itself."""
    out: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            if node.module == "flows.cli":
                out |= {a.name if (CLI / f"{a.name}.py").exists() else "__init__" for a in node.names}
            elif node.module.startswith("flows.cli."):
                out.add(node.module.split(".")[2])
        elif isinstance(node, ast.Import):
            out |= {a.name.split(".")[2] for a in node.names if a.name.startswith("flows.cli.")}
    return out


def _graph() -> dict[str, set[str]]:
    return {m: _cli_imports(CLI / f"{m}.py") - {m} for m in MODULES}


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import circle of the graph, or None."""
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(m: str) -> list[str] | None:
        state[m] = 1
        stack.append(m)
        for n in sorted(graph.get(m, ())):
            if state.get(n) == 1:
                return stack[stack.index(n):] + [n]
            if n not in state and (found := visit(n)):
                return found
        stack.pop()
        state[m] = 2
        return None

    for m in sorted(graph):
        if m not in state and (found := visit(m)):
            return found
    return None


def test_cli_modules_import_each_other_without_a_circle():
    graph = _graph()
    assert _cycle(graph) is None, f"import circle in flows/cli: {' -> '.join(_cycle(graph))}"
    # only the package's entry points build the whole app: an area module importing flows.cli (the package's
    # lazy app/main) or flows.cli.root would close a circle through root
    for m, deps in graph.items():
        if m not in ("__init__", "root"):
            assert not deps & {"__init__", "root"}, f"flows/cli/{m}.py imports the root app: {sorted(deps)}"


def test_the_cycle_check_sees_a_circle():
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert _cycle({"a": {"b"}, "b": set()}) is None


@pytest.mark.parametrize("module", MODULES)
def test_each_cli_module_imports_alone_in_a_fresh_interpreter(module):
    name = "flows.cli" if module == "__init__" else f"flows.cli.{module}"
    p = subprocess.run([sys.executable, "-c", f"import {name}"], capture_output=True, text=True, cwd=REPO_ROOT,
                       timeout=120)
    assert p.returncode == 0, p.stderr


def _commands(group, seen=None) -> set:
    """Callbacks of every command a click group holds (recursively)."""
    seen = set() if seen is None else seen
    for cmd in group.commands.values():
        if hasattr(cmd, "commands"):  # a group (typer builds them with its own copy of click)
            _commands(cmd, seen)
        else:
            seen.add(cmd.callback.__wrapped__ if hasattr(cmd.callback, "__wrapped__") else cmd.callback)
    return seen


def test_every_area_app_is_mounted_and_every_command_is_reachable():
    import importlib

    import typer

    from flows.cli import app

    root_commands = {c.__name__ + "@" + c.__module__ for c in _commands(typer.main.get_command(app))}
    for m in MODULES:
        mod = importlib.import_module(f"flows.cli.{m}" if m != "__init__" else "flows.cli")
        sub = mod.__dict__.get("app")
        if not isinstance(sub, typer.Typer) or m == "root":
            continue
        for info in sub.registered_commands:
            name = info.callback.__name__ + "@" + info.callback.__module__
            assert name in root_commands, f"{name} (flows/cli/{m}.py) is not mounted in flows/cli/root.py"
    # and there is one way to add a command: no area module builds commands inside a register() function
    for m in MODULES:
        text = (CLI / f"{m}.py").read_text(encoding="utf-8")
        assert "def register(" not in text, f"flows/cli/{m}.py still registers commands in a function"


def test_shared_options_are_defined_once_in_common():
    for m in MODULES:
        if m == "common":
            continue
        tree = ast.parse((CLI / f"{m}.py").read_text(encoding="utf-8"))
        assigned = {t.id for node in tree.body if isinstance(node, ast.Assign) for t in node.targets
                    if isinstance(t, ast.Name)}
        assert not assigned & set(SHARED), f"flows/cli/{m}.py defines {sorted(assigned & set(SHARED))} again"



def _listed_actions() -> dict[str, str]:
    """`livingmeta <command>` -> the function the package docstring names for it."""
    import flows.cli

    out = {}
    for line in flows.cli.__doc__.splitlines():
        m = re.match(r"\s+livingmeta ((?:[a-z]+ )*?[a-z]+)\s{2,}([a-z_]+(?:\.[a-z_]+)+)", line)
        if m:
            out[m.group(1)] = m.group(2)
    return out


def _command_paths(group, prefix=()) -> set[str]:
    out: set[str] = set()
    for name, cmd in group.commands.items():
        if hasattr(cmd, "commands"):
            out |= _command_paths(cmd, prefix + (name,))
        else:
            out.add(" ".join(prefix + (name,)))
    return out


def test_every_user_action_names_the_one_function_that_does_it():
    import importlib

    import typer

    from flows.cli import app

    listed = _listed_actions()
    commands = _command_paths(typer.main.get_command(app))
    assert set(listed) == commands, (f"flows/cli/__init__.py lists {sorted(set(listed) - commands)} that are no "
                                     f"commands and misses {sorted(commands - set(listed))}")
    for command, path in listed.items():
        module, name = path.rsplit(".", 1)
        assert hasattr(importlib.import_module(module), name), f"livingmeta {command}: {path} does not exist"
