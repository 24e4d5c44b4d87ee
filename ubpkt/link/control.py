"""DLL control blocks (DLLCBs): build and read every type (UB 2.0 §4.3.3).

Layouts come from ``ubpkt.formats.link`` (LCH, LCH_CRD_ACK, LCH_BLOCK_MODE, the bodies); the
builders only place them in flits and fill the tail (BCRC in CRC mode, END in non-CRC mode) and
return whole flits (bytes).

:func:`read_control` is the one DLLCB reader: the capture decoder (``ubpkt.dissect``), the
flit-stream :class:`~ubpkt.link.framing.Deframer` and the DLL engine all use it, so a control
block gives the same layers, fields and issues (record vocabulary, :mod:`ubpkt.record`) wherever
it is found; :class:`ControlBlock` adds what the engine acts on (``kind``, ``values``).  It
never raises.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from ..formats import HEADERS as H
from ..formats import enums as E
from ..formats.core import Header
from ..formats.reader import HeaderReader
from ..record import ERROR, INFO, WARNING
from .blocks import FLIT, seal
from .crc30 import block_crc, native

__all__ = ["KINDS", "PRIORITY", "ControlBlock", "InitParams", "Negotiated", "build", "null",
           "nob", "retry_idle", "retry_req", "retry_ack", "retry_req_set", "retry_ack_set",
           "crd_ack", "crd_ack_values", "retry_values", "param_exchg", "neighbor_advert",
           "parse_neighbor_advert", "lane_manage",
           "block_mode_chg", "read_control", "parse_control", "negotiate", "grain_bitmap",
           "RETRY_SET_LEN", "CRD_LCH"]


#: Allowed flit counts per DLLCB type (UB 2.0 §4.3.3.2-9).
_FLITS = {"Null": (1, 1), "NOB": (1, 1), "Retry_Idle": (1, 1), "Retry_Req": (1, 1),
          "Retry_Ack": (1, 1), "Crd_Ack": (2, 2), "Param_Exchg": (1, 32), "Lane_Manage": (1, 1),
          "Block_Mode_Chg": (1, 1), "Init": (5, 32)}
#: name -> (CTRL, SUB_CTRL, allowed flit counts); the codes are the declared ones
#: (``ubpkt.formats.enums.DLLCB_TYPES``, UB 2.0 Table 4-6).
KINDS = {k: (c, s, _FLITS[k]) for (c, s), k in E.DLLCB_TYPES.items()}
_BY_CODE = dict(E.DLLCB_TYPES)

#: Recommended transmit priority, highest first (UB 2.0 §4.3.3.1 example); the engine's
#: scheduler uses these ranks ("Retry_Ack_Set"/"Retry_Req_Set" are the 33-block sets,
#: "Crd_Ack_T0"/"Crd_Ack_T1" split Crd_Ack by its T bit).
PRIORITY = ("Retry_Ack_Set", "Retry_Req_Set", "Block_Mode_Chg", "Crd_Ack_T0", "Lane_Manage",
            "Param_Exchg", "Crd_Ack_T1", "Init", "NOB", "DLLDP", "Null")
RANK = {k: i for i, k in enumerate(PRIORITY)}

#: 1 Retry_Idle + 32 Retry_Req (or Retry_Ack) blocks (UB 2.0 §4.7.3.3-4).
RETRY_SET_LEN = 33

_LCH = H["ub.lch"]
_BODY = {"Retry_Req": H["ub.retry_req"], "Retry_Ack": H["ub.retry_ack"],
         "Lane_Manage": H["ub.lane_manage"], "Crd_Ack": H["ub.crd_ack"], "Init": H["ub.init"]}
#: LCH bytes 0..2 of a Crd_Ack (CLENGTH 1, CTRL/SUB_CTRL of Crd_Ack; byte 3 is SD/T)
_CRD_LCH = _LCH.encode(clength=1, ctrl=KINDS["Crd_Ack"][0], sub_ctrl=KINDS["Crd_Ack"][1])[:3]
#: the same, for the compiled transmit burst (``ubpkt._linkc.tx_plan`` builds its Crd_Acks)
CRD_LCH = _CRD_LCH


# ------------------------------------------------------------------------------------------------
# building

def build(kind: str, body: bytes = b"", flits: int | None = None, *, crc_mode: bool = True,
          covers_info: bool = True, lch_byte3: int = 0) -> bytes:
    """A DLLCB of ``kind``: LCH, ``body`` from byte 4, zero fill, tail."""
    ctrl, sub, (lo, hi) = KINDS[kind]
    if flits is None:
        flits = max(lo, -(-(4 + len(body) + 4) // FLIT))
    if not lo <= flits <= hi:
        raise ValueError(f"{kind} is {lo}..{hi} flits, not {flits}")
    blk = bytearray(flits * FLIT)
    blk[0:4] = _LCH.encode(clength=flits - 1, ctrl=ctrl, sub_ctrl=sub)
    blk[3] = lch_byte3
    blk[4:4 + len(body)] = body
    return bytes(seal(blk, crc_mode, end=True, covers_info=covers_info))


def null(**kw) -> bytes:
    return build("Null", **kw)


def nob(**kw) -> bytes:
    return build("NOB", **kw)


def retry_idle(**kw) -> bytes:
    return build("Retry_Idle", **kw)


def retry_req(rcvptr: int, num_phy_reinit: int = 0, num_retry: int = 0, **kw) -> bytes:
    body = _BODY["Retry_Req"].encode(rcvptr=rcvptr, num_phy_reinit=num_phy_reinit,
                                     num_retry=num_retry)
    return build("Retry_Req", body, **kw)


def retry_ack(num_retry: int, numfreebuf: int, rdptr: int, wrptr: int, **kw) -> bytes:
    body = _BODY["Retry_Ack"].encode(num_retry=num_retry, numfreebuf=numfreebuf, rdptr=rdptr,
                                     wrptr=wrptr)
    return build("Retry_Ack", body, **kw)


def retry_req_set(rcvptr: int, num_phy_reinit: int = 0, num_retry: int = 0, **kw) -> bytes:
    """Retry_Req_Set: 1 Retry_Idle + 32 Retry_Req (UB 2.0 §4.7.3.3)."""
    return retry_idle(**kw) + retry_req(rcvptr, num_phy_reinit, num_retry, **kw) * 32


def retry_ack_set(num_retry: int, numfreebuf: int, rdptr: int, wrptr: int, **kw) -> bytes:
    """Retry_Ack_Set: 1 Retry_Idle + 32 Retry_Ack (UB 2.0 §4.7.3.4)."""
    return retry_idle(**kw) + retry_ack(num_retry, numfreebuf, rdptr, wrptr, **kw) * 32


def crd_ack(ack_num: int = 0, credits=None, *, t: int = 0, sd: int = 0, crc_mode: bool = True,
            covers_info: bool = True) -> bytes:
    """Crd_Ack (2 flits): ACK_NUM, and CRD_NUM = 16 x 6 bits with VL15 in the high bits
    (UB 2.0 §4.3.3.5); LCH byte 3 = SD (bit 7), T (bit 0).

    The engine sends one about every DLLDP, so the bytes are placed directly (LCH from the
    declared layout once, ``_CRD_LCH``), by ``ubpkt._linkc.crd_ack`` when the compiled helpers
    are in use, else by :func:`crd_ack_py` (the reference; ``tests/link/test_control.py`` checks
    it against the generic path, :func:`build` with the declared body, and
    ``tests/link/test_crd_ack_native.py`` the compiled one against it)."""
    nat = native()
    if nat is not None:
        return nat.crd_ack(_CRD_LCH, ack_num, credits or (), t, sd, crc_mode, covers_info)
    return crd_ack_py(ack_num, credits, t=t, sd=sd, crc_mode=crc_mode, covers_info=covers_info)


def crd_ack_py(ack_num: int = 0, credits=None, *, t: int = 0, sd: int = 0,
               crc_mode: bool = True, covers_info: bool = True) -> bytes:
    """:func:`crd_ack` in Python: the reference the compiled builder is tested against and
    the fallback without it."""
    credits = list(credits or ())[:16]
    crd_num = 0
    if credits and (min(credits) < 0 or max(credits) > 63):
        vl, c = next((vl, c) for vl, c in enumerate(credits) if not 0 <= c < 64)
        raise ValueError(f"CRD_NUM of VL{vl} is 6 bits, not {c}")
    for vl, c in enumerate(credits):
        if c:
            crd_num |= c << (6 * vl)
    if not 0 <= ack_num <= 0xFFFF:
        raise ValueError(f"ACK_NUM is 16 bits, not {ack_num}")
    blk = bytearray(2 * FLIT)
    blk[0:3] = _CRD_LCH
    blk[3] = (sd & 1) << 7 | (t & 1)
    blk[4] = ack_num >> 8
    blk[5] = ack_num & 0xFF
    blk[6:18] = crd_num.to_bytes(12, "big")
    return bytes(seal(blk, crc_mode, end=True, covers_info=covers_info))


def crd_ack_fields(blk) -> tuple:
    """(ack_num, credits per VL, t, sd) of a Crd_Ack block (the fields of
    :func:`crd_ack_values` the DLL engine acts on), by ``ubpkt._linkc.crd_ack_read`` when the
    compiled helpers are in use."""
    nat = native()
    if nat is not None:
        return nat.crd_ack_read(blk)
    v = crd_ack_values(blk)
    return v["ack_num"], v["credits"], v["t"], v["sd"]


def crd_ack_values(blk) -> dict:
    """What :func:`parse_control` puts in ``values`` for a Crd_Ack block (``ack_num``,
    ``crd_num``, ``credits`` per VL, ``t``, ``sd``; UB 2.0 §4.3.3.5, VL15 in the high bits of
    CRD_NUM), read straight from the bytes: the DLL engine takes one about every DLLDP.
    Checked equal to the generic reader in ``tests/link/test_control.py``."""
    crd_num = int.from_bytes(blk[6:18], "big")
    return {"ack_num": blk[4] << 8 | blk[5], "crd_num": crd_num,
            "credits": [(crd_num >> (6 * vl)) & 0x3F for vl in range(16)],
            "t": blk[3] & 1, "sd": blk[3] >> 7}


def retry_values(blk) -> dict:
    """What :func:`parse_control` puts in ``values`` for a Retry_Req (``rcvptr``,
    ``num_phy_reinit``, ``num_retry``, UB 2.0 §4.3.3.4) or a Retry_Ack (``num_retry``,
    ``numfreebuf``, ``rdptr``, ``wrptr``, §4.3.3.4.3), read straight from the bytes (a retry
    set is 32 of them); by SUB_CTRL, and ``{}`` for any other block.  Checked equal to the
    generic reader in ``tests/link/test_control.py``."""
    sub = blk[2] & 0xF
    if blk[2] >> 4 != KINDS["Retry_Req"][0] or len(blk) < 12:
        return {}
    if sub == KINDS["Retry_Req"][1]:
        return {"rcvptr": blk[8] << 8 | blk[9], "num_phy_reinit": blk[10], "num_retry": blk[11]}
    if sub == KINDS["Retry_Ack"][1]:
        return {"num_retry": blk[5], "numfreebuf": blk[6] << 8 | blk[7],
                "rdptr": blk[8] << 8 | blk[9], "wrptr": blk[10] << 8 | blk[11]}
    return {}


def param_exchg(words, **kw) -> bytes:
    """Param_Exchg: one PARAM_EXCHG_DATA word per flit, at flit bytes 8..11 (UB 2.0 §4.3.3.6)."""
    words = list(words) or [0]
    if len(words) > 32:
        raise ValueError("Param_Exchg is at most 32 flits")
    blk = bytearray(len(words) * FLIT)
    for i, w in enumerate(words):
        blk[i * FLIT + 8:i * FLIT + 12] = int(w).to_bytes(4, "big")
    return build("Param_Exchg", bytes(blk[4:]), len(words), **kw)


def neighbor_advert(guid: int, port_idx: int, **kw) -> bytes:
    """Link neighbour advertisement: a 5-flit Param_Exchg, flit 0 = port index (low 16 bits),
    flits 1..4 = the Entity-0 GUID least-significant word first (UB 2.0 §10.4.4)."""
    words = [port_idx & 0xFFFF] + [(guid >> (32 * i)) & 0xFFFFFFFF for i in range(4)]
    return param_exchg(words, **kw)


def parse_neighbor_advert(words) -> dict | None:
    if len(words) != 5:
        return None
    guid = sum((w & 0xFFFFFFFF) << (32 * i) for i, w in enumerate(words[1:]))
    return {"port_idx": words[0] & 0xFFFF, "guid": guid}


def lane_manage(*, power_down=0, change_rlw=0, change_tlw=0, rx_lane_up=0, rsp_rlw=0, rsp_tlw=0,
                tlw=0, rlw=0, **kw) -> bytes:
    body = _BODY["Lane_Manage"].encode(power_down=power_down, change_rlw=change_rlw,
                                       change_tlw=change_tlw, rx_lane_up=rx_lane_up,
                                       rsp_rlw=rsp_rlw, rsp_tlw=rsp_tlw, tlw=tlw, rlw=rlw)
    return build("Lane_Manage", body, **kw)


def block_mode_chg(type_: int, **kw) -> bytes:
    """Block_Mode_Chg: TYPE 0 = REQ, 1 = ACK in LCH byte 3 bits 3:0 (UB 2.0 §4.3.3.8)."""
    return build("Block_Mode_Chg", lch_byte3=type_ & 0xF, **kw)


# ------------------------------------------------------------------------------------------------
# Init parameters and negotiation (UB 2.0 §4.3.3.9, §4.4 Table 4-9)

def grain_bitmap(*sizes: int) -> int:
    """Bitmap of supported sizes: bit k means 2**k flits or cells."""
    out = 0
    for s in sizes:
        if s <= 0 or s & (s - 1) or s > 128:
            raise ValueError(f"grain {s} is not one of 1, 2, 4, ..., 128")
        out |= s
    return out


def _smallest_common(a: int, b: int, default: int) -> int:
    common = a & b & 0xFF
    return (common & -common) if common else default


@dataclass
class InitParams:
    """What an Init block advertises; grain fields are bitmaps (bit k = 2**k)."""

    feature_id: int = 1
    rxbuf_vl_share: int = 0
    data_ack_grain: int = 0x20
    ctrl_ack_grain: int = 0x01
    flow_ctrl_size: int = 0x08
    vl_enable: int = 0x0001
    retry_buf_depth: int = 2048
    ctrl_credit_grain: tuple = (0x01,) * 16     # per VL, VL0 first
    data_credit_grain: tuple = (0x04,) * 16
    packet_min_interval: int = 0

    def encode(self, flits: int = 5, **kw) -> bytes:
        c, d = self.ctrl_credit_grain, self.data_credit_grain
        ctrl_lo = sum(c[vl] << (8 * vl) for vl in range(14))
        ctrl_hi = c[15] << 8 | c[14]
        data_lo = sum(d[vl] << (8 * vl) for vl in range(12))
        data_hi = sum(d[12 + i] << (8 * i) for i in range(4))
        body = H["ub.init"].encode(
            feature_id=self.feature_id, rxbuf_vl_share=self.rxbuf_vl_share,
            data_ack_grain_size=self.data_ack_grain, ctrl_ack_grain_size=self.ctrl_ack_grain,
            flow_ctrl_size=self.flow_ctrl_size, vl_enable=self.vl_enable,
            retry_buf_depth=self.retry_buf_depth, ctrl_credit_grain_lo=ctrl_lo,
            ctrl_credit_grain_hi=ctrl_hi, data_credit_grain_lo=data_lo,
            data_credit_grain_hi=data_hi, packet_min_interval=self.packet_min_interval)
        return build("Init", body, flits, **kw)

    @classmethod
    def from_values(cls, v: dict) -> "InitParams":
        lo, hi = v["ctrl_credit_grain_lo"], v["ctrl_credit_grain_hi"]
        ctrl = tuple((lo >> (8 * vl)) & 0xFF for vl in range(14)) + (hi & 0xFF, hi >> 8)
        lo, hi = v["data_credit_grain_lo"], v["data_credit_grain_hi"]
        data = (tuple((lo >> (8 * vl)) & 0xFF for vl in range(12))
                + tuple((hi >> (8 * i)) & 0xFF for i in range(4)))
        return cls(v["feature_id"], v["rxbuf_vl_share"], v["data_ack_grain_size"],
                   v["ctrl_ack_grain_size"], v["flow_ctrl_size"], v["vl_enable"],
                   v["retry_buf_depth"], ctrl, data, v["packet_min_interval"])


@dataclass(frozen=True)
class Negotiated:
    """Working parameters after the Init exchange (plain numbers, not bitmaps)."""

    feature_id: int = 1
    peer_rxbuf_vl_share: int = 0
    data_ack_grain: int = 32              # flits per LPH/LBH ACK bit
    ctrl_ack_grain: int = 1               # flits per Crd_Ack ACK_NUM unit
    flow_ctrl_size: int = 8               # flits per cell
    vl_enable: int = 1
    peer_retry_buf_depth: int = 2048
    ctrl_credit_grain: tuple = (1,) * 16  # cells per CRD_NUM unit, per VL
    data_credit_grain: tuple = (4,) * 16  # cells per CRD bit, per VL
    peer_packet_min_interval: int = 0
    failed: tuple = ()                    # fields that fell back to the defaults

    @property
    def vls(self) -> list:
        return [vl for vl in range(16) if self.vl_enable >> vl & 1]


def negotiate(local: InitParams, peer: InitParams) -> Negotiated:
    """UB 2.0 §4.4 Table 4-9: smallest common grain, the lower FEATURE_ID, the common VLs
    counted from VL0; a field without a common value takes the §4.4 default."""
    failed = []

    def pick(name, a, b, default):
        common = a & b & 0xFF
        if not common:
            failed.append(name)
        return _smallest_common(a, b, default)

    ctrl = tuple(pick(f"ctrl_credit_grain_vl{vl}", local.ctrl_credit_grain[vl],
                      peer.ctrl_credit_grain[vl], 1) for vl in range(16))
    data = tuple(pick(f"data_credit_grain_vl{vl}", local.data_credit_grain[vl],
                      peer.data_credit_grain[vl], 4) for vl in range(16))
    both = local.vl_enable & peer.vl_enable
    vl_enable = 0
    for vl in range(16):                  # consecutive from VL0
        if both >> vl & 1:
            vl_enable |= 1 << vl
        else:
            break
    if not vl_enable:
        failed.append("vl_enable")
        vl_enable = 1
    return Negotiated(
        feature_id=min(local.feature_id, peer.feature_id) or 1,
        peer_rxbuf_vl_share=peer.rxbuf_vl_share & 1,
        data_ack_grain=pick("data_ack_grain", local.data_ack_grain, peer.data_ack_grain, 32),
        ctrl_ack_grain=pick("ctrl_ack_grain", local.ctrl_ack_grain, peer.ctrl_ack_grain, 1),
        flow_ctrl_size=pick("flow_ctrl_size", local.flow_ctrl_size, peer.flow_ctrl_size, 8),
        vl_enable=vl_enable, peer_retry_buf_depth=peer.retry_buf_depth,
        ctrl_credit_grain=ctrl, data_credit_grain=data,
        peer_packet_min_interval=peer.packet_min_interval, failed=tuple(failed))


# ------------------------------------------------------------------------------------------------
# reading

_LCH_FORM = {"Crd_Ack": H["ub.lch_crd_ack"], "Block_Mode_Chg": H["ub.lch_block_mode_chg"]}
_CRD_NS3 = H["ub.crd_ack_ns3"]
_PX_FIRST, _PX_MORE = H["ub.param_exchg"], H["ub.param_exchg_flit"]
_CB_RSVD, _BCRC, _END = H["ub.cb_rsvd"], H["ub.bcrc"], H["ub.end"]
_TRAILER_LEN = {"bcrc": 4, "end": 1}


@dataclass
class ControlBlock:
    """One DLLCB as :func:`read_control` read it: the record part (``layers``, ``fields``,
    ``issues``: what a capture record of the block shows) and what the engine acts on."""

    kind: str                       # Null, NOB, Retry_Idle, ..., or "unknown"
    flits: int
    fields: dict = field(default_factory=dict)     # record fields (ub.lch.*, ub.retry_req.*...)
    values: dict = field(default_factory=dict)     # decoded meaning (credits list, init...)
    issues: list = field(default_factory=list)
    crc_ok: bool | None = None      # the BCRC verdict; None when no BCRC was read
    layers: list = field(default_factory=list)
    end: int = 0                    # buffer position after the last byte read

    @property
    def ok(self) -> bool:
        return not any(i["severity"] == ERROR for i in self.issues)


def _Reader(buf, start: int, stop: int, offset: int) -> HeaderReader:
    """A reader of the block at ``buf[start:stop]`` reporting positions from ``offset``."""
    return HeaderReader(buf, start, stop, offset - start)


def _named(h: Header, vals) -> dict:
    return {f.name: v for f, v in zip(h.fields, vals) if not f.reserved}


def read_control(buf, start: int = 0, end: int | None = None, *, trailer: str | None = "bcrc",
                 covers_info: bool = True, vl0_first: bool = False,
                 clength_severity: str = ERROR, offset: int | None = None,
                 crc_ok: bool | None = None, whole_frame: bool = True) -> ControlBlock:
    """Read the DLLCB at ``buf[start:end]`` (UB 2.0 §4.3.3): the LCH form its CTRL/SUB_CTRL
    selects (Table 4-6), the declared body of its type, the rest of the body as ``ub.cb_body``
    (zero expected), then its trailer.  Never raises.

    ``trailer``: ``"bcrc"`` (CRC mode, §4.7.2), ``"end"`` (non-CRC mode, Table 4-4) or None
    (captured DLLCBs without one: ns-3-UB).  ``covers_info``: which bits the BCRC covers
    (:func:`ubpkt.link.crc30.block_crc`).  ``vl0_first``: CRD_NUM holds VL0 in its top 6 bits
    (ns-3-UB) rather than VL15 (§4.3.3.5).  ``clength_severity``: of a CLENGTH that disagrees
    with the bytes there.  ``offset``: the position reported for ``buf[start]`` in issues
    (default ``start``).  ``crc_ok``: the BCRC verdict when already known (the Deframer checks
    many blocks at once); a bad one is recomputed to report the expected value.
    ``whole_frame``: ``buf[start:end]`` is a whole frame: bytes left unread become a ``data``
    run, as the dissector keeps them (the dissector itself passes False and does that).
    """
    stop = len(buf) if end is None else end
    r = _Reader(buf, start, stop, start if offset is None else offset)
    cb = ControlBlock("unknown", (stop - start) // FLIT, r.fields, {}, r.issues, None, r.layers)
    try:
        _read(r, cb, start, stop, trailer, covers_info, vl0_first, clength_severity, crc_ok)
    except Exception as exc:  # a decoder bug must not stop a capture or a stream
        r.issue(ERROR, "frame", None, r.pos, f"decoder failure: {type(exc).__name__}: {exc}")
    r.end = stop
    if whole_frame:
        if r.pos < stop:
            r.take_bytes("data", stop - r.pos)
        if not any(layer.startswith("ub.") for layer in r.layers):
            r.issue(INFO, "frame", None, start, "no UB layer in this frame")
    cb.end = r.pos
    return cb


def _read(r: HeaderReader, cb: ControlBlock, start: int, stop: int, trailer, covers_info: bool,
          vl0_first: bool, clength_severity: str, crc_ok) -> None:
    if stop - start < 3:
        r.issue(ERROR, "ub.lch", None, start, "truncated LCH")
        return
    ctrl, sub = r.buf[start + 2] >> 4, r.buf[start + 2] & 0xF
    kind = _BY_CODE.get((ctrl, sub))
    lch = _LCH_FORM.get(kind, _LCH)
    v = r.take(lch)
    if v is None:
        return
    flits = v[lch.index["clength"]] + 1
    fields, values = r.fields, cb.values
    fields["ub.lch.block"] = kind or f"unknown_{ctrl}_{sub}"
    if kind is None:
        r.issue(WARNING, lch.layer, "ub.lch.ctrl", start + 2, f"reserved CTRL/SUB_CTRL {ctrl}/{sub}")
    else:
        cb.kind = kind
        lo, hi = _FLITS[kind]
        if not lo <= flits <= hi:
            r.issue(WARNING, lch.layer, "ub.lch.clength", start,
                    f"{kind} is {lo}..{hi} flits, CLENGTH says {flits}")
    size = flits * FLIT
    if size != stop - start:
        r.issue(clength_severity, lch.layer, "ub.lch.clength", start,
                f"CLENGTH says {flits} flits ({size} bytes), the block has {stop - start} bytes")
    tlen = _TRAILER_LEN.get(trailer, 0)
    r.end = max(min(start + size, stop) - tlen, r.pos)
    if kind == "Crd_Ack":
        h = _CRD_NS3 if vl0_first else _BODY["Crd_Ack"]
        c = r.take(h)
        if c is not None:
            named = _named(h, c)
            raw = named["crd_num"]
            credits = [(raw >> (6 * (15 - i))) & 0x3F for i in range(16)]
            if not vl0_first:
                credits.reverse()
            for vl in range(16):
                fields[f"ub.crd_ack.crd_vl{vl}"] = credits[vl]
            lv = _named(lch, v)
            values.update(named, credits=credits, t=lv["t"], sd=lv["sd"])
    elif kind in ("Retry_Req", "Retry_Ack", "Lane_Manage", "Init"):
        h = _BODY[kind]
        b = r.take(h)
        if b is not None:
            named = _named(h, b)
            values.update(named)
            if kind == "Init":
                values["init"] = InitParams.from_values(named)
    elif kind == "Param_Exchg":
        # PARAM_EXCHG_DATA at bytes 8..11 of every flit (§4.3.3.6)
        words = []
        b = r.take(_PX_FIRST)
        if b is not None:
            words.append(_named(_PX_FIRST, b)["data"])
            while r.end - r.pos >= FLIT:
                words.append(_named(_PX_MORE, r.take(_PX_MORE))["data"])
        values["words"] = words
        adv = parse_neighbor_advert(words)
        if adv:
            values["neighbor"] = adv
            fields["ub.param_exchg.port_idx"] = adv["port_idx"]
            fields["ub.param_exchg.guid"] = f"{adv['guid']:032x}"
    elif kind is not None:      # Null, NOB, Retry_Idle, Block_Mode_Chg: a reserved body
        if kind == "Block_Mode_Chg":
            values["type"] = _named(lch, v)["type"]
        r.take(_CB_RSVD)
    if r.pos < r.end:
        r.take_bytes("ub.cb_body", r.end - r.pos, zero=True)
    r.end = stop
    if not tlen or stop - r.pos < tlen or start + size > stop:
        return
    if trailer == "end":
        r.take(_END)
        return
    b = r.take(_BCRC)
    rsvd, eflag, stored = b
    calc = None
    if not crc_ok:
        calc = block_crc(bytes(r.buf[start:r.pos - 4]), rsvd << 1 | eflag, covers_info)
        crc_ok = calc == stored
    cb.crc_ok = crc_ok
    if crc_ok:
        fields["ub.bcrc.status"] = "good"
    else:
        fields["ub.bcrc.status"] = "bad"
        fields["ub.bcrc.computed"] = calc
        r.issue(ERROR, "ub.bcrc", "ub.bcrc.crc30", r.pos - 4,
                f"CRC30 {stored:#010x}, computed {calc:#010x}")


def parse_control(blk, crc_mode: bool = True, *, covers_info: bool = True, offset: int = 0,
                  crc_ok: bool | None = None, vl0_first: bool = False) -> ControlBlock:
    """One DLLCB given as its bytes (a flit-stream unit, a block the engine received):
    :func:`read_control` of all of ``blk`` with the trailer of ``crc_mode`` (BCRC or END).
    Its layers, fields and issues are those of ``ubpkt.decode(blk)`` under a profile with the
    same ``crc_mode`` / ``bcrc_covers_info``; ``offset`` shifts the issue offsets (the block's
    place in a stream).  Never raises."""
    return read_control(bytes(blk), trailer="bcrc" if crc_mode else "end",
                        covers_info=covers_info, vl0_first=vl0_first, offset=offset,
                        crc_ok=crc_ok)
