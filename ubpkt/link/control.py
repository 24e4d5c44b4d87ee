"""DLL control blocks (DLLCBs): build and parse every type (UB 2.0 §4.3.3).

Layouts come from ``ubpkt.formats.link`` (LCH, LCH_CRD_ACK, LCH_BLOCK_MODE, the bodies); this
module only places them in flits and fills the tail (BCRC in CRC mode, END in non-CRC mode).
Every builder returns whole flits (bytes).  :func:`parse_control` never raises.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from ..formats import HEADERS as H
from ..record import ERROR, INFO, WARNING, make_issue
from ..formats import enums as E
from .blocks import FLIT, check_tail, seal

__all__ = ["KINDS", "PRIORITY", "ControlBlock", "InitParams", "Negotiated", "build", "null",
           "nob", "retry_idle", "retry_req", "retry_ack", "retry_req_set", "retry_ack_set",
           "crd_ack", "param_exchg", "neighbor_advert", "parse_neighbor_advert", "lane_manage",
           "block_mode_chg", "parse_control", "negotiate", "grain_bitmap",
           "RETRY_SET_LEN"]


#: name -> (CTRL, SUB_CTRL, allowed flit counts) (UB 2.0 Table 4-6 and §4.3.3.2-9).
KINDS = {
    "Null": (0, 0, (1, 1)), "NOB": (0, 1, (1, 1)), "Retry_Idle": (1, 0, (1, 1)),
    "Retry_Req": (1, 1, (1, 1)), "Retry_Ack": (1, 2, (1, 1)), "Crd_Ack": (2, 4, (2, 2)),
    "Param_Exchg": (3, 0, (1, 32)), "Lane_Manage": (4, 1, (1, 1)),
    "Block_Mode_Chg": (5, 0, (1, 1)), "Init": (0xC, 8, (5, 32)),
}
_BY_CODE = {(c, s): k for k, (c, s, _) in KINDS.items()}

#: Recommended transmit priority, highest first (UB 2.0 §4.3.3.1 example); the engine's
#: scheduler uses these ranks ("Retry_Ack_Set"/"Retry_Req_Set" are the 33-block sets,
#: "Crd_Ack_T0"/"Crd_Ack_T1" split Crd_Ack by its T bit).
PRIORITY = ("Retry_Ack_Set", "Retry_Req_Set", "Block_Mode_Chg", "Crd_Ack_T0", "Lane_Manage",
            "Param_Exchg", "Crd_Ack_T1", "Init", "NOB", "DLLDP", "Null")
RANK = {k: i for i, k in enumerate(PRIORITY)}

#: 1 Retry_Idle + 32 Retry_Req (or Retry_Ack) blocks (UB 2.0 §4.7.3.3-4).
RETRY_SET_LEN = 33

_LCH = H["ub.lch"]
_LCH_CRD = H["ub.lch_crd_ack"]
_LCH_BMC = H["ub.lch_block_mode_chg"]
_BODY = {"Retry_Req": H["ub.retry_req"], "Retry_Ack": H["ub.retry_ack"],
         "Lane_Manage": H["ub.lane_manage"], "Crd_Ack": H["ub.crd_ack"], "Init": H["ub.init"]}


_issue = make_issue


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


def crd_ack(ack_num: int = 0, credits=None, *, t: int = 0, sd: int = 0, **kw) -> bytes:
    """Crd_Ack (2 flits): ACK_NUM, and CRD_NUM = 16 x 6 bits with VL15 in the high bits
    (UB 2.0 §4.3.3.5); LCH byte 3 = SD (bit 7), T (bit 0)."""
    credits = list(credits or [0] * 16) + [0] * 16
    crd_num = 0
    for vl in range(15, -1, -1):
        c = credits[vl]
        if not 0 <= c < 64:
            raise ValueError(f"CRD_NUM of VL{vl} is 6 bits, not {c}")
        crd_num = (crd_num << 6) | c
    body = _BODY["Crd_Ack"].encode(ack_num=ack_num, crd_num=crd_num)
    return build("Crd_Ack", body, 2, lch_byte3=(sd & 1) << 7 | (t & 1), **kw)


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
# parsing

@dataclass
class ControlBlock:
    kind: str                       # Null, NOB, Retry_Idle, ..., or "unknown"
    flits: int
    fields: dict = field(default_factory=dict)     # record fields (ub.lch.*, ub.retry_req.*...)
    values: dict = field(default_factory=dict)     # decoded meaning (credits list, init...)
    issues: list = field(default_factory=list)
    crc_ok: bool | None = None
    layers: list = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not any(i["severity"] == ERROR for i in self.issues)


def parse_control(blk, crc_mode: bool = True, *, covers_info: bool = True, offset: int = 0,
                  crc_ok: bool | None = None) -> ControlBlock:
    """Decode one DLLCB (its whole flits).  Never raises."""
    try:
        return _parse(bytes(blk), crc_mode, covers_info, offset, crc_ok)
    except Exception as exc:  # a decoder bug must not stop a stream
        return ControlBlock("unknown", len(blk) // FLIT, {}, {}, [
            _issue(ERROR, "ub.lch", None, offset, f"decoder failure: {type(exc).__name__}: {exc}")])


def _parse(blk: bytes, crc_mode, covers_info, off, crc_ok) -> ControlBlock:
    issues: list = []
    flits = len(blk) // FLIT
    if len(blk) < FLIT or len(blk) % FLIT:
        return ControlBlock("unknown", flits, {}, {}, [_issue(
            ERROR, "ub.lch", None, off, f"a DLLCB is whole flits, not {len(blk)} bytes")])
    ctrl, sub = blk[2] >> 4, blk[2] & 0xF
    kind = _BY_CODE.get((ctrl, sub), "unknown")
    lch = {"Crd_Ack": _LCH_CRD, "Block_Mode_Chg": _LCH_BMC}.get(kind, _LCH)
    vals = lch.unpack(blk, 0)
    fields = dict(zip(lch.keys, lch.shown(vals)))
    fields["ub.lch.ctrl_name"] = E.CTRL.get(ctrl, f"unknown_{ctrl}")
    fields["ub.lch.block"] = kind if kind != "unknown" else f"unknown_{ctrl}_{sub}"
    layers = [lch.layer]
    clength = vals[1] + 1
    if vals[0] != 0:
        issues.append(_issue(WARNING, "ub.lch", "ub.lch.zero", off, "LCH bit 7 of byte 0 is not 0"))
    if vals[2] != 0b100000:
        issues.append(_issue(WARNING, "ub.lch", "ub.lch.fixed", off,
                             f"LCH fixed field is {vals[2]:#08b}, the spec fixes 0b100000"))
    if kind == "unknown":
        issues.append(_issue(WARNING, "ub.lch", "ub.lch.ctrl", off + 2,
                             f"reserved CTRL/SUB_CTRL {ctrl}/{sub}"))
    else:
        lo, hi = KINDS[kind][2]
        if not lo <= clength <= hi:
            issues.append(_issue(WARNING, "ub.lch", "ub.lch.clength", off,
                                 f"{kind} is {lo}..{hi} flits, CLENGTH says {clength}"))
    if clength != flits:
        issues.append(_issue(ERROR, "ub.lch", "ub.lch.clength", off,
                             f"CLENGTH says {clength} flits, the block has {flits}"))
    if lch is _LCH and vals[-1]:
        issues.append(_issue(WARNING, "ub.lch", "ub.lch.rsvd1", off + 3,
                             "reserved LCH byte 3 is not zero"))
    values: dict = {}
    body_end = len(blk) - (4 if crc_mode else 1)
    used = 4
    body = _BODY.get(kind)
    if body is not None and 4 + body.size <= body_end + (4 if kind == "Init" else 0):
        bv = body.unpack(blk, 4)
        fields.update(zip(body.keys, body.shown(bv)))
        layers.append(body.layer)
        used = 4 + body.size
        for i in body.rsvd_idx:
            if bv[i]:
                issues.append(_issue(WARNING, body.layer, body.keys[i], off + 4,
                                     f"reserved bits set in {body.title}"))
        for i, f in body.fixed_fields:
            if bv[i] != f.fixed:
                issues.append(_issue(WARNING, body.layer, body.keys[i], off + 4,
                                     f"{body.keys[i]} is {bv[i]:#x}, the spec fixes {f.fixed:#x}"))
        named = dict(zip((f.name for f in body.fields), bv))
        values.update({k: v for k, v in named.items() if not k.startswith("rsvd")})
        if kind == "Crd_Ack":
            raw = named["crd_num"]
            credits = [(raw >> (6 * vl)) & 0x3F for vl in range(16)]
            values["credits"] = credits
            values["t"], values["sd"] = fields["ub.lch.t"], fields["ub.lch.sd"]
            for vl in range(16):
                fields[f"ub.crd_ack.crd_vl{vl}"] = credits[vl]
        elif kind == "Init":
            values["init"] = InitParams.from_values(named)
    elif body is not None:
        issues.append(_issue(ERROR, "ub.lch", "ub.lch.clength", off,
                             f"{kind} too short for its body ({flits} flits)"))
    if kind == "Block_Mode_Chg":
        t = vals[-1]   # the declared TYPE field, ub.lch.type
        values["type"] = t
        fields["ub.lch.type_name"] = E.BLOCK_MODE_TYPE.get(t, f"unknown_{t}")
        if t not in E.BLOCK_MODE_TYPE:
            issues.append(_issue(WARNING, "ub.lch", "ub.lch.type", off + 3,
                                 f"reserved Block_Mode_Chg TYPE {t}"))
    if kind == "Param_Exchg":
        words = [int.from_bytes(blk[i * FLIT + 8:i * FLIT + 12], "big") for i in range(flits)]
        values["words"] = words
        fields["ub.param_exchg.data"] = words if len(words) > 1 else words[0]
        adv = parse_neighbor_advert(words)
        if adv:
            values["neighbor"] = adv
            fields["ub.param_exchg.port_idx"] = adv["port_idx"]
            fields["ub.param_exchg.guid"] = f"{adv['guid']:032x}"
        layers.append("ub.param_exchg")
        # reserved: flit bytes other than 8..11 (and the LCH)
        for i in range(flits):
            base = i * FLIT
            for a, b in ((4 if i == 0 else 0, 8), (12, FLIT if base + FLIT <= body_end else
                                                   body_end - base)):
                if any(blk[base + a:base + b]):
                    issues.append(_issue(WARNING, "ub.param_exchg", None, off + base + a,
                                         "reserved bytes of a Param_Exchg flit are not zero"))
                    break
    elif used < body_end and any(blk[used:body_end]):
        issues.append(_issue(WARNING, "ub.cb", "ub.cb.body", off + used,
                             "reserved bytes of the DLLCB are not zero"))
    tail = check_tail(blk, crc_mode, off, issues, end=True, covers_info=covers_info,
                      crc_ok=crc_ok, last=True)
    fields.update(tail)
    layers.append("ub.bcrc" if crc_mode else "ub.end")
    ok = tail.get("ub.bcrc.status") == "good" if crc_mode else None
    return ControlBlock(kind, flits, fields, values, issues, ok, layers)
