"""The import contract (DESIGN.md): a bottom layer that imports nothing above it, stages that import only the bottom
layer and themselves, and the tools on top. Every import counts, including the lazy ones inside functions."""

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("amodal3d", "recon", "metrics", "blender_scenes")
BOTTOM = ("amodal3d.core",)
STAGES = {
    "completion": ("amodal3d.completion", "amodal3d.segmenters"),
    "reconstruction": ("recon",),
    "metrics": ("metrics",),
    "scenes": ("blender_scenes",),
    "data": ("amodal3d.data",),
}


def _within(module: str, prefixes) -> bool:
    return any(module == p or module.startswith(p + ".") for p in prefixes)


def layer_of(module: str) -> str:
    if _within(module, BOTTOM):
        return "bottom"
    for stage, prefixes in STAGES.items():
        if _within(module, prefixes):
            return stage
    return "top"


def modules() -> dict[str, Path]:
    found = {}
    for package in PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            if "amodal3d_blender" in path.parts:  # the add-on's Blender-side source imports nothing of ours
                continue
            parts = path.relative_to(ROOT).with_suffix("").parts
            found[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return found


def imports_of(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module)
            names |= {f"{node.module}.{a.name}" for a in node.names}  # `from amodal3d.core import io`
    return {n for n in names if n.split(".")[0] in PACKAGES}


def allowed(importer: str, imported: str) -> bool:
    mine, theirs = layer_of(importer), layer_of(imported)
    if theirs == "bottom" or mine == "top":
        return True
    if mine == "bottom":
        return False
    return theirs == mine  # a stage imports only itself and the bottom layer


def violations() -> list[str]:
    known = modules()
    found = []
    for module, path in sorted(known.items()):
        for imported in sorted(imports_of(path)):
            if imported not in known and imported.rpartition(".")[0] in known:
                continue  # `from package.module import name`: the name's own entry decides
            if imported in known and not allowed(module, imported):
                found.append(f"{path.relative_to(ROOT)}: {module} ({layer_of(module)}) imports {imported} "
                             f"({layer_of(imported)})")
    return found


def test_no_module_imports_upwards_or_across_stages():
    assert violations() == []


def test_the_contract_catches_an_upward_import(tmp_path):
    assert not allowed("amodal3d.core.io", "amodal3d.completion.frontend")
    assert not allowed("recon.pipeline", "amodal3d.completion")
    assert not allowed("metrics.protocol", "recon.pipeline")
    assert not allowed("blender_scenes.sampler", "amodal3d.run")
    assert allowed("recon.pipeline", "amodal3d.core.formats.completion")
    assert allowed("amodal3d.run", "recon.pipeline")


@pytest.mark.parametrize("module", ["amodal3d.cli", "amodal3d.run", "amodal3d.bench.runner", "amodal3d.train"])
def test_top_modules_exist(module):
    assert module in modules()
