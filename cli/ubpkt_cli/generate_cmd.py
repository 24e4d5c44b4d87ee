"""`ubpkt generate`: stateless UBoE request streams from templates and a field engine, to a pcap,
to one UDP peer, or as whole frames out of an interface (raw Ethernet)."""
from __future__ import annotations

import click

from ubpkt_cli.stack_options import emit_report

_MODES = click.Choice(["inc", "random", "fixed"])


def _int(name: str, text: str | None) -> int | None:
    if text is None:
        return None
    try:
        return int(text, 0)
    except ValueError:
        raise click.BadParameter(f"{text!r}: not an integer", param_hint=f"--{name}") from None


@click.command()
@click.option("--workload", required=True,
              help="e.g. write:64KiB*100,read:4KiB,atomic:cas,send:1KiB")
@click.option("-o", "--output", "output", type=click.Path(dir_okay=False),
              help="write the frames to this pcap (linktype 1, Ethernet)")
@click.option("--to", "to", help="HOST:PORT: send the UDP payloads to this peer only")
@click.option("--iface", metavar="IF", help="put the whole frames on this interface (raw "
              "Ethernet; root or CAP_NET_RAW); with --peer-ip")
@click.option("--peer-ip", metavar="IP[:PORT]", help="--iface: the destination IPv4 address "
              "(and UDP port, default 4792)")
@click.option("--dmac", metavar="MAC", help="--iface: the destination MAC (default: the "
              "kernel's ARP entry for --peer-ip)")
@click.option("--vlan", type=click.IntRange(0, 4095), help="--iface: an 802.1Q tag with this "
              "VLAN ID")
@click.option("--pcp", type=click.IntRange(0, 7), default=0, show_default=True,
              help="--iface --vlan: the tag's priority")
@click.option("--count", type=click.IntRange(0), help="frames in all (the workload repeats; "
              "default: one pass)")
@click.option("--pps", type=click.FloatRange(0, min_open=True), help="frames per second")
@click.option("--mbps", type=click.FloatRange(0, min_open=True),
              help="megabits per second (pcap: frame bytes; --to: datagram bytes)")
@click.option("--psn", "psn_mode", type=_MODES, default="inc", show_default=True,
              help="RTPH.PSN per frame")
@click.option("--tassn", "tassn_mode", type=_MODES, default="inc", show_default=True,
              help="BTAH.INI_TASSN per transaction")
@click.option("--address", "address_mode", type=_MODES, default="inc", show_default=True,
              help="MAETAH.Address per work request")
@click.option("--sport", "sport_mode", type=_MODES, help="UDP source port per frame "
              "(default inc; with --to the socket's port, fixed)")
@click.option("--seed", type=int, default=0, show_default=True,
              help="seeds the random fields and the payload bytes")
@click.option("--mtu", type=click.IntRange(64, 8192), help="payload bytes per packet")
@click.option("--tpn", default="0x10:0x20", show_default=True, help="SRC:DST TPNs")
@click.option("--psn-start", default="0", show_default=True, help="first PSN (inc/fixed)")
@click.option("--tokenid", default="1", show_default=True, help="MAETAH.TokenID")
@click.option("--token", help="TokenValue (TVETAH; none by default)")
@click.option("--base", default="0x100000000", show_default=True, help="first address")
@click.option("--span", help="bytes from --base that random addresses fall in "
              "(default: what the workload covers)")
@click.option("--report", "report_file", type=click.Path(dir_okay=False),
              help="write the JSON report here (default: stdout)")
@click.option("-q", "--quiet", is_flag=True, help="no summary on stderr")
def generate(workload, output, to, iface, peer_ip, dmac, vlan, pcp, count, pps, mbps, psn_mode,
             tassn_mode, address_mode, sport_mode, seed, mtu, tpn, psn_start, tokenid, token,
             base, span, report_file, quiet):
    """Generate RTP data requests of a workload, one per MTU segment, no state: every frame
    from a compiled template with the ICRC filled; PSN, TASSN, address and UDP source port set
    by the field engine (JSON report, schema ubpkt.generate/1)."""
    from ubpkt.drivers.generate import Stream, raw_path, send_raw, send_udp, udp_path, write_pcap
    from ubpkt.drivers.udp import parse_hostport
    from ubpkt.stack.network import Path
    from ubpkt.stack.workload import parse_size

    if sum(x is not None for x in (output, to, iface)) != 1:
        raise click.UsageError("give one output: -o FILE.pcap, --to HOST:PORT or --iface IF")
    if iface is not None and peer_ip is None:
        raise click.UsageError("--iface needs --peer-ip IP[:PORT]")
    if iface is None and (peer_ip or dmac or vlan is not None or pcp):
        raise click.UsageError("--peer-ip, --dmac, --vlan and --pcp go with --iface")
    if pps is not None and mbps is not None:
        raise click.UsageError("--pps or --mbps, not both")
    if to is not None and sport_mode not in (None, "fixed"):
        raise click.BadParameter("with --to the UDP source port is the socket's own port "
                                 "(fixed)", param_hint="--sport")
    src, sep, dst = tpn.partition(":")
    if not sep:
        raise click.BadParameter(f"{tpn!r}: SRC:DST", param_hint="--tpn")
    srctpn, dsttpn = _int("tpn", src), _int("tpn", dst)
    try:
        span_v = None if span is None else parse_size(span) if not span.lower().startswith(
            "0x") else int(span, 16)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--span") from None
    kw = dict(count=count, seed=seed, mtu=mtu, srctpn=srctpn, dsttpn=dsttpn,
              psn=_int("psn-start", psn_start), tokenid=_int("tokenid", tokenid),
              tokenvalue=_int("token", token), base=_int("base", base), span=span_v,
              field_engine={"psn": psn_mode, "tassn": tassn_mode, "address": address_mode,
                            "sport": sport_mode or ("fixed" if to else "inc")})
    sock = None
    peer = None
    try:
        if to is not None:
            peer = parse_hostport(to)
        elif iface is not None:
            peer = parse_hostport(peer_ip)
            if dmac is not None:
                from ubpkt.drivers.raw import parse_mac
                parse_mac(dmac)
        path = Path()
        if iface is not None:
            from ubpkt.drivers.raw import open_raw_sender
            sock = open_raw_sender(iface)
            path = raw_path(sock, peer, dmac, vlan=vlan, pcp=pcp)
        elif peer is not None:
            sock, path = udp_path(peer)
        stream = Stream(workload, path=path, **kw)
    except ValueError as exc:
        if sock is not None:
            sock.close()
        raise click.BadParameter(str(exc)) from None
    except OSError as exc:
        if sock is not None:
            sock.close()
        raise click.ClickException(f"{iface or 'socket'}: {exc.strerror or exc}") from None
    try:
        if peer is None:
            out = write_pcap(stream, output, pps=pps, mbps=mbps)
        elif iface is not None:
            out = send_raw(stream, sock, pps=pps, mbps=mbps)
        else:
            out = send_udp(stream, sock, peer, pps=pps, mbps=mbps)
    except OSError as exc:
        raise click.ClickException(f"{output or to or iface}: {exc.strerror or exc}") from None
    finally:
        if sock is not None:
            sock.close()
    dur = out["duration_s"]
    report = {
        "schema": "ubpkt.generate/1",
        "workload": workload,
        "output": output if peer is None else None,
        "iface": iface,
        "peer": f"{peer[0]}:{peer[1]}" if peer else None,
        "frames": out["frames"],
        "bytes": out["bytes"],
        "duration_s": round(dur, 9),
        "pps": round(out["frames"] / dur, 1) if dur > 0 else None,
        "mbps": round(out["bytes"] * 8 / dur / 1e6, 3) if dur > 0 else None,
        "frames_per_pass": stream.stats["frames_per_pass"],
        "ops": stream.stats["ops"],
        "field_engine": stream.engine,
        "seed": seed,
        "send_errors": out.get("errors", 0),
    }
    emit_report(report, report_file)
    if not quiet:
        where = f"{output or report['peer']}{' on ' + iface if iface else ''}"
        click.echo(f"ubpkt generate -> {where}: {out['frames']} frames, "
                   f"{out['bytes']} bytes in {dur:.6f} s", err=True)
