"""`ubpkt serve`: a UBoE target endpoint on a UDP socket (or raw Ethernet on an interface),
answering from its memory regions."""
from __future__ import annotations

import signal
import sys

import click

from ubpkt_cli.stack_options import emit_report


def _pair(text: str, what: str) -> tuple[int, int]:
    a, sep, b = str(text).partition(":")
    try:
        if not sep:
            raise ValueError
        return int(a, 0), int(b, 0)
    except ValueError:
        raise click.BadParameter(f"{text!r}: {what}") from None


@click.command()
@click.option("--udp", "udp", default="127.0.0.1:4792", show_default=True,
              help="HOST:PORT to bind (UBoE over UDP, UB 2.0 §5.2.3)")
@click.option("--iface", metavar="IF", help="raw Ethernet on this interface instead of UDP "
              "(AF_PACKET, UDP port 4792; root or CAP_NET_RAW)")
@click.option("--vlan", type=click.IntRange(0, 4095), help="--iface: 802.1Q VLAN ID to answer "
              "on (frames of other VLANs and untagged ones are ignored)")
@click.option("--pcp", type=click.IntRange(0, 7), default=0, show_default=True,
              help="--iface --vlan: the priority of the tags sent")
@click.option("--region", "regions", multiple=True, metavar="NAME:SIZE[:TOKEN][@BASE[/TOKENID]]",
              help="a memory region (repeatable); region i: base (i+1)<<32, TokenID i+1 "
                   "unless @BASE/TOKENID; default mem:16MiB without a token")
@click.option("--dialect", type=click.Choice(["spec", "ns3"]), default="spec",
              show_default=True,
              help="spec: UBoE datagrams (UB 2.0 §5.2.3); ns3: one whole ns-3-UB frame per "
                   "datagram, NS3 profile")
@click.option("--learn", is_flag=True,
              help="take each session's TPNs and receive PSN from its first data packet "
                   "(the transmit PSN stays --psn TX)")
@click.option("--tpmsn", "tx_msn", type=click.IntRange(0, (1 << 24) - 1), default=0,
              show_default=True, help="TPMSN of each session's first transaction")
@click.option("--tpn", default="0x20:0x10", show_default=True,
              help="LOCAL:PEER TP channel numbers")
@click.option("--psn", default="0:0", show_default=True,
              help="TX:RX initial PSNs of every session's channel")
@click.option("--icrc", type=click.Choice(["check", "ignore"]), default="check",
              show_default=True, help="drop datagrams whose ICRC does not match, or count them")
@click.option("--count-requests", type=click.IntRange(1),
              help="stop after this many request packets")
@click.option("--duration", type=click.FloatRange(0, min_open=True), help="stop after S seconds")
@click.option("--max-peers", type=click.IntRange(1), default=64, show_default=True,
              help="sessions (source address and port) kept at a time")
@click.option("--max-memory", default="1GiB", show_default=True, metavar="SIZE",
              help="bytes the regions, every session's receive buffers and out-of-order "
                   "packets may hold together (fewer sessions are kept when they do not fit)")
@click.option("--mtu", type=click.IntRange(256, 8192), help="payload bytes per packet")
@click.option("--pps", type=click.FloatRange(1), help="datagrams per second at most")
@click.option("--rate-limit", type=click.FloatRange(1),
              help="datagrams per second taken from one source at most")
@click.option("--report", "report_file", type=click.Path(dir_okay=False),
              help="write the JSON report here (default: stdout)")
@click.option("-q", "--quiet", is_flag=True, help="nothing on stderr")
@click.pass_context
def serve(ctx, udp, iface, vlan, pcp, regions, dialect, learn, tx_msn, tpn, psn, icrc,
          count_requests, duration, max_peers, max_memory, mtu, pps, rate_limit, report_file,
          quiet):
    """Answer UB requests arriving over UDP (or raw Ethernet, --iface) from memory regions,
    until Ctrl-C / SIGTERM, --count-requests or --duration; then write a JSON report (schema
    ubpkt.serve/1)."""
    from click.core import ParameterSource
    if iface is not None and ctx.get_parameter_source("udp") != ParameterSource.DEFAULT:
        raise click.UsageError("--udp or --iface, not both")
    if iface is None and (vlan is not None or pcp):
        raise click.UsageError("--vlan and --pcp go with --iface")
    if iface is not None and dialect != "spec":
        raise click.UsageError("--iface carries UBoE frames: --dialect spec only")
    from ubpkt.drivers.serve import ServeConfig, Server, parse_region
    from ubpkt.drivers.udp import parse_hostport
    from ubpkt.profile import PROFILES
    from ubpkt.stack.workload import parse_size
    local_tpn, peer_tpn = _pair(tpn, "LOCAL:PEER")
    tx_psn, rx_psn = _pair(psn, "TX:RX")
    try:
        bind = parse_hostport(udp)
        regs = [parse_region(r, i) for i, r in enumerate(regions)]
        limit = parse_size(max_memory)
        cfg = ServeConfig(bind=bind, regions=regs, local_tpn=local_tpn, peer_tpn=peer_tpn,
                          tx_psn=tx_psn, rx_psn=rx_psn, icrc=icrc,
                          count_requests=count_requests, duration_s=duration,
                          max_peers=max_peers, max_memory=limit, mtu=mtu, pps=pps,
                          rate_limit=rate_limit, iface=iface, vlan=vlan, pcp=pcp,
                          dialect=dialect, learn=learn, tx_msn=tx_msn,
                          profile=PROFILES[dialect])
    except ValueError as exc:
        raise click.BadParameter(str(exc))
    try:
        server = Server(cfg)
    except OSError as exc:
        where = iface if iface else f"{bind[0]}:{bind[1]}"
        raise click.ClickException(f"cannot {'open' if iface else 'bind'} {where}: "
                                   f"{exc.strerror or exc}")
    except ValueError as exc:           # regions against --max-memory, names: the arguments
        raise click.UsageError(str(exc))
    say = (lambda *a: None) if quiet else (lambda m: click.echo(m, err=True))
    say(f"ubpkt serve: listening on {server.listen} ({'raw Ethernet' if iface else 'UDP'}), TPN "
        + ("learned per session" if learn else f"{local_tpn:#x} <- {peer_tpn:#x}")
        + f", dialect {dialect}, ICRC {icrc}")
    say(f"  memory: at most {server.cfg.max_memory} bytes: regions {server.region_bytes}, "
        f"{server.session_cap} sessions of {server.session_bytes}")
    for r in server.regions:
        say(f"  region {r.name}: base {r.base:#x}, {r.size} bytes, TokenID {r.tokenid}"
            + (", token required" if r.tokenvalue is not None else ""))
    live = not quiet and sys.stderr.isatty()

    def progress(s):
        click.echo(f"\r  {s['requests']} requests, {s['sessions']} sessions, "
                   f"{s['rx_datagrams']} in / {s['tx_datagrams']} out, "
                   f"{s['bad_icrc']} bad ICRC, {s['access_errors']} access errors  ",
                   err=True, nl=False)

    old = {}
    for sig in (signal.SIGINT, signal.SIGTERM):
        try:
            old[sig] = signal.signal(sig, lambda *_: server.stop())
        except ValueError:              # not the main thread
            pass
    try:
        report = server.run(progress=progress if live else None)
    finally:
        for sig, h in old.items():
            signal.signal(sig, h)
        server.close()
    if live:
        click.echo("", err=True)
    emit_report(report, report_file)
    d = report["driver"]["stats"]
    say(f"ubpkt serve: stopped ({report['stopped_by']}) after {report['wall_s']:.1f} s: "
        f"{report['requests']} requests, {report['errors']} access errors, "
        f"{report['sessions']['total']} sessions, {d['rx_datagrams']} datagrams in, "
        f"{d['tx_datagrams']} out, {d['bad_icrc']} bad ICRC, {d['runt']} runts")
    sys.exit(0)
