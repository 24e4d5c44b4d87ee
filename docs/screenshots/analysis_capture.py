"""The capture the screenshots show: one UBoE conversation with the problems ub.lua's analysis
finds (run: ``python docs/screenshots/analysis_capture.py OUT.pcap``).

Two hosts, A (192.0.2.1) the initiator and B (192.0.2.2) the target, one RTP channel each way
(A's TPN 0x10 to B's TPN 0x20 and back).  Built with ubpkt's encoder (``encode_layers``: lengths,
padding and the ICRC are filled in), deterministic (fixed timestamps, no randomness).  The story,
as a tap between the hosts sees it (UB 2.0 §6.2.1 PSNs, §7.2 transactions):

- a Write answered by a TAACK, a Read answered by its Read_response (``response_in`` /
  ``request_in`` / ``response_time``);
- posted Writes (NO_TAACK) with PSN 2 lost on the wire before the tap: PSN 3 shows the gap
  (``psn_gap``), the timeout's Go-Back-N resend of 2, 3, 4 shows ``out_of_order`` (2 fills the
  gap) and ``retransmission`` (3, 4);
- a Write whose ICRC is damaged (``ub.icrc.status == "bad"``), then its resend with a good ICRC
  (``retransmission`` and ``duplicate``: the same PSN as the packet before);
- a last Read that B answers with a TPNAK (RNR, ``tpnak``) and never with data: the capture ends
  and the Read is flagged ``no_response``.

:data:`CASES` names the frames (1-based) where each case shows; the test
``tests/dissectors/test_screenshot_capture.py`` checks them with tshark and ubpkt.
"""
from __future__ import annotations

import sys
from pathlib import Path

from ubpkt.capture import LINKTYPE_ETHERNET, PcapWriter
from ubpkt.encode import encode_layers

A, B = "192.0.2.1", "192.0.2.2"
MAC = {A: "02:00:00:00:00:01", B: "02:00:00:00:00:02"}
TPN = {A: 0x10, B: 0x20}
#: when the capture starts (ns since the epoch: 2024-01-01 00:00:00 UTC)
T0_NS = 1_704_067_200 * 10**9
REGION = 0x7F00_0010_0000          # B's memory region the Writes and Reads address
TOKEN = 0x4321


def _carrier(src: str, dst: str) -> list:
    return [("eth", {"dst": MAC[dst], "src": MAC[src], "type": 0x0800}),
            ("ip", {"version": 4, "hdr_len": 5, "dscp": 26, "ttl": 64, "proto": 17,
                    "src": src, "dst": dst}),
            ("udp", {"srcport": 49152 + (TPN[src] & 0xFF)})]


def _rtph(src: str, dst: str, op: int, psn: int, a: int = 1, rspst: int = 0) -> tuple:
    """RTPH; ``last`` (last packet of a message) only on RTP data packets (TPOpcode 1)."""
    return ("ub.rtph", {"tpopcode": op, "last": int(op == 1), "psn": psn, "a": a, "rspst": rspst,
                        "srctpn": TPN[src], "dsttpn": TPN[dst]})


def _payload(n: int, seed: int) -> tuple:
    return ("data", bytes((seed * 31 + i * 7) & 0xFF for i in range(n)))


def request(src, dst, psn, op, tassn, length, no_taack=0, data=True) -> list:
    """An RTP data packet carrying a BTAH + MAETAH request (Write: with ``length`` bytes)."""
    layers = _carrier(src, dst) + [
        _rtph(src, dst, 1, psn),
        ("ub.btah", {"taopcode": op, "ee_bits": 1, "ini_tassn": tassn, "odr": 1,
                     "no_taack": no_taack, "ini_rc_id": 0x123}),
        ("ub.maetah", {"address": REGION + 0x1000 * tassn, "tokenid": TOKEN, "length": length})]
    return layers + ([_payload(length, tassn)] if data else [])


def response(src, dst, psn, op, tassn, data_len=0) -> list:
    """An RTP data packet carrying an ATAH response (TAACK, Read_response with data)."""
    layers = _carrier(src, dst) + [_rtph(src, dst, 1, psn),
                                   ("ub.atah", {"taopcode": op, "ini_tassn": tassn,
                                                "ini_rc_id": 0x123})]
    return layers + ([_payload(data_len, tassn)] if data_len else [])


def tp_response(src, dst, psn, rspst=0) -> list:
    """A TPACK (RSPST 0) or TPNAK (RSPST RNR/Page Fault/Completer Error) for ``psn``."""
    return _carrier(src, dst) + [_rtph(src, dst, 2, psn, a=0, rspst=rspst)]


WRITE, READ, TAACK, READ_RESPONSE = 0x03, 0x06, 0x11, 0x12
RNR = 1

#: (time after the start in µs, layers, damage the ICRC) per frame, in capture order
FRAMES = [
    (0.0, request(A, B, 0, WRITE, 1, 256), False),
    (2.1, response(B, A, 0, TAACK, 1), False),
    (2.3, tp_response(B, A, 0), False),
    (5.0, request(A, B, 1, READ, 2, 512, data=False), False),
    (8.4, response(B, A, 1, READ_RESPONSE, 2, 512), False),
    (8.6, tp_response(B, A, 1), False),
    # PSN 2 (Write tassn 3) is lost before the tap
    (12.0, request(A, B, 3, WRITE, 4, 256, no_taack=1), False),
    (13.0, request(A, B, 4, WRITE, 5, 256, no_taack=1), False),
    # A's retransmission timer: Go-Back-N from PSN 2
    (112.0, request(A, B, 2, WRITE, 3, 256, no_taack=1), False),
    (113.0, request(A, B, 3, WRITE, 4, 256, no_taack=1), False),
    (114.0, request(A, B, 4, WRITE, 5, 256, no_taack=1), False),
    (116.2, tp_response(B, A, 4), False),
    (120.0, request(A, B, 5, WRITE, 6, 128, no_taack=1), True),
    (220.0, request(A, B, 5, WRITE, 6, 128, no_taack=1), False),
    (221.9, tp_response(B, A, 5), False),
    (225.0, request(A, B, 6, READ, 7, 4096, data=False), False),
    (226.5, tp_response(B, A, 6, rspst=RNR), False),
]

#: frame numbers (1-based) where each analysis case shows
CASES = {
    "response_in": {1: 2, 4: 5},             # request frame -> its response frame
    "request_in": {2: 1, 5: 4},              # response frame -> its request frame
    "psn_gap": {7: 1},                       # frame -> PSNs missing before it
    "out_of_order": [9],
    "retransmission": [10, 11, 14],
    "duplicate": [14],
    "bad_icrc": [13],
    "tpnak": [17],
    "no_response": [16],
}
#: a UBoE RDMA-class frame for the details screenshot (a Read with its response linked)
DETAILS_FRAME = 4


def frames() -> list[tuple[int, bytes]]:
    """(timestamp ns, frame bytes) in capture order."""
    out = []
    for t_us, layers, damage in FRAMES:
        buf = encode_layers(layers)
        if damage:                        # the ICRC is the frame's last 4 bytes
            buf = buf[:-4] + bytes(b ^ 0x5A for b in buf[-4:])
        out.append((T0_NS + round(t_us * 1000), buf))
    return out


def write(path: Path) -> Path:
    """Write the capture (pcap, linktype 1, ns timestamps) to ``path``."""
    with PcapWriter(path, LINKTYPE_ETHERNET) as w:
        for t_ns, buf in frames():
            w.write(buf, time_ns=t_ns)
    return path


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: analysis_capture.py OUT.pcap")
    write(Path(sys.argv[1]))
