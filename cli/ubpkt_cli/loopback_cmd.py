"""`ubpkt loopback`: two reference-stack endpoints over a simulated link (or a veth pair between
two network namespaces, ``--driver veth``), with faults."""
from __future__ import annotations

import signal
import sys

import click

from ubpkt.sim.loopback import OPS, LoopbackConfig, run_loopback
from ubpkt_cli.stack_options import emit_report, fault_options, fault_spec


@click.command()
@click.option("--transport", type=click.Choice(["rtp", "ctp", "utp", "bypass"]), default="rtp",
              show_default=True, help="TP mode (UB 2.0 §6.3; bypass: CFG 9 load/store)")
@click.option("--op", type=click.Choice(OPS), default="write", show_default=True)
@click.option("--size", type=click.IntRange(1, 1 << 24), default=4096, show_default=True,
              help="bytes per work request")
@click.option("--count", type=click.IntRange(1), help="work requests (default 256)")
@click.option("--bytes", "total", type=click.IntRange(1), help="total bytes instead of --count")
@click.option("--mtu", type=click.IntRange(64, 8192), help="payload bytes per packet")
@click.option("--retrans", type=click.Choice(["gbn", "sr"]), help="RTP retransmission")
@click.option("--window", type=click.IntRange(1, (1 << 23) - 1), help="RTP send window")
@click.option("--outstanding", type=click.IntRange(1), default=64, show_default=True,
              help="work requests in flight")
@fault_options
@click.option("--rnr", type=click.FloatRange(0, 1), default=0.0,
              help="probability the target refuses a request packet with RNR")
@click.option("--bad-token", type=click.FloatRange(0, 1), default=0.0,
              help="probability a request carries a wrong token value")
@click.option("--out-of-bounds", type=click.FloatRange(0, 1), default=0.0,
              help="probability a request addresses past the target segment")
@click.option("--direction", type=click.Choice(["both", "ab", "ba"]), default="both",
              show_default=True, help="where the faults apply: A->B (data), B->A, both")
@click.option("--link-delay", default="1us", show_default=True,
              help="one-way propagation delay")
@click.option("--driver", type=click.Choice(["sim", "veth"]), default="sim", show_default=True,
              help="sim: the simulator; veth: raw Ethernet between two network namespaces "
                   "made for the run (root only; rtp/utp)")
@click.option("--timeout", "timeout_s", type=click.FloatRange(0, min_open=True), default=120.0,
              show_default=True, help="--driver veth: give up after this many seconds")
@click.option("--link", "link_mode", type=click.Choice(["ideal", "dll"]), default="ideal",
              show_default=True, help="link fidelity: ideal (frames whole) or dll (native "
              "packets framed into flits, DLL engines with credits and Go-Back-N retry)")
@click.option("--ber", type=click.FloatRange(0, 1, max_open=True), default=0.0,
              help="bit error rate of the flit wires (--link dll; seeded)")
@click.option("--non-crc", is_flag=True, help="DLL non-CRC mode (--link dll): damaged flits "
              "are reported as FEC decoding failures")
@click.option("--link-rate", default=None, help="flit wire rate for --link dll (default "
              "100G; bits/s, e.g. 25G)")
@click.option("--seed", type=int, default=1, show_default=True)
@click.option("--pcap", type=click.Path(dir_okay=False), help="write every frame to this pcap")
@click.option("--report", "report_file", type=click.Path(dir_okay=False),
              help="write the JSON report here (default: stdout)")
@click.option("-q", "--quiet", is_flag=True, help="no live view or summary on stderr")
def loopback(transport, op, size, count, total, mtu, retrans, window, outstanding, rnr,
             bad_token, out_of_bounds, direction, link_delay, driver, timeout_s, link_mode, ber,
             non_crc, link_rate, seed, pcap, report_file, quiet, **faults):
    """Move a workload between two endpoints of the reference stack, inject faults, compare
    memories and report what happened to every fault (JSON, schema ubpkt.loopback/1)."""
    from ubpkt.sim.link import parse_rate, parse_time
    if link_mode != "dll" and (ber or non_crc or link_rate):
        raise click.UsageError("--ber, --non-crc and --link-rate need --link dll")
    if link_mode != "ideal" and driver != "sim":
        raise click.UsageError("--link dll is a simulated link: --driver sim")
    try:
        spec = fault_spec(faults)
        cfg = LoopbackConfig(transport=transport, op=op, size=size, count=count,
                             total_bytes=total, mtu=mtu, retrans=retrans, window=window,
                             outstanding=outstanding, seed=seed, pcap=pcap,
                             delay_ns=parse_time(link_delay), rnr=rnr, bad_token=bad_token,
                             out_of_bounds=out_of_bounds, driver=driver, timeout_s=timeout_s,
                             link=link_mode, ber=ber, crc_mode=not non_crc,
                             rate_bps=parse_rate(link_rate) if link_rate else None)
    except ValueError as exc:
        raise click.BadParameter(str(exc))
    if spec:
        if direction in ("both", "ab"):
            cfg.faults_ab = spec
        if direction in ("both", "ba"):
            cfg.faults_ba = spec
    from rich.console import Console
    err = Console(stderr=True)
    live = not quiet and err.is_terminal
    old = None
    if driver != "sim":         # SIGTERM unwinds like Ctrl-C: the namespaces are removed
        old = signal.signal(signal.SIGTERM, _interrupt)
    try:
        if live:
            report = _run_live(cfg, err)
        else:
            report = run_loopback(cfg)
    except ValueError as exc:
        raise click.ClickException(str(exc))
    except OSError as exc:      # no root, no netns, no AF_PACKET (NetnsError, RawError)
        raise click.ClickException(f"--driver {driver}: {exc.strerror or exc}")
    except KeyboardInterrupt:
        raise click.ClickException("interrupted (namespaces removed)")
    finally:
        if old is not None:
            signal.signal(signal.SIGTERM, old)
    emit_report(report, report_file)
    if not quiet:
        for w in report.get("warnings", ()):
            err.print(f"[yellow]warning:[/] {w}")
        _summary(report, err)
    healthy = report["data_verified"] or (
        transport == "utp" and report["faults"]["unrecovered"] == 0
        and report["faults"]["unattributed"] == 0)
    sys.exit(0 if healthy else 1)


def _interrupt(*_):
    raise KeyboardInterrupt


def _run_live(cfg, err):
    from rich.live import Live
    from rich.table import Table

    def render(p):
        t = Table(title=f"ubpkt loopback: {cfg.transport} {cfg.op}", show_header=False)
        t.add_row("completed", f"{p['completed']} / {p['total']}")
        t.add_row("sim time", f"{p['sim_time_ns'] / 1e6:.3f} ms")
        t.add_row("frames", str(p["frames"]))
        for k, v in sorted(p["engines"].items()):
            if v and any(w in k for w in ("tx_packets", "retrans", "acks", "naks", "sacks",
                                          "duplicates", "rx_packets", "rnr", "timeouts")):
                t.add_row(k, str(v))
        return t

    with Live(console=err, refresh_per_second=5, transient=True) as lv:
        return run_loopback(cfg, progress=lambda p: lv.update(render(p)))


def _summary(report: dict, err) -> None:
    from rich.table import Table
    f = report["faults"]
    t = Table(title="loopback", show_header=False)
    t.add_row("data verified", "[green]yes[/]" if report["data_verified"] else "[red]no[/]")
    t.add_row("completions", ", ".join(f"{k} {v}" for k, v in report["completions"].items()))
    t.add_row("delivered", f"{report['delivered_bytes']} of {report['sent_bytes']} bytes")
    tr = report["transport"]
    t.add_row("packets / retransmitted / acks",
              f"{tr['packets']} / {tr['retransmissions']} / {tr['acks']}")
    t.add_row("faults", f"{f['injected']} injected: {f['recovered']} recovered, "
                        f"{f['benign']} benign, {f['expected_loss']} expected loss, "
                        f"{f['unrecovered']} unrecovered, {f['unattributed']} unattributed")
    ln = report.get("link", {})
    if ln.get("mode") == "dll":
        t.add_row("link (dll)", f"{ln['flits']} flits, {ln['flit_errors']} flit errors, "
                                f"{ln['retries']} retries, {ln['replayed_flits']} flits "
                                f"replayed, {ln['crc_errors']} BCRC / {ln['fec_errors']} FEC "
                                "errors")
    t.add_row("speed", f"{report['payload_mb_per_s']} MB/s of payload (wall clock), "
                       f"{report['sim_time_ns'] / 1e6:.3f} ms "
                       + ("simulated" if report["driver"]["kind"] == "sim" else
                          "on the wall clock over a veth pair"))
    err.print(t)
