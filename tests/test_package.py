"""The package's public face: `import ubpkt` gives the API, pyproject declares what it imports."""
from __future__ import annotations

import ast
import pathlib
import subprocess
import sys
import tomllib

import ubpkt

ROOT = pathlib.Path(__file__).resolve().parent.parent

#: import names of distributions whose module name differs from the distribution name
_MODULE_OF = {"scapy": "scapy", "orjson": "orjson", "numpy": "numpy", "click": "click",
              "rich": "rich", "construct": "construct", "reedsolo": "reedsolo"}


def test_public_api():
    for name in ("decode", "encode_layers", "encode_record", "HEADERS", "Profile", "SPEC", "NS3",
                 "UBError", "open_capture", "PcapWriter"):
        assert name in ubpkt.__all__
        assert getattr(ubpkt, name) is not None
    assert issubclass(ubpkt.EncodeError, ubpkt.UBError)
    assert issubclass(ubpkt.CaptureError, ubpkt.UBError)
    pkt = ubpkt.encode_layers([("ub.lph", {"cfg": 9}), ("ub.cna16", {"scna": 1, "dcna": 2}),
                               ("ub.btah_c", {"taopcode": "Write"}),
                               ("ub.maetah_c", {"address": 0x40}), ("data", bytes(64))])
    assert ubpkt.encode_record(ubpkt.decode(pkt)) == pkt


def test_lower_layers_do_not_load_the_decoder():
    code = ("import sys, ubpkt.link, ubpkt.phy, ubpkt.formats, ubpkt.network; "
            "print(any(m.startswith('ubpkt.dissect') for m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         cwd=ROOT, check=True).stdout.strip()
    assert out == "False"


def _third_party_imports() -> set:
    found = set()
    for path in list((ROOT / "ubpkt").rglob("*.py")) + list((ROOT / "cli").rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            else:
                continue
            for n in names:
                top = n.split(".")[0]
                if top not in sys.stdlib_module_names and top not in ("ubpkt", "ubpkt_cli"):
                    found.add(top)
    return found


def test_runtime_dependencies_are_declared():
    meta = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    declared = {d.split(">")[0].split("=")[0].split("[")[0].strip().lower()
                for d in meta["dependencies"]}
    used = {m.lower() for m in _third_party_imports()}
    # an optional extra's module (matplotlib for `loopback --plot`, extra "plot") may be
    # imported, only inside the one module that checks for it
    plot = {d.split(">")[0].strip().lower() for d in meta["optional-dependencies"]["plot"]}
    assert plot == {"matplotlib"}
    users = [p for p in (ROOT / "ubpkt").rglob("*.py") if "matplotlib" in p.read_text()
             and "import matplotlib" in p.read_text()]
    assert [p.name for p in users] == ["plot.py"]
    # the analytics extras (ubpkt.analytics.EXTRAS: module -> extra) only inside
    # ubpkt/analytics, whose require() names the extra when one is missing
    from ubpkt.analytics import EXTRAS
    for module, extra in EXTRAS.items():
        dists = " ".join(meta["optional-dependencies"][extra]).lower()
        assert module in dists, f"{module}: not in the extra {extra}"
        users = {p.parent.name for p in (ROOT / "ubpkt").rglob("*.py")
                 if f"import {module}" in p.read_text() or f"from {module}" in p.read_text()}
        assert users <= {"analytics"}, f"{module} imported outside ubpkt/analytics"
    allowed = declared | plot | set(EXTRAS)
    assert used <= allowed, f"imported at run time but not declared: {used - allowed}"
    test_only = {d.split(">")[0].strip().lower() for d in meta["optional-dependencies"]["test"]}
    assert "reedsolo" in test_only and "reedsolo" not in declared
