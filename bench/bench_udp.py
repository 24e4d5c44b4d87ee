"""UDP loopback speed: ``ubpkt serve`` + ``ubpkt inject`` against a plain Python UDP echo.

UB: ``ubpkt serve`` runs in its own process (the CLI, as a user starts it); the initiator
(``run_inject``, what ``ubpkt inject`` runs) in this one: N Writes of SIZE bytes over 127.0.0.1,
the whole stack on both sides (RTP, TAACKs, the ICRC on every datagram).  Reported: the payload
rate of the transfer phase (inject's ``run_s``) and the request packets per second (UB's
answers, TPACKs and TAACKs, coalesced, are fewer than the requests).

Echo: the same two-process shape with no UB at all: a Python echo server in its own process
(``recvfrom`` -> ``sendto`` of the same bytes), and a client here sending the same number of
datagrams of the same size as inject's requests (from the same kind of socket: DF, the same
buffer sizes), keeping at most the same window (128) unanswered.  One request datagram, one
answer datagram.  The ratio is UB / echo.

Usage: python bench/bench_udp.py [COUNT] (default 5000 per case; 4 KiB and 1 KiB writes).
Not a test: the numbers depend on the machine and its load (best of three runs).
"""
from __future__ import annotations

import os
import select
import subprocess
import sys
import time

from ubpkt.drivers.inject import InjectConfig, run_inject
from ubpkt.drivers.udp import open_udp_socket

LO = "127.0.0.1"
WINDOW = 128            # the UDP driver's wall-clock window (wallclock_profile)
SOCK_BUF = 4 << 20      # the UDP driver's socket buffers

_ECHO = r"""
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
for o in (socket.SO_RCVBUF, socket.SO_SNDBUF):
    s.setsockopt(socket.SOL_SOCKET, o, 4 << 20)
s.setsockopt(socket.IPPROTO_IP, getattr(socket, "IP_MTU_DISCOVER", 10),
             getattr(socket, "IP_PMTUDISC_DO", 2))
s.bind(("127.0.0.1", 0))
print(s.getsockname()[1], flush=True)
while True:
    d, a = s.recvfrom(65536)
    if d == b"stop":
        break
    s.sendto(d, a)
"""


def _env() -> dict:
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    path = os.pathsep.join([root, os.path.join(root, "cli"), os.environ.get("PYTHONPATH", "")])
    return dict(os.environ, PYTHONPATH=path, PYTHONUNBUFFERED="1")


def run_ub(count: int, size: int) -> dict:
    # a region that holds the whole workload (the writes are laid out one after another)
    mib = max(16, -(-count * size // (1 << 20)))
    p = subprocess.Popen([sys.executable, "-m", "ubpkt_cli", "serve", "--udp", f"{LO}:0",
                          "--region", f"mem:{mib}MiB", "--report", os.devnull],
                         stderr=subprocess.PIPE,
                         stdout=subprocess.DEVNULL, text=True, env=_env())
    try:
        line = p.stderr.readline()
        port = int(line.split("listening on ")[1].split(" ")[0].rsplit(":", 1)[1])
        r = run_inject(InjectConfig(peer=(LO, port), workload=f"write:{size}*{count}",
                                    timeout_s=120))
    finally:
        p.terminate()
        p.wait(10)
    d = r["driver"]["stats"]
    return {"ok": r["outcome"] == "done" and r["all_completed"],
            "mb_s": r["delivered_bytes"] / r["run_s"] / 1e6,
            "pps": r["requests"] / r["run_s"],
            "datagrams": d["tx_datagrams"], "answers": d["rx_datagrams"],
            "retx": r["transport"].get("retransmissions", 0)}


def request_size(size: int) -> int:
    """The UDP payload of one Write request of ``size`` bytes: RTPH, BTAH, MAETAH, the data,
    padding and ICRC (built by the scapy layers over an IPv4/UDP header)."""
    from scapy.all import IP, UDP, Raw
    from ubpkt.scapy import UBBtah, UBMaetah, UBRtph
    p = (IP(flags="DF") / UDP() / UBRtph(a=1, last=1) / UBBtah(taopcode="Write")
         / UBMaetah(length=size) / Raw(bytes(size)))
    return len(IP(bytes(p))[UDP].payload)


def run_echo(count: int, dgram_size: int, payload: int) -> dict:
    p = subprocess.Popen([sys.executable, "-c", _ECHO], stdout=subprocess.PIPE, text=True)
    sock = open_udp_socket((LO, 0), SOCK_BUF)
    try:
        port = int(p.stdout.readline())
        peer = (LO, port)
        sock.setblocking(False)
        data = bytes(dgram_size)
        sent = got = 0
        t0 = time.perf_counter()
        while got < count:
            while sent < count and sent - got < WINDOW:
                try:
                    sock.sendto(data, peer)
                except BlockingIOError:
                    break
                sent += 1
            select.select([sock], [], [], 1.0)
            while True:
                try:
                    sock.recv(65536)
                except BlockingIOError:
                    break
                got += 1
        dt = time.perf_counter() - t0
        sock.sendto(b"stop", peer)
    finally:
        sock.close()
        try:
            p.wait(5)
        except subprocess.TimeoutExpired:
            p.kill()
    return {"mb_s": count * payload / dt / 1e6, "pps": count / dt}


def main() -> None:
    count = int(sys.argv[1]) if len(sys.argv) > 1 else 5000
    print(f"{'case':22s} {'UB MB/s':>8s} {'UB pps':>8s} {'echo MB/s':>9s} {'echo pps':>9s} "
          f"{'ratio':>6s} {'dgram':>6s} {'retx':>5s} {'ok':>3s}")
    for size in (4096, 1024):
        ub = max((run_ub(count, size) for _ in range(3)), key=lambda r: r["mb_s"])
        dgram = request_size(size)
        echo = max((run_echo(count, dgram, size) for _ in range(3)), key=lambda r: r["mb_s"])
        print(f"{f'{size} B writes x{count}':22s} {ub['mb_s']:8.1f} {ub['pps']:8.0f} "
              f"{echo['mb_s']:9.1f} {echo['pps']:9.0f} {ub['mb_s'] / echo['mb_s']:6.3f} "
              f"{dgram:6d} {ub['retx']:5d} {'yes' if ub['ok'] else 'NO':>3s}")


if __name__ == "__main__":
    main()
