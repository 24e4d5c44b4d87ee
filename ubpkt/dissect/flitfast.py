"""Flit streams on the fast path: records and ndjson lines of plain DLLDPs without a Unit, a
dissection or a record dict per frame (UB 2.0 §4.3.2, §4.3.4, §4.7.2).

:class:`~ubpkt.link.fastdeframe.BulkDeframer` hands over every *plain* DLLDP (no issue at the
data link) as its packet and flits; here its record is put together from

* the block-level fields, read from the flits (LBHs, BCRC words) - for the common one-block
  DLLDP in CRC mode one %-format, the *DLLDP template*;
* the packet's own layers, fields and issues from the packet fast path
  (:class:`ubpkt.dissect.fastpath.TemplateCache`, linktype 148): as ``(layers, fields,
  issues)`` for records, as the template's ndjson line for ndjson, whose layer, field and
  issue lists are spliced after the block-level ones.

Every other unit (DLLCBs, damaged DLLDPs, trailing bytes) is the reference's
(:func:`ubpkt.dissect.flitstream.unit_record`).  The result equals
``decode_flit_stream(..., fast=False)`` record by record and byte for byte
(``tests/link/test_flitfast.py``).
"""
from __future__ import annotations

from ..formats import HEADERS as H
from ..link.blocks import FLIT
from ..link.fastdeframe import Plain
from ..record import LINKTYPE_FLITS, LINKTYPE_UB, make_record
from ..views.output import _default

__all__ = ["plain_record", "PlainLines"]

_LBH = H["ub.lbh"]
_MASK30 = 0x3FFFFFFF
#: field-name prefixes of the block-level fields: a packet field with one of them would be
#: shadowed (the record merges packet fields with setdefault), which splicing cannot do
_BLOCK_PREFIXES = ("ub.flit.", "ub.dll.", "ub.dlldp.", "ub.lbh.", "ub.bcrc.", "ub.end.")
#: the ndjson line of the common one-block DLLDP in CRC mode, block-level fields included:
#: frame, time, len, caplen, the packet's layers, fields (comma-led) and issues to fill in
_ONE_BLOCK_CRC = ('{"frame":%d,"time":%s,"len":%d,"caplen":%d,"linktype":' + str(LINKTYPE_FLITS)
                  + ',"layers":["ub.flits","ub.dlldp","ub.bcrc"%s],"fields":{'
                  '"ub.flit.offset":%d,"ub.flit.index":%d,"ub.flit.count":%d,'
                  '"ub.dll.kind":"DLLDP","ub.dlldp.blocks":1,"ub.dlldp.flits":%d,'
                  '"ub.dlldp.error_flag":0,"ub.bcrc.rsvd1":0,"ub.bcrc.error_flag":0,'
                  '"ub.bcrc.crc30":%d,"ub.bcrc.status":"good"%s},"issues":[%s]}\n')
#: any other DLLDP: the block-level layers and fields (JSON text) filled in too
_ANY_BLOCKS = ('{"frame":%d,"time":%s,"len":%d,"caplen":%d,"linktype":' + str(LINKTYPE_FLITS)
               + ',"layers":[%s%s],"fields":{%s%s},"issues":[%s]}\n')
#: the field names _ONE_BLOCK_CRC writes
_ONE_BLOCK_KEYS = frozenset(("ub.flit.offset", "ub.flit.index", "ub.flit.count", "ub.dll.kind",
                             "ub.dlldp.blocks", "ub.dlldp.flits", "ub.dlldp.error_flag",
                             "ub.bcrc.rsvd1", "ub.bcrc.error_flag", "ub.bcrc.crc30",
                             "ub.bcrc.status"))

try:
    import orjson as _orjson
except ImportError:  # pragma: no cover
    _orjson = None


def _block_fields(p: Plain, crc_mode: bool) -> tuple:
    """(layers, fields) at the data link of a plain DLLDP, as ``unit_record`` has them."""
    off, flits, nb, pkt, raw = p
    f = {"ub.flit.offset": off, "ub.flit.index": off // FLIT, "ub.flit.count": flits,
         "ub.dll.kind": "DLLDP", "ub.dlldp.blocks": nb, "ub.dlldp.flits": flits,
         "ub.dlldp.error_flag": 0}
    layers = ["ub.flits", "ub.dlldp"] + ["ub.lbh"] * (nb - 1)
    if nb > 1:
        rows = [_LBH.unpack(raw, k * 640) for k in range(1, nb)]
        for i, key in enumerate(_LBH.keys):
            f[key] = rows[0][i] if nb == 2 else [r[i] for r in rows]
    if crc_mode:
        ends = [min((k + 1) * 640, len(raw)) for k in range(nb)]
        crcs = [int.from_bytes(raw[e - 4:e], "big") & _MASK30 for e in ends]
        one = nb == 1
        f["ub.bcrc.rsvd1"] = 0 if one else [0] * nb
        f["ub.bcrc.error_flag"] = 0 if one else [0] * nb
        f["ub.bcrc.crc30"] = crcs[0] if one else crcs
        f["ub.bcrc.status"] = "good" if one else ["good"] * nb
        layers.append("ub.bcrc")
    else:
        f["ub.end.rsvd1"] = f["ub.end.error_flag"] = f["ub.end.rsvd2"] = 0
        layers.append("ub.end")
    return layers, f


def plain_record(p: Plain, frame: int, time_ns, crc_mode: bool, cache) -> dict:
    """The record of a plain DLLDP (equal to ``unit_record`` of its reference Unit), the
    packet decoded by ``cache`` (a :class:`~ubpkt.dissect.fastpath.TemplateCache`)."""
    return _record(p, frame, time_ns, crc_mode, cache.decode(p[3], LINKTYPE_UB))


def _record(p: Plain, frame: int, time_ns, crc_mode: bool, decoded) -> dict:
    """:func:`plain_record` with the packet's ``(layers, fields, issues)`` given."""
    n = p[1] * FLIT
    layers, f = _block_fields(p, crc_mode)
    play, pf, pissues = decoded
    if f.keys() & pf.keys():            # a packet field named like a block-level one: kept out
        for k, v in pf.items():
            f.setdefault(k, v)
    else:
        f.update(pf)
    return make_record(frame, None if time_ns is None else time_ns / 1e9, n, n, LINKTYPE_FLITS,
                       layers + list(play), f, list(pissues))


class PlainLines:
    """ndjson lines of plain DLLDPs (equal to ``to_json_bytes(plain_record(...))``)."""

    def __init__(self, crc_mode: bool, cache):
        from ..views.output import to_json_bytes
        self.crc_mode = crc_mode
        self.cache = cache
        self._dumps = to_json_bytes
        self._time_key, self._time_text = object(), b""
        self._splices: dict = {}     # a template's field names -> no block-level name among them

    def line(self, p: Plain, frame: int, time_ns) -> bytes:
        off, flits, nb, pkt, raw = p
        dumps = self._dumps
        n = flits * FLIT
        got = self.cache.parts(pkt, LINKTYPE_UB)
        block = None
        if got[0] is None:
            # no template: the dissector's decode, its JSON pieces by the record path's encoder
            decoded = got[1]
            play, pf, pissues = decoded
            if nb == 1 and self.crc_mode:
                ok = _ONE_BLOCK_KEYS.isdisjoint(pf)
            else:
                block = _block_fields(p, self.crc_mode)
                ok = block[1].keys().isdisjoint(pf)
            try:
                if not ok or _orjson is None:
                    raise TypeError
                play = _orjson.dumps(play).decode()[1:-1]
                pfields = _orjson.dumps(pf, default=_default).decode()[1:-1]
                pissues = _orjson.dumps(pissues, default=_default).decode()[1:-1]
            except TypeError:   # shadowed names, wide integers: the whole record
                return dumps(_record(p, frame, time_ns, self.crc_mode, decoded))
            if play:
                play = "," + play
            if pfields:
                pfields = "," + pfields
        else:
            play, pfields, pissues, keys = got
            ok = self._splices.get(keys)
            if ok is None:
                ok = self._splices[keys] = not any(k.startswith(_BLOCK_PREFIXES) for k in keys)
            if not ok:
                return dumps(plain_record(p, frame, time_ns, self.crc_mode, self.cache))
        if time_ns != self._time_key:
            self._time_key = time_ns
            self._time_text = dumps(None if time_ns is None else time_ns / 1e9)[:-1].decode()
        if nb == 1 and self.crc_mode:
            return (_ONE_BLOCK_CRC % (frame, self._time_text, n, n, play, off, off // FLIT,
                                      flits, flits, int.from_bytes(raw[-4:], "big") & _MASK30,
                                      pfields, pissues)).encode()
        layers, f = block or _block_fields(p, self.crc_mode)
        return (_ANY_BLOCKS % (frame, self._time_text, n, n, dumps(layers)[1:-2].decode(), play,
                               dumps(f)[1:-2].decode(), pfields, pissues)).encode()
