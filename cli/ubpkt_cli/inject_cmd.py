"""`ubpkt inject`: an initiator running a workload against a live UBoE peer over UDP."""
from __future__ import annotations

import sys

import click

from ubpkt_cli.stack_options import emit_report, fault_options, fault_spec
from ubpkt_cli.serve_cmd import _pair


@click.command()
@click.option("--to", "to", default="127.0.0.1:4792", show_default=True,
              help="HOST:PORT of the peer (ubpkt serve, another UB implementation)")
@click.option("--bind", default="127.0.0.1:0", show_default=True,
              help="local HOST:PORT (port 0: any)")
@click.option("--workload", required=True,
              help="e.g. write:64KiB*100,read:4KiB,atomic:cas,send:1KiB")
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
def inject(to, bind, workload, verify, timeout, tokenid, token, base, tpn, psn, icrc,
           outstanding, mtu, retrans, window, pps, pcap, seed, report_file, quiet, **faults):
    """Run a workload against a live peer over UDP, with faults injected on the send path
    (JSON report, schema ubpkt.inject/1; exit 0 only when everything completed, and with
    --verify when the data verified)."""
    from ubpkt.drivers.inject import InjectConfig, run_inject
    from ubpkt.drivers.udp import parse_hostport
    from ubpkt.stack.workload import parse_workload
    local_tpn, peer_tpn = _pair(tpn, "LOCAL:PEER")
    tx_psn, rx_psn = _pair(psn, "TX:RX")
    try:
        peer = parse_hostport(to)
        local = parse_hostport(bind, default_port=0)
        parse_workload(workload)
        ints = {}
        for name, v in (("tokenid", tokenid), ("token", token), ("base", base)):
            try:
                ints[name] = None if v is None else int(v, 0)
            except ValueError:
                raise ValueError(f"--{name} {v!r}: not an integer") from None
        spec = fault_spec(faults)
        cfg = InjectConfig(peer=peer, bind=local, workload=workload, verify=verify,
                           timeout_s=timeout, faults=spec, seed=seed, base=ints["base"],
                           tokenid=ints["tokenid"], token=ints["token"], local_tpn=local_tpn,
                           peer_tpn=peer_tpn, tx_psn=tx_psn, rx_psn=rx_psn, icrc=icrc,
                           outstanding=outstanding, mtu=mtu, retrans=retrans, window=window,
                           pps=pps, pcap=pcap)
    except ValueError as exc:
        raise click.BadParameter(str(exc))
    try:
        report = run_inject(cfg)
    except OSError as exc:
        raise click.ClickException(f"socket: {exc.strerror or exc}")
    except ValueError as exc:
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
