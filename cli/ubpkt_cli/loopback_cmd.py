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
@click.option("--link", "link_mode", type=click.Choice(["ideal", "dll", "phy"]),
              default="ideal", show_default=True, help="link fidelity: ideal (frames whole), "
              "dll (native packets framed into flits, DLL engines with credits and Go-Back-N "
              "retry) or phy (the DLL over the PCS: lanes, RS-FEC, the LMSM)")
@click.option("--ber", type=click.FloatRange(0, 1, max_open=True), default=0.0,
              help="bit error rate: of the flit wires (--link dll) or of every lane, as symbol "
                   "errors (--link phy); seeded")
@click.option("--non-crc", is_flag=True, help="DLL non-CRC mode (--link dll/phy): damaged "
              "flits are reported as FEC decoding failures")
@click.option("--link-rate", default=None, help="flit wire rate for --link dll (default "
              "100G; bits/s, e.g. 25G)")
@click.option("--lanes", type=click.Choice(["1", "2", "4", "8"]), default=None,
              help="--link phy: lanes (default 4)")
@click.option("--fec", type=click.Choice(["rs-t2", "rs-t4", "bypass"]), default=None,
              help="--link phy: RS(128,120) correcting 2 or 4 symbols, or no FEC "
                   "(default rs-t4)")
@click.option("--fail-lane", "fail_lanes", multiple=True, metavar="N@T",
              help="--link phy: lane N fails at T, a simulated time (2ms, 30us) or a share "
                   "of the transfer (50%: from DLL_Normal, payload at the full-width rate); "
                   "repeatable")
@click.option("--restore-lane", "restore_lanes", multiple=True, metavar="N@T",
              help="--link phy: lane N works again at T (QDLWS width increase); repeatable")
@click.option("--lane-burst", "bursts", multiple=True, metavar="N@T[:S]",
              help="--link phy: S random symbols (default 8) on lane N at T; repeatable")
@click.option("--slot-flits", type=click.IntRange(1, 1 << 16), default=None,
              help="--link dll/phy: flits each DLL engine may send per slot (simulation "
                   "granularity; default 32 dll, 768 phy)")
@click.option("--plot", "plot_file", type=click.Path(dir_okay=False),
              help="--link phy: draw throughput, retries and link width over simulated time "
                   "into this PNG (needs matplotlib: pip install 'ubpkt[plot]')")
@click.option("--seed", type=int, default=1, show_default=True)
@click.option("--pcap", type=click.Path(dir_okay=False), help="write every frame to this pcap")
@click.option("--report", "report_file", type=click.Path(dir_okay=False),
              help="write the JSON report here (default: stdout)")
@click.option("-q", "--quiet", is_flag=True, help="no live view or summary on stderr")
def loopback(transport, op, size, count, total, mtu, retrans, window, outstanding, rnr,
             bad_token, out_of_bounds, direction, link_delay, driver, timeout_s, link_mode, ber,
             non_crc, link_rate, lanes, fec, fail_lanes, restore_lanes, bursts, slot_flits,
             plot_file, seed, pcap, report_file, quiet, **faults):
    """Move a workload between two endpoints of the reference stack, inject faults, compare
    memories and report what happened to every fault (JSON, schema ubpkt.loopback/1)."""
    from ubpkt.sim.link import parse_rate, parse_time
    if link_mode == "ideal" and (ber or non_crc or link_rate or slot_flits):
        raise click.UsageError("--ber, --non-crc, --link-rate and --slot-flits need --link dll "
                               "or --link phy")
    if link_mode != "dll" and link_rate:
        raise click.UsageError("--link-rate is for --link dll (the PHY's rate is its lanes')")
    if link_mode != "phy" and (lanes or fec or fail_lanes or restore_lanes or bursts
                               or plot_file):
        raise click.UsageError("--lanes, --fec, --fail-lane, --restore-lane, --lane-burst and "
                               "--plot need --link phy")
    if link_mode != "ideal" and driver != "sim":
        raise click.UsageError(f"--link {link_mode} is a simulated link: --driver sim")
    lanes = int(lanes or 4)
    fec = fec or "rs-t4"
    if link_mode == "phy":
        _check_phy_options(lanes, fec, non_crc, fail_lanes, restore_lanes, bursts)
    if plot_file:
        from ubpkt.sim.plot import PlotUnavailable, require_matplotlib
        try:
            require_matplotlib()
        except PlotUnavailable as exc:
            raise click.ClickException(str(exc))
    try:
        spec = fault_spec(faults)
        cfg = LoopbackConfig(transport=transport, op=op, size=size, count=count,
                             total_bytes=total, mtu=mtu, retrans=retrans, window=window,
                             outstanding=outstanding, seed=seed, pcap=pcap,
                             delay_ns=parse_time(link_delay), rnr=rnr, bad_token=bad_token,
                             out_of_bounds=out_of_bounds, driver=driver, timeout_s=timeout_s,
                             link=link_mode, ber=ber, crc_mode=not non_crc,
                             rate_bps=parse_rate(link_rate) if link_rate else None,
                             lanes=lanes, fec=fec, fail_lanes=tuple(fail_lanes),
                             restore_lanes=tuple(restore_lanes), bursts=tuple(bursts),
                             slot_flits=slot_flits)
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
    if plot_file:
        from ubpkt.sim.plot import plot_link
        try:
            plot_link(report, plot_file)
        except (ValueError, OSError) as exc:
            raise click.ClickException(f"--plot: {exc}")
    if not quiet:
        for w in report.get("warnings", ()):
            err.print(f"[yellow]warning:[/] {w}")
        _summary(report, err)
    healthy = report["data_verified"] or (
        transport == "utp" and report["faults"]["unrecovered"] == 0
        and report["faults"]["unattributed"] == 0)
    sys.exit(0 if healthy else 1)


def _check_phy_options(lanes, fec, non_crc, fail_lanes, restore_lanes, bursts) -> None:
    """Bad --link phy arguments are usage errors (exit 2), found before anything runs."""
    from ubpkt.sim.phy_link import parse_burst, parse_lane_event
    if non_crc and fec == "bypass":
        raise click.UsageError("--non-crc needs the FEC (UB 2.0 §4.3.2.3): --fec rs-t2/rs-t4")
    try:
        events = [parse_lane_event("fail", t) for t in fail_lanes]
        events += [parse_lane_event("restore", t) for t in restore_lanes]
        events += [parse_burst(b)[0] for b in bursts]
    except ValueError as exc:
        raise click.UsageError(str(exc))
    for ev in events:
        if not 0 <= ev.lane < lanes:
            raise click.UsageError(f"lane {ev.lane}: the link has lanes 0..{lanes - 1}")


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
    if ln.get("mode") == "phy":
        ph = report.get("phy", {})
        t.add_row("phy", f"x{ph.get('lanes')} {ph.get('fec')}: {ph.get('corrected_symbols')} "
                         f"symbols corrected, {ph.get('uncorrectable_codewords')} codewords "
                         f"uncorrectable, {ph.get('retrains')} retrains")
        widths = ", ".join(f"{c['direction']} x{c['from']}->x{c['to']} at "
                           f"{c['at_ns'] / 1e3:.1f} us" for c in ln["width_changes"])
        t.add_row("link (phy)", f"{ln['flits']} flits, {ln['retries']} retries, "
                                f"{ln['replayed_flits']} flits replayed"
                                + (f"; width {widths}" if widths else ""))
    t.add_row("speed", f"{report['payload_mb_per_s']} MB/s of payload (wall clock), "
                       f"{report['sim_time_ns'] / 1e6:.3f} ms "
                       + ("simulated" if report["driver"]["kind"] == "sim" else
                          "on the wall clock over a veth pair"))
    err.print(t)
