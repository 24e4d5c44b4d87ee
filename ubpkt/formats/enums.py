"""Enumerations of UB 2.0 field values (names are ubpkt's short spellings of the spec's terms)."""

# UB 2.0 §4.3.2.2 Table 4-2, App B Table B-1: LPH.CFG selects the packet type.
CFG = {0: "DLLCB", 3: "IPv4", 4: "IPv6", 5: "Mgmt_GUID", 6: "CNA16", 7: "CNA24", 9: "CNA16_Bypass"}

# UB 2.0 §5.2 Table 5-7: routing type.
RT = {0: "per_flow_all_paths", 1: "per_packet_all_paths", 2: "per_flow_shortest",
      3: "per_packet_shortest"}

# UB 2.0 §4.3.3 Table 4-6: DLLCB CTRL / SUB_CTRL pairs.
DLLCB_TYPES = {
    (0, 0): "Null", (0, 1): "NOB", (1, 0): "Retry_Idle", (1, 1): "Retry_Req", (1, 2): "Retry_Ack",
    (2, 4): "Crd_Ack", (3, 0): "Param_Exchg", (4, 1): "Lane_Manage", (5, 0): "Block_Mode_Chg",
    (0xC, 8): "Init",
}
CTRL = {0: "Null_NOB", 1: "Retry", 2: "Credit", 3: "Param_Exchg", 4: "Lane_Manage",
        5: "Block_Mode_Chg", 0xC: "Init"}

# UB 2.0 §5.3.5.1: CCI mode (bits 15:13).
CCI_MODE = {0: "CAQM", 2: "FECN_RTT", 4: "FECN"}
# UB 2.0 §5.3.5.1 (FECN in the CCI): the spec's wording, "markable, indicating ... congestion".
FECN = {0: "unmarkable", 1: "markable_light_congestion", 2: "markable_no_congestion",
        3: "markable_severe_congestion"}

# UB 2.0 §6.2.1 Table 6-2: RTPH/UTPH TPOpcode[6:0].
# The spec names one opcode for TPACK and TPNAK (RSPST tells them apart) and spells the
# congestion forms with a hyphen.
TPOPCODE = {0: "UTP", 1: "RTP_Data", 2: "TPACK/TPNAK", 3: "TPACK-CC/TPNAK-CC", 5: "TPSACK",
            6: "TPSACK-CC", 8: "CNP"}
CTP_OPCODE = {0: "CTP", 1: "CNP"}
# NLP after RTPH/UTPH and after CTPH (Table 6-2).
RTPH_NLP = {0: "TAH", 1: "UPI32_EID256", 3: "CIPH"}
CTPH_NLP = {0: "TAH", 1: "UPI32_EID256", 2: "UPI16_EID40", 3: "CIPH"}
# UB 2.0 §5.2.1: NLP in the CNA16/CNA24 NTH.
CNA_NLP = {0: "CTPH", 1: "UPIH16_ENUM", 2: "RTPH"}

# TPACK/TPNAK response status (Table 6-2) and ATAH response status (Table 7-3).
TP_RSPST = {0: "ACK", 1: "RNR", 2: "Page_Fault", 3: "Completer_Error", 5: "TA_Response"}
TA_RSPST = {0: "Success", 1: "RNR", 2: "Page_Fault", 3: "Completer_Error", 5: "Not_Persisted"}

# UB 2.0 §7.2.1 (Table 7-1) and §7.2.2 (Table 7-3): transaction opcodes.
TAOPCODE = {
    0x00: "Send", 0x01: "Send_with_immediate", 0x03: "Write", 0x04: "Write_with_immediate",
    0x05: "Write_with_notify", 0x06: "Read", 0x07: "Atomic_compare_swap", 0x08: "Atomic_swap",
    0x09: "Atomic_store", 0x0A: "Atomic_load", 0x0B: "Atomic_fetch_add", 0x0C: "Atomic_fetch_sub",
    0x0D: "Atomic_fetch_and", 0x0E: "Atomic_fetch_or", 0x0F: "Atomic_fetch_xor",
    0x10: "Management", 0x11: "TAACK", 0x12: "Read_response", 0x13: "Atomic_response",
    0x14: "Write_with_be", 0x15: "Prefetch_tgt", 0x17: "Writeback", 0x18: "Writeback_with_be",
}
TA_RESPONSES = frozenset({0x11, 0x12, 0x13})
# Reserved in UB 2.0 Table 7-1 but used by ns-3-UB (its TaOpcode enum) and umdk/URMA: decoded
# (BTAH, then the rest as payload) under the ns3 dialect and named in the reserved warning.
TAOPCODE_NS3 = {0x02: "Send_with_invalidate", 0x16: "Disconnect_SCID"}
ATOMICS = frozenset(range(0x07, 0x10))

ODR = {0: "NO", 1: "RO", 2: "SO", 4: "NO_TCO", 5: "RO_TCO", 6: "SO_TCO"}
EE_BITS = {1: "non_TEE", 3: "TEE"}
INI_RC_TYPE = {0: "SQ", 1: "SQ", 2: "Target_SC"}
TGT_TC_TYPE = {0: "TC", 1: "TC", 2: "TC_Group"}
ATAH_STATUS = {0: "Auth_OK", 1: "Auth_Fail"}
# UB 2.0 §7.4.2.3.2: Atomic_store / Atomic_load sub-operation in UDETAH[23:20].
ATOMIC_SUBOP = {0: "ADD", 1: "CLR", 2: "EOR", 3: "SET", 4: "SMAX", 5: "SMIN", 6: "UMAX", 7: "UMIN"}

# UB 2.0 §10.4.3.1 Table 10-10/10-11: management message code / sub code.
MGMT_CODE = {0: "Error", 1: "Link_Change", 2: "Configuration", 3: "VDM", 4: "Entity_Info",
             5: "Device_Security", 6: "Pooled_Resources"}
MGMT_SUB_CODE = {
    0: {0: "Correctable", 1: "Non_Fatal", 2: "Fatal"},
    1: {0: "Link_Up", 1: "Link_Down", 2: "Hot_Plug_Button", 3: "Presence_Detect_Changed"},
    2: {0: "CFG0_Read", 1: "CFG0_Write", 2: "CFG1_Read", 3: "CFG1_Write"},
    3: {0: "MCTP", 1: "UVB", 0xF: "Vendor"},
    4: {1: "Resource_Space_Info", 2: "Obtain_Entity_Info", 7: "Link_Neighbour_Query"},
    5: {1: "Device_Authentication", 2: "Token_Check_Config"},
    6: {0: "Entity_Registration", 1: "Entity_Deregistration", 2: "Bus_Instance_Create",
        3: "Bus_Instance_Destroy", 4: "Config_Completion", 5: "Port_Reset"},
}
MGMT_STATUS = {0x00: "OK", 0x01: "Unauthorized", 0x02: "No_Target", 0x03: "Bad_Code",
               0x04: "Bad_Length", 0x20: "No_Resources", 0x21: "No_Permission",
               0x22: "Bad_Address", 0x23: "Busy", 0x24: "Exists", 0x25: "Not_Exist",
               0x26: "Invalid_Parameter", 0x27: "Execution_Error", 0xFF: "Unknown"}

# UB 2.0 App F Table F-2 (plus 0x0109 LLDP as used by openEuler ub-lldpd).
CFG5_PROTOCOL = {0x0100: "DHCPv4", 0x0101: "DHCPv6", 0x0102: "IP_Notify", 0x0104: "ULAP",
                 0x0106: "NPIC", 0x0109: "LLDP"}
NPIC_OPCODE = {1: "Set", 2: "Clear"}
IP_NOTIFY_VERSION = {1: "IPv4", 2: "IPv6"}

# UB 2.0 §10.4.3.2: enumeration Scan PDU commands.
SCAN_CMD = {0: "Topology_Query", 1: "CNA_Config", 2: "CNA_Query"}
SCAN_PATH_TYPE = {0: "4bit", 1: "8bit", 2: "16bit"}

# UB 2.0 §6.2.3 SAETPH bitmap size code.
SACK_BITMAP_BITS = {0: 64, 1: 128, 2: 256, 3: 512, 4: 1024}
CNP_ECN = {0: "none", 1: "minor", 3: "severe"}

# The Linux UB link netdev's "sw_ctype" byte: the LPH CFG of the frame (UB 2.0 §4.3.2.2 Table 4-2).
UBL_CFG = {3: "IPv4", 4: "IPv6", 5: "UB network control"}
ETHERTYPE = {0x0800: "IPv4", 0x86DD: "IPv6", 0x8100: "802.1Q", 0x88A8: "802.1ad", 0x0806: "ARP"}
# Linux packet socket packet types (linux/if_packet.h), carried by SLL/SLL2 cooked captures.
SLL_PKTTYPE = {0: "unicast_to_us", 1: "broadcast", 2: "multicast", 3: "to_someone_else",
               4: "sent_by_us"}
IP_PROTO = {6: "TCP", 17: "UDP", 1: "ICMP", 58: "ICMPv6"}

# Lane_Manage / LTB link width (one-hot).
LINK_WIDTH = {0x01: "x1", 0x02: "x2", 0x04: "x4", 0x08: "x8"}
BLOCK_MODE_TYPE = {0: "REQ", 1: "ACK"}

# UB 2.0 §3.4.1.1 Tables 3-12..3-15: LTB Type (symbol 0), per LTB kind.
DLTB_TYPES = {0xA0: "discovery_active", 0xA1: "discovery_confirm", 0xE0: "rxeq_optimize"}
CLTB_TYPES = {0xB0: "config_active", 0xB1: "config_check", 0xB2: "config_confirm"}
RLTB_TYPES = {0xC0: "retrain_active", 0xC1: "retrain_confirm", 0xC2: "retrain_lp1_phy_up",
              0xC3: "retrain_eq_initial"}
ELTB_TYPES = {0xD0: "equalization"}
# Table 3-12, symbols 8 and 11: Port_Type, RX_Lane0_ID (physical lane -> code), MAX_LINK_WIDTH.
PORT_TYPE = {0: "secondary", 1: "primary"}
LANE0_CODES = {0: 0b000, 1: 0b001, 3: 0b011, 7: 0b100}
RX_LANE0_ID = {code: f"lane{lane}" for lane, code in LANE0_CODES.items()}
MAX_LINK_WIDTH = {0: "x1", 1: "x2", 2: "x4", 3: "x8"}
# Table 3-13 symbol 6 (EQ_Mode, FEC_Mode_Ctrl); Table 3-14 symbols 7 and 10.
EQ_MODES = {0: "full_eq", 1: "only_highest_rate_eq", 2: "skip_eq"}
FEC_MODES = {0: "bypass", 1: "rs_t2", 2: "rs_t4"}
BER_STATUS = {0: "not_measured", 1: "measuring", 2: "measured"}
LTB_CRC_MODE = {0: "no_crc", 1: "crc30"}
# Table 3-15 symbol 2: Current_EQ_Phase; 2 and 3 name the port that is in EQ.Active.
EQ_PHASE = {0: "coarsetune_active", 1: "coarsetune_confirm", 2: "secondary_active",
            3: "primary_active"}
