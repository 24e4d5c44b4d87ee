"""`ubpkt shell`: an interactive scapy session with the UB layers loaded."""
from __future__ import annotations

import click


def _namespace() -> dict:
    import scapy.all as scapy_all

    import ubpkt.scapy as ubscapy
    from ubpkt.dissect import dissect
    from ubpkt.profile import NS3, SPEC

    ns = {k: getattr(scapy_all, k) for k in dir(scapy_all) if not k.startswith("_")}
    ns.update({k: getattr(ubscapy, k) for k in ubscapy.__all__})
    ns.update({"dissect": dissect, "SPEC": SPEC, "NS3": NS3})
    return ns


class CodeError(click.ClickException):
    """The user's code raised: one line naming the exception and where in CODE (exit 1)."""


def _where(exc: BaseException) -> str:
    """`` (line N)`` of the innermost frame of the user's code, if it is there."""
    tb, line = exc.__traceback__, None
    while tb is not None:
        if tb.tb_frame.f_code.co_filename == "<ubpkt shell -c>":
            line = tb.tb_lineno
        tb = tb.tb_next
    return f" (line {line})" if line is not None else ""


def run_command(code: str, ns: dict) -> None:
    """Evaluate an expression (its value is printed) or execute statements.  A syntax error is a
    usage error (exit 2); an exception raised by the code is one line (exit 1): no traceback
    through click's or ubpkt's internals."""
    try:
        compiled = compile(code, "<ubpkt shell -c>", "eval")
        mode = "eval"
    except SyntaxError:
        try:
            compiled = compile(code, "<ubpkt shell -c>", "exec")
        except SyntaxError as exc:
            raise click.UsageError(f"SyntaxError in CODE: {exc.msg} (line {exc.lineno}, "
                                   f"column {exc.offset})")
        mode = "exec"
    try:
        value = eval(compiled, ns)  # noqa: S307 - the user's own code
    except (KeyboardInterrupt, SystemExit):
        raise
    except Exception as exc:   # the user's code: any exception is theirs to read
        raise CodeError(f"{type(exc).__name__}: {exc}{_where(exc)}") from None
    if mode == "eval" and value is not None:
        click.echo(repr(value))


def _interact(ns: dict, banner: str) -> None:
    """IPython when it is installed (the optional ``shell`` extra; scapy's own shell prefers it
    too), else scapy's console."""
    import importlib
    try:
        ipython = importlib.import_module("IPython")   # optional: not a declared dependency
    except ImportError:
        from scapy.main import interact
        interact(mydict=ns, argv=[], mybanner=banner)
        return
    click.echo(banner)
    ipython.start_ipython(argv=[], user_ns=ns)


@click.command("shell")
@click.option("-c", "--command", "command", metavar="CODE",
              help="Run CODE (an expression is printed) with the layers loaded, then exit.")
@click.option("--profile", "profile", metavar="NAME|FILE", default=None,
              help="Profile for crafting and dissecting (spec, ns3 or a JSON file).")
def shell(command: str | None, profile: str | None) -> None:
    """Interactive scapy session with the UnifiedBus layers (UBLph, UBRtph, UBBtah, ...); IPython
    when it is installed."""
    import ubpkt.scapy as ubscapy
    from ubpkt.profile import load_profile

    if profile:
        ubscapy.set_profile(load_profile(profile))
    ns = _namespace()
    if command is not None:
        run_command(command, ns)
        return
    names = ", ".join(n for n in ("UBLph", "UBCna16", "UBNth", "UBRtph", "UBBtah", "UBMaetah"))
    _interact(ns, f"ubpkt: UB layers loaded ({names}, ...; ls(UBBtah) lists fields and enum "
                  "names; see docs/scapy.md)")
