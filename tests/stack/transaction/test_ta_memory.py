"""Memory segments and the target's access check (UB 2.0 §7.2.3, §7.2.5, §11.4)."""
from __future__ import annotations

import pytest

from ubpkt.errors import UBError
from ubpkt.stack.transaction.memory import Memory, Perm


def test_check_statuses():
    m = Memory()
    m.register(0x1000, 256, tokenid=7, tokenvalue=99, perms="rw")
    m.register(0x2000, 64, tokenid=8, perms=Perm.READ)           # TokenID-only policy
    ok, err = "success", "remote_access_error"
    assert m.check(0x1000, 256, 7, 99, "w") == ok
    assert m.check(0x1000, 256, 7, 98, "w") == err               # wrong TokenValue
    assert m.check(0x1000, 256, 7, None, "r") == err             # TokenValue missing
    assert m.check(0x1000, 4, 6, 99, "r") == err                 # unknown TokenID
    assert m.check(0x1000, 257, 7, 99, "r") == err               # past the end
    assert m.check(0xFFF, 2, 7, 99, "r") == err                  # before the start
    assert m.check(0x1000, 8, 7, 99, "a") == err                 # no atomic permission
    assert m.check(0x1000, 0, 6, None, "w") == ok                # no data: no check (§7.2.5)
    assert m.check(0x2000, 64, 8, None, "r") == ok
    assert m.check(0x2000, 64, 8, 1234, "r") == ok
    assert m.check(0x2000, 1, 8, None, "w") == err


def test_backup_token_value_and_local_access():
    m = Memory()
    r = m.register(0x1000, 64, tokenid=1, tokenvalue=5, backup_tokenvalue=6)
    assert m.check(0x1000, 1, 1, 6, "r") == "success"
    assert m.check(0x1000, 1, 1, 7, "r") == "remote_access_error"
    m.write(0x1010, b"abc")
    assert m.read(0x100F, 5) == b"\0abc\0" and bytes(r.buf[16:19]) == b"abc"
    with pytest.raises(UBError):
        m.view(0x1030, 32)
    with pytest.raises(UBError):
        m.register(0x1020, 64, tokenid=2)                        # overlaps
    with pytest.raises(UBError):
        m.register(0x3000, 64, tokenid=1)                        # TokenID taken
    with pytest.raises(UBError):
        m.register(0x3000, buffer=b"read-only", tokenid=3)
    buf = bytearray(16)
    m.register(0x4000, buffer=buf, tokenid=4)
    m.write(0x4000, b"\xff")
    assert buf[0] == 0xFF
    m.deregister(4)
    assert m.region(4) is None and m.find(0x4000) is None
