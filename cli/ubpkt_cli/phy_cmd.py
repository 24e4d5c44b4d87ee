"""`ubpkt phy tx|rx|train` and `ubpkt fuzz`: the physical layer from the command line."""
from __future__ import annotations

import json
import sys
import time

import click
import numpy as np
from rich.console import Console

err = Console(stderr=True, soft_wrap=True)

FEC_CHOICES = ["bypass", "rs-t2", "rs-t4"]
PCAP_MAGICS = {b"\xd4\xc3\xb2\xa1", b"\xa1\xb2\xc3\xd4", b"\x4d\x3c\xb2\xa1", b"\xa1\xb2\x3c\x4d",
               b"\x0a\x0d\x0d\x0a"}


def _emit(report: dict, path: str | None) -> None:
    """The JSON report, streamed (a fuzz log can list millions of changes: it is never built
    as one string)."""
    if path:
        try:
            with open(path, "w") as fh:
                json.dump(report, fh, indent=2, sort_keys=False)
                fh.write("\n")
        except OSError as e:
            raise click.ClickException(f"cannot write report {path}: {e.strerror}")
        err.print(f"report written to {path}")
    else:
        json.dump(report, sys.stdout, indent=2, sort_keys=False)
        sys.stdout.write("\n")


def _read(path: str) -> bytes:
    from ubpkt_cli.errors import input_error
    try:
        with open(path, "rb") as fh:
            return fh.read()
    except OSError as e:
        raise input_error(path, e)


def _flit_bytes(path: str, data: bytes) -> bytes:
    """The flits of ``data``: a raw stream of whole 20-byte flits, or a capture of link type 151
    (what ``ubpkt link frame`` writes by default; 149, the number earlier versions wrote, is
    read too) whose records are joined."""
    from ubpkt.record import FLIT_LINKTYPES, LINKTYPE_FLITS
    from ubpkt_cli.errors import InputError, input_error
    if data[:4] not in PCAP_MAGICS:
        if len(data) % 20:
            raise InputError(f"{path}: {len(data)} bytes is not a whole number of 20-byte flits")
        return data
    from ubpkt.capture import CaptureError, open_capture
    try:
        with open_capture(path) as cap:
            if cap.linktype not in FLIT_LINKTYPES:
                raise InputError(f"{path}: a capture of link type {cap.linktype}, not a flit "
                                 f"stream ({LINKTYPE_FLITS})")
            out = b"".join(p.data for p in cap if p.linktype in FLIT_LINKTYPES)
            if cap.problem_count:
                raise InputError(f"{path}: damaged capture: {cap.problems[0]}")
    except (OSError, CaptureError) as e:
        raise input_error(path, e)
    if len(out) % 20:
        raise InputError(f"{path}: its records hold {len(out)} bytes, not whole 20-byte flits")
    return out


def _write(path: str, data: bytes) -> None:
    try:
        with open(path, "wb") as fh:
            fh.write(data)
    except OSError as e:
        raise click.ClickException(f"cannot write {path}: {e.strerror}")


def _save_lanes(path: str, lanes: list[np.ndarray], settings: dict, lane_format: str = "packed",
                rate: float | None = None) -> int:
    """Write a lane file (:mod:`ubpkt.phy.lanefile`): ``packed`` (ubpkt-lanes-2) or ``npz``
    (the former format); the bytes written."""
    from ubpkt.phy.lanefile import LaneFileError, write_lanes
    try:
        return write_lanes(path, lanes, settings, lane_format, rate)
    except OSError as e:
        raise click.ClickException(f"cannot write {path}: {e.strerror}")
    except LaneFileError as e:
        raise click.ClickException(f"cannot write {path}: {e}")


def _load_lanes(path: str) -> tuple[list[np.ndarray], dict]:
    """A lane file written by `phy tx`, packed (ubpkt-lanes-2) or the former .npz, told apart
    by its content; anything else is a one-line error (exit 2), never numpy's advice about
    pickles."""
    from ubpkt.phy.lanefile import LaneFileError, read_lanes
    from ubpkt_cli.errors import InputError, input_error
    try:
        return read_lanes(path)
    except LaneFileError as e:
        raise InputError(str(e))
    except OSError as e:
        raise input_error(path, e)


@click.group()
def phy() -> None:
    """Physical layer: lane symbol streams, FEC, AMCTL lock, link training."""


@phy.command("tx")
@click.argument("flits", type=click.Path(dir_okay=False))
@click.option("-o", "--output", required=True, type=click.Path(dir_okay=False),
              help="lane file to write (ubpkt-lanes-2, bit-packed; see --lane-format)")
@click.option("--lanes", type=click.Choice(["1", "2", "4", "8"]), default="1", show_default=True)
@click.option("--fec", type=click.Choice(FEC_CHOICES), default="rs-t4", show_default=True)
@click.option("--interleave", type=click.Choice(["1", "2"]), default="1", show_default=True)
@click.option("--modulation", type=click.Choice(["nrz", "pam4"]), default="nrz",
              show_default=True)
@click.option("--amctl-period", type=click.IntRange(16, 1 << 24), default=None,
              help="symbols per lane between AMCTLs (default: profile Period0 = 6656)")
@click.option("--lane-format", type=click.Choice(["packed", "npz"]), default="packed",
              show_default=True,
              help="packed: ubpkt-lanes-2, 1 or 2 bits per UI; npz: the former one byte per UI")
@click.option("--rate", type=click.FloatRange(0, 1000, min_open=True), default=None,
              help="lane data rate in Gbit/s recorded in the file header (e.g. 53.125)")
@click.option("--report", type=click.Path(dir_okay=False), default=None,
              help="write a JSON report (counts, file size) here")
def tx_cmd(flits, output, lanes, fec, interleave, modulation, amctl_period, lane_format, rate,
           report):
    """Turn a flit stream (whole 20-byte flits, raw or the linktype-151 pcap `link frame`
    writes) into per-lane UI streams."""
    from ubpkt.phy.pcs import TxConfig, tx
    from ubpkt.phy.profile import DEFAULT_PROFILE
    data = _flit_bytes(flits, _read(flits))
    cfg = TxConfig(int(lanes), fec, int(interleave), modulation, amctl_period)
    t0 = time.perf_counter()
    lane_uis, stats = tx(data, cfg)
    dt = time.perf_counter() - t0
    size = _save_lanes(output, lane_uis, cfg.settings(DEFAULT_PROFILE), lane_format, rate)
    err.print(f"{stats['flits_in']} flits -> {len(lane_uis)} lane(s) x {lane_uis[0].size} UI "
              f"({stats['null_blocks_added']} Null Blocks added) in {dt:.3f} s; "
              f"{size} bytes written ({lane_format})")
    if report:
        from ubpkt.phy.lanefile import FORMAT, LEGACY_FORMAT
        _emit(dict(stats, output=output, file_bytes=size, seconds=round(dt, 6),
                   lane_format=FORMAT if lane_format == "packed" else LEGACY_FORMAT,
                   ui_per_lane=int(lane_uis[0].size), **cfg.settings(DEFAULT_PROFILE)), report)


@phy.command("rx")
@click.argument("lanes_file", metavar="LANES", type=click.Path(dir_okay=False))
@click.option("-o", "--output", required=True, type=click.Path(dir_okay=False),
              help="flit stream to write")
@click.option("--report", type=click.Path(dir_okay=False), default=None,
              help="write the JSON report here instead of stdout")
@click.option("--fec", type=click.Choice(FEC_CHOICES), default=None,
              help="override the FEC mode stored in the lane file")
@click.option("--interleave", type=click.Choice(["1", "2"]), default=None)
@click.option("--modulation", type=click.Choice(["nrz", "pam4"]), default=None)
@click.option("--amctl-period", type=click.IntRange(16, 1 << 24), default=None)
def rx_cmd(lanes_file, output, report, fec, interleave, modulation, amctl_period):
    """Lock, deskew, descramble, decode a lane file back into flits (Null Blocks dropped)."""
    from ubpkt.phy.pcs import TxConfig, rx
    from ubpkt.phy.lanefile import infer_modulation
    lanes, st = _load_lanes(lanes_file)
    mod = modulation or st.get("modulation") or infer_modulation(lanes)
    try:
        cfg = TxConfig(len(lanes), fec or st.get("fec", "rs-t4"),
                       int(interleave or st.get("interleave", 1)), str(mod),
                       int(amctl_period or st.get("amctl_period") or 6656))
        cfg.validate()
    except (ValueError, TypeError) as e:
        raise click.ClickException(f"{lanes_file}: bad settings ({e})")
    sizes = [int(u.size) for u in lanes]
    if len(set(sizes)) > 1:
        err.print(f"warning: {lanes_file}: lanes of unequal length ({', '.join(map(str, sizes))} "
                  f"UI); the lanes are decoded together up to the shortest after deskew, "
                  f"{sum(sizes) - min(sizes) * len(sizes)} UI beyond it are not decoded")
    t0 = time.perf_counter()
    try:
        res = rx(lanes, cfg)
    except ValueError as e:
        raise click.ClickException(str(e))
    dt = time.perf_counter() - t0
    _write(output, res.flits)
    rep = dict(res.report)
    rep["seconds"] = round(dt, 6)
    rep["lane_lengths_ui"] = sizes
    rep["ui_beyond_shortest_lane"] = sum(sizes) - min(sizes) * len(sizes)
    rep["lane_file_format"] = st.get("format")
    err.print(f"{rep['flits']} flits, {rep['codewords']} codewords, "
              f"{rep['corrected_symbols']} symbols corrected, "
              f"{rep['uncorrectable_codewords']} uncorrectable, lanes locked: "
              f"{rep['lanes_locked']}")
    _emit(rep, report)
    if rep.get("error"):
        raise click.ClickException(rep["error"])


@phy.command("train")
@click.option("--lanes", type=click.Choice(["1", "2", "4", "8"]), default="8", show_default=True)
@click.option("--fail-lane", type=int, default=None,
              help="break this lane in both directions once the link is active")
@click.option("--fec", type=click.Choice(FEC_CHOICES), default="rs-t4", show_default=True,
              help="FEC mode the ports prefer (negotiated against what both support)")
@click.option("--interleave/--no-interleave", default=False, show_default=True)
@click.option("--reverse/--no-reverse", default=False, help="cross the lanes (lane reversal)")
@click.option("--invert", type=str, default="", help="comma list of lanes with swapped polarity")
@click.option("--max-rate", type=click.IntRange(0, 8), default=0, show_default=True,
              help="highest data-rate index both ends support (DRn); >0 exercises Change_Speed")
@click.option("--eq", type=click.Choice(["skip", "highest", "full"]), default="skip",
              show_default=True)
@click.option("--fec-toggle/--no-fec-toggle", default=False,
              help="once active, close then reopen FEC dynamically via AMCTL")
@click.option("--seed", type=int, default=1, show_default=True)
@click.option("--report", type=click.Path(dir_okay=False), default=None)
def train_cmd(lanes, fail_lane, fec, interleave, reverse, invert, max_rate, eq, fec_toggle, seed,
              report):
    """Bring two LMSM ends up against each other over a simulated channel."""
    from ubpkt.phy.lmsm import LinkSim, PortConfig
    n = int(lanes)
    if fail_lane is not None and not 0 <= fail_lane < n:
        raise click.BadParameter(f"must be a lane of the x{n} link (0..{n - 1})",
                                 param_hint="--fail-lane")
    try:
        inv = {int(x) for x in invert.split(",") if x.strip()}
    except ValueError:
        raise click.BadParameter("must be a comma-separated list of lane numbers",
                                 param_hint="--invert")
    if any(not 0 <= x < n for x in inv):
        raise click.BadParameter(f"lanes must be in 0..{n - 1}", param_hint="--invert")
    cfg = PortConfig(lanes=n, fec=fec, interleave=interleave, max_rate=max_rate,
                     eq_mode={"full": 0, "highest": 1, "skip": 2}[eq])
    sim = LinkSim(cfg, cfg, seed=seed, reverse=reverse, invert=inv)
    rep = sim.run(fail_lane=fail_lane, fec_toggle=fec_toggle)
    err.print(f"final state {rep['final_state']}: tx x{rep['tx_width']} rx x{rep['rx_width']} "
              f"fec {rep['fec_mode']} after {rep['ticks']} LTB times")
    _emit(rep, report)


def _kind(data: bytes) -> str:
    if data[:4] in PCAP_MAGICS or data[:2] == b"\x1f\x8b":   # plain or gzip-compressed
        return "pcap"
    from ubpkt.phy.lanefile import detect
    if detect(data[:8]):
        return "lanes"
    return "flits"


def _finite(ctx, param, value):
    """click's FloatRange lets NaN through (every comparison with NaN is false)."""
    if value is not None and value != value:
        raise click.BadParameter("must be a number between 0 and 1, not NaN")
    return value


def _fuzz_capture(input_file, output, ber, burst, seed, rep):
    """A pcap or pcapng fuzzed record by record: the output keeps the input's format, every
    interface's link type and time resolution, and each packet's interface."""
    from ubpkt.capture import CaptureError, PcapWriter, PcapngWriter, open_capture
    from ubpkt.phy import fuzz as fz
    from ubpkt_cli.errors import input_error, report_problems
    try:
        with open_capture(input_file) as cap:
            recs = [(p.time_ns, p.data, p.orig_len, p.iface) for p in cap]
            fmt, interfaces, nano = cap.format, list(cap.interfaces), getattr(cap, "_nano", True)
            problems, count = list(cap.problems), cap.problem_count
    except (OSError, CaptureError) as e:
        raise input_error(input_file, e)
    if problems:
        report_problems(input_file, problems, count)
        raise input_error(input_file, CaptureError("damaged capture: not fuzzed"))
    new, changes = fz.fuzz_records([r[1] for r in recs], ber, burst, seed)
    try:
        if fmt == "pcapng":
            w = PcapngWriter(output, interfaces)
        else:
            w = PcapWriter(output, interfaces[0].linktype, nanosecond=nano,
                           snaplen=interfaces[0].snaplen)
        with w:
            for (t, _, ol, iface), d in zip(recs, new):
                if fmt == "pcapng":
                    w.write(d, t, ol, iface)
                else:
                    w.write(d, t, ol)
    except OSError as e:
        raise click.ClickException(f"cannot write {output}: {e.strerror}")
    except CaptureError as e:
        raise click.ClickException(f"cannot write {output}: {e}")
    rep["format"] = fmt
    rep["linktypes"] = [i.linktype for i in interfaces]
    rep["units"] = int(sum(len(r[1]) * 8 for r in recs))
    rep["unit"] = "bit"
    rep["records"] = len(recs)
    return changes


@click.command("fuzz")
@click.argument("input_file", metavar="INPUT", type=click.Path(dir_okay=False))
@click.option("-o", "--output", required=True, type=click.Path(dir_okay=False))
@click.option("--ber", type=click.FloatRange(0.0, 1.0), required=True, callback=_finite,
              help="probability that a UI (lane file) or bit (flits, pcap) starts an error")
@click.option("--burst", type=click.IntRange(1, 1 << 20), default=1, show_default=True,
              help="units corrupted per error event (memory does not grow with it)")
@click.option("--seed", type=click.IntRange(min=0), default=None,
              help="seed of the error positions (a non-negative integer)")
@click.option("--report", type=click.Path(dir_okay=False), default=None)
def fuzz(input_file, output, ber, burst, seed, report):
    """Inject bit errors into a lane file (packed or .npz), a flit stream or a pcap, and log
    each one."""
    from ubpkt.phy import fuzz as fz
    data = _read(input_file)
    kind = _kind(data)
    rep = {"input": input_file, "output": output, "kind": kind, "ber": ber, "burst": burst,
           "seed": seed}
    if kind == "lanes":
        from ubpkt.phy.lanefile import LEGACY_FORMAT, infer_modulation
        lanes, st = _load_lanes(input_file)
        mod = st.get("modulation") or infer_modulation(lanes)
        new, changes = fz.fuzz_lanes(lanes, str(mod), ber, burst, seed)
        # the output keeps the input's lane file format (as a fuzzed pcap keeps its own)
        legacy = st.get("format") == LEGACY_FORMAT
        _save_lanes(output, new, dict(st, modulation=str(mod)), "npz" if legacy else "packed",
                    st.get("rate_gbps"))
        rep["lane_file_format"] = st.get("format")
        rep["units"] = int(sum(u.size for u in lanes))
        rep["unit"] = "ui"
    elif kind == "pcap":
        changes = _fuzz_capture(input_file, output, ber, burst, seed, rep)
    else:
        if len(data) % 20:
            raise click.ClickException(f"{input_file}: not a lane file, pcap or whole 20-byte "
                                       "flit stream")
        new, changes = fz.fuzz_flits(data, ber, burst, seed)
        _write(output, new)
        rep["units"] = len(data) * 8
        rep["unit"] = "bit"
    rep["changed"] = len(changes)
    rep["changes"] = changes
    err.print(f"{kind}: {len(changes)} unit(s) changed")
    _emit(rep, report)
