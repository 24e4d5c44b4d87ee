"""Transaction headers and their extension headers per opcode (UB 2.0 ch. 7)."""
from __future__ import annotations

from ..formats import enums as E
from .frame import ERROR, H, WARNING, _ATAH_OPS, Frame
from .management import _management


#: Extension headers after a request's BTAH, in order, per TAOpcode (UB 2.0 §7.4 Table 7-2):
#: "tv" = TVETAH when TV_EN, "taid?X"/"ofst?X" = TAIDETAH/OFSTETAH when the profile says so.
REQUEST_HEADERS = {
    0x00: ("mtetah", "ofstetah", "tv"),
    0x01: ("mtetah", "ofstetah", "immetah", "tv"),
    0x03: ("maetah", "tv"),
    0x04: ("mtetah", "maetah", "immetah", "tv"),
    0x05: ("maetah", "ntfetah", "tv"),
    0x06: ("taid?read", "ofst?read", "maetah", "tv"),
    0x10: ("mgmtetah",),
    0x14: ("maetah", "tv", "beetah"),
    0x15: ("maetah",),
    0x17: ("maetah", "tv"),
    0x18: ("maetah", "tv", "beetah"),
}
for _op in E.ATOMICS:
    REQUEST_HEADERS[_op] = ("taid?atomic", "maetah", "tv")
#: The same after a response's ATAH (Table 7-4).
RESPONSE_HEADERS = {0x11: (), 0x12: ("taid?read_response", "ofst?read_response"),
            0x13: ("taid?atomic_response",)}


def _tah(fr: Frame) -> None:
    p = fr.profile
    op = fr.peek()
    if op is None:
        fr.issue(ERROR, "ub.btah", None, fr.pos, "truncated transaction header")
        return
    start = fr.pos
    if op in _ATAH_OPS and fr.tp_data and fr.full_tah and p.ns3_layouts:
        # ns-3-UB sends TA responses in RTP data packets as TAH + MAETAH (dialect §6.7)
        if fr.take(H["ub.btah"]) is None:
            return
        seq = ("maetah",)
        flags = {}
    elif op in _ATAH_OPS:
        if fr.full_tah:
            h = H["ub.atah_ns3"] if p.ns3_layouts else H["ub.atah"]
        else:
            h = H["ub.atah_c"]
        if fr.take(h) is None:
            return
        seq = RESPONSE_HEADERS[op]
        flags = {}
    else:
        h = H["ub.btah"] if fr.full_tah else H["ub.btah_c"]
        v = fr.take(h)
        if v is None:
            return
        flags = {"tv": v[3], "ud": v[6]}
        if op not in E.TAOPCODE:
            fr.issue(WARNING, h.layer, "ub.btah.taopcode", start, f"reserved TAOpcode {op:#04x}")
            return
        if flags["ud"]:
            u = fr.take(H["ub.udetah"])
            if u is None:
                return
            if op in (0x09, 0x0A):
                sub = (u[0] >> 20) & 0xF
                fr.fields["ub.udetah.atomic_op"] = sub
                fr.fields["ub.udetah.atomic_op_name"] = E.ATOMIC_SUBOP.get(sub, f"unknown_{sub}")
        seq = REQUEST_HEADERS[op]
        if fr.full_tah:
            mt = 1 if "mtetah" in seq else 0
            if v[10] != mt:
                fr.issue(WARNING, h.layer, "ub.btah.mt_en", start + 4,
                         f"MT_EN is {v[10]} but {E.TAOPCODE[op]} {'carries' if mt else 'has no'}"
                         " MTETAH")
    for step in seq:
        ok = True
        if step == "tv":
            if flags.get("tv"):
                ok = fr.take(H["ub.tvetah"]) is not None
        elif step.startswith("taid?"):
            if getattr(p, step[5:] + "_taidetah"):
                ok = fr.take(H["ub.taidetah"]) is not None
        elif step.startswith("ofst?"):
            if getattr(p, step[5:] + "_ofstetah"):
                ok = fr.take(H["ub.ofstetah"]) is not None
        elif step == "maetah":
            if fr.full_tah:
                mh = H["ub.maetah"]
                ok = fr.take(mh) is not None
            else:
                mh = H["ub.maetah_c_ns3"] if p.ns3_layouts else H["ub.maetah_c"]
                m = fr.take(mh)
                ok = m is not None
                if ok:
                    fr.fields["ub.maetah.length"] = 64 << m[3]
        elif step == "beetah":
            ok = _beetah(fr)
        elif step == "mgmtetah":
            _management(fr)
            return
        else:
            ok = fr.take(H["ub." + step]) is not None
        if not ok:
            return


def _beetah(fr: Frame) -> bool:
    # UB 2.0 §7.2.10: one BE bit per payload byte, payload of 64..1024 bytes, so the BEETAH and the
    # payload together are 9/8 of the payload.
    avail = fr.end - fr.pos - fr.pad
    n = avail * 8 // 9
    if n * 9 != avail * 8 or n not in (64, 128, 256, 512, 1024):
        fr.issue(ERROR, "ub.beetah", "ub.beetah.be", fr.pos,
                 f"{avail} bytes cannot be a BEETAH plus its 64..1024-byte payload")
        return False
    return fr.take_bytes("ub.beetah", n // 8) is not None
