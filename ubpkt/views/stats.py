"""Capture statistics: layers, opcodes, issues by kind and PSN gaps per TP channel.

:class:`CaptureStats` takes records one at a time (constant memory but for the per-channel
table) and renders the summary ``ubpkt stats --json`` prints.
"""
from __future__ import annotations

from collections import Counter

__all__ = ["CaptureStats", "OPCODE_KEYS"]

#: Record keys whose values are counted as "opcodes", per header.
OPCODE_KEYS = ("ub.rtph.tpopcode_name", "ub.ctph.tpopcode_name", "ub.btah.taopcode_name",
               "ub.atah.taopcode_name", "ub.lch.block", "ub.mgmtetah.code_name",
               "ub.cfg5.protocol_name")

_PSN_SPACE = 1 << 24   # RTP PSNs are 24 bits (UB 2.0 §6.2.1)


class CaptureStats:
    """Counters over a stream of records."""

    def __init__(self) -> None:
        self.frames = 0
        self.layers: Counter = Counter()
        self.opcodes: Counter = Counter()
        self.issues: Counter = Counter()
        self.channels: dict = {}

    def add(self, rec: dict) -> None:
        self.frames += 1
        self.layers.update(list(dict.fromkeys(rec["layers"])))   # once per frame, in wire order
        f = rec["fields"]
        for key in OPCODE_KEYS:
            v = f.get(key)
            if v is not None:
                self.opcodes[(key.rsplit(".", 1)[0].replace("_name", ""), str(v))] += 1
        for i in rec["issues"]:
            self.issues[(i["severity"], i["layer"], i["message"].split(":")[0][:60])] += 1
        if f.get("ub.rtph.tpopcode") == 1:
            self._psn(f)

    def _psn(self, f: dict) -> None:
        key = (f.get("ip.src") or f.get("ipv6.src") or f.get("ub.cna16.scna"),
               f.get("ip.dst") or f.get("ipv6.dst") or f.get("ub.cna16.dcna"),
               f["ub.rtph.srctpn"], f["ub.rtph.dsttpn"])
        ch = self.channels.get(key)
        if ch is None:
            ch = self.channels[key] = {"packets": 0, "gaps": 0, "missing": 0, "last": None}
        psn = f["ub.rtph.psn"]
        if ch["last"] is not None:
            expected = (ch["last"] + 1) % _PSN_SPACE
            if psn != expected:
                delta = (psn - expected) % _PSN_SPACE
                if delta < _PSN_SPACE // 2:      # ahead of the expected PSN: packets missing
                    ch["gaps"] += 1
                    ch["missing"] += delta
        ch["last"] = psn
        ch["packets"] += 1

    def to_json(self) -> dict:
        return {"frames": self.frames, "layers": dict(self.layers),
                "opcodes": [{"header": h, "opcode": o, "count": c}
                            for (h, o), c in sorted(self.opcodes.items())],
                "issues": [{"severity": s, "layer": lay, "kind": k, "count": c}
                           for (s, lay, k), c in sorted(self.issues.items())],
                "channels": [{"src": str(k[0]), "dst": str(k[1]), "srctpn": k[2], "dsttpn": k[3],
                              "packets": v["packets"], "gaps": v["gaps"],
                              "missing": v["missing"]} for k, v in self.channels.items()]}
