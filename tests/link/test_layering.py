"""Layering of ``ubpkt.link``: the data-link algorithms and engine never load the decoder
(``ubpkt.dissect``: capture and flit-stream decoding to records builds on the link layer, not
the other way round), and no two of its modules import each other (no import cycle at all)."""
import ast
import json
import pathlib
import subprocess
import sys

import pytest

import ubpkt.link

LINK = pathlib.Path(ubpkt.link.__file__).parent
ROOT = LINK.parent.parent
# modules by dotted name inside ubpkt.link ("framing", "dll.engine", "dll.__init__"...)
MODULES = sorted(".".join(p.relative_to(LINK).with_suffix("").parts) for p in LINK.rglob("*.py"))


def _file(name: str) -> pathlib.Path:
    return LINK.joinpath(*name.split(".")).with_suffix(".py")


def _pkg_of(name: str) -> list:
    """The package a module's relative imports start from, as dotted parts."""
    parts = name.split(".")
    return ["ubpkt", "link"] + parts[:-1]

# The package facade (ubpkt/__init__.py) imports ubpkt.dissect for ``ubpkt.decode``; the check
# loads ``ubpkt`` as a bare namespace so that it sees what ubpkt.link itself pulls in.
_PROBE = """
import importlib, json, sys, types
pkg = types.ModuleType("ubpkt")
pkg.__path__ = [{path!r}]
sys.modules["ubpkt"] = pkg
importlib.import_module({module!r})
print(json.dumps(sorted(m for m in sys.modules if m.startswith("ubpkt."))))
"""


@pytest.mark.parametrize("name", MODULES)
def test_link_modules_do_not_load_the_decoder(name):
    module = "ubpkt.link." + name.removesuffix("__init__").rstrip(".")
    module = module.rstrip(".")
    code = _PROBE.format(path=str(LINK.parent), module=module)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         cwd=ROOT, check=True).stdout
    loaded = json.loads(out.strip().splitlines()[-1])
    assert module in loaded
    assert [m for m in loaded if m.startswith("ubpkt.dissect")] == [], module


def _imports(name: str) -> tuple[set, set]:
    """(ubpkt.link modules, other ubpkt packages) that module ``name`` imports, anywhere in it
    (function-level imports included)."""
    tree = ast.parse(_file(name).read_text())
    pkg = ["ubpkt", "link"]
    here = _pkg_of(name)
    link, other = set(), set()

    def resolve(inner: list) -> str:
        """The module (dotted inside ubpkt.link) a path names: a module file or a package."""
        dotted = ".".join(inner)
        if inner and _file(dotted).exists():
            return dotted
        return ".".join(inner + ["__init__"])

    def add(dotted: list, names=()):
        if dotted[:2] == pkg:
            inner = dotted[2:]
            if inner and _file(".".join(inner)).exists():
                link.add(".".join(inner))
            else:                           # from <package> import x: a module or the package
                for n in names:
                    link.add(resolve(inner + [n]) if _file(".".join(inner + [n])).exists()
                             else resolve(inner))
        elif dotted[:1] == ["ubpkt"]:
            other.add(".".join(dotted[:2]))

    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for a in node.names:
                add(a.name.split("."))
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = here[:len(here) - (node.level - 1)]
                dotted = base + (node.module.split(".") if node.module else [])
            else:
                dotted = node.module.split(".")
            add(dotted, [a.name for a in node.names])
    link.discard(name)
    return link, other


GRAPH = {name: _imports(name)[0] for name in MODULES}


def test_no_two_link_modules_import_each_other():
    pairs = sorted((a, b) for a in GRAPH for b in GRAPH[a] if a < b and a in GRAPH.get(b, ()))
    assert pairs == []


def test_no_import_cycle_in_link():
    state: dict = {}

    def visit(n, path):
        if state.get(n) == "done":
            return
        assert state.get(n) != "open", "import cycle: " + " -> ".join(path + [n])
        state[n] = "open"
        for m in sorted(GRAPH.get(n, ())):
            visit(m, path + [n])
        state[n] = "done"

    for n in MODULES:
        visit(n, [])


def test_link_never_imports_dissect_statically():
    for name in MODULES:
        assert "ubpkt.dissect" not in _imports(name)[1], name


def test_the_checker_sees_imports():
    """The AST walk finds relative, package-level and function-level imports."""
    assert {"blocks", "control", "crc30"} <= GRAPH["framing"]
    assert {"control", "blocks", "framing"} <= GRAPH["dll.transmit"]
    assert {"dll.state", "dll.retry_sm", "dll.receive"} <= GRAPH["dll.engine"]
    assert "dll.__init__" in GRAPH["engine"]
    assert "framing" in GRAPH["__init__"]
