"""Transaction headers: BTAH/ATAH (full and compact) and the extension headers (UB 2.0 ch. 7)."""
from .core import Field as F, Header, R, register
from . import enums as E

_BTAH_DW0 = (
    F("taopcode", 8, enum=E.TAOPCODE), F("taver", 2), F("ee_bits", 2, enum=E.EE_BITS),
    F("tv_en", 1), F("poison", 1), R(1), F("ud_flag", 1), F("ini_tassn", 16))
# UB 2.0 §7.2.1: BTAH, full (8 bytes) and compact (4 bytes: DW0 only).
BTAH = register(Header("btah", "btah", "Base Transaction Header", "UB 2.0 §7.2.1", _BTAH_DW0 + (
    F("no_taack", 1), F("odr", 3, enum=E.ODR), F("mt_en", 1), F("fce", 1), F("retry", 1),
    F("alloc", 1), R(1), F("e_bit", 1), F("ini_rc_type", 2, enum=E.INI_RC_TYPE),
    F("ini_rc_id", 20))))
BTAH_C = register(Header("btah_c", "btah", "Base Transaction Header (compact)", "UB 2.0 §7.2.1",
                         _BTAH_DW0))

# UB 2.0 §7.2.2: ATAH, full (8 bytes) and compact (4 bytes).
ATAH = register(Header("atah", "atah", "ACK Transaction Header", "UB 2.0 §7.2.2", (
    F("taopcode", 8, enum=E.TAOPCODE), F("taver", 2), R(2), F("sv", 1), F("poison", 1), R(2),
    F("ini_tassn", 16), F("rspst", 3, enum=E.TA_RSPST), F("rspinfo", 5), R(2),
    F("ini_rc_type", 2, enum=E.INI_RC_TYPE), F("ini_rc_id", 20))))
ATAH_C = register(Header("atah_c", "atah", "ACK Transaction Header (compact)", "UB 2.0 §7.2.2", (
    F("taopcode", 8, enum=E.TAOPCODE), F("taver", 2), F("status", 2, enum=E.ATAH_STATUS), R(1),
    F("poison", 1), R(2), F("ini_tassn", 16))))
# ns-3-UB's ATAH keeps a 12-bit RC-ID and moves the RC type into byte 6 (dialect §6.3).
ATAH_NS3 = register(Header("atah_ns3", "atah", "ACK Transaction Header (ns-3-UB)",
                           "UB 2.0 §7.2.2", (
    F("taopcode", 8, enum=E.TAOPCODE), F("taver", 2), R(2), F("sv", 1), F("poison", 1), R(2),
    F("ini_tassn", 16), F("rspst", 3, enum=E.TA_RSPST), F("rspinfo", 5), R(8), R(2),
    F("ini_rc_type", 2, enum=E.INI_RC_TYPE), F("ini_rc_id", 12))))

# UB 2.0 §7.2.3: memory-access extension header.  TokenID sits at DW2 bits 27:8 (profile G7).
MAETAH = register(Header("maetah", "maetah", "Memory Access Extended TAH", "UB 2.0 §7.2.3", (
    F("address", 64), R(4), F("tokenid", 20), R(8), F("length", 32))))
# Compact form: Address[63:6] with affinity/SO/length code in the low bits; 64 B x 2^len_code.
MAETAH_C = register(Header("maetah_c", "maetah", "Memory Access Extended TAH (compact)",
                           "UB 2.0 §7.2.3", (
    F("address", 58, shift=6), F("affinity_hint", 2), F("so", 1), F("len_code", 3), R(12),
    F("tokenid", 20))))
# ns-3-UB's compact MAETAH: the address's low 58 bits, TokenID at 27:8 (dialect §6.6).
MAETAH_C_NS3 = register(Header("maetah_c_ns3", "maetah", "Memory Access Extended TAH "
                               "(compact, ns-3-UB)", "UB 2.0 §7.2.3", (
    F("address", 58), F("affinity_hint", 2), F("so", 1), F("len_code", 3), R(4),
    F("tokenid", 20), R(8))))
MTETAH = register(Header("mtetah", "mtetah", "Message Target Extended TAH", "UB 2.0 §7.2.4", (
    F("hint", 8), R(2), F("tgt_tc_type", 2, enum=E.TGT_TC_TYPE), F("tgt_tc_id", 20))))
TVETAH = register(Header("tvetah", "tvetah", "Token Value Extended TAH", "UB 2.0 §7.2.5", (
    F("tokenvalue", 32),)))
TAIDETAH = register(Header("taidetah", "taidetah", "Task ID Extended TAH", "UB 2.0 §7.2.6", (
    R(16), F("taid", 16))))
OFSTETAH = register(Header("ofstetah", "ofstetah", "Offset Extended TAH", "UB 2.0 §7.2.7", (
    R(8), F("offset", 24, doc="1 KiB units"))))
IMMETAH = register(Header("immetah", "immetah", "Immediate Extended TAH", "UB 2.0 §7.2.8", (
    F("immediate_data", 64), F("immediate_tokenvalue", 32), F("msg_length", 32))))
NTFETAH = register(Header("ntfetah", "ntfetah", "Notify Extended TAH", "UB 2.0 §7.2.9", (
    F("address", 64), R(4), F("notify_tokenid", 20), R(8), F("notify_tokenvalue", 32),
    F("notify_data", 64))))
UDETAH = register(Header("udetah", "udetah", "User Defined Extended TAH", "UB 2.0 §7.2.11", (
    F("ud", 32),)))
# UB 2.0 §10.4.3.1 Table 10-10: management extension header.
MGMTETAH = register(Header("mgmtetah", "mgmtetah", "Management Extended TAH",
                           "UB 2.0 §10.4.3.1", (
    F("sub_code", 4), F("code", 3, enum=E.MGMT_CODE), F("rsp", 1), F("status", 8,
                                                                     enum=E.MGMT_STATUS),
    R(4), F("pdu_length", 12, auto=True))))
