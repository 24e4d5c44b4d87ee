"""Data-link headers: LPH, LBH, LCH and the DLL control-block bodies, BCRC and END (UB 2.0 ch. 4)."""
from .core import Field as F, Header, R, register
from . import enums as E

_LINK_COMMON = (
    F("crd", 1, doc="credit return in this block"), F("ack", 1, doc="retry-buffer release"),
    F("crd_vl", 4), R(1), F("vl", 4), R(1), F("cfg", 4, enum=E.CFG),
)

# UB 2.0 §4.3.2.2 Table 4-1/4-2: link packet header, 32 bits.
LPH = register(Header("lph", "lph", "Link Packet Header", "UB 2.0 §4.3.2.2", _LINK_COMMON + (
    F("rt", 2, enum=E.RT), F("plength", 14, auto=True,
                             doc="[13:10] blocks-1, [9:5] last-block flits-1, [4:0] tail"),
)))

# The LBH is the first 16 bits of the LPH, on every later DLLDB (UB 2.0 §4.3.2.2).
LBH = register(Header("lbh", "lbh", "Link Block Header", "UB 2.0 §4.3.2.2", _LINK_COMMON))

# ns-3-UB writes RT with its two bits swapped (ns3-ub-dialect §10a); the record still shows
# the spec's ub.lph.rt (derived), the raw bits are kept for byte-exact encoding.
LPH_NS3 = register(Header("lph_ns3", "lph", "Link Packet Header (ns-3-UB)", "UB 2.0 §4.3.2.2",
                          _LINK_COMMON + (F("rt_perpacket", 1), F("rt_shortest", 1),
                                          F("plength", 14, auto=True))))

_LCH_COMMON = (
    F("zero", 1, fixed=0), F("clength", 5, doc="flits - 1"), F("fixed", 6, fixed=0b100000),
    F("cfg", 4, fixed=0, enum=E.CFG), F("ctrl", 4, enum=E.CTRL), F("sub_ctrl", 4),
)
# UB 2.0 §4.3.3.1 Table 4-5: link control-block header; byte 3 depends on the block type.
LCH = register(Header("lch", "lch", "Link Control-block Header", "UB 2.0 §4.3.3.1",
                      _LCH_COMMON + (R(8),)))
# Crd_Ack: byte 3 = SD (bit 7), reserved, T (bit 0) (UB 2.0 §4.3.3.5, Fig 4-21).
LCH_CRD_ACK = register(Header("lch_crd_ack", "lch", "LCH (Crd_Ack)", "UB 2.0 §4.3.3.5",
                              _LCH_COMMON + (F("sd", 1), R(6), F("t", 1))))
# Block_Mode_Chg: byte 3 bits 3:0 = TYPE (UB 2.0 §4.3.3.8).
LCH_BLOCK_MODE = register(Header("lch_block_mode_chg", "lch", "LCH (Block_Mode_Chg)",
                                 "UB 2.0 §4.3.3.8", _LCH_COMMON + (
                                     R(4), F("type", 4, enum=E.BLOCK_MODE_TYPE))))

# Bodies of the one-flit control blocks: flit bytes 4..15 (the BCRC follows at 16..19).
CB_RESERVED = register(Header("cb_rsvd", "cb", "Control block (reserved body)", "UB 2.0 §4.3.3",
                              (R(96),)))
RETRY_REQ = register(Header("retry_req", "retry_req", "Retry_Req", "UB 2.0 §4.3.3.4", (
    R(32), F("rcvptr", 16), F("num_phy_reinit", 8), F("num_retry", 8), R(32))))
RETRY_ACK = register(Header("retry_ack", "retry_ack", "Retry_Ack", "UB 2.0 §4.3.3.4.3", (
    R(8), F("num_retry", 8), F("numfreebuf", 16), F("rdptr", 16), F("wrptr", 16), R(32))))
LANE_MANAGE = register(Header("lane_manage", "lane_manage", "Lane_Manage", "UB 2.0 §4.3.3.7", (
    F("req_id", 4, fixed=0x5), R(1), F("power_down", 1), F("change_rlw", 1), F("change_tlw", 1),
    F("rsp_id", 4, fixed=0xA), R(1), F("rx_lane_up", 1), F("rsp_rlw", 1), F("rsp_tlw", 1),
    R(2), F("tlw", 6, enum=E.LINK_WIDTH), R(2), F("rlw", 6, enum=E.LINK_WIDTH), R(32), R(32))))
# Crd_Ack: 2 flits; bytes 4..35 here, BCRC at 36..39. CRD_NUM is 16 x 6 bits, VL15 first.
CRD_ACK = register(Header("crd_ack", "crd_ack", "Crd_Ack", "UB 2.0 §4.3.3.5", (
    F("ack_num", 16), F("crd_num", 96, fmt="hex"), R(16), R(128))))
# ns-3-UB's 40-byte credit/PFC frame: same bytes, but VL0 sits in the top 6 bits of CRD_NUM.
CRD_ACK_NS3 = register(Header("crd_ack_ns3", "crd_ack", "Crd_Ack (ns-3-UB)", "UB 2.0 §4.3.3.5", (
    F("ack_num", 16), F("crd_num", 96, fmt="hex"), R(16), R(128))))
# Init block flits 0..3 after the LCH (byte offsets from the figure, UB 2.0 §4.3.3.9).
INIT = register(Header("init", "init", "Init", "UB 2.0 §4.3.3.9", (
    R(24), F("feature_id", 16), R(7), F("rxbuf_vl_share", 1), F("data_ack_grain_size", 8),
    F("ctrl_ack_grain_size", 8), F("flow_ctrl_size", 8), F("vl_enable", 16), R(8),
    F("retry_buf_depth", 16), R(16),
    R(32), F("ctrl_credit_grain_lo", 112, fmt="hex"), R(16),
    R(32), F("data_credit_grain_lo", 96, fmt="hex"), F("ctrl_credit_grain_hi", 16, fmt="hex"),
    R(16),
    R(104), F("packet_min_interval", 8), F("data_credit_grain_hi", 32, fmt="hex"), R(16))))
# Param_Exchg: PARAM_EXCHG_DATA in bytes 8..11 of every flit (UB 2.0 §4.3.3.6).  The first
# header covers flit 0 bytes 4..15; each further one runs from byte 16 of the flit before (no
# BCRC there) to byte 15 of its own flit, so the last flit's bytes 16..19 stay for the BCRC.
PARAM_EXCHG_FIRST = register(Header("param_exchg", "param_exchg", "Param_Exchg", "UB 2.0 §4.3.3.6",
                                    (R(32), F("data", 32), R(32))))
PARAM_EXCHG_MORE = register(Header("param_exchg_flit", "param_exchg", "Param_Exchg (more flits)",
                                   "UB 2.0 §4.3.3.6", (R(32), R(64), F("data", 32), R(32))))

# UB 2.0 §4.7.2 Table 4-3: block CRC at bytes 16..19 of a DLLDB's last flit.
BCRC = register(Header("bcrc", "bcrc", "Block CRC", "UB 2.0 §4.7.2", (
    R(1), F("error_flag", 1), F("crc30", 30, auto=True))))
# UB 2.0 Table 4-4: END byte (non-CRC mode).
END = register(Header("end", "end", "END", "UB 2.0 §4.3.2.3", (R(1), F("error_flag", 1), R(6))))
