"""The architecture, checked from the source (``ast``; nothing is imported): one folder a
layer, imports only downwards, no cycles, one import style, FiftyOne's private API in one
module, torch and open_clip in one layer, short functions."""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = "detection_debugger"
# layer -> the project layers it may import (itself included)
ALLOWED = {
    "evaluation": {"evaluation"},
    "formats": {"formats"},
    "datasets": {"datasets", "evaluation", "formats"},
    "search": {"search", "datasets", "evaluation", "formats"},
    "detector": {"detector", "formats"},  # the demo's network: torch, no FiftyOne
    "demo": {"demo", "detector", "datasets", "evaluation", "formats"},
    "operators": {"operators", "datasets", "search", "evaluation", "formats"},
    "panels": {"panels", "datasets", "search", "evaluation", "formats"},
    "cli": {"cli", "datasets", "search", "demo", "detector", "evaluation", "formats"},
    "": {"operators", "panels", "datasets"},  # the root __init__: the plugin's register()
}
PURE = {"evaluation", "formats"}  # no FiftyOne, no torch
TORCH_LAYERS = {"search", "detector"}  # the only layers that may import torch / open_clip
PRIVATE_MODULE = "datasets/fiftyone_private.py"
FIFTYONE_PRIVATE_NAMES = {
    "_dataset",
    "_root_dataset",
    "_is_patches",
    "_doc",
    "_bulk_write",
    "_disconnect",
    "_client",
    "_load_model",
    "_preprocess_img",
    "_embed_prompts",
    "_clip_preprocess",
    "_tokenizer",
    "_delete_non_persistent_datasets_if_allowed",
    "_sample_collection",
    "_serialize",
}
MAX_FUNCTION_LINES = 60
LONG_FUNCTION_MARK = "# long:"  # on the def line or the line above: why it stays long


def _modules() -> dict[str, Path]:
    out = {}
    for path in sorted(ROOT.rglob("*.py")):
        rel = path.relative_to(ROOT)
        if rel.parts[0] in ("tests", "bench", "scripts", "build") or rel.parts[0].startswith("."):
            continue
        parts = list(rel.with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join([PACKAGE, *parts])] = path
    return out


MODULES = _modules()


def _layer(module: str) -> str:
    """The layer (top folder) of a project module; ``""`` for a module at the root."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 and (ROOT / parts[1]).is_dir() else ""


def _imports(path: Path) -> list[tuple[str, ast.AST]]:
    """Every imported module name (absolute) of a file, with its node; relative imports are
    returned as ``.relative``."""
    out = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            out.extend((alias.name, node) for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                out.append((".relative", node))
                continue
            out.append((node.module or "", node))
            for alias in node.names:  # `from detection_debugger.x import module`
                full = f"{node.module}.{alias.name}"
                if full in MODULES:
                    out.append((full, node))
    return out


def _project_module(name: str) -> str | None:
    while name:
        if name in MODULES:
            return name
        name = name.rpartition(".")[0]
    return None


def test_the_root_holds_at_most_two_modules_besides_init():
    loose = [p.name for p in ROOT.glob("*.py") if p.name != "__init__.py"]
    assert len(loose) <= 2, loose


def test_one_import_style_absolute():
    relative = [
        f"{path.relative_to(ROOT)}:{node.lineno}"
        for path in MODULES.values()
        for name, node in _imports(path)
        if name == ".relative"
    ]
    assert not relative, relative


def test_layers_import_only_downwards():
    wrong = []
    for module, path in MODULES.items():
        layer = _layer(module)
        for name, node in _imports(path):
            target = _project_module(name)
            if target is None or target == PACKAGE:
                continue
            if _layer(target) not in ALLOWED[layer]:
                wrong.append(f"{path.relative_to(ROOT)}:{node.lineno} ({layer} -> {target})")
    assert not wrong, wrong


@pytest.mark.parametrize(
    "layer", sorted(PURE | {"datasets", "operators", "panels", "cli", "detector"})
)
def test_third_party_imports_per_layer(layer):
    torch = set() if layer in TORCH_LAYERS else {"torch", "open_clip", "torchvision"}
    forbidden = torch | ({"fiftyone"} if layer in PURE | {"detector"} else set())
    wrong = [
        f"{path.relative_to(ROOT)}:{node.lineno} imports {name}"
        for module, path in MODULES.items()
        if _layer(module) == layer
        for name, node in _imports(path)
        if name.split(".")[0] in forbidden
    ]
    assert not wrong, wrong


def test_no_import_cycles():
    graph = defaultdict(set)
    for module, path in MODULES.items():
        for name, _ in _imports(path):
            target = _project_module(name)
            if target and target != module and target != PACKAGE:
                graph[module].add(target)
    seen, on_stack, cycles = set(), [], []

    def visit(node):
        if node in on_stack:
            cycles.append(on_stack[on_stack.index(node) :] + [node])
            return
        if node in seen:
            return
        seen.add(node)
        on_stack.append(node)
        for nxt in sorted(graph[node]):
            visit(nxt)
        on_stack.pop()

    for module in sorted(MODULES):
        visit(module)
    # a package __init__ re-exporting its own modules is not a cycle of concepts
    real = [c for c in cycles if not any(MODULES[m].name == "__init__.py" for m in c)]
    assert not real, real


def test_fiftyone_private_api_is_used_in_one_module():
    wrong = []
    for path in MODULES.values():
        if path.relative_to(ROOT).as_posix() == PRIVATE_MODULE:
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if (
                isinstance(node, ast.Attribute)
                and node.attr in FIFTYONE_PRIVATE_NAMES
                and not (isinstance(node.value, ast.Name) and node.value.id in ("self", "cls"))
            ):
                wrong.append(f"{path.relative_to(ROOT)}:{node.lineno} .{node.attr}")
            if isinstance(node, ast.keyword) and node.arg == "validate":
                if isinstance(node.value, ast.Constant) and node.value.value is False:
                    wrong.append(f"{path.relative_to(ROOT)}:{node.lineno} validate=False")
    assert not wrong, wrong


def test_functions_are_short_or_say_why():
    long = []
    for path in MODULES.values():
        lines = path.read_text().splitlines()
        for node in ast.walk(ast.parse("\n".join(lines))):
            if not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                continue
            length = node.end_lineno - node.lineno + 1
            first = node.decorator_list[0].lineno if node.decorator_list else node.lineno
            marked = any(LONG_FUNCTION_MARK in lines[i - 1] for i in (first - 1, node.lineno) if i)
            if length > MAX_FUNCTION_LINES and not marked:
                long.append(f"{path.relative_to(ROOT)}:{node.lineno} {node.name} ({length} lines)")
    assert not long, long


def test_no_stub_methods():
    stubs = [
        f"{path.relative_to(ROOT)}:{node.lineno}"
        for path in MODULES.values()
        for node in ast.walk(ast.parse(path.read_text()))
        if isinstance(node, ast.Raise)
        and node.exc is not None
        and "NotImplementedError" in ast.dump(node.exc)
    ]
    assert not stubs, stubs
