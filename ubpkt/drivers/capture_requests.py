"""Work requests from a capture: the transaction requests an initiator sent, read back out of a
pcap/pcapng file (``ubpkt inject --to PEER FILE.pcap``).

Every frame is dissected (:func:`ubpkt.dissect.dissect`, the profile's dialect); a frame is a
request when its transaction header is a BTAH whose TAOpcode is a request this module replays
(UB 2.0 §7.1 Table 7-1): Write, Write_with_immediate, Write_with_notify, Read, Send,
Send_with_immediate and the atomics (Atomic_compare_swap .. Atomic_fetch_xor).  Its
transaction headers are read with the layout the target uses (``grammar.ta_sequence``): the
MAETAH address, length and TokenID, the TVETAH TokenValue, the MTETAH queue, the IMMETAH, the
NTFETAH, the UDETAH sub-operation (UB 2.0 §7.2); the payload is what follows them.  Responses
(TAACK, Read_response, Atomic_response), TP responses, management messages and the other
opcodes are counted and skipped.

A capture may hold retransmissions (``ubpkt loopback --pcap`` with faults): an RTP data packet
whose (channel, PSN) was already seen is skipped (counted
``retransmissions``), and so is a request with BTAH.Retry set (a transaction-level retry, UB 2.0
§7.3.1.1).

Merging (what the capture shows belongs together):

* **Writes** are cut at the MTU, one TASSN per segment, MAETAH.Address advancing, the RTPH/UTPH
  Last flag on the final segment only (UB 2.0 §7.3.1.1, §7.4.2.1.1).  On one channel (source
  IPv4 addresses, or SCNA/DCNA, and the two TPNs: UBoE's UDP source port is flow entropy and may
  change from packet to packet), Write segments with Last 0 are collected while each one starts
  where the previous one ended (same TokenID and TokenValue); the segment with Last 1 that
  continues them ends the request, whose op is that segment's (a Write_with_immediate or
  Write_with_notify's earlier segments are Writes).  A segment that does not continue the run
  ends the run before it as a request of its own; a run still open at the end of the capture
  is one request too (counted ``incomplete``).
* **Sends** use one TASSN for all their packets, OFSTETAH.Offset in 1 KiB units (UB 2.0
  §7.4.3.1): packets of one channel and TASSN are put together at their offsets until the one
  with Last 1.
* A transport without a Last flag (CTP) makes every packet a request of its own.

Order: the requests come out in the order the target executed them, which is PSN order on each
RTP channel (a capture taken on a lossy link holds a retransmission after the packets that
followed the lost one); channels follow one another in the order they first appear (the wire
orders nothing between channels); packets without a PSN stay in capture order.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from ..capture import open_capture
from ..dissect import dissect
from ..formats import HEADERS
from ..formats import enums as E
from ..formats.grammar import TA_REQUEST_HEADERS, resolve, ta_sequence
from ..profile import SPEC, Profile
from ..stack.transaction.ops import OPCODE_OP, OPERAND_ORDER, TaLayout

__all__ = ["CapturedRequest", "CaptureScan", "requests_from_capture", "REPLAYED_OPS"]

#: the ops this module turns into work requests
REPLAYED_OPS = ("write", "write_with_immediate", "write_with_notify", "read", "send",
                "send_with_immediate", "compare_swap", "swap", "atomic_store", "atomic_load",
                "fetch_add", "fetch_sub", "fetch_and", "fetch_or", "fetch_xor")
_WRITE, _SEND = 0x03, 0x00
_PSN_MOD = 1 << 24
_WRITE_LIKE = (0x03, 0x04, 0x05)
_SEND_LIKE = (0x00, 0x01)
_TAH = ("ub.btah", "ub.btah_c")
#: what names a TP channel in a capture: the two addresses and the two TPNs (UBoE's UDP
#: source port is flow entropy, UB 2.0 §5.2.3, and may change from packet to packet)
_CHANNEL_KEYS = ("ip.src", "ip.dst", "ub.cna16.scna", "ub.cna16.dcna", "ub.cna24.scna",
                 "ub.cna24.dcna", "ub.rtph.srctpn", "ub.rtph.dsttpn")


def _bit_in_byte1(name: str) -> int:
    h = HEADERS["ub.btah"]
    pos = h.offsets[h.index[name]]
    return 1 << (7 - (pos - 8))


_TV_BIT, _UD_BIT = _bit_in_byte1("tv_en"), _bit_in_byte1("ud_flag")


@dataclass
class CapturedRequest:
    """One work request read from a capture: ``op`` (a WorkRequest op name), the target
    ``address``, ``length``, ``tokenid``, ``tokenvalue`` (None: no TVETAH), ``payload`` (write
    and send bytes; an atomic's operands), the atomic ``size``, ``operand1``/``operand2``,
    ``subop``, the IMMETAH/MTETAH/NTFETAH values, and the capture frames it came from."""
    op: str
    address: int = 0
    length: int = 0
    tokenid: int = 0
    tokenvalue: int | None = None
    payload: bytes = b""
    size: int = 8
    operand1: int = 0
    operand2: int = 0
    subop: int = 0
    tcid: int = 0
    imm: int = 0
    imm_tokenvalue: int = 0
    notify: dict = field(default_factory=dict)
    order: int = 0
    frames: list = field(default_factory=list)


@dataclass
class CaptureScan:
    """What :func:`requests_from_capture` found."""
    requests: list = field(default_factory=list)
    stats: dict = field(default_factory=lambda: {
        "frames": 0, "request_packets": 0, "requests": 0, "merged_packets": 0,
        "retransmissions": 0, "responses": 0, "not_transaction": 0, "incomplete": 0,
        "skipped_ops": {}})

    def report(self) -> dict:
        ops: dict = {}
        for r in self.requests:
            ops[r.op] = ops.get(r.op, 0) + 1
        return dict(self.stats, operations=ops)


def _tah_offset(fr, tah: str) -> int:
    """The byte offset of layer ``tah`` (the layers before it are fixed-size headers)."""
    off = 0
    for lay in fr.layers:
        if lay == tah:
            return off
        off += HEADERS[lay].size        # KeyError for a variable-size layer: not followed
    raise KeyError(tah)


class _Layouts:
    def __init__(self, profile: Profile):
        self.profile = profile
        self._cache: dict = {}

    def get(self, opcode: int, flags: int, compact: bool) -> TaLayout:
        key = (opcode, flags, compact)
        lay = self._cache.get(key)
        if lay is None:
            seq = ta_sequence(opcode, False, {"tv_en": flags & _TV_BIT,
                                              "ud_flag": flags & _UD_BIT},
                              self.profile, compact)
            lay = self._cache[key] = TaLayout(
                [resolve("ub.btah", self.profile, compact)]
                + [s for s in seq if not s.startswith("@")])
        return lay


def _g(lay: TaLayout, v: int, key: str, default=0):
    return lay.get(v, key) if key in lay else default


def _one(ta: bytes, lay: TaLayout, opcode: int, compact: bool, frame_no: int):
    """(CapturedRequest, TASSN, Retry bit) of one request packet's TA bytes."""
    v = int.from_bytes(ta[:lay.size], "big")
    payload = bytes(ta[lay.size:])
    op = OPCODE_OP[opcode]
    r = CapturedRequest(op, frames=[frame_no])
    if compact:
        r.address = _g(lay, v, "maetah.address")
        r.length = 64 << _g(lay, v, "maetah.len_code") if "maetah.len_code" in lay else 0
    else:
        r.address = _g(lay, v, "maetah.address")
        r.length = _g(lay, v, "maetah.length")
    r.tokenid = _g(lay, v, "maetah.tokenid")
    r.tokenvalue = lay.get(v, "tvetah.tokenvalue") if "tvetah.tokenvalue" in lay else None
    r.order = _g(lay, v, "btah.odr")
    r.tcid = _g(lay, v, "mtetah.tgt_tc_id")
    r.imm = _g(lay, v, "immetah.immediate_data")
    r.imm_tokenvalue = _g(lay, v, "immetah.immediate_tokenvalue")
    if "ntfetah.address" in lay:
        r.notify = {k: lay.get(v, "ntfetah." + k) for k in
                    ("address", "notify_tokenid", "notify_tokenvalue", "notify_data")}
    if opcode in E.ATOMICS:
        size = r.length
        r.size = size
        r.length = size
        r.operand1 = int.from_bytes(payload[:size], OPERAND_ORDER)
        r.operand2 = int.from_bytes(payload[size:2 * size], OPERAND_ORDER)
        r.subop = (_g(lay, v, "udetah.ud") >> 20) & 0xF
        r.payload = payload
    elif op == "read":
        r.payload = b""
    else:
        r.payload = payload
        if opcode in _SEND_LIKE:
            r.length = len(payload)
    tassn = _g(lay, v, "btah.ini_tassn")
    retry = _g(lay, v, "btah.retry")
    offset = _g(lay, v, "ofstetah.offset") * 1024
    return r, tassn, retry, offset


def requests_from_capture(path, profile: Profile = SPEC) -> CaptureScan:
    """The work requests of the capture at ``path`` (module doc).  Raises
    :class:`~ubpkt.errors.CaptureError` for a file that is not a capture; never for a frame."""
    scan = CaptureScan()
    st = scan.stats
    layouts = _Layouts(profile)
    seen_psn: set = set()
    writes: dict = {}           # channel -> list of CapturedRequest (an open run of segments)
    sends: dict = {}            # (channel, tassn) -> [first request, {offset: bytes}]
    out = scan.requests
    packets: list = []          # ((channel order, position, frame), channel, ...) per request
    chan_order: dict = {}
    psn_base: dict = {}

    def flush_writes(ch) -> None:
        run = writes.pop(ch, None)
        if run:
            out.append(_merge(run))
            st["merged_packets"] += len(run) - 1

    cap = open_capture(path)
    try:
        for frame_no, pkt in enumerate(cap, 1):
            st["frames"] += 1
            try:
                fr = dissect(pkt.data, pkt.linktype, profile)
            except Exception:           # dissect never raises; a capture is still outside input
                st["not_transaction"] += 1
                continue
            f = fr.fields
            tah = next((t for t in _TAH if t in fr.layers), None)
            if tah is None:
                if "ub.atah" in fr.layers or "ub.atah_c" in fr.layers or \
                        "ub.atah_ns3" in fr.layers or f.get("ub.rtph.tpopcode") not in (None, 1):
                    st["responses"] += 1
                else:
                    st["not_transaction"] += 1
                continue
            opcode = _first(f.get(tah + ".taopcode"))
            if opcode in E.TA_RESPONSES:
                st["responses"] += 1
                continue
            op = OPCODE_OP.get(opcode)
            if op not in REPLAYED_OPS or opcode not in TA_REQUEST_HEADERS:
                name = E.TAOPCODE.get(opcode, f"{opcode:#x}" if isinstance(opcode, int)
                                      else "?")
                st["skipped_ops"][name] = st["skipped_ops"].get(name, 0) + 1
                continue
            src = tuple(_first(f.get(k)) for k in _CHANNEL_KEYS)
            psn = _first(f.get("ub.rtph.psn"))
            if psn is not None:
                key = (src, psn)
                if key in seen_psn:
                    st["retransmissions"] += 1
                    continue
                seen_psn.add(key)
            compact = tah == "ub.btah_c"
            try:
                start = _tah_offset(fr, tah)
                lay = layouts.get(opcode, pkt.data[start + 1] & (_TV_BIT | _UD_BIT), compact)
                ta = bytes(pkt.data[start:start + lay.size])
                if len(ta) < lay.size:
                    raise ValueError("short")
                ta += bytes.fromhex(_first(f.get("data.data")) or "")
                req, tassn, retry, offset = _one(ta, lay, opcode, compact, frame_no)
            except Exception:       # a layout this reader does not follow: not replayed
                st["not_transaction"] += 1
                continue
            if retry:
                st["retransmissions"] += 1
                continue
            st["request_packets"] += 1
            last = _first(f.get("ub.rtph.last", f.get("ub.utph.last")))
            order = chan_order.setdefault(src, len(chan_order))
            if psn is None:
                pos = frame_no
            else:
                base = psn_base.setdefault(src, psn)
                pos = (psn - base) % _PSN_MOD
                pos -= _PSN_MOD if pos >= _PSN_MOD // 2 else 0
            packets.append(((order, pos, frame_no), src, opcode, req, tassn, offset, last))
    finally:
        cap.close()
    # the order the target executed them: PSN order on each channel (a capture taken on a
    # lossy link holds a retransmission after the packets that followed the lost one)
    packets.sort(key=lambda p: p[0])
    for _key, src, opcode, req, tassn, offset, last in packets:
        frame_no = req.frames[0]
        if opcode in _WRITE_LIKE:
            run = writes.get(src)
            if run and not _continues(run[-1], req):
                flush_writes(src)
                run = None
            if last == 0 and opcode == _WRITE:
                writes.setdefault(src, []).append(req)
                continue
            if run:
                run.append(req)
                flush_writes(src)
            else:
                out.append(req)
            continue
        if opcode in _SEND_LIKE and last is not None:
            key = (src, tassn)
            m = sends.get(key)
            if m is None:
                m = sends[key] = [req, {}]
            else:
                st["merged_packets"] += 1
                m[0].frames.append(frame_no)
                if opcode != _SEND:         # the final packet's op and IMMETAH
                    m[0].op, m[0].imm = req.op, req.imm
                    m[0].imm_tokenvalue = req.imm_tokenvalue
            m[1][offset] = req.payload
            if last:
                out.append(_message(*sends.pop(key)))
            continue
        out.append(req)
    for ch in list(writes):
        st["incomplete"] += 1
        flush_writes(ch)
    for m in sends.values():
        st["incomplete"] += 1
        out.append(_message(*m))
    st["requests"] = len(out)
    return scan


def _first(v):
    return v[0] if isinstance(v, list) else v


def _continues(prev: CapturedRequest, nxt: CapturedRequest) -> bool:
    return (prev.op == "write" and nxt.address == prev.address + prev.length
            and nxt.tokenid == prev.tokenid and nxt.tokenvalue == prev.tokenvalue)


def _merge(run: list) -> CapturedRequest:
    head, last = run[0], run[-1]
    payload = b"".join(r.payload for r in run)
    r = CapturedRequest(last.op, head.address, len(payload), head.tokenid, head.tokenvalue,
                        payload, tcid=last.tcid, imm=last.imm,
                        imm_tokenvalue=last.imm_tokenvalue, notify=last.notify,
                        order=head.order, frames=[n for x in run for n in x.frames])
    return r


def _message(first: CapturedRequest, parts: dict) -> CapturedRequest:
    buf = bytearray()
    for off in sorted(parts):
        if len(buf) < off:
            buf.extend(bytes(off - len(buf)))
        buf[off:off + len(parts[off])] = parts[off]
    first.payload = bytes(buf)
    first.length = len(buf)
    return first
