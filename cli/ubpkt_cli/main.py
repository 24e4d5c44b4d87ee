"""Entry point of the `ubpkt` command: a click group; each sub-command lives in its own module."""
from __future__ import annotations

import click

from ubpkt import __version__
from ubpkt_cli.errors import UbGroup


@click.group(cls=UbGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="ubpkt")
def main() -> None:
    """ubpkt: dissector and packet toolkit for UnifiedBus (UB)."""


def _register() -> None:
    # Sub-command modules register themselves here, one import each.
    from ubpkt_cli.decode_cmd import decode
    from ubpkt_cli.stats_cmd import follow, stats
    main.add_command(decode)
    main.add_command(stats)
    main.add_command(follow)
    from ubpkt_cli.fields_cmd import fields
    main.add_command(fields)
    from ubpkt_cli.phy_cmd import phy, fuzz
    main.add_command(phy); main.add_command(fuzz)
    from ubpkt_cli.shell_cmd import shell
    main.add_command(shell)
    from ubpkt_cli.link_cmd import link
    main.add_command(link)
    from ubpkt_cli.loopback_cmd import loopback
    main.add_command(loopback)
    from ubpkt_cli.serve_cmd import serve; main.add_command(serve)
    from ubpkt_cli.inject_cmd import inject; main.add_command(inject)
    from ubpkt_cli.generate_cmd import generate; main.add_command(generate)
    from ubpkt_cli.replay_cmd import replay; main.add_command(replay)


_register()
