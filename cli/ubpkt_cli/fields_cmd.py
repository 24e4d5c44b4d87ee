"""`ubpkt fields`: the field reference (like `tshark -G fields`), straight from the declarations."""
from __future__ import annotations

import json

import click

from ubpkt.formats import HEADERS
from ubpkt.formats.derived import derived_rows


def field_rows(pattern: str | None = None):
    """(layer, key, bits, kind, title, spec) for every declared field, in declaration order,
    then every derived one (verdicts, computed values, enum names, byte runs)."""
    seen = set()
    for layer, h in HEADERS.items():
        for key, f in zip(h.keys, h.fields):
            seen.add(key)
            if pattern and pattern not in key and pattern not in layer:
                continue
            kind = "reserved" if f.reserved else (f"enum({len(f.enum)})" if f.enum else f.fmt)
            yield layer, key, f.bits, kind, h.title, h.spec
    for d in derived_rows(HEADERS.values()):
        if d.key in seen:
            continue
        seen.add(d.key)
        if pattern and pattern not in d.key and pattern not in d.layer:
            continue
        kind = "derived " + (f"enum({len(d.enum)})" if d.enum else d.kind)
        yield d.layer, d.key, d.bits, kind, d.title, d.spec or "derived"


@click.command()
@click.argument("pattern", required=False)
@click.option("--json", "as_json", is_flag=True, help="one JSON object per field")
def fields(pattern, as_json):
    """List every field name ubpkt can show (optionally those containing PATTERN)."""
    rows = list(field_rows(pattern))
    if not rows:
        raise click.ClickException(f"no field matches {pattern!r}")
    for layer, key, bits, kind, title, spec in rows:
        if as_json:
            click.echo(json.dumps({"layer": layer, "field": key, "bits": bits, "kind": kind,
                                   "header": title, "spec": spec}))
        else:
            click.echo(f"{key}\t{bits}\t{kind}\t{layer}\t{title} ({spec})")
