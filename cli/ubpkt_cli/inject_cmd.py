"""`ubpkt inject`: an initiator running a workload or the requests of a capture against a live
UBoE peer over UDP, or (``--proxy``) a man in the middle between two live endpoints."""
from __future__ import annotations

import signal
import sys

import click

from ubpkt_cli.stack_options import emit_report, fault_options, fault_spec
from ubpkt.errors import UBError
from ubpkt_cli.serve_cmd import _pair


@click.command()
@click.option("--to", "to", default="127.0.0.1:4792", show_default=True,
              help="HOST:PORT of the peer (ubpkt serve, another UB implementation)")
@click.option("--bind", default="127.0.0.1:0", show_default=True,
              help="local HOST:PORT (port 0: any)")
@click.argument("capture", required=False, type=click.Path(dir_okay=False),
                metavar="[FILE.pcap]")
@click.option("--workload",
              help="e.g. write:64KiB*100,read:4KiB,atomic:cas,send:1KiB (or give FILE.pcap)")
@click.option("--proxy", "proxy", is_flag=False, flag_value="127.0.0.1:4793", default=None,
              metavar="LISTEN",
              help="be a man in the middle: take clients on LISTEN (default 127.0.0.1:4793) "
                   "and forward to --to with the faults")
@click.option("--direction", type=click.Choice(["both", "ab", "ba"]), default="both",
              show_default=True,
              help="--proxy: where the faults apply: ab client->peer, ba peer->client")
@click.option("--duration", type=click.FloatRange(0, min_open=True),
              help="--proxy: stop after S seconds")
@click.option("--count", type=click.IntRange(1), help="--proxy: stop after N datagrams in")
@click.option("--upstream-bind", default="127.0.0.1", show_default=True,
              help="--proxy: the address the per-client upstream sockets bind")
@click.option("--dialect", type=click.Choice(["spec", "ns3"]), default="spec",
              show_default=True, help="the wire dialect (ubpkt.profile.PROFILES)")
@click.option("--verify", is_flag=True,
              help="prefill what reads and atomics use, read back what writes and atomics "
                   "changed, report data_verified")
@click.option("--timeout", type=click.FloatRange(0, min_open=True), default=10.0,
              show_default=True, help="seconds for the whole run")
@click.option("--tokenid", default="1", show_default=True, help="the target segment's TokenID")
@click.option("--token", help="TokenValue to send (none by default)")
@click.option("--base", default="0x100000000", show_default=True,
              help="the target segment's base address")
@click.option("--tpn", default="0x10:0x20", show_default=True, help="LOCAL:PEER TPNs")
@click.option("--psn", default="0:0", show_default=True, help="TX:RX initial PSNs")
@click.option("--icrc", type=click.Choice(["check", "ignore"]), default="check",
              show_default=True)
@click.option("--outstanding", type=click.IntRange(1), default=64, show_default=True)
@click.option("--mtu", type=click.IntRange(256, 8192), help="payload bytes per packet")
@click.option("--retrans", type=click.Choice(["gbn", "sr"]), help="RTP retransmission")
@click.option("--window", type=click.IntRange(1, 2048), default=128, show_default=True)
@click.option("--pps", type=click.FloatRange(1), help="datagrams per second at most")
@click.option("--pcap", type=click.Path(dir_okay=False),
              help="write the conversation (frames sent and received) to this pcap")
@fault_options
@click.option("--seed", type=int, default=1, show_default=True)
@click.option("--report", "report_file", type=click.Path(dir_okay=False),
              help="write the JSON report here (default: stdout)")
@click.option("-q", "--quiet", is_flag=True, help="no summary on stderr")
def inject(to, bind, capture, workload, proxy, direction, duration, count, upstream_bind,
           dialect, verify, timeout, tokenid, token, base, tpn, psn, icrc, outstanding, mtu,
           retrans, window, pps, pcap, seed, report_file, quiet, **faults):
    """Run a workload (--workload) or the requests of a capture (FILE.pcap) against a live
    peer over UDP, with faults injected on the send path (JSON report, schema ubpkt.inject/1;
    exit 0 only when everything completed, and with --verify when the data verified).  With
    --proxy: forward between clients and --to with the faults, until Ctrl-C / SIGTERM,
    --duration or --count (schema ubpkt.proxy/1)."""
    from ubpkt.drivers.inject import InjectConfig, run_inject
    from ubpkt.drivers.udp import parse_hostport
    from ubpkt.profile import PROFILES
    from ubpkt.stack.workload import parse_workload
    profile = PROFILES[dialect]
    if proxy is not None:
        if workload or capture or pcap:
            raise click.UsageError("--proxy forwards between live endpoints: no --workload, "
                                   "FILE.pcap or --pcap")
        return _proxy(proxy, to, upstream_bind, direction, duration, count, seed, profile,
                      report_file, quiet, faults)
    if duration is not None or count is not None:
        raise click.UsageError("--duration and --count are --proxy options")
    if bool(workload) == bool(capture):
        raise click.UsageError("give either --workload SPEC or FILE.pcap")
    local_tpn, peer_tpn = _pair(tpn, "LOCAL:PEER")
    tx_psn, rx_psn = _pair(psn, "TX:RX")
    try:
        peer = parse_hostport(to)
        local = parse_hostport(bind, default_port=0)
        if workload:
            parse_workload(workload)
        ints = {}
        for name, v in (("tokenid", tokenid), ("token", token), ("base", base)):
            try:
                ints[name] = None if v is None else int(v, 0)
            except ValueError:
                raise ValueError(f"--{name} {v!r}: not an integer") from None
        spec = fault_spec(faults)
        cfg = InjectConfig(peer=peer, bind=local, workload=workload or "", verify=verify,
                           timeout_s=timeout, faults=spec, seed=seed, base=ints["base"],
                           tokenid=ints["tokenid"], token=ints["token"], local_tpn=local_tpn,
                           peer_tpn=peer_tpn, tx_psn=tx_psn, rx_psn=rx_psn, icrc=icrc,
                           outstanding=outstanding, mtu=mtu, retrans=retrans, window=window,
                           pps=pps, profile=profile, pcap=pcap)
    except ValueError as exc:
        raise click.BadParameter(str(exc))
    try:
        if capture:
            from ubpkt.drivers.inject_capture import run_inject_capture
            report = run_inject_capture(cfg, capture)
        else:
            report = run_inject(cfg)
    except OSError as exc:
        raise click.ClickException(f"{capture or 'socket'}: {exc.strerror or exc}")
    except (ValueError, UBError) as exc:
        raise click.ClickException(str(exc))
    emit_report(report, report_file)
    ok = report["data_verified"] if verify else report["all_completed"]
    if not quiet:
        for w in report["warnings"]:
            click.echo(f"warning: {w}", err=True)
        f = report["faults"]
        tr = report["transport"]
        click.echo(
            f"ubpkt inject -> {report['peer']}: {report['outcome']}, "
            f"{sum(report['completions'].values())}/{report['requests']} completed "
            f"({', '.join(f'{k} {v}' for k, v in report['completions'].items()) or 'none'})"
            + (f", data verified: {'yes' if report['data_verified'] else 'NO'}" if verify
               else "")
            + f"; {tr['packets']} packets, {tr['retransmissions']} retransmitted; faults "
            f"{f['injected']} injected, {f['recovered']} recovered, {f['unrecovered']} "
            f"unrecovered; {report['payload_mb_per_s']} MB/s", err=True)
        for e in report["driver"]["errors"][:5]:
            click.echo(f"  driver: {e}", err=True)
    sys.exit(0 if ok else 1)


def _proxy(listen, to, upstream_bind, direction, duration, count, seed, profile, report_file,
           quiet, faults) -> None:
    """``inject --proxy``: run the man in the middle (ubpkt.drivers.proxy)."""
    from ubpkt.drivers.proxy import DEFAULT_LISTEN, Proxy, ProxyConfig
    from ubpkt.drivers.udp import parse_hostport
    try:
        lst = parse_hostport(listen, DEFAULT_LISTEN[0], DEFAULT_LISTEN[1])
        peer = parse_hostport(to)
        up = parse_hostport(upstream_bind, default_port=0)[0]
        cfg = ProxyConfig(listen=lst, peer=peer, upstream_ip=up, faults=fault_spec(faults),
                          direction=direction, seed=seed, duration_s=duration, count=count,
                          profile=profile)
        px = Proxy(cfg)
    except ValueError as exc:
        raise click.BadParameter(str(exc))
    except OSError as exc:
        raise click.ClickException(f"cannot bind {lst[0]}:{lst[1]}: {exc.strerror or exc}")
    say = (lambda *a: None) if quiet else (lambda m: click.echo(m, err=True))
    say(f"ubpkt inject --proxy: listening on {px.local[0]}:{px.local[1]} (UDP) -> "
        f"{peer[0]}:{peer[1]}, faults {cfg.faults or 'none'} ({direction})")
    old = {}
    for sig in (signal.SIGINT, signal.SIGTERM):
        try:
            old[sig] = signal.signal(sig, lambda *_: px.stop())
        except ValueError:              # not the main thread
            pass
    try:
        report = px.run()
    finally:
        for sig, h in old.items():
            signal.signal(sig, h)
        px.close()
    emit_report(report, report_file)
    f = report["faults"]
    ab, ba = report["directions"]["ab"], report["directions"]["ba"]
    say(f"ubpkt inject --proxy: stopped ({report['stopped_by']}) after {report['wall_s']:.1f} "
        f"s: {len(report['flows'])} clients; client->peer {ab['datagrams_in']} in / "
        f"{ab['datagrams_out']} out, peer->client {ba['datagrams_in']} in / "
        f"{ba['datagrams_out']} out; faults {f['injected']} injected, {f['recovered']} "
        f"recovered, {f['unrecovered']} unrecovered")
    sys.exit(0)
