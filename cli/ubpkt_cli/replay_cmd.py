"""`ubpkt replay`: send a capture again (tcpreplay timing, tcprewrite rewriting), or play one
side of a captured conversation against a live peer and compare its answers field by field
(`--as-initiator`)."""
from __future__ import annotations

import sys

import click

from ubpkt_cli.stack_options import emit_report


def _opt(fn, name, text, *args):
    if text is None:
        return None
    try:
        return fn(text, *args)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint=name) from None


@click.command()
@click.argument("pcap", type=click.Path(exists=True, dir_okay=False))
@click.option("--to", "to", help="HOST:PORT: send each frame's UDP payload there")
@click.option("--iface", help="send whole Ethernet frames on this interface (raw driver)")
@click.option("--bind", help="local HOST:PORT of the UDP socket (default 127.0.0.1:0)")
@click.option("--dialect", type=click.Choice(["spec", "ns3"]), default="spec",
              show_default=True, help="spec: UBoE frames' UDP payloads; ns3: native frames "
              "(linktype 147) whole as UDP payloads")
@click.option("--multiplier", type=click.FloatRange(0, min_open=True), default=1.0,
              show_default=True, help="divide the capture's gaps by this")
@click.option("--pps", type=click.FloatRange(0, min_open=True), help="frames per second")
@click.option("--mbps", type=click.FloatRange(0, min_open=True),
              help="megabits per second of the bytes sent")
@click.option("--topspeed", is_flag=True, help="as fast as possible")
@click.option("--loop", type=click.IntRange(1), default=1, show_default=True,
              help="passes over the capture")
@click.option("--limit", type=click.IntRange(0), help="frames sent at most")
@click.option("--dmac", help="Ethernet destination MAC of every frame")
@click.option("--smac", help="Ethernet source MAC of every frame")
@click.option("--srcip", help="OLD:NEW,... IPv4 source map, or one address for all")
@click.option("--dstip", help="OLD:NEW,... IPv4 destination map, or one address for all")
@click.option("--portmap", help="OLD:NEW,... UDP port map (both ports)")
@click.option("--tpnmap", help="OLD:NEW,... TPN map (SrcTPN/DstTPN)")
@click.option("--psn-rebase", "psn_rebase", help="the first PSN of each channel direction "
              "becomes this (24-bit wrap)")
@click.option("--fix-icrc", is_flag=True, help="recompute the ICRC after rewriting")
@click.option("--as-initiator", "as_initiator", is_flag=True,
              help="play the initiator side against a live peer (--to) and compare answers")
@click.option("--side", help="SRC_IP[:PORT] of the side to play (default: the source of the "
              "first transaction request)")
@click.option("--answers", type=click.Path(dir_okay=False, exists=True),
              help="--as-initiator: a second capture with the other side's frames (FILE.pcap "
                   "is then the initiator's transmit side; merged by time)")
@click.option("--timeout", type=click.FloatRange(0, min_open=True), default=2.0,
              show_default=True, help="--as-initiator: seconds to wait for each answer set")
@click.option("--ignore", multiple=True, help="--as-initiator: more fields (glob) or ignore "
              "sets not compared")
@click.option("--report", "report_file", type=click.Path(dir_okay=False),
              help="write the JSON report here (default: stdout)")
@click.option("-q", "--quiet", is_flag=True, help="no summary on stderr")
def replay(pcap, to, iface, bind, dialect, multiplier, pps, mbps, topspeed, loop, limit, dmac,
           smac, srcip, dstip, portmap, tpnmap, psn_rebase, fix_icrc, as_initiator, side, answers,
           timeout, ignore, report_file, quiet):
    """Send the frames of PCAP again, timed by the capture (or --pps/--mbps/--topspeed) and
    rewritten (JSON report, schema ubpkt.replay/1); with --as-initiator, play the initiator
    side of a conversation against a live peer and report every field-level difference of its
    answers (schema ubpkt.replay-initiator/1; exit 1 when a difference or a missing answer)."""
    from ubpkt.drivers.rewrite import RewriteSpec, parse_int_map, parse_ip_map, parse_mac
    from ubpkt.drivers.udp import parse_hostport

    if (to is None) == (iface is None):
        raise click.UsageError("give one destination: --to HOST:PORT or --iface IF")
    if sum(x is not None for x in (pps, mbps)) + bool(topspeed) > 1:
        raise click.UsageError("--pps, --mbps and --topspeed exclude each other")
    peer = _opt(parse_hostport, "--to", to)
    local = _opt(lambda t: parse_hostport(t, default_port=0), "--bind", bind)
    psn = None
    if psn_rebase is not None:
        try:
            psn = int(psn_rebase, 0)
        except ValueError:
            raise click.BadParameter(f"{psn_rebase!r}: not an integer",
                                     param_hint="--psn-rebase") from None
    try:
        spec = RewriteSpec(dmac=_opt(parse_mac, "--dmac", dmac),
                           smac=_opt(parse_mac, "--smac", smac),
                           srcip=_opt(parse_ip_map, "--srcip", srcip) or {},
                           dstip=_opt(parse_ip_map, "--dstip", dstip) or {},
                           portmap=_opt(parse_int_map, "--portmap", portmap, 16, "port") or {},
                           tpnmap=_opt(parse_int_map, "--tpnmap", tpnmap, 24, "TPN") or {},
                           psn_rebase=psn, fix_icrc=fix_icrc)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--psn-rebase") from None

    if as_initiator:
        if iface is not None:
            raise click.UsageError("--as-initiator talks to a UDP peer: use --to")
        if answers and side:
            raise click.UsageError("--answers makes FILE.pcap the initiator's side: no --side")
        _live(pcap, peer, local, dialect, spec, side, timeout, ignore, report_file, quiet,
              answers)
        return
    if side is not None or ignore or answers:
        raise click.UsageError("--side, --answers and --ignore go with --as-initiator")

    from ubpkt.drivers.replay import ReplayConfig, run_replay
    cfg = ReplayConfig(pcap=pcap, to=peer, iface=iface, bind=local, multiplier=multiplier,
                       pps=pps, mbps=mbps, topspeed=topspeed, loop=loop, limit=limit,
                       dialect=dialect, rewrite=spec)
    report = _run(run_replay, cfg, pcap, RuntimeError)
    emit_report(report, report_file)
    if not quiet:
        click.echo(f"ubpkt replay {pcap} -> {report['destination']}: {report['frames']} frames, "
                   f"{report['bytes']} bytes in {report['wall_s']:.3f} s ({report['pps']} pps, "
                   f"{report['mbps']} Mbit/s), max lateness {report['max_lateness_us']} us"
                   + (f"; skipped {report['skipped']}" if report["skipped"] else "")
                   + (f"; {report['rewrite']['icrc_wrong']} frames now carry a wrong ICRC"
                      if report["rewrite"]["icrc_wrong"] else ""), err=True)
    sys.exit(1 if report["send_errors"] else 0)


def _run(fn, cfg, pcap, own_error):
    """``fn(cfg)``, its failures as one-line errors (exit 1): ``own_error`` (what the run
    itself refuses), the capture's, the socket's."""
    from ubpkt.errors import CaptureError
    try:
        return fn(cfg)
    except own_error as exc:
        raise click.ClickException(str(exc)) from None
    except CaptureError as exc:
        raise click.ClickException(f"{pcap}: {exc}") from None
    except OSError as exc:
        raise click.ClickException(f"socket: {exc.strerror or exc}") from None


def _live(pcap, peer, local, dialect, spec, side, timeout, ignore, report_file, quiet,
          answers=None):
    from ubpkt.drivers.replay_live import LiveConfig, run_live
    cfg = LiveConfig(pcap=pcap, peer=peer, bind=local or ("127.0.0.1", 0),
                     dialect=dialect, rewrite=spec, side=side, timeout_s=timeout,
                     ignore=tuple(ignore), answers=answers)
    report = _run(run_live, cfg, pcap, ValueError)
    emit_report(report, report_file)
    if not quiet:
        click.echo(f"ubpkt replay --as-initiator {pcap} -> {report['peer']}: "
                   f"{report['answered']}/{report['requests']} requests answered, "
                   f"{len(report['differences'])} differences, {len(report['unanswered'])} "
                   f"unanswered, {len(report['unexpected'])} unexpected", err=True)
        for d in report["differences"][:10]:
            click.echo(f"  {d['packet']}: {d['field']} expected {d.get('expected_name') or d['expected']}"
                       f", got {d.get('got_name') or d['got']}", err=True)
    ok = not report["differences"] and not report["unanswered"] and not report["unexpected"]
    sys.exit(0 if ok else 1)
