"""Options and output shared by the commands that run the reference stack (`loopback`, `inject`,
`serve`): the netem-style fault options, and the JSON report on stdout or in a file."""
from __future__ import annotations

import json

import click

#: (option, help) of the fault options; each maps to the FaultSpec key of the same name
#: (``ubpkt.sim.faults``).  ``blackout`` and ``drop`` may be repeated.
FAULT_OPTIONS = (
    ("loss", "drop probability (netem loss)"),
    ("burst", "mean loss burst length (Gilbert model)"),
    ("duplicate", "duplicate probability"),
    ("reorder", "reorder probability"),
    ("gap", "frames a reordered frame waits behind"),
    ("corrupt", "bit-flip probability (the ICRC check must catch them)"),
    ("mark", "congestion-mark probability (netem ecn): echoed in CETPHs"),
    ("delay", "extra delay (ns, or 5us/1ms)"),
    ("jitter", "delay jitter"),
    ("rate", "rate of the faulted path (10G, 100Mbit)"),
)
_REPEATED = (("blackout", "T0:T1 window dropping everything"),
             ("drop", "'FILTER'[@N]: drop the Nth frame matching a -Y filter"))


def fault_options(fn):
    """Add the fault options to a click command; they arrive as keyword arguments (``raw``
    for ``--faults``).  :func:`fault_spec` turns them into one FaultSpec string."""
    fn = click.option("--faults", "raw", multiple=True, help="raw key=value fault items")(fn)
    for name, text in reversed(_REPEATED):
        fn = click.option(f"--{name}", multiple=True, help=text)(fn)
    for name, text in reversed(FAULT_OPTIONS):
        fn = click.option(f"--{name}", help=text)(fn)
    return fn


FAULT_KEYS = tuple(k for k, _ in FAULT_OPTIONS) + tuple(k for k, _ in _REPEATED) + ("raw",)


def fault_spec(kw: dict) -> str | None:
    """The canonical FaultSpec string of the fault options in ``kw`` (they are removed from
    it), or None when no fault is asked for."""
    from ubpkt.sim.faults import FaultSpec
    opts = {k: kw.pop(k) for k in FAULT_KEYS if k in kw}
    raw = opts.pop("raw", ())
    items = []
    for k, v in opts.items():
        if isinstance(v, tuple):
            items += [f"{k}={x}" for x in v]
        elif v is not None:
            items.append(f"{k}={v}")
    items += list(raw)
    return str(FaultSpec.parse(items)) if items else None


def emit_report(report: dict, report_file: str | None) -> None:
    """The JSON report: to ``report_file``, or to stdout (machine output)."""
    text = json.dumps(report, indent=2)
    if report_file:
        with open(report_file, "w", encoding="utf-8") as fh:
            fh.write(text + "\n")
    else:
        click.echo(text)
