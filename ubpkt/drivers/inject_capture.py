"""``ubpkt inject --to PEER FILE.pcap``: the requests of a capture
(:mod:`ubpkt.drivers.capture_requests`) run as work requests through a stateful initiator
against a live peer (the same endpoint, driver, faults and ledger as ``inject --workload``).

The stack numbers everything anew: PSNs, TASSNs, TPMSNs come from the channel and the
initiator, not from the capture; the TP channel is inject's (``--tpn``/``--psn``).  What the
capture gives: the op, the address, the length, the payload bytes, the TokenID and TokenValue,
the atomic operands and sub-operation, the Send queue and immediate data.

``verify``: after the run, the bytes the capture's writes and atomics left behind (the
successful ones, applied in capture order to an image of the target memory) are read back and
compared.  An atomic is checked where the image knows the old value (an earlier write of the
capture covered it): its returned old value and the new value; elsewhere its bytes leave the
image (counted ``atomics_unknown``).  A Read is compared with the image where it knows the
bytes.  A Send is checked by its completion only.  Requests the peer refuses (an address
outside its regions, a wrong token: the access error of UB 2.0 Table 7-3) are listed in
``access_errors``; they change nothing, and ``data_verified`` is false (not everything
succeeded).
"""
from __future__ import annotations

import time

from ..sim.loopback import _Workload, transport_counters
from ..stack.transaction.ops import OP_OPCODE, OPERAND_ORDER, WorkRequest, atomic_apply
from .capture_requests import requests_from_capture
from .inject import SCHEMA, InjectConfig, _Run, config_dict
from .udp import ICRC_NOTE

__all__ = ["run_inject_capture", "MemoryImage", "READBACK_CHUNK"]

#: the longest read of the verification (bytes; a named setting, any length works)
READBACK_CHUNK = 64 * 1024
_READBACK_ID = 20_000_000
_PAGE = 4096


class MemoryImage:
    """What the target memory must hold where the capture's requests said so: bytes and a
    mask of the known ones, in 4 KiB pages."""

    def __init__(self):
        self.pages: dict = {}

    def write(self, addr: int, data) -> None:
        off = 0
        n = len(data)
        while off < n:
            a = addr + off
            p, o = divmod(a, _PAGE)
            k = min(n - off, _PAGE - o)
            page = self.pages.get(p)
            if page is None:
                page = self.pages[p] = (bytearray(_PAGE), bytearray(_PAGE))
            page[0][o:o + k] = data[off:off + k]
            page[1][o:o + k] = b"\1" * k
            off += k

    def forget(self, addr: int, n: int) -> None:
        for i in range(n):
            page = self.pages.get((addr + i) // _PAGE)
            if page is not None:
                page[1][(addr + i) % _PAGE] = 0

    def known(self, addr: int, n: int):
        """The ``n`` bytes at ``addr`` if all are known, else None."""
        out = bytearray()
        for i in range(n):
            page = self.pages.get((addr + i) // _PAGE)
            o = (addr + i) % _PAGE
            if page is None or not page[1][o]:
                return None
            out.append(page[0][o])
        return bytes(out)

    def mismatch(self, addr: int, got) -> int | None:
        """The first address in ``[addr, addr + len(got))`` whose known byte differs."""
        for i, b in enumerate(got):
            page = self.pages.get((addr + i) // _PAGE)
            o = (addr + i) % _PAGE
            if page is not None and page[1][o] and page[0][o] != b:
                return addr + i
        return None


def _work_request(i: int, r) -> WorkRequest:
    kw = dict(remote_addr=r.address, tokenid=r.tokenid, tokenvalue=r.tokenvalue,
              order=r.order, tcid=r.tcid)
    if r.op == "read":
        return WorkRequest(i, "read", local=bytearray(r.length), length=r.length, **kw)
    if r.op in OP_OPCODE and OP_OPCODE[r.op] in range(0x07, 0x10):
        return WorkRequest(i, r.op, size=r.size, operand1=r.operand1, operand2=r.operand2,
                           subop=r.subop, **kw)
    wr = WorkRequest(i, r.op, local=memoryview(r.payload), imm=r.imm,
                     imm_tokenvalue=r.imm_tokenvalue, **kw)
    if r.notify:
        wr.notify_addr = r.notify["address"]
        wr.notify_tokenid = r.notify["notify_tokenid"]
        wr.notify_tokenvalue = r.notify["notify_tokenvalue"]
        wr.notify_data = r.notify["notify_data"]
    return wr


def run_inject_capture(cfg: InjectConfig, path: str) -> dict:
    """Run the requests of the capture at ``path`` against ``cfg.peer`` (module doc); the
    report (schema ``ubpkt.inject/1``, ``source: capture``)."""
    t0 = time.perf_counter()
    scan = requests_from_capture(path, cfg.profile)
    reqs = scan.requests
    run = _Run(cfg)
    try:
        wrs = [_work_request(i, r) for i, r in enumerate(reqs)]
        t_run = time.perf_counter()
        app = run.phase(wrs) if wrs else None
        run_s = time.perf_counter() - t_run
        status = {c.wr_id: c.status for c in (app.completions if app else ())}
        image = MemoryImage()
        checks = {"mismatches": [], "atomics_unknown": 0, "reads_checked": 0,
                  "atomics_checked": 0}
        readback = []
        for wr, r in zip(wrs, reqs):
            if status.get(wr.wr_id) != "success":
                continue
            _apply(image, wr, r, checks, readback)
        back_app = None
        if cfg.verify and run.outcome == "done" and readback:
            rwrs = []
            for j, (addr, n, tid, tv) in enumerate(readback):
                buf = bytearray(n)
                rwrs.append(WorkRequest(_READBACK_ID + j, "read", local=buf, length=n,
                                        remote_addr=addr, tokenid=tid, tokenvalue=tv))
            back_app = run.phase(rwrs)
            for w in rwrs:
                at = image.mismatch(w.remote_addr, w.local)
                if at is not None:
                    checks["mismatches"].append({"what": "readback", "address": f"{at:#x}"})
        run.settle()
        if run.ep.channels and any(ch.dead for ch in run.ep.channels.values()):
            run.outcome = "channel_error"
        run.ledger.resolve(run.driver.events)
        return _report(cfg, path, scan, run, wrs, reqs, status, checks, back_app,
                       time.perf_counter() - t0, run_s)
    finally:
        run.driver.close()


def _apply(image: MemoryImage, wr: WorkRequest, r, checks: dict, readback: list) -> None:
    """A successful request's effect on the image (and what to read back)."""
    opc = OP_OPCODE[r.op]
    if r.op == "read":
        at = image.mismatch(r.address, wr.local)
        checks["reads_checked"] += 1
        if at is not None:
            checks["mismatches"].append({"wr_id": wr.wr_id, "op": "read",
                                         "address": f"{at:#x}"})
        return
    if r.op.startswith("send"):
        return
    if 0x07 <= opc <= 0x0F:
        old = image.known(r.address, r.size)
        if old is None:
            image.forget(r.address, r.size)
            checks["atomics_unknown"] += 1
            return
        checks["atomics_checked"] += 1
        o = int.from_bytes(old, OPERAND_ORDER)
        if r.op != "atomic_store" and wr.result is not None and wr.result != o:
            checks["mismatches"].append({"wr_id": wr.wr_id, "op": r.op, "what": "old value"})
        new = atomic_apply(opc, o, r.operand1, r.operand2, r.size * 8, r.subop)
        image.write(r.address, new.to_bytes(r.size, OPERAND_ORDER))
        readback.append((r.address, r.size, r.tokenid, r.tokenvalue))
        return
    image.write(r.address, r.payload)
    for off in range(0, len(r.payload), READBACK_CHUNK):
        readback.append((r.address + off, min(READBACK_CHUNK, len(r.payload) - off),
                         r.tokenid, r.tokenvalue))


def _report(cfg, path, scan, run, wrs, reqs, status, checks, back_app, wall, run_s) -> dict:
    n = len(wrs)
    counts: dict = {}
    for s in status.values():
        counts[s] = counts.get(s, 0) + 1
    ok = [r for wr, r in zip(wrs, reqs) if status.get(wr.wr_id) == "success"]
    all_ok = n > 0 and len(ok) == n
    access = [{"wr_id": wr.wr_id, "op": r.op, "address": f"{r.address:#x}",
               "length": r.length, "status": status.get(wr.wr_id),
               "frames": r.frames[:4]}
              for wr, r in zip(wrs, reqs)
              if status.get(wr.wr_id) not in (None, "success")]
    verified = None
    if cfg.verify:
        verified = (all_ok and run.outcome == "done" and not checks["mismatches"]
                    and (back_app is None or (back_app.done() and all(
                        c.status == "success" for c in back_app.completions))))
    d = run.driver
    cfg_d = config_dict(cfg)
    warnings = []
    if n == 0:
        warnings.append(f"{path}: no transaction request this reader replays")
    elif d.stats["rx_datagrams"] == 0:
        warnings.append(f"no datagram came back from {cfg_d['peer']}: is a UB endpoint (ubpkt "
                        "serve) listening there, with the same TPNs and PSNs?")
    if access:
        warnings.append(f"{len(access)} requests were refused by the peer (access errors: an "
                        "address outside its regions, a wrong token)")
    transport = transport_counters((run.ep,))
    transport["bad_icrc"] += d.stats["bad_icrc"]
    sent = sum(r.length for r in reqs if r.op != "read")
    return {
        "warnings": warnings,
        "schema": SCHEMA,
        "config": cfg_d,
        "peer": cfg_d["peer"],
        "local": f"{d.local[0]}:{d.local[1]}",
        "source": dict(scan.report(), kind="capture", file=str(path)),
        "outcome": run.outcome,
        "requests": n,
        "operations": scan.report()["operations"],
        "sent_bytes": sent,
        "delivered_bytes": sum(r.length for r in ok),
        "all_completed": bool(all_ok),
        "data_verified": verified,
        "verify": ({"enabled": True, "mismatches": checks["mismatches"][:20],
                    "reads_checked": checks["reads_checked"],
                    "atomics_checked": checks["atomics_checked"],
                    "atomics_unknown": checks["atomics_unknown"],
                    "note": "writes and atomics read back; Sends checked by their completion "
                            "only"} if cfg.verify else {"enabled": False}),
        "completions": counts,
        "access_errors": {"count": len(access), "requests": access[:20]},
        "transport": transport,
        "faults": run.ledger.report(),
        "icrc": cfg.icrc,
        "icrc_note": ICRC_NOTE,
        "driver": d.report(),
        "wall_s": round(wall, 6),
        "run_s": round(run_s, 6),
        "payload_mb_per_s": round(sum(r.length for r in ok) / run_s / 1e6, 3)
        if run_s > 0 else None,
    }
