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


def run_command(code: str, ns: dict) -> None:
    """Evaluate an expression (its value is printed) or execute statements."""
    try:
        compiled = compile(code, "<ubpkt shell -c>", "eval")
    except SyntaxError:
        exec(compile(code, "<ubpkt shell -c>", "exec"), ns)  # noqa: S102 - the user's own code
        return
    value = eval(compiled, ns)  # noqa: S307 - the user's own code
    if value is not None:
        click.echo(repr(value))


@click.command("shell")
@click.option("-c", "--command", "command", metavar="CODE",
              help="Run CODE (an expression is printed) with the layers loaded, then exit.")
@click.option("--profile", "profile", metavar="NAME|FILE", default=None,
              help="Profile for crafting and dissecting (spec, ns3 or a JSON file).")
def shell(command: str | None, profile: str | None) -> None:
    """Interactive scapy session with the UnifiedBus layers (UBLph, UBRtph, UBBtah, ...)."""
    import ubpkt.scapy as ubscapy
    from ubpkt.profile import load_profile

    if profile:
        ubscapy.set_profile(load_profile(profile))
    ns = _namespace()
    if command is not None:
        run_command(command, ns)
        return
    from scapy.main import interact
    names = ", ".join(n for n in ("UBLph", "UBCna16", "UBNth", "UBRtph", "UBBtah", "UBMaetah"))
    interact(mydict=ns, argv=[], mybanner=f"ubpkt: UB layers loaded ({names}, ...; "
                                          "see docs/scapy.md)")
