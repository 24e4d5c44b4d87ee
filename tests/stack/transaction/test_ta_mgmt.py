"""Management requests between the transaction initiator and target (UB 2.0 §7.4.5.1,
§10.4.3.3): configuration reads and writes against the target's configuration space model,
answered by management response messages (BTAH TAOpcode 0x10, MGMTETAH.Rsp 1), never a TAACK;
every packet decodes as the spec's configuration management message."""
from __future__ import annotations

from collections import deque

import pytest

from ubpkt import SPEC, decode
from ubpkt.profile import TransactionTuning
from ubpkt.stack.network import Framer, Path
from ubpkt.stack.transaction.config import ConfigSpace
from ubpkt.stack.transaction.initiator import Initiator
from ubpkt.stack.transaction.memory import Memory
from ubpkt.stack.transaction.ops import (MGMT_STATUS_OF, STATUSES, SUCCESS, TransactionError,
                                         WorkRequest, mgmt_status_of)
from ubpkt.stack.transaction.target import Target

RC = 0x1ABCD        # the message queue index the initiator sends in BTAH.INI_RC_ID


def joined(seg) -> bytes:
    return bytes(seg.ta) + bytes(seg.payload)


class MgmtPair:
    """An initiator and a target wired directly; the target hands the management responses it
    receives to the initiator (what the endpoint does with ``on_mgmt_response``)."""

    def __init__(self, config=None, **ini):
        self.to_tgt: deque = deque()
        self.to_ini: deque = deque()
        self.requests: list = []
        self.responses: list = []
        tun = TransactionTuning(mtu=4096)
        self.ini = Initiator(rc_id=RC, tuning=tun, submit=self.to_tgt.append, **ini)
        self.tgt = Target(memory=Memory(), tuning=tun, submit_response=self.to_ini.append,
                          config=config)
        # the peer's target receives the responses on its side of the wire
        self.back = Target(memory=Memory(), tuning=tun, submit_response=self._no_rsp,
                           on_mgmt_response=self.ini.on_mgmt_response)
        self.now = 0

    def _no_rsp(self, seg):
        raise AssertionError(f"a management response was answered: {seg}")

    def run(self):
        while self.to_tgt or self.to_ini:
            self.now += 1000
            while self.to_tgt:
                seg = self.to_tgt.popleft()
                self.requests.append(seg)
                assert self.tgt.on_request(joined(seg), self.now, last=seg.last) is None
            while self.to_ini:
                seg = self.to_ini.popleft()
                self.responses.append(seg)
                self.back.on_request(joined(seg), self.now, last=seg.last)

    def do(self, wr):
        self.ini.post(wr, self.now)
        self.run()
        c = self.ini.pop_completions()
        assert len(c) == 1 and c[0].wr_id == wr.wr_id
        return c[0]


def rd(n, addr, space=0, entity=0, **kw):
    return WorkRequest(n, "mgmt_cfg_read", remote_addr=addr, cfg_space=space,
                       entity_idx=entity, **kw)


def wrt(n, addr, data, be=None, space=0, entity=0, **kw):
    return WorkRequest(n, "mgmt_cfg_write", remote_addr=addr, data=data, be=be,
                       cfg_space=space, entity_idx=entity, **kw)


def fields_of(seg, psn=0):
    fr = Framer(Path(), SPEC)
    rec = decode(fr.rtp_data(1, 2, psn, bytes(seg.ta), bytes(seg.payload), last=int(seg.last)),
                 fr.path.linktype, SPEC)
    bad = [i for i in rec["issues"] if i["severity"] in ("error", "warning")]
    assert not bad, bad
    return rec["fields"]


def config():
    cs = ConfigSpace(entities=(0, 3))
    cs.define(0, 0x23, 0x1, writable=0x7)           # CFG0_BASIC MTU_CFG[2:0]
    cs.define(0, 0x10020, 0x1122_3344)              # a CFG1 register
    cs.define(3, 0x10020, 0xAAAA_AAAA, writable=0xFFFF_0000)
    return cs


def test_write_then_read_back_with_byte_enables():
    p = MgmtPair(config())
    c = p.do(wrt(1, 0x10020, 0xDEAD_BEEF, be=0b0101, space=1))
    assert c.status == SUCCESS and c.op == "mgmt_cfg_write"
    assert p.tgt.config.peek(0, 0x10020) == 0x11AD_33EF       # lanes 0 and 2 only
    wr = rd(2, 0x10020, space=1)
    c = p.do(wr)
    assert (c.status, c.nbytes, wr.result, wr.mgmt_status) == (SUCCESS, 4, 0x11AD_33EF, 0)
    # read-only bits keep their value; Entity 3 has its own CFG1
    assert p.do(wrt(3, 0x10020, 0x1234_5678, space=1, entity=3)).status == SUCCESS
    wr = rd(4, 0x10020, space=1, entity=3)
    assert p.do(wr).status == SUCCESS and wr.result == 0x1234_AAAA
    assert p.do(wrt(5, 0x23, 0xFFFF_FFFF)).status == SUCCESS
    wr = rd(6, 0x23)
    assert p.do(wr).status == SUCCESS and wr.result == 0x7
    assert p.ini.outstanding == 0 and not p.ini._inflight

    # the wire: request and response decode as configuration management messages
    req, rsp = p.requests[0], p.responses[0]
    f = fields_of(req)
    assert f["ub.btah.taopcode_name"] == "Management"
    assert (f["ub.btah.tv_en"], f["ub.btah.odr"], f["ub.btah.ini_rc_id"]) == (0, 0, RC)
    assert (f["ub.mgmtetah.code_name"], f["ub.mgmtetah.sub_code_name"]) == \
        ("Configuration", "CFG1_Write")
    assert (f["ub.mgmtetah.rsp"], f["ub.mgmtetah.pdu_length"]) == (0, 16)
    assert (f["ub.cfg_req.entity_idx"], f["ub.cfg_req.byte_en"], f["ub.cfg_req.req_addr"],
            f["ub.cfg_req.data"]) == (0, 0b0101, 0x10020, 0xDEAD_BEEF)
    g = fields_of(rsp)
    assert g["ub.btah.taopcode_name"] == "Management"
    assert g["ub.btah.ini_tassn"] == f["ub.btah.ini_tassn"]
    assert g["ub.btah.ini_rc_id"] == RC
    assert (g["ub.mgmtetah.rsp"], g["ub.mgmtetah.status_name"], g["ub.mgmtetah.pdu_length"],
            g["ub.mgmtetah.sub_code_name"]) == (1, "OK", 16, "CFG1_Write")
    f = fields_of(p.requests[1])
    assert f["ub.mgmtetah.sub_code_name"] == "CFG1_Read" and f["ub.cfg_req.req_addr"] == 0x10020
    g = fields_of(p.responses[1])
    assert g["ub.cfg_rsp.data"] == 0x11AD_33EF and g["ub.mgmtetah.sub_code_name"] == "CFG1_Read"
    assert f["ub.btah.ini_tassn"] == g["ub.btah.ini_tassn"] != fields_of(req)["ub.btah.ini_tassn"]
    assert fields_of(p.requests[4])["ub.mgmtetah.sub_code_name"] == "CFG0_Write"
    # no TAACK anywhere
    assert all(s.ta[0] == 0x10 for s in p.requests + p.responses)
    assert p.tgt.stats["taacks"] == 0 and p.tgt.stats["mgmt_requests"] == 6


def test_unimplemented_address_reads_zero_or_bad_address():
    p = MgmtPair(config())
    wr = rd(1, 0x55)                    # nothing declared there: reads as 0 (§10.4.1.3)
    assert p.do(wr).status == SUCCESS and wr.result == 0
    assert p.do(wrt(2, 0x55, 7)).status == SUCCESS and p.tgt.config.peek(0, 0x55) == 0
    strict = config()
    strict.strict = True
    p = MgmtPair(strict)
    wr = rd(1, 0x55)
    c = p.do(wr)
    assert (c.status, c.nbytes, wr.mgmt_status, wr.result) == ("mgmt_bad_address", 0, 0x22,
                                                               None)
    g = fields_of(p.responses[0])
    assert (g["ub.mgmtetah.status_name"], g["ub.mgmtetah.pdu_length"], g["ub.cfg_rsp.data"]) \
        == ("Bad_Address", 16, 0)
    # the Sub Code's space must be the address's; ports are Entity 0's; unknown Entity
    assert p.do(rd(2, 0x10020, space=0)).status == "mgmt_bad_address"
    assert p.do(rd(3, 0x23, space=1)).status == "mgmt_bad_address"
    assert p.do(rd(4, 0x20000, entity=3)).status == "mgmt_bad_address"
    assert p.do(rd(5, 0x23, entity=9)).status == "mgmt_no_target"
    for s in p.requests + p.responses:
        fields_of(s)


def test_bad_code_is_answered_without_taack():
    p = MgmtPair(config())
    p.ini.post(rd(1, 0x23))
    req = p.to_tgt.popleft()
    # the same request as a Device Security / Token Check Configuration message (Code 5)
    head = bytearray(req.ta)
    head[8] = (2 << 4) | (5 << 1)
    p.tgt.on_request(bytes(head), 0)
    rsp = p.to_ini.popleft()
    g = fields_of(rsp)
    assert (g["ub.btah.taopcode_name"], g["ub.mgmtetah.rsp"], g["ub.mgmtetah.status_name"],
            g["ub.mgmtetah.code_name"], g["ub.mgmtetah.pdu_length"]) == \
        ("Management", 1, "Bad_Code", "Device_Security", 0)
    # the initiator does not take it for its CFG0 read (Code/Sub Code differ)...
    p.back.on_request(joined(rsp), 0)
    assert p.ini.pop_completions() == [] and p.ini.stats["rx_unexpected"] == 1
    # ...a reserved configuration Sub Code is Bad_Code too, and completes the request
    head[8] = (9 << 4) | (2 << 1)
    p.tgt.on_request(bytes(head), 0)
    rsp = p.to_ini.popleft()
    g = fields_of(rsp)
    assert (g["ub.mgmtetah.status_name"], g["ub.mgmtetah.sub_code"]) == ("Bad_Code", 9)
    assert p.tgt.stats["taacks"] == 0 and p.tgt.stats["errors"] == 2
    # answered with the request's own Code/Sub Code and Bad_Code: completes mgmt_bad_code
    p.to_tgt.append(req)
    tgt_rsp = bytearray(req.ta)
    tgt_rsp[8] |= 1                                     # Rsp
    tgt_rsp[9] = 0x03                                   # Bad_Code
    tgt_rsp[10:12] = b"\0\0"                            # no PDU
    p.back.on_request(bytes(tgt_rsp[:12]), 0)
    c = p.ini.pop_completions()
    assert [(x.wr_id, x.status) for x in c] == [(1, "mgmt_bad_code")]


def test_bad_length_and_tv_en():
    p = MgmtPair(config())
    p.ini.post(wrt(1, 0x23, 1))
    req = p.to_tgt.popleft()
    p.tgt.on_request(bytes(req.ta)[:-4], 0)             # PDU cut short
    g = fields_of(p.to_ini.popleft())
    assert g["ub.mgmtetah.status_name"] == "Bad_Length"
    bad = bytearray(req.ta)
    bad[1] |= 0x08                                      # TV_EN (must be 0)
    p.tgt.on_request(bytes(bad), 0)
    assert p.to_ini.popleft().ta[9] == 0x26             # Invalid_Parameter
    assert p.tgt.config.peek(0, 0x23) == 1


def test_udetah_and_responses_via_on_response():
    p = MgmtPair(config())
    wr = rd(1, 0x10020, space=1, ud=0xCAFE)
    p.ini.post(wr)
    req = p.to_tgt.popleft()
    f = fields_of(req)
    assert f["ub.btah.ud_flag"] == 1 and f["ub.udetah.ud"] == 0xCAFE
    assert f["ub.cfg_req.req_addr"] == 0x10020
    p.tgt.on_request(joined(req), 0)
    rsp = p.to_ini.popleft()
    p.ini.on_response(joined(rsp), 5)       # on_response recognises TAOpcode 0x10 too
    c = p.ini.pop_completions()
    assert c[0].status == SUCCESS and wr.result == 0x1122_3344


def test_timeout_and_stray_responses():
    p = MgmtPair(config(), mgmt_timeout_ns=10_000)
    p.ini.post(rd(1, 0x23), 100)
    assert p.ini.next_deadline() == 10_100
    p.to_tgt.clear()                        # lost: management messages have no TAACK
    p.ini.handle_timeout(10_099)
    assert p.ini.pop_completions() == []
    p.ini.handle_timeout(10_100)
    c = p.ini.pop_completions()
    assert [(x.status, x.nbytes) for x in c] == [("mgmt_timeout", 0)]
    assert p.ini.next_deadline() is None and p.ini.outstanding == 0
    # answered after all: dropped as unexpected; a response without a hook is dropped too
    p.ini.post(rd(2, 0x23), 0)
    p.run()
    assert p.ini.pop_completions()[0].status == SUCCESS
    assert p.ini.next_deadline() is None
    lone = Target(memory=Memory(), submit_response=None)
    lone.on_request(joined(p.responses[-1]), 0)
    assert lone.stats["mgmt_dropped"] == 1 and lone.stats["requests"] == 0
    p.ini.on_mgmt_response(joined(p.responses[-1]), 0)
    assert p.ini.stats["rx_unexpected"] == 1


def test_api_misuse():
    ini = Initiator(rc_id=1, submit=lambda s: None)
    for wr in (rd(1, 0, tokenvalue=5), rd(1, 1 << 32), wrt(1, 0, 1 << 32), wrt(1, 0, 0, be=16),
               rd(1, 0, space=2), rd(1, 0, entity=1 << 16), rd(1, 0, local=bytearray(4))):
        with pytest.raises(TransactionError):
            ini.post(wr)
    with pytest.raises(TransactionError):
        Initiator(rc_id=1, submit=lambda s: None, compact=True).post(rd(1, 0))
    assert ini.outstanding == 0


def test_status_mapping():
    assert mgmt_status_of(0) == SUCCESS
    assert mgmt_status_of(3) == "mgmt_bad_code"
    assert mgmt_status_of(0x05) == "mgmt_unknown"       # reserved
    assert set(MGMT_STATUS_OF.values()) <= set(STATUSES)


@pytest.mark.parametrize("transport,kind", [("ctp", "cna16"), ("rtp", "uboe")])
def test_between_endpoints(transport, kind):
    """Two endpoints: configuration messages as the spec frames them (CTPH, §10.4.3.3) and over
    RTP; the endpoint's target hands management responses to its initiator."""
    from ubpkt.stack.endpoint import Endpoint

    path = Path(kind=kind)
    a, b = Endpoint("a", path), Endpoint("b", path.reverse())
    ca = a.open_channel(1, 2, transport=transport)
    cb = b.open_channel(2, 1, transport=transport)
    for ch in (ca, cb):
        if ch.target.on_mgmt_response is None:      # until endpoint.py wires it
            ch.target.on_mgmt_response = ch.initiator.on_mgmt_response
    cb.target.config.define(0, 0x23, 0x1, writable=0x7)
    wrs = [wrt(1, 0x23, 0x6, be=0x1), rd(2, 0x23), rd(3, 0x10020, space=1, entity=4)]
    for w in wrs:
        a.post(w)
    now, events, frames = 0, [], 0
    for _ in range(20):
        now += 1000
        for src, dst in ((a, b), (b, a)):
            for fr in src.transmit(now):
                rec = decode(fr, path.linktype, SPEC)
                assert not [i for i in rec["issues"] if i["severity"] in ("error", "warning")]
                assert rec["fields"].get("ub.btah.taopcode_name") == "Management" or \
                    transport == "rtp"
                frames += 1
                dst.receive(fr, now)
        events += a.pop_events() + b.pop_events()
    done = {e.wr_id: e.status for e in events if hasattr(e, "wr_id")}
    assert done == {1: SUCCESS, 2: SUCCESS, 3: "mgmt_no_target"}
    assert wrs[1].result == 0x6 and frames >= 6
    assert a.idle() and b.idle()
