"""Management PDUs: configuration messages and enumeration (UB 2.0 §10.4.3).

GUIDs and EIDs inside these PDUs are sent least-significant DW first (reference profile G15)."""
from .core import Field as F, Header, R, register
from . import enums as E

# UB 2.0 §10.4.3.1 Fig 10-38/10-39: configuration read/write request and response PDUs.
CFG_REQ = register(Header("cfg_req", "cfg_req", "Configuration request PDU", "UB 2.0 §10.4.3.1", (
    F("entity_idx", 16), R(8), F("byte_en", 4), R(4), F("req_addr", 32, doc="4-byte units"),
    R(32), F("data", 32))))
CFG_RSP = register(Header("cfg_rsp", "cfg_rsp", "Configuration response PDU", "UB 2.0 §10.4.3.1",
                          (F("data", 32), R(96))))
# UB 2.0 §10.4.3.3: error message and link up/down PDUs; hot-plug.
ERROR_MSG = register(Header("error_msg", "error_msg", "Error message PDU", "UB 2.0 §10.4.3.3", (
    R(8), F("scna", 24), F("el", 1), R(15), F("port_idx", 16))))
LINK_MSG = register(Header("link_msg", "link_msg", "Link up/down PDU", "UB 2.0 §10.4.3.3", (
    R(8), F("scna", 24), R(16), F("port_idx", 16))))
# Hot-plug: two words, Slot_idx in the low half of the first, the second reserved (Fig 10-37;
# the kernel's hot-plug message payload is 8 bytes too).
HOTPLUG_MSG = register(Header("hotplug_msg", "hotplug_msg", "Hot-plug PDU", "UB 2.0 §10.4.3.3", (
    R(16), F("slot_idx", 16), R(32))))
TOKEN_CHECK_REQ = register(Header("token_check_req", "token_check", "Token check configuration",
                                  "UB 2.0 §10.4.3.3", (R(31), F("check_en", 1))))
TOKEN_CHECK_RSP = register(Header("token_check_rsp", "token_check", "Token check response",
                                  "UB 2.0 §10.4.3.3", (R(12), F("tokenid", 20),
                                                       F("tokenvalue", 32))))
# Link Neighbor Query request (Fig 10-45): D and 7 reserved bits, Port_num (one byte), two
# reserved bytes; the 16-bit Port_idx entries follow (the PDU body).
LINK_NEIGHBOUR_QUERY = register(Header("neighbour_query", "neighbour_query",
                                       "Link neighbour query", "UB 2.0 §10.4.3.3", (
    F("d", 1), R(7), F("port_num", 8), R(16))))
# Obtaining Entity Information response (Fig 10-44): a reserved DW, MUE nums, Entity nums; then
# per MUE a DW of its end and start UE index (the list fields of grammar.PDU_LISTS).
ENTITY_INFO = register(Header("entity_info", "entity_info", "Entity information",
                              "UB 2.0 §10.4.3.3", (R(32), F("mue_nums", 16),
                                                   F("entity_nums", 16))))
# Resource Space Information Exchange (Fig 10-42/10-43).  The request's first DW holds Opcode in
# its last bit (0 obtain: 4 bytes; 1 configure: 28 bytes, the form ub.rs_info_cfg, chosen by the
# PDU length: grammar.MGMT_PDU_FORMS); the response to Opcode 0 gives size and start address of the three spaces, each
# start address low word first (SA0 then SA1, as Entity Registration's; profile G15).
RS_INFO_REQ = register(Header("rs_info_req", "rs_info", "Resource space information request",
                              "UB 2.0 §10.4.3.3", (R(31), F("opcode", 1,
                                                            enum={0: "Obtain", 1: "Configure"}))))
# The Configure request (Opcode 1, 28 bytes): the same first DW, then the three start addresses,
# each low word first (SA0 then SA1, Fig 10-42).
RS_INFO_CFG = register(Header("rs_info_cfg", "rs_info", "Resource space configuration request",
                              "UB 2.0 §10.4.3.3", (
    R(31), F("opcode", 1, enum={0: "Obtain", 1: "Configure"}), F("ers0_sa", 64, dwrev=True),
    F("ers1_sa", 64, dwrev=True), F("ers2_sa", 64, dwrev=True))))
RS_INFO_RSP = register(Header("rs_info_rsp", "rs_info", "Resource space information",
                              "UB 2.0 §10.4.3.3", (
    F("ers0_ss", 32), F("ers0_sa", 64, dwrev=True), F("ers1_ss", 32), F("ers1_sa", 64, dwrev=True),
    F("ers2_ss", 32), F("ers2_sa", 64, dwrev=True))))
# VDM for Vendor (Fig 10-41; the kernel's vdm.h): the first eight bytes repeat the sender GUID's
# Version, Type (GUID bits 95:88), then its Vendor ID and Device ID (bits 127:96), for
# verification; the vendor's data follows as PDU bytes.
VDM_VENDOR = register(Header("vdm_vendor", "vdm", "Vendor-defined message header",
                             "UB 2.0 §10.4.3.3", (F("version", 4), F("type", 4), R(24),
                                                  F("vendor_id", 16), F("device_id", 16))))
ENTITY_REG = register(Header("entity_reg", "entity_reg", "Entity registration", "UB 2.0 §10.4.5",
                             (R(1), F("upi", 15), F("entity_idx", 16), F("eid", 128, fmt="eid",
                                                                          dwrev=True),
                              F("guid", 128, fmt="guid", dwrev=True), R(8), F("cna", 24),
                              F("ueid", 128, fmt="eid", dwrev=True),
                              # resource spaces: size, then the start address low word first
                              # (as GUIDs and EIDs here; the kernel's size / low / high words)
                              F("size0", 32), F("start0", 64, dwrev=True),
                              F("size1", 32), F("start1", 64, dwrev=True),
                              F("size2", 32), F("start2", 64, dwrev=True))))
ENTITY_DEREG = register(Header("entity_dereg", "entity_dereg", "Entity deregistration",
                               "UB 2.0 §10.4.5", (F("eid", 128, fmt="eid", dwrev=True), R(24),
                                                  F("reason", 8, enum={0: "Normal",
                                                                       1: "Device_Error",
                                                                       2: "Link_Abnormal"}))))
BUS_CREATE = register(Header("bus_create", "bus_instance", "Bus-instance create",
                             "UB 2.0 §10.4.5", (F("guid", 128, fmt="guid", dwrev=True),
                                                F("eid", 128, fmt="eid", dwrev=True), R(17),
                                                F("upi", 15))))
BUS_DESTROY = register(Header("bus_destroy", "bus_instance", "Bus-instance destroy",
                              "UB 2.0 §10.4.5", (F("guid", 128, fmt="guid", dwrev=True),)))
CFG_COMPLETE = register(Header("cfg_complete", "cfg_complete", "Configuration completion",
                               # F is bit 0 of the first word (Fig 10-53)
                               "UB 2.0 §10.4.5", (R(31), F("f", 1),
                                                  F("guid", 128, fmt="guid", dwrev=True),
                                                  F("eid", 128, fmt="eid", dwrev=True))))
PORT_RESET = register(Header("port_reset", "port_reset", "Port reset notification",
                             "UB 2.0 §10.4.5", (F("port_idx", 16), R(15),
                                                F("t", 1, enum={0: "Prepare", 1: "Done"}))))

# UB 2.0 §10.4.3.2: enumeration.  After the NTH: UPIH16 then two zero bytes, the Scan Header,
# the forward and return paths (each padded to 4 bytes), then the Scan PDU.
ENUM_PAD = register(Header("enum_pad", "enum", "Enumeration padding", "UB 2.0 §10.4.3.1",
                           (R(16),)))
SCAN_HEADER = register(Header("scan", "scan", "Scan Header", "UB 2.0 §10.4.3.2", (
    R(11), F("r", 1), F("type", 4, enum=E.SCAN_PATH_TYPE), F("hops", 8), F("step", 8))))
SCAN_PDU = register(Header("scan_pdu", "scan_pdu", "Scan PDU", "UB 2.0 §10.4.3.2", (
    F("version", 8), F("cmd", 8, enum=E.SCAN_CMD), F("opcode", 8), F("slice_status", 8),
    F("msgq_id", 8), F("length", 8, doc="4-byte units"), F("msn", 16),
    F("guid", 128, fmt="guid", dwrev=True))))
SCAN_CNA_CFG = register(Header("scan_cna_cfg", "scan_pdu", "CNA configuration request",
                               "UB 2.0 §10.4.3.2", (F("port_idx", 16), R(24), F("cna", 24))))
# CNA query (Fig 10-33/10-34): the request names a port (valid for Opcode 3, port CNA), the
# response carries the CNA.
SCAN_CNA_QUERY = register(Header("scan_cna_query", "scan_pdu", "CNA query request",
                                 "UB 2.0 §10.4.3.2", (R(16), F("port_idx", 16))))
SCAN_CNA_QUERY_RSP = register(Header("scan_cna_query_rsp", "scan_pdu", "CNA query response",
                                     "UB 2.0 §10.4.3.2", (R(8), F("cna", 24))))
SCAN_TLV = register(Header("scan_tlv", "scan_tlv", "Topology TLV", "UB 2.0 §10.4.3.2 Table 10-9", (
    F("type", 8, enum={0: "Slice_info", 1: "Port_num", 2: "Port_info", 4: "Cap_info"}),
    F("length", 8))))
# Topology TLVs whose Type has a declared value (Fig 10-27..10-30): the whole TLV, Type and
# Length included (they share the scan_tlv fields).  The remote GUID is sent least-significant DW
# first, as every GUID in these PDUs (profile G15).
_TL = (F("type", 8, enum={0: "Slice_info", 1: "Port_num", 2: "Port_info", 4: "Cap_info"}),
       F("length", 8))
SCAN_SLICE_INFO = register(Header("scan_slice_info", "scan_tlv", "Slice information TLV",
                                  "UB 2.0 §10.4.3.2", _TL + (F("total_slice", 8),
                                                             F("slice_id", 8))))
SCAN_PORT_NUM = register(Header("scan_port_num", "scan_tlv", "Number of ports TLV",
                                "UB 2.0 §10.4.3.2", _TL + (F("total_num_ports", 16),
                                                           F("num_port_tlv", 16), R(16))))
SCAN_PORT_INFO = register(Header("scan_port_info", "scan_tlv", "Port information TLV",
                                 "UB 2.0 §10.4.3.2", _TL + (
    R(4), F("t", 1, enum={0: "Port", 1: "vPort"}), F("w", 1, enum={0: "Exclusive", 1: "Shared"}),
    F("b", 1, doc="boundary port"), F("s", 1, enum={0: "Link_down", 1: "Link_up"}), R(8),
    F("local_port_idx", 16), F("remote_port_idx", 16, doc="valid when S is 1"), R(32),
    F("remote_guid", 128, fmt="guid", dwrev=True, doc="GUID of Entity 0 on the neighbour"))))
SCAN_CAP_INFO = register(Header("scan_cap_info", "scan_tlv",
                                "Device capability and configuration TLV",
                                "UB 2.0 §10.4.3.2", _TL + (
    R(1), F("sup_mtu", 3), R(1), F("mtu", 3), R(7), F("da", 1, doc="device authentication"),
    R(16), F("class_code", 16))))
