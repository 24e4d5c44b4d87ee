"""`ubpkt link frame|deframe|show`: the data-link layer (UB 2.0 ch. 4) from the command line."""
from __future__ import annotations

import json
import sys

import click
from rich.console import Console
from ubpkt.record import FLIT_LINKTYPES, LINKTYPE_FLITS

err = Console(stderr=True)

NATIVE = (147, 148)            # captures whose records are network packets from the LPH


#: a flit stream: written as ubpkt.record.LINKTYPE_FLITS (151), read also as 149, the number
#: earlier versions wrote (record.FLIT_LINKTYPES)
FLITS = LINKTYPE_FLITS
FLITS_READ = tuple(sorted(FLIT_LINKTYPES))
_LINK_NAMES = {1: "Ethernet", 101: "raw IP", 113: "Linux cooked", 147: "ns-3-UB",
               148: "UB network packets", 149: "flits (old number)", 151: "flits",
               228: "raw IPv4", 229: "raw IPv6",
               276: "Linux cooked v2", 150: "Linux UB link netdev"}


def _open_capture(path, linktypes=NATIVE, what="a capture of UB network packets (148/147)"):
    """A capture whose link type is one of ``linktypes`` (else a one-line error, exit 2)."""
    from ubpkt.capture import CaptureError, open_capture
    from ubpkt_cli.errors import InputError, input_error
    try:
        cap = open_capture(path)
    except (OSError, CaptureError) as e:
        raise input_error(path, e)
    if cap.linktype not in linktypes:
        cap.close()
        lt = cap.linktype
        raise InputError(f"{path}: link type {lt} ({_LINK_NAMES.get(lt, 'unknown')}), "
                         f"not {what}")
    return cap


def _flit_source(path):
    """Check that ``path`` is a flit stream: a capture of link type 151 (or 149), or a raw file
    of whole 20-byte flits; exit 2 with one line otherwise.  Returns the path."""
    import os
    from ubpkt.dissect.flitstream import _PCAP_MAGICS
    from ubpkt_cli.errors import InputError, input_error
    try:
        with open(path, "rb") as fh:
            head = fh.read(4)
        size = os.path.getsize(path)
    except OSError as e:
        raise input_error(path, e)
    if head in _PCAP_MAGICS:
        _open_capture(path, FLITS_READ, "a flit stream (151, what `ubpkt link frame` writes)"
                      ).close()
    elif head[:2] == b"\x1f\x8b":
        raise InputError(f"{path}: gzip-compressed; decompress it first (gunzip)")
    elif size == 0:
        raise InputError(f"{path}: empty file, not a flit stream")
    elif size % 20:
        raise InputError(f"{path}: neither a pcap/pcapng nor a raw flit stream ({size} bytes "
                         "is not a whole number of 20-byte flits)")
    return path


#: layers of a flit-stream unit's issues that say the flits themselves are wrong (block CRC,
#: block headers, framing), as opposed to the network packet they carry
_FLIT_LAYERS = ("frame", "ub.bcrc", "ub.lbh", "ub.end", "ub.flit", "ub.dll", "ub.lch")


def _flit_errors(issues) -> bool:
    """Whether a flit-stream unit has an error in its flits (not in the packet it carries)."""
    return any(i["severity"] == "error" and i["layer"].startswith(_FLIT_LAYERS) for i in issues)


def _none_decoded(path, units: int, bad: int) -> None:
    """A raw file whose every unit has errors is not a flit stream: exit 2."""
    from ubpkt_cli.errors import InputError
    if units and bad == units:
        raise InputError(f"{path}: none of its {units} flit-stream units decodes without "
                         "errors: not a flit stream (or not this encapsulation: --non-crc?)")


def _writer(path, linktype):
    from ubpkt.capture import PcapWriter
    try:
        return PcapWriter(path, linktype)
    except OSError as e:
        raise click.ClickException(f"cannot write {path}: {e.strerror}")


@click.group()
def link() -> None:
    """Data-link layer: frame network packets into flits, deframe flit streams."""


@link.command()
@click.argument("infile", type=click.Path(dir_okay=False))
@click.option("-o", "--output", required=True, type=click.Path(dir_okay=False),
              help="flit stream: pcap linktype 151, or raw flits with --raw")
@click.option("--non-crc", is_flag=True, help="non-CRC encapsulation (END instead of BCRC)")
@click.option("--raw", is_flag=True, help="write a raw file of whole flits instead of a pcap")
@click.option("--controls", is_flag=True,
              help="run the packets through a DLL engine pair, so the stream carries the real "
                   "control blocks: retry handshake, Init, Crd_Ack, CRD/ACK bits, NOBs")
@click.option("--error-flag", is_flag=True, help="set ERROR_FLAG on every DLLDP")
def frame(infile, output, non_crc, raw, controls, error_flag) -> None:
    """Turn a capture of network packets (linktype 148/147) into a flit stream."""
    from ubpkt.link.bulkframe import frame_capture, frame_packets
    crc_mode = not non_crc
    out = open(output, "wb") if raw else _writer(output, FLITS)

    def put(data, t):
        if raw:
            out.write(data)
            return
        try:
            out.write(data, t)
        except CaptureError as e:        # a record time a classic pcap cannot hold
            out.close()
            raise click.ClickException(f"{infile}: {e}")

    from ubpkt.capture import CaptureError
    with _open_capture(infile) as cap:
        if controls:
            count, skipped = _frame_with_engine(iter(cap), put, crc_mode)
        elif cap.format == "pcap" and not REFERENCE_PATH:
            # classic pcap: 4 MiB of records per compiled call, large writes
            # (ubpkt.link.bulkframe; the same bytes as the loop below)
            write = out.write if raw else out.write_records
            count, skipped = frame_capture(cap, write, put, crc_mode, error_flag=error_flag,
                                           raw=raw)
        else:
            count, skipped = frame_packets(cap, put, crc_mode, error_flag=error_flag,
                                           linktypes=NATIVE)
    out.close()
    err.print(f"{count} packets framed into {output}"
              + (f", {skipped} skipped (not a native UB packet, CFG 0, or size out of range)"
                 if skipped else ""))


def _frame_with_engine(packets, put, crc_mode):
    from ubpkt.link.engine import DLLEngine
    from ubpkt.link.plength import MAX_PACKET
    from ubpkt.profile import SPEC
    prof = SPEC.with_(crc_mode=crc_mode, dll_vl_enable=0xFFFF)
    a, b = DLLEngine(prof, name="tx"), DLLEngine(prof, name="rx")
    tick = 10
    t = 0
    a.link_up(0)
    b.link_up(0)
    pending_ab, pending_ba = [], []

    def step(now):
        nonlocal pending_ab, pending_ba
        da, db = a.transmit(now, 16), b.transmit(now, 16)
        if da:
            put(da, now)
        for data in pending_ab:
            b.receive(data, now)
        for data in pending_ba:
            a.receive(data, now)
        pending_ab, pending_ba = [da] if da else [], [db] if db else []
        a.pop_events()
        b.pop_events()

    for _ in range(10000):
        if a.status_up and b.status_up:
            break
        step(t)
        t += tick
    count = skipped = 0
    for p in packets:
        if p.linktype not in NATIVE or not 5 <= len(p.data) <= MAX_PACKET[crc_mode] \
                or not a.send(p.data, t):
            skipped += 1
            continue
        count += 1
        while a.queued() > 64:
            step(t)
            t += tick
    for _ in range(100000):
        if a.idle() and b.idle():
            break
        step(t)
        t += tick
    return count, skipped


@link.command()
@click.argument("infile", type=click.Path(dir_okay=False))
@click.option("-o", "--output", required=True, type=click.Path(dir_okay=False),
              help="pcap (linktype 148) of the reassembled network packets")
@click.option("--non-crc", is_flag=True, help="the stream uses non-CRC encapsulation")
def deframe(infile, output, non_crc) -> None:
    """Reassemble the DLLDPs of a flit stream (pcap linktype 151 or 149, or raw flits)."""
    from ubpkt.dissect.flitstream import iter_flit_chunks
    from ubpkt.link.fastdeframe import BulkDeframer
    from ubpkt.profile import SPEC
    _flit_source(infile)
    cap = None
    if not REFERENCE_PATH:
        cap = _open_capture(infile, FLITS_READ) if _is_capture(infile) else None
        if cap is not None and cap.format != "pcap":
            cap.close()
            cap = None
    # plain DLLDPs go straight from the flits to pcap records in one compiled walk; every
    # other unit through the reference reader (the same units, ubpkt.link.fastdeframe)
    d = BulkDeframer(not non_crc, covers_info=SPEC.bcrc_covers_info, controls=True)
    n = bad = cbs = units = flit_bad = 0
    body = bytearray()
    with _writer(output, 148) as w:
        last_t = 0

        def emit(done, timed=False):
            nonlocal n, bad, cbs, units, flit_bad, body
            cut = 0                 # body lengths in `done` count from before its first unit
            for item in done:
                u, upto = item[0], item[1]
                w.write_records(body[cut:upto])
                cut = upto
                units += 1
                if u.kind == "packet":
                    t = item[2][0] * 1_000_000_000 + item[2][1] if timed else last_t
                    w.write(u.packet, t)
                    n += 1
                elif u.kind == "control":
                    cbs += 1
                if any(i["severity"] == "error" for i in u.issues):
                    bad += 1
                flit_bad += _flit_errors(u.issues)
            del body[:cut]
            if len(body) >= DEFRAME_BUFFER:
                w.write_records(body)
                body = bytearray()

        if cap is not None:
            # classic pcap: the records' flits a 4 MiB chunk at a time, each unit timed by
            # the record that completed it (ubpkt.link.bulkframe.deframe_capture)
            from ubpkt.link.bulkframe import deframe_capture
            with cap:
                sec, frac = deframe_capture(cap, d, body, lambda done: emit(done, True),
                                            lambda t: _pcap_time(t))
            last_t = sec * 1_000_000_000 + frac
        else:
            for data, t in iter_flit_chunks(infile, DEFRAME_BUFFER):
                last_t = t if t is not None else last_t
                emit(d.feed_pcap(data, body, *_pcap_time(last_t)))
        emit((u, len(body)) for u in d.close())
        w.write_records(body)
    units += d.plain
    n += d.plain
    err.print(f"{n} packets written to {output}; {cbs} control blocks; "
              f"{bad} units with errors")
    _none_decoded(infile, units, flit_bad)


#: bytes read from a raw flit stream at a time, and of pcap records gathered before a write
DEFRAME_BUFFER = 1 << 20
#: True: `link frame` and `link deframe` read a classic pcap record by record, as before the
#: bulk paths (ubpkt.link.bulkframe); the tests compare both ways' output byte for byte
REFERENCE_PATH = False


def _is_capture(path) -> bool:
    from ubpkt.dissect.flitstream import _PCAP_MAGICS
    with open(path, "rb") as fh:
        return fh.read(4) in _PCAP_MAGICS


def _pcap_time(time_ns: int) -> tuple:
    """(seconds, nanoseconds) of a record time as PcapWriter writes it (refusing the same)."""
    from ubpkt.capture.pcap import PCAP_MAX_SECONDS
    sec, rem = divmod(int(time_ns), 1_000_000_000)
    if not 0 <= sec <= PCAP_MAX_SECONDS:
        raise click.ClickException(f"timestamp {int(time_ns)} ns does not fit a classic pcap "
                                   "record")
    return sec, rem


@link.command()
@click.argument("infile", type=click.Path(dir_okay=False))
@click.option("--non-crc", is_flag=True)
@click.option("--json", "as_json", is_flag=True, help="one JSON record per line")
@click.option("-c", "--count", type=int, default=0, help="stop after this many records")
def show(infile, non_crc, as_json, count) -> None:
    """List the blocks of a flit stream: DLLCBs and reassembled DLLDPs with their issues."""
    from ubpkt.dissect.flitstream import decode_flit_stream
    from ubpkt.profile import SPEC
    _flit_source(infile)
    units = bad = 0
    for rec in decode_flit_stream(infile, SPEC, crc_mode=not non_crc):
        units += 1
        bad += _flit_errors(rec["issues"])
        if as_json:
            sys.stdout.write(json.dumps(rec, default=str) + "\n")
        else:
            f = rec["fields"]
            kind = f.get("ub.dll.kind")
            what = f.get("ub.lch.block") if kind == "DLLCB" else (
                f"{f.get('ub.dlldp.blocks', 0)} blocks, cfg {f.get('ub.lph.cfg')}, "
                f"vl {f.get('ub.lph.vl')}" if kind == "DLLDP" else "")
            issues = "; ".join(i["message"] for i in rec["issues"]
                               if i["severity"] != "info")
            click.echo(f"{rec['frame']:6d} flit {f['ub.flit.index']:8d} {kind:11s} "
                       f"{rec['len']:6d}B {what}" + (f"  [{issues}]" if issues else ""))
        if count and rec["frame"] >= count:
            break
    _none_decoded(infile, units, bad)
