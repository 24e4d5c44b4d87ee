"""Build the plugin's compiled CRCs: dissectors/ub_core.c -> dissectors/ub_core-<5.2|5.4>.so.

One shared object per Lua that Wireshark embeds (4.0: Lua 5.2; 4.4 and later: Lua 5.4), compiled
against that Lua's headers (Debian/Ubuntu: ``liblua5.2-dev``, ``liblua5.4-dev``) and **not**
linked with liblua: the Lua symbols are resolved in the Wireshark/tshark process that loads it
(linking a second liblua into it would make two Lua runtimes).  ub_dispatch.lua loads the one
named after the running ``_VERSION`` from the plugin's folder (dissectors/README.md, "Compiled
CRCs").

    python3 dissectors/build_core.py               # every Lua whose headers are found
    python3 dissectors/build_core.py --lua 5.2     # only that one (exit 1 if it cannot be built)
    python3 dissectors/build_core.py --out DIR     # write the .so files into DIR
    python3 dissectors/build_core.py --clean       # remove the built files

The compiler is ``$CC`` or the first of cc, gcc, clang on the PATH; the headers are found by
``pkg-config lua5.x`` or in /usr/include/lua5.x, /usr/local/include/lua5.x (``--include`` names
a folder for a single ``--lua``).  Linux and other ELF systems; macOS gets ``-undefined
dynamic_lookup``.  Windows is not supported (a DLL must link against Wireshark's lua52.dll).
Exit status: 0 when every requested module was built (without --lua: at least one), else 1
(the reason on stderr).
"""
from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
SOURCE = HERE / "ub_core.c"
VERSIONS = ("5.2", "5.4")
CFLAGS = ["-std=c99", "-O2", "-fPIC", "-Wall", "-Wextra"]


def module_name(version: str) -> str:
    """The file name ub_dispatch.lua looks for under Lua ``version`` ("5.2")."""
    return f"ub_core-{version}.so"


def find_compiler() -> str | None:
    """``$CC`` if set (it may carry flags: only its first word is looked up), else cc/gcc/clang."""
    cc = os.environ.get("CC")
    if cc:
        return cc if shutil.which(cc.split()[0]) else None
    for name in ("cc", "gcc", "clang"):
        if shutil.which(name):
            return name
    return None


def find_headers(version: str) -> Path | None:
    """The folder holding lua.h of Lua ``version``, or None."""
    if shutil.which("pkg-config"):
        for pkg in (f"lua{version}", f"lua-{version}", f"lua{version.replace('.', '')}"):
            res = subprocess.run(["pkg-config", "--cflags-only-I", pkg], capture_output=True,
                                 text=True)
            if res.returncode == 0:
                for flag in res.stdout.split():
                    d = Path(flag[2:])
                    if (d / "lua.h").exists():
                        return d
    for d in (Path(f"/usr/include/lua{version}"), Path(f"/usr/local/include/lua{version}")):
        if (d / "lua.h").exists():
            return d
    return None


def compile_command(cc: str, include: Path, out: Path) -> list[str]:
    """The compiler call that builds ``out``: a shared object with undefined Lua symbols."""
    link = ["-bundle", "-undefined", "dynamic_lookup"] if sys.platform == "darwin" else ["-shared"]
    return [*cc.split(), *CFLAGS, *link, f"-I{include}", str(SOURCE), "-o", str(out)]


def build(version: str, out_dir: Path, include: Path | None = None) -> tuple[Path | None, str]:
    """Build the module for Lua ``version`` into ``out_dir``: (path, "") or (None, why not)."""
    cc = find_compiler()
    if cc is None:
        return None, "no C compiler (set CC, or install gcc)"
    include = include or find_headers(version)
    if include is None:
        return None, (f"no Lua {version} headers (apt-get install liblua{version}-dev, "
                      "or pass --include)")
    out = out_dir / module_name(version)
    tmp = out.with_suffix(".so.tmp")
    res = subprocess.run(compile_command(cc, include, tmp), capture_output=True, text=True)
    if res.returncode != 0:
        tmp.unlink(missing_ok=True)
        return None, f"{cc} failed for Lua {version}:\n{res.stderr.strip()}"
    tmp.replace(out)                      # never a half-written module next to the plugin
    return out, ""


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--lua", choices=VERSIONS, action="append",
                    help="the Lua version(s) to build for (default: every one with headers)")
    ap.add_argument("--out", type=Path, default=HERE, help="output folder (default: dissectors/)")
    ap.add_argument("--include", type=Path, help="the folder of lua.h (with a single --lua)")
    ap.add_argument("--clean", action="store_true", help="remove the built modules and stop")
    args = ap.parse_args(argv)
    if args.clean:
        for v in VERSIONS:
            (args.out / module_name(v)).unlink(missing_ok=True)
        return 0
    if args.include and (not args.lua or len(args.lua) != 1):
        ap.error("--include needs exactly one --lua")
    wanted = args.lua or list(VERSIONS)
    args.out.mkdir(parents=True, exist_ok=True)
    failed = built = 0
    for v in wanted:
        path, why = build(v, args.out, args.include)
        if path is not None:
            built += 1
            print(f"built {path}", file=sys.stderr)
        elif args.lua:                    # asked for by name: a failure
            print(f"build_core: Lua {v}: {why}", file=sys.stderr)
            failed += 1
        else:                             # every version: say which could not be built
            print(f"build_core: skipped Lua {v}: {why}", file=sys.stderr)
    return 1 if failed or not built else 0


if __name__ == "__main__":
    sys.exit(main())
