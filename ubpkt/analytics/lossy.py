"""A seeded capture of UBoE transactions seen through a faulty network, for the query tests and
bench: requests and their responses on RTP TP channels (UB 2.0 §6.2.1, §7.2.1-2) with PSN loss
(gaps), late retransmissions of lost packets (out of order), duplicated packets, retransmitted
requests and responses, swapped neighbours, responses that never come (missing TAACKs),
responses without a captured request, and PSNs that wrap past 2^24.

Built with ubpkt's encoder (``ubpkt.encode.encode_layers``) from header field maps; every
choice comes from ``random.Random(seed)``, so a seed is one capture.  The fault shares are the
:class:`Faults` settings (they are test knobs, nothing in UB 2.0).
"""
from __future__ import annotations

import random
from dataclasses import dataclass

__all__ = ["Faults", "lossy_frames", "write_lossy"]

_ETH = {"dst": "02:00:00:00:00:02", "src": "02:00:00:00:00:01", "type": 0x0800}
#: request opcodes used (Write, Read, Atomic_compare_swap...) and their expected response
_OPS = (0x03, 0x06, 0x07, 0x0B, 0x00)


@dataclass(frozen=True)
class Faults:
    """Shares of the faults (each per packet or per transaction, 0..1)."""
    lose: float = 0.03           # a packet is not captured (PSN gap); some come back later
    late: float = 0.5            # of the lost ones: retransmitted later (out of order)
    duplicate: float = 0.02      # a packet is captured twice in a row
    retransmit: float = 0.02     # a packet is sent again later (retransmission)
    swap: float = 0.02           # two neighbours swap places
    no_response: float = 0.03    # a request is never answered
    stray_response: float = 0.01  # a response whose request is not in the capture


def _ip(src, dst):
    return ("ip", {"version": 4, "hdr_len": 5, "ttl": 64, "proto": 17, "src": src, "dst": dst})


def _rtph(psn, stpn, dtpn):
    return ("ub.rtph", {"last": 1, "tpopcode": 1, "srctpn": stpn, "dsttpn": dtpn, "a": 1,
                        "psn": psn % (1 << 24)})


def lossy_frames(n_transactions: int, seed: int = 15, faults: Faults = Faults(),
                 hosts: int = 3, psn_start: int = (1 << 24) - 200, tassn_space: int = 4096,
                 t0_ns: int = 1_700_000_000_000_000_000) -> list:
    """``[(time_ns, frame bytes)]`` in capture order: ``n_transactions`` request/response pairs
    between host 0 (initiator) and hosts 1..``hosts``, one TP channel each way per host pair,
    with the :class:`Faults`.  The TASSN of a request is its number modulo ``tassn_space`` and
    its opcode a function of the TASSN (a reused key keeps its opcode)."""
    from ..encode import encode_layers
    from ..formats.grammar import TA_PAIRS
    rnd = random.Random(seed)
    ini = "10.0.0.1"
    psn: dict = {}
    sent: list = []            # (time_ns, seq, bytes)
    seq = 0

    def packet(src, dst, stpn, dtpn, ta, t):
        nonlocal seq
        key = (src, dst, stpn, dtpn)
        p = psn.setdefault(key, psn_start + 37 * len(psn))
        psn[key] = p + 1
        buf = encode_layers([("eth", dict(_ETH)), _ip(src, dst),
                             ("udp", {"srcport": 49152 + stpn}), _rtph(p, stpn, dtpn)] + ta)
        seq += 1
        sent.append((t, seq, buf))
        return buf

    t = t0_ns
    for i in range(n_transactions):
        h = 1 + rnd.randrange(hosts)
        tgt = f"10.0.0.{1 + h}"
        tassn = i % tassn_space
        op = _OPS[tassn % len(_OPS)]
        t += rnd.randint(200, 3000)
        ta = [("ub.btah", {"taopcode": op, "ee_bits": 1, "ini_tassn": tassn, "odr": 1,
                           "ini_rc_id": 0x100 + h})]
        if op in (0x03, 0x06, 0x07, 0x0B):
            ta.append(("ub.maetah", {"address": 0x7F00_0000_1000 + 64 * i, "tokenid": 7,
                                     "length": 8 if op >= 0x07 else 64}))
        packet(ini, tgt, 10 + h, 20 + h, ta, t)
        if rnd.random() < faults.no_response:
            continue
        rt = t + rnd.randint(500, 20000)
        packet(tgt, ini, 20 + h, 10 + h,
               [("ub.atah", {"taopcode": TA_PAIRS[op], "ini_tassn": tassn,
                             "ini_rc_id": 0x100 + h})], rt)
        if rnd.random() < faults.stray_response:
            packet(tgt, ini, 20 + h, 10 + h,
                   [("ub.atah", {"taopcode": TA_PAIRS[op],
                                 "ini_tassn": (tassn + tassn_space // 2) % tassn_space,
                                 "ini_rc_id": 0x100 + h})], rt + 1)
    sent.sort()
    out: list = []
    later: list = []
    for t, _s, buf in sent:
        while later and later[0][0] <= t:
            out.append(later.pop(0))
        r = rnd.random()
        if r < faults.lose:
            if rnd.random() < faults.late:
                later.append((t + rnd.randint(5_000, 60_000), buf))
                later.sort(key=lambda x: x[0])
            continue
        out.append((t, buf))
        r = rnd.random()
        if r < faults.duplicate:
            out.append((t + 1, buf))
        elif r < faults.duplicate + faults.retransmit:
            later.append((t + rnd.randint(5_000, 60_000), buf))
            later.sort(key=lambda x: x[0])
        elif r < faults.duplicate + faults.retransmit + faults.swap and len(out) >= 2:
            (ta_, a), (tb, b) = out[-2], out[-1]
            out[-2], out[-1] = (ta_, b), (tb, a)
    out.extend(later)
    # capture times never go backwards: a swapped or late frame takes its slot's time
    fixed, last = [], 0
    for t, buf in out:
        last = max(last, t)
        fixed.append((last, buf))
    return fixed


def write_lossy(path, n_transactions: int, seed: int = 15, faults: Faults = Faults(),
                **kw) -> int:
    """A classic pcap (ns times, Ethernet) of :func:`lossy_frames`; the frames written."""
    from ..capture import LINKTYPE_ETHERNET, PcapWriter
    frames = lossy_frames(n_transactions, seed, faults, **kw)
    with PcapWriter(str(path), LINKTYPE_ETHERNET) as w:
        for t, buf in frames:
            w.write(buf, t)
    return len(frames)
