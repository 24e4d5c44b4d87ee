"""Entry point of the `ubpkt` command: a click group; each sub-command lives in its own module,
imported only when that sub-command runs (``ubpkt decode`` of one frame does not load the
stack, the simulator or the PHY)."""
from __future__ import annotations

import importlib

import click

from ubpkt import __version__
from ubpkt_cli.errors import UbGroup

#: sub-command name -> (module, attribute), in the order `ubpkt --help` lists them
COMMANDS = {
    "decode": ("ubpkt_cli.decode_cmd", "decode"),
    "stats": ("ubpkt_cli.stats_cmd", "stats"),
    "follow": ("ubpkt_cli.stats_cmd", "follow"),
    "fields": ("ubpkt_cli.fields_cmd", "fields"),
    "phy": ("ubpkt_cli.phy_cmd", "phy"),
    "fuzz": ("ubpkt_cli.phy_cmd", "fuzz"),
    "shell": ("ubpkt_cli.shell_cmd", "shell"),
    "link": ("ubpkt_cli.link_cmd", "link"),
    "loopback": ("ubpkt_cli.loopback_cmd", "loopback"),
    "serve": ("ubpkt_cli.serve_cmd", "serve"),
    "inject": ("ubpkt_cli.inject_cmd", "inject"),
    "generate": ("ubpkt_cli.generate_cmd", "generate"),
    "replay": ("ubpkt_cli.replay_cmd", "replay"),
    "export": ("ubpkt_cli.export_cmd", "export"),
    "query": ("ubpkt_cli.query_cmd", "query"),
}


class LazyGroup(UbGroup):
    """A group whose sub-commands are imported on first use (:data:`COMMANDS`)."""

    def list_commands(self, ctx) -> list:
        return list(COMMANDS) + [c for c in super().list_commands(ctx) if c not in COMMANDS]

    def get_command(self, ctx, name: str):
        if name in COMMANDS and name not in self.commands:
            module, attr = COMMANDS[name]
            self.add_command(getattr(importlib.import_module(module), attr), name)
        return super().get_command(ctx, name)


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="ubpkt")
def main() -> None:
    """ubpkt: dissector and packet toolkit for UnifiedBus (UB)."""
