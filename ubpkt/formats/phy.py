"""Physical-layer link management blocks: the LTB bodies and the LTB trailer (UB 2.0 §3.4.1.1).

An LTB is 16 symbols: symbols 0..11 are the body (one declaration per LTB kind, Tables
3-12..3-15), symbols 12..15 the trailer (the CRC-16 over the body, then two pad symbols).  A
symbol is a byte, so bit 7 of a symbol is the first bit declared here.  Reserved bits are sent as
0 and ignored on receive.  The EEIB (§3.4.1.2, Tables 3-16..3-19) is a fixed low-frequency pattern
with no fields: nothing to declare (``ubpkt.phy.ltb.eeib`` builds it).

These blocks travel on the lanes, below the flits: no packet grammar rule leads to them;
:mod:`ubpkt.phy.ltb` encodes and decodes them through these declarations.  All LTB kinds share
the field namespace ``ub.ltb``: a name means the same field in every kind that has it.
"""
from .core import Field as F, Header, R, register
from . import enums as E

_DATA_RATE_1 = F("data_rate_support_1", 8, doc="bit n: Data Rate n supported (DR0..DR7)")
_DATA_RATE_2 = F("data_rate_support_2", 1, doc="Data Rate 8 supported")
_LINK = (
    F("link_id", 8, doc="0..254, 0xFF = NULL"), F("lane_id", 8, doc="0..7, 0xFF = NULL"),
    R(2), F("tlw", 6, enum=E.LINK_WIDTH, doc="TX link width, one-hot"),
    R(2), F("rlw", 6, enum=E.LINK_WIDTH, doc="RX link width, one-hot"),
)
_FEC_MODE = F("fec_mode", 3, enum=E.FEC_MODES, doc="FEC_Mode_Ctrl")
_FIRST_PRE_CURSOR = F("first_pre_cursor", 6, doc="PAM4 only; reserved at NRZ rates")

# UB 2.0 §3.4.1.1 Table 3-12: Discovery LTB (also sent in RXEQ_Optimize).
LTB_DISCOVERY = register(Header("ltb_discovery", "ltb", "Discovery LTB (DLTB)",
                                "UB 2.0 §3.4.1.1 Table 3-12", (
    F("type", 8, enum=E.DLTB_TYPES),
    *_LINK,
    _DATA_RATE_1,
    R(7), _DATA_RATE_2,
    R(6), F("fec_support", 2, doc="bit 0 RS(128,120) T=2, bit 1 T=4"),
    F("random_value", 7, doc="PortNego_Random_Value 1..127, 0 = NULL"),
    F("port_type", 1, enum=E.PORT_TYPE),
    R(8),
    R(4), F("fec_interleave_support", 4, doc="bit 0 x1, bit 1 x2, bit 2 x4, bit 3 x8"),
    R(2), F("max_link_width", 3, enum=E.MAX_LINK_WIDTH),
    F("rx_lane0_id", 3, enum=E.RX_LANE0_ID, doc="physical lane of logical RX lane 0"),
)))

# Table 3-13: Config LTB.
LTB_CONFIG = register(Header("ltb_config", "ltb", "Config LTB (CLTB)",
                             "UB 2.0 §3.4.1.1 Table 3-13", (
    F("type", 8, enum=E.CLTB_TYPES),
    *_LINK,
    R(8),
    R(2), F("fec_interleave", 1, doc="FEC_Interleave_Ctrl: 1 = enable"), _FEC_MODE,
    F("eq_mode", 2, enum=E.EQ_MODES),
    R(40),
)))

# Table 3-14: Retrain LTB.  EQ_Ctrl1..3 (symbols 2..4) are kept raw: their meaning depends on
# the type (Retrain.EQ_Initial: Local_HS, Local_LS, Remote_Initial_TX_Preset) and on the
# modulation (post-cursor; pre-cursor or 2nd/3rd pre-cursor; cursor).
LTB_RETRAIN = register(Header("ltb_retrain", "ltb", "Retrain LTB (RLTB)",
                              "UB 2.0 §3.4.1.1 Table 3-14", (
    F("type", 8, enum=E.RLTB_TYPES),
    R(8),
    R(2), F("eq_ctrl1", 6),
    F("eq_ctrl2", 8),
    F("eq_ctrl3", 8),
    _DATA_RATE_1,
    F("change_speed", 1), R(6), _DATA_RATE_2,
    F("fec_interleave_reject", 1), F("fec_interleave", 1, doc="FEC_Interleave_Enable"),
    F("ber_status", 2, enum=E.BER_STATUS, doc="Pre-FEC_BER_Measurement_Status"),
    F("fec_crc_reject", 1, doc="FEC/CRC_Mode_Reject"), _FEC_MODE,
    R(8),
    F("request_eq", 1, doc="Request_Equalization"), R(7),
    F("local_tx_preset", 4), R(1), F("crc_mode", 3, enum=E.LTB_CRC_MODE, doc="CRC_Mode_Ctrl"),
    R(2), _FIRST_PRE_CURSOR,
)))

# Table 3-15: Equalization LTB.  EQ_Ctrl2..4 are valid when Preset_Mode_En is 0; EQ_Ctrl2 is kept
# raw (pre-cursor at NRZ, 2nd/3rd pre-cursor at PAM4).
LTB_EQUALIZATION = register(Header("ltb_equalization", "ltb", "Equalization LTB (ELTB)",
                                   "UB 2.0 §3.4.1.1 Table 3-15", (
    F("type", 8, enum=E.ELTB_TYPES, fixed=0xD0),
    R(2), F("eq_reject", 1), R(5),
    F("tx_preset", 4), F("preset_mode", 1, doc="Preset_Mode_En"), R(1),
    F("eq_phase", 2, enum=E.EQ_PHASE, doc="Current_EQ_Phase"),
    F("eq_ctrl2", 8),
    R(2), F("post_cursor", 6),
    F("cursor", 8),
    R(2), _FIRST_PRE_CURSOR,
    R(40),
)))

# §3.4.1.1: symbols 12..15 of every LTB: CRC[7:0] (CRCL), CRC[15:8] (CRCH), two 0x5A pads.
LTB_TRAILER = register(Header("ltb_trailer", "ltb", "LTB CRC and padding", "UB 2.0 §3.4.1.1", (
    F("crc", 16, le=True, doc="CRC-16 over symbols 0..11, low byte first"),
    F("padding", 16, fixed=0x5A5A),
)))

LTB_BODIES = (LTB_DISCOVERY, LTB_CONFIG, LTB_RETRAIN, LTB_EQUALIZATION)
#: Every declaration of this module: lane-level blocks, never a layer of a decoded packet.
LTB_HEADERS = LTB_BODIES + (LTB_TRAILER,)
