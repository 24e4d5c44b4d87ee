-- The packet walk, hand-written to mirror ubpkt/dissect/ (keep the two in step).
-- Appended to the generated part of ub.lua by dissectors/gen_lua.py; it uses HDR, HF, LAYER,
-- FIRST_HF, HF_SHIFT, EX, PROFILE and the enumeration tables defined above.

local floor = math.floor
local band, bor, bxor, rshift, lshift = bit32.band, bit32.bor, bit32.bxor, bit32.rshift, bit32.lshift
local DATA = Dissector.get("data")

local TA_RESPONSES = {[0x11] = true, [0x12] = true, [0x13] = true}
local REQ_SEQ = {
  [0x00] = {"mtetah", "ofstetah", "tv"},
  [0x01] = {"mtetah", "ofstetah", "immetah", "tv"},
  [0x03] = {"maetah", "tv"},
  [0x04] = {"mtetah", "maetah", "immetah", "tv"},
  [0x05] = {"maetah", "ntfetah", "tv"},
  [0x06] = {"taid?read", "ofst?read", "maetah", "tv"},
  [0x10] = {"mgmtetah"},
  [0x14] = {"maetah", "tv", "beetah"},
  [0x15] = {"maetah"},
  [0x17] = {"maetah", "tv"},
  [0x18] = {"maetah", "tv", "beetah"},
}
for op = 0x07, 0x0F do REQ_SEQ[op] = {"taid?atomic", "maetah", "tv"} end
local RSP_SEQ = {[0x11] = {}, [0x12] = {"taid?read_response", "ofst?read_response"},
                 [0x13] = {"taid?atomic_response"}}

-- ---------------------------------------------------------------------------------------------
-- CRCs

local CRC32_T = {}
for i = 0, 255 do
  local c = i
  for _ = 1, 8 do
    if band(c, 1) == 1 then c = bxor(rshift(c, 1), 0xEDB88320) else c = rshift(c, 1) end
  end
  CRC32_T[i] = c
end

-- reflected CRC-32 (zlib's) of a ByteArray with OR-masks {offset, length, first-byte mask}
local function icrc32(ba, masks)
  local ormask = {}
  for _, m in ipairs(masks) do
    ormask[m[1]] = m[3]
    for j = m[1] + 1, m[1] + m[2] - 1 do ormask[j] = 0xFF end
  end
  local crc = 0xFFFFFFFF
  for i = 0, ba:len() - 1 do
    local b = ba:get_index(i)
    local m = ormask[i]
    if m then b = bor(b, m) end
    crc = bxor(rshift(crc, 8), CRC32_T[band(bxor(crc, b), 0xFF)])
  end
  return bxor(crc, 0xFFFFFFFF)
end

local CRC30_POLY, CRC30_MASK = 0x15A94AD5, 0x3FFFFFFF
local CRC30_T = {}
for i = 0, 255 do
  local c = lshift(i, 22)
  for _ = 1, 8 do
    if band(c, 0x20000000) ~= 0 then c = band(bxor(lshift(c, 1), CRC30_POLY), CRC30_MASK)
    else c = band(lshift(c, 1), CRC30_MASK) end
  end
  CRC30_T[i] = c
end

-- CRC30 (MSB first, preset ones) over bytes, then nbits of value (the BCRC information bits)
local function crc30(ba, value, nbits)
  local crc = CRC30_MASK
  for i = 0, ba:len() - 1 do
    crc = bxor(band(lshift(crc, 8), CRC30_MASK), CRC30_T[band(bxor(rshift(crc, 22), ba:get_index(i)), 0xFF)])
  end
  for i = nbits - 1, 0, -1 do
    local fb = band(bxor(rshift(crc, 29), rshift(value, i)), 1)
    crc = band(lshift(crc, 1), CRC30_MASK)
    if fb == 1 then crc = bxor(crc, CRC30_POLY) end
  end
  return crc
end

-- ---------------------------------------------------------------------------------------------
-- walk state and primitives

local CTX = nil   -- set while a CFG 3/4 packet hands its IP packet to Wireshark's IP dissector

local function new_state(tvb, pinfo, ptree, root, prof)
  return {tvb = tvb, pinfo = pinfo, ptree = ptree, tree = root, pos = 0, stop = tvb:len(),
          pad = 0, prof = prof, full_tah = true, tp_data = false, icrc = nil, issues = 0,
          info = {}}
end

local function problem(st, ex, msg)
  st.tree:add_proto_expert_info(ex, msg)
  st.issues = st.issues + 1
end

local function peek(st, n, at)
  local p = st.pos + (at or 0)
  if p + n > st.stop then return nil end
  return st.tvb(p, n):uint()
end

local function take(st, layer)
  local h = HDR[layer]
  if st.pos + h.size > st.stop then
    problem(st, EX.malformed, string.format("truncated %s: needs %d bytes, %d left", h.title,
                                            h.size, math.max(st.stop - st.pos, 0)))
    return nil
  end
  local v, t = h.fn(st.tvb, st.pos, st.tree, st)
  st.pos = st.pos + h.size
  return v, t
end

-- a derived value on a declared (possibly bit-masked) field
local function add_value(tree, key, range, value)
  local n = FIRST_HF[key]
  local s = HF_SHIFT[n] or 0
  if s > 0 then value = value * 2 ^ s end
  return tree:add(HF[n], range, value)
end

local function take_bytes(st, layer, key, n, zero)
  if n < 0 then n = 0 end
  if st.pos + n > st.stop then
    problem(st, EX.malformed, string.format("truncated: %d bytes expected, %d left", n,
                                            math.max(st.stop - st.pos, 0)))
    return nil
  end
  local r = st.tvb(st.pos, n)   -- n = 0 still shows the (empty) field, as ubpkt records it
  local t = st.tree:add(LAYER[layer], r)
  local it = t:add(HF[FIRST_HF[key]], r)
  st.pos = st.pos + n
  local raw = r:bytes()
  if zero then
    for i = 0, n - 1 do
      if raw:get_index(i) ~= 0 then
        it:add_proto_expert_info(EX.warn, "padding or reserved bytes are not zero")
        break
      end
    end
  end
  return raw
end

local function data(st, n)
  if n <= 0 then return end
  DATA:call(st.tvb(st.pos, n):tvb(), st.pinfo, st.ptree)
  st.pos = st.pos + n
end

local function rest_as_data(st)
  data(st, st.stop - st.pos - st.pad)
  if st.pad > 0 then
    if st.stop - st.pos >= st.pad then take_bytes(st, "ub.pad", "ub.pad.data", st.pad, true) end
    st.pad = 0
  end
end

local function note_info(st, s) st.info[#st.info + 1] = s end

-- ---------------------------------------------------------------------------------------------
-- ICRC

local function reserve_icrc(st)
  if st.stop - st.pos < 4 then
    problem(st, EX.malformed, "no room for the ICRC")
    st.icrc = nil
    return false
  end
  st.stop = st.stop - 4
  return true
end

local function finish_icrc(st)
  if st.icrc == nil then return end
  rest_as_data(st)
  if st.pos ~= st.stop then data(st, st.stop - st.pos) end
  local e = st.stop
  local r = st.tvb(e, 4)
  local stored = st.prof.icrc_byteorder == "little" and r:le_uint() or r:uint()
  local covered = st.tvb:bytes(st.icrc.start, e - st.icrc.start)
  if st.icrc.prefix then covered = st.icrc.prefix .. covered end
  local computed = icrc32(covered, st.icrc.masks)
  st.stop, st.pos = e + 4, e + 4
  local t = st.tree:add(LAYER["ub.icrc"], r)
  if st.prof.icrc_byteorder == "little" then t:add_le(HF[FIRST_HF["ub.icrc.value"]], r)
  else t:add(HF[FIRST_HF["ub.icrc.value"]], r) end
  if stored == computed then
    t:add(HF[FIRST_HF["ub.icrc.status"]], r, "good")
  else
    local it = t:add(HF[FIRST_HF["ub.icrc.status"]], r, "bad")
    t:add(HF[FIRST_HF["ub.icrc.computed"]], r, computed)
    it:add_proto_expert_info(EX.icrc_bad, string.format("ICRC 0x%08x, computed 0x%08x", stored,
                                                        computed))
    st.issues = st.issues + 1
    note_info(st, "[bad ICRC]")
  end
  st.icrc = nil
end

-- ---------------------------------------------------------------------------------------------
-- transaction layer

local tah

local function beetah(st)
  -- one BE bit per payload byte, payload 64..1024 bytes: BEETAH + payload = 9/8 payload
  local avail = st.stop - st.pos - st.pad
  local n = floor(avail * 8 / 9)
  local ok = {[64] = true, [128] = true, [256] = true, [512] = true, [1024] = true}
  if n * 9 ~= avail * 8 or not ok[n] then
    problem(st, EX.malformed, string.format("%d bytes cannot be a BEETAH plus its 64..1024-byte payload", avail))
    return false
  end
  return take_bytes(st, "ub.beetah", "ub.beetah.be", n / 8) ~= nil
end

local function management(st)
  local start = st.pos
  local v, t = take(st, "ub.mgmtetah")
  if not v then return end
  local sub, code, rsp, pdu_len = v.sub_code, v.code, v.rsp, v.pdu_length
  local names = MGMT_SUB_CODE[code] or {}
  t:add(HF[FIRST_HF["ub.mgmtetah.sub_code_name"]], st.tvb(start, 1), names[sub] or ("unknown_" .. sub))
  local avail = st.stop - st.pos - st.pad
  if pdu_len > avail then
    problem(st, EX.malformed, string.format("PDU length %d points past the packet (%d bytes)", pdu_len, avail))
    return
  end
  if pdu_len > 1024 then problem(st, EX.warn, string.format("PDU length %d exceeds 1024", pdu_len)) end
  local body_end = st.pos + pdu_len
  local h = nil
  if code == 2 then h = rsp == 1 and "ub.cfg_rsp" or "ub.cfg_req"
  elseif code == 0 and rsp == 0 then h = "ub.error_msg"
  elseif code == 1 and rsp == 0 then h = (sub == 0 or sub == 1) and "ub.link_msg" or "ub.hotplug_msg"
  elseif code == 5 and sub == 2 then h = rsp == 1 and "ub.token_check_rsp" or "ub.token_check_req"
  elseif code == 4 and sub == 7 and rsp == 0 then h = "ub.neighbour_query"
  elseif code == 6 and rsp == 0 then
    h = ({[0] = "ub.entity_reg", [1] = "ub.entity_dereg", [2] = "ub.bus_create",
          [3] = "ub.bus_destroy", [4] = "ub.cfg_complete", [5] = "ub.port_reset"})[sub]
  end
  note_info(st, names[sub] or "Management")
  local saved = st.stop
  st.stop = body_end
  if h ~= nil and pdu_len >= HDR[h].size then take(st, h) end
  st.stop = saved
  if st.pos < body_end then take_bytes(st, "ub.pdu", "ub.pdu.data", body_end - st.pos) end
end

tah = function(st)
  local p = st.prof
  local op = peek(st, 1)
  if op == nil then
    problem(st, EX.malformed, "truncated transaction header")
    return
  end
  local start = st.pos
  local seq, flags = nil, {}
  note_info(st, TAOPCODE[op] or string.format("TAOpcode 0x%02x", op))
  if TA_RESPONSES[op] and st.tp_data and st.full_tah and p.ns3_layouts then
    -- ns-3-UB sends TA responses in RTP data packets as TAH + MAETAH
    if not take(st, "ub.btah") then return end
    seq = {"maetah"}
  elseif TA_RESPONSES[op] then
    local layer = "ub.atah_c"
    if st.full_tah then layer = p.ns3_layouts and "ub.atah_ns3" or "ub.atah" end
    if not take(st, layer) then return end
    seq = RSP_SEQ[op]
  else
    local v, t = take(st, st.full_tah and "ub.btah" or "ub.btah_c")
    if not v then return end
    flags = {tv = v.tv_en, ud = v.ud_flag}
    if TAOPCODE[op] == nil then
      problem(st, EX.warn, string.format("reserved TAOpcode 0x%02x", op))
      return
    end
    if v.ud_flag == 1 then
      local u, ut = take(st, "ub.udetah")
      if not u then return end
      if op == 0x09 or op == 0x0A then
        local sub = floor(u.udf / 2 ^ 20) % 16
        local it = add_value(ut, "ub.udetah.atomic_op", st.tvb(st.pos - 4, 1), sub)
      end
    end
    seq = REQ_SEQ[op]
    if st.full_tah then
      local mt = 0
      for _, s in ipairs(seq) do if s == "mtetah" then mt = 1 end end
      if v.mt_en ~= mt then
        problem(st, EX.warn, string.format("MT_EN is %d but %s %s MTETAH", v.mt_en, TAOPCODE[op],
                                           mt == 1 and "carries" or "has no"))
      end
    end
  end
  for _, step in ipairs(seq) do
    local ok = true
    if step == "tv" then
      if flags.tv == 1 then ok = take(st, "ub.tvetah") ~= nil end
    elseif step:sub(1, 5) == "taid?" then
      if p[step:sub(6) .. "_taidetah"] then ok = take(st, "ub.taidetah") ~= nil end
    elseif step:sub(1, 5) == "ofst?" then
      if p[step:sub(6) .. "_ofstetah"] then ok = take(st, "ub.ofstetah") ~= nil end
    elseif step == "maetah" then
      if st.full_tah then
        ok = take(st, "ub.maetah") ~= nil
      else
        local m, mt = take(st, p.ns3_layouts and "ub.maetah_c_ns3" or "ub.maetah_c")
        ok = m ~= nil
        if ok then add_value(mt, "ub.maetah.length", st.tvb(st.pos - 12, 8), 64 * 2 ^ m.len_code) end
      end
    elseif step == "beetah" then
      ok = beetah(st)
    elseif step == "mgmtetah" then
      management(st)
      return
    else
      ok = take(st, "ub." .. step) ~= nil
    end
    if not ok then return end
  end
end

-- ---------------------------------------------------------------------------------------------
-- transport layer

local function ciph(st)
  st.tree:add_proto_expert_info(EX.note, "CIPH layout is a reference-profile placeholder")
  if not take(st, "ub.ciph") then return end
  local icv = st.prof.ciph_icv_len
  if st.stop - st.pos < icv then
    problem(st, EX.malformed, "no room for the ICV")
    return
  end
  take_bytes(st, "ub.ciph_protected", "ub.ciph.protected", st.stop - st.pos - icv)
  take_bytes(st, "ub.ciph_icv", "ub.ciph.icv", icv)
end

local function after_tph_nlp(st, nlp, layer, rtp)
  if nlp == 0 then
    -- TAH directly
  elseif nlp == 1 then
    if not take(st, "ub.upih32") or not take(st, "ub.eidh256") then return end
  elseif nlp == 2 and not rtp then
    if not take(st, "ub.upih16") or not take(st, "ub.eidh40") then return end
  elseif nlp == 3 then
    ciph(st)
    return
  else
    problem(st, EX.malformed, string.format("%s: reserved NLP %d", layer, nlp))
    return
  end
  tah(st)
  rest_as_data(st)
end

local function cetph(st)
  local p = st.prof
  if p.ns3_layouts then take(st, "ub.cetph_caqm_ns3")
  elseif p.cetph_variant == "ldcp" then take(st, "ub.cetph_ldcp")
  else take(st, "ub.cetph_caqm") end
end

local function rtph_or_utph(st)
  local p = st.prof
  local op = peek(st, 1)
  if op == nil then
    problem(st, EX.malformed, "truncated transport header")
    return
  end
  if op % 128 == 0 then
    local v = take(st, "ub.utph")
    if not v then return end
    note_info(st, "UTP")
    st.pad = v.padding
    if v.last == 1 then problem(st, EX.warn, "TPOpcode[7] set on a UTP packet") end
    after_tph_nlp(st, v.nlp, "ub.utph", true)
    return
  end
  local v = take(st, "ub.rtph")
  if not v then return end
  local opc, nlp = v.tpopcode, v.nlp
  note_info(st, string.format("%s PSN=%d", TPOPCODE[opc] or ("TPOpcode " .. opc), v.psn))
  st.pad = v.padding
  if v.last == 1 and opc ~= 1 then
    problem(st, EX.warn, "TPOpcode[7] (last packet) is only valid on RTP data packets")
  end
  if v.tpver ~= 0 then problem(st, EX.warn, string.format("TPVer %d (0 expected)", v.tpver)) end
  if opc == 1 then
    st.tp_data = true
    after_tph_nlp(st, nlp, "ub.rtph", true)
    return
  end
  if opc == 3 or opc == 6 then cetph(st) end
  if opc == 5 or opc == 6 then
    local s = take(st, "ub.saetph")
    if not s then return end
    local bits = SACK_BITMAP_BITS[s.bitmapsize]
    if bits == nil then
      problem(st, EX.malformed, string.format("reserved BitMapSize %d", s.bitmapsize))
      return
    end
    if take_bytes(st, "ub.saetph_bitmap", "ub.saetph.bitmap", bits / 8) == nil then return end
  end
  if opc == 8 then
    take(st, "ub.cetph_cnp")
    return
  end
  if opc == 2 or opc == 3 or opc == 5 or opc == 6 or (opc == 4 and p.ns3_layouts) then
    if opc == 4 then
      st.tree:add_proto_expert_info(EX.note, "TPOpcode 4 is reserved; ns-3-UB 1.2 uses it for TPNAK")
    end
    if p.tp_response_atah and st.stop - st.pos - st.pad >= 8 then tah(st) end
    return
  end
  problem(st, EX.warn, string.format("reserved TPOpcode 0x%x", opc))
end

local function ctph(st)
  local v = take(st, "ub.ctph")
  if not v then return end
  st.pad = v.padding
  if v.tpopcode == 1 then
    note_info(st, "CTP CNP")
    if not st.prof.ctp_cnp_cetph then return end
    take(st, "ub.cetph_cnp")
    return
  end
  if v.tpopcode ~= 0 then problem(st, EX.warn, string.format("reserved CTP opcode %d", v.tpopcode)) end
  after_tph_nlp(st, v.nlp, "ub.ctph", false)
end

-- ---------------------------------------------------------------------------------------------
-- network layer

local function cci(st, value, off, layer)
  if st.prof.cci_dont_care_on_cna and layer ~= "ub.nth" then return end
  local mode = floor(value / 2 ^ 13)
  local h = ({[0] = "ub.cci_caqm", [4] = "ub.cci_fecn", [2] = "ub.cci_fecn_rtt"})[mode] or "ub.cci_rsvd"
  st.quiet = true   -- a view of a word already checked: no reserved-bit warnings (as ubpkt)
  HDR[h].fn(st.tvb, off, st.tree, st)
  st.quiet = false
end

-- hand an IP packet to Wireshark's IP dissector; UDP 4792 (or, for ns-3-UB, any port through
-- the heuristic below) comes back to ub_udp with CTX telling it the profile
local function call_ip(st, version)
  if st.pos >= st.stop then return end
  st.pinfo.cols.info:set(table.concat(st.info, " "))
  st.handed_over = true
  CTX = {num = st.pinfo.number, prof = st.prof}
  local ok, err = pcall(function()
    Dissector.get(version == 4 and "ip" or "ipv6"):call(st.tvb(st.pos, st.stop - st.pos):tvb(),
                                                         st.pinfo, st.ptree)
  end)
  CTX = nil
  st.pos = st.stop
  if not ok then
    -- Wireshark's IP/UDP dissectors threw (a truncated or malformed carrier): keep going
    problem(st, EX.malformed, "IP packet: " .. tostring(err):gsub("^.-Dissector_call: ", ""))
  end
end

local function path_entries(raw, width, hops)
  local per_dw, out = 32 / width, {}
  for k = 0, hops - 1 do
    local d = floor(k / per_dw) * 4
    local dw = ((raw:get_index(d) * 256 + raw:get_index(d + 1)) * 256 + raw:get_index(d + 2)) * 256
               + raw:get_index(d + 3)
    out[#out + 1] = floor(dw / 2 ^ ((k % per_dw) * width)) % 2 ^ width
  end
  return out
end

local function enumeration(st)
  if not take(st, "ub.upih16") or not take(st, "ub.enum_pad") then return end
  local s = take(st, "ub.scan")
  if not s then return end
  note_info(st, "Enumeration")
  local width = ({[0] = 4, [1] = 8, [2] = 16})[s.type]
  if width == nil then
    problem(st, EX.malformed, string.format("reserved path type %d", s.type))
    return
  end
  local path_len = math.ceil(s.hops * width / 32) * 4
  for _, name in ipairs({"fwd", "ret"}) do
    if name == "fwd" or s.r == 1 then
      local start = st.pos
      local raw = take_bytes(st, "ub.scan_" .. name, "ub.scan." .. name .. "_path", path_len)
      if raw == nil then return end
      if path_len > 0 then
        for _, port in ipairs(path_entries(raw, width, s.hops)) do
          st.tree:add(HF[FIRST_HF["ub.scan." .. name .. "_ports"]], st.tvb(start, path_len), port)
        end
      end
    end
  end
  local pdu = take(st, "ub.scan_pdu")
  if not pdu then return end
  if pdu.cmd == 1 and (pdu.opcode == 2 or pdu.opcode == 3 or pdu.opcode == 4) then
    take(st, "ub.scan_cna_cfg")
  elseif pdu.cmd == 0 and pdu.opcode == 0 then
    while st.stop - st.pos - st.pad >= 2 do
      local t = take(st, "ub.scan_tlv")
      if not t then return end
      if t.length < 2 then
        problem(st, EX.malformed, string.format("TLV length %d < 2", t.length))
        return
      end
      if take_bytes(st, "ub.scan_tlv_value", "ub.scan_tlv.value", t.length - 2) == nil then return end
    end
  end
  rest_as_data(st)
end

-- a run of type/length/value items up to an end TLV or the end of the frame
local function tlvs(st, layer, value_layer, value_key, value_len, end_type)
  while st.stop - st.pos - st.pad >= HDR[layer].size do
    local t = take(st, layer)
    if not t then return end
    local n = value_len(t)
    if n < 0 then
      problem(st, EX.malformed, string.format("TLV length %d", t.tlv_len))
      return
    end
    if n > 0 and take_bytes(st, value_layer, value_key, n) == nil then return end
    if t.tlv_type == end_type then return end
  end
end

local function cfg5(st)
  local v = take(st, "ub.cfg5")
  if not v then return end
  local proto = v.protocol
  if st.prof.cfg5_icrc then
    st.icrc = {start = 4, masks = {}}
    if not reserve_icrc(st) then return end
  end
  if proto == 0x0102 then
    local ver = peek(st, 1)
    if ver ~= nil then take(st, floor(ver / 16) == 2 and "ub.ip_notify6" or "ub.ip_notify") end
  elseif proto == 0x0106 then
    local n = take(st, "ub.npic")
    if n then
      for _ = 1, n.sum do
        if not take(st, "ub.npic_entry") then break end
      end
    end
  elseif proto == 0x0109 and HDR["ub.lldp_tlv"] then
    tlvs(st, "ub.lldp_tlv", "ub.lldp_value", "ub.lldp.tlv_value", function(t) return t.tlv_len end, 0)
  elseif proto == 0x0104 and HDR["ub.lacp"] then
    if take(st, "ub.lacp") then
      tlvs(st, "ub.lacp_tlv", "ub.lacp_value", "ub.lacp.tlv_value", function(t) return t.tlv_len - 2 end, 0)
    end
  elseif proto == 0x0100 or proto == 0x0101 then
    local ver = peek(st, 1)
    if ver ~= nil and (floor(ver / 16) == 4 or floor(ver / 16) == 6) then
      call_ip(st, floor(ver / 16))
      finish_icrc(st)
      return
    end
  end
  rest_as_data(st)
  finish_icrc(st)
end

local function cna(st, width, cfg)
  local p = st.prof
  local nth_start = st.pos
  local layer
  if width == 16 then layer = p.cna_little_endian and "ub.cna16_ns3" or "ub.cna16"
  else layer = p.cna_little_endian and "ub.cna24_ns3" or "ub.cna24" end
  local v = take(st, layer)
  if not v then return end
  local nlp = v.nlp
  cci(st, v.cci, nth_start + (width == 16 and 4 or 6), layer)
  if cfg == 9 then
    if width == 16 and v.mgmt ~= 0 then problem(st, EX.warn, "Mgmt must be 0 in CFG 9") end
    if nlp ~= 0 then
      problem(st, EX.warn, string.format("NLP %d in CFG 9 (only 0, TAH, is defined)", nlp))
    end
    -- TP bypass: no transport header, no UPIH/EIDH, no ICRC
    st.full_tah = false
    tah(st)
    rest_as_data(st)
    return
  end
  st.full_tah = p.cna_tah_form == "full"
  local enum = width == 16 and nlp == 1
  if p.icrc and (not enum or p.enum_icrc) then
    local masks = width == 16 and {{4, 2, 0xFF}, {6, 1, 0xFF}} or {{6, 2, 0xFF}, {8, 1, 0xFF}}
    st.icrc = {start = nth_start, masks = masks}
    if not reserve_icrc(st) then return end
  end
  if nlp == 0 then ctph(st)
  elseif enum then enumeration(st)
  elseif nlp == 2 then
    st.full_tah = true
    rtph_or_utph(st)
  else
    problem(st, EX.malformed, string.format("reserved NLP %d", nlp))
    rest_as_data(st)
  end
  finish_icrc(st)
end

-- ---------------------------------------------------------------------------------------------
-- data-link control blocks

local function dllcb(st)
  local p = st.prof
  local cb = peek(st, 1, 2)
  if cb == nil then
    problem(st, EX.malformed, "truncated LCH")
    return
  end
  local ctrl, sub = floor(cb / 16), cb % 16
  local kind = DLLCB_TYPES[cb]
  local layer = "ub.lch"
  if kind == "Crd_Ack" then layer = "ub.lch_crd_ack"
  elseif kind == "Block_Mode_Chg" then layer = "ub.lch_block_mode_chg" end
  local v, t = take(st, layer)
  if not v then return end
  note_info(st, kind or "DLLCB")
  local flits = v.clength + 1
  t:add(HF[FIRST_HF["ub.lch.block"]], st.tvb(2, 1), kind or string.format("unknown_%d_%d", ctrl, sub))
  if kind == nil then problem(st, EX.warn, string.format("reserved CTRL/SUB_CTRL %d/%d", ctrl, sub)) end
  local size = flits * 20
  if size ~= st.stop then
    problem(st, p.ns3_layouts and EX.warn or EX.malformed,
            string.format("CLENGTH says %d flits (%d bytes), the block has %d bytes", flits, size, st.stop))
  end
  local has_bcrc = p.dllcb_bcrc
  local body_end = math.min(size, st.stop) - (has_bcrc and 4 or 0)
  local saved = st.stop
  st.stop = math.max(body_end, st.pos)
  if kind == "Crd_Ack" then
    local c, ct = take(st, p.crd_ack_vl0_first and "ub.crd_ack_ns3" or "ub.crd_ack")
    if c then
      local credits = {}
      local base = st.pos - 32 + 2   -- CRD_NUM: bytes 2..13 of the body
      for g = 0, 3 do
        local w = st.tvb(base + 3 * g, 3):uint()
        for j = 0, 3 do credits[#credits + 1] = floor(w / 2 ^ (6 * (3 - j))) % 64 end
      end
      for vl = 0, 15 do
        local val = p.crd_ack_vl0_first and credits[vl + 1] or credits[16 - vl]
        ct:add(HF[FIRST_HF["ub.crd_ack.crd_vl" .. vl]], st.tvb(base, 12), val)
      end
    end
  elseif kind == "Retry_Req" or kind == "Retry_Ack" or kind == "Lane_Manage" then
    take(st, "ub." .. kind:lower())
  elseif kind == "Init" then
    take(st, "ub.init")
  elseif kind == "Param_Exchg" then
    if take(st, "ub.param_exchg") then
      while st.stop - st.pos >= 20 do take(st, "ub.param_exchg_flit") end
    end
  elseif kind == "Null" or kind == "NOB" or kind == "Retry_Idle" or kind == "Block_Mode_Chg" then
    take(st, "ub.cb_rsvd")
  end
  if st.pos < st.stop then take_bytes(st, "ub.cb_body", "ub.cb.body", st.stop - st.pos, true) end
  st.stop = saved
  if has_bcrc and st.stop - st.pos >= 4 and size <= saved then
    local b, bt = take(st, "ub.bcrc")
    if b then
      local block = st.tvb:bytes(0, st.pos - 4)
      local calc
      if p.bcrc_covers_info then calc = crc30(block, b.rsvd1 * 2 + b.error_flag, 2)
      else calc = crc30(block, 0, 0) end
      local r = st.tvb(st.pos - 4, 4)
      if calc == b.crc30 then
        bt:add(HF[FIRST_HF["ub.bcrc.status"]], r, "good")
      else
        local it = bt:add(HF[FIRST_HF["ub.bcrc.status"]], r, "bad")
        bt:add(HF[FIRST_HF["ub.bcrc.computed"]], r, calc)
        it:add_proto_expert_info(EX.bcrc_bad, string.format("CRC30 0x%08x, computed 0x%08x", b.crc30, calc))
      end
    end
  end
end

-- ---------------------------------------------------------------------------------------------
-- a UB network packet from its LPH

local function ub_packet(st)
  local p = st.prof
  local b1 = peek(st, 1, 1)
  if b1 ~= nil and b1 % 16 == 0 then
    dllcb(st)
    return
  end
  local layer = p.lph_rt_swapped and "ub.lph_ns3" or "ub.lph"
  local v, t = take(st, layer)
  if not v then return end
  local cfg = v.cfg
  st.cfg = cfg
  if p.lph_rt_swapped then
    add_value(t, "ub.lph.rt", st.tvb(2, 1), v.rt_shortest * 2 + v.rt_perpacket)
  end
  add_value(t, "ub.lph.blocks", st.tvb(2, 1), floor(v.plength / 1024) + 1)
  add_value(t, "ub.lph.last_flits", st.tvb(2, 2), floor(v.plength / 32) % 32 + 1)
  note_info(st, "CFG" .. cfg)
  if cfg == 3 or cfg == 4 then
    local n = take(st, "ub.nth")
    if not n then return end
    cci(st, n.cci, st.pos - 6, "ub.nth")
    if n.npi == 0 then
      problem(st, p.check_npi and EX.warn or EX.note, "NPI 0 is invalid for IP packets")
    end
    local ipv = peek(st, 1)
    if ipv == nil then return end
    local want = cfg == 3 and 4 or 6
    if floor(ipv / 16) ~= want then
      problem(st, EX.malformed, string.format("CFG %d but the IP header says version %d", cfg, floor(ipv / 16)))
      return
    end
    call_ip(st, want)
  elseif cfg == 5 then cfg5(st)
  elseif cfg == 6 or cfg == 9 then cna(st, 16, cfg)
  elseif cfg == 7 then cna(st, 24, cfg)
  else
    problem(st, EX.malformed, string.format("reserved CFG value %d", cfg))
    rest_as_data(st)
  end
end

local function finish(st)
  if st.pos < st.tvb:len() then
    st.pad = 0
    data(st, st.tvb:len() - st.pos)
  end
  if #st.info > 0 and not st.handed_over then
    local text = table.concat(st.info, " ")
    if st.inner then st.pinfo.cols.info:append(" " .. text) else st.pinfo.cols.info:set(text) end
  end
end

local function dissect_native(tvb, pinfo, tree, prof)
  pinfo.cols.protocol:set("UB")
  local root = tree:add(ub, tvb())
  local st = new_state(tvb, pinfo, tree, root, prof)
  ub_packet(st)
  finish(st)
  return tvb:len()
end

-- ---------------------------------------------------------------------------------------------
-- UB over UDP (UBoE, and CFG 3/4 packets): the UDP payload from the RTPH/UTPH

local F_IP, F_IPV6, F_UDP = Field.new("ip"), Field.new("ipv6"), Field.new("udp")

local function last_of(...)
  local all = {...}
  return all[#all]
end

function ub_udp.dissector(tvb, pinfo, tree)
  local prof = PROFILE.spec
  if CTX and CTX.num == pinfo.number then prof = CTX.prof end
  pinfo.cols.protocol:set("UB")
  local root = tree:add(ub, tvb())
  local st = new_state(tvb, pinfo, tree, root, prof)
  st.inner = CTX ~= nil and CTX.num == pinfo.number
  if prof.icrc then
    -- the ICRC covers the IP header, the UDP header and the payload
    local ip4, ip6, udp = last_of(F_IP()), last_of(F_IPV6()), last_of(F_UDP())
    local ip, masks
    local udp_at = 0
    if ip4 ~= nil and (ip6 == nil or ip6.range:offset() < ip4.range:offset()) then
      ip = ip4.range:bytes()
      udp_at = ip:len()
      masks = {{1, 1, 0xFF}, {8, 1, 0xFF}, {10, 2, 0xFF}}
    elseif ip6 ~= nil then
      ip = ip6.range:bytes()
      udp_at = ip:len()
      masks = {{0, 1, 0x0F}, {1, 3, 0xFF}, {7, 1, 0xFF}}
    end
    if ip ~= nil and udp ~= nil then
      masks[#masks + 1] = {udp_at + 6, 2, 0xFF}
      st.icrc = {start = 0, prefix = ip .. udp.range:bytes(), masks = masks}
      if not reserve_icrc(st) then st.icrc = nil end
    end
  end
  rtph_or_utph(st)
  finish_icrc(st)
  finish(st)
  return tvb:len()
end

-- ---------------------------------------------------------------------------------------------
-- registration

local ub_ns3 = Proto("ub_ns3", "UnifiedBus (ns-3-UB trace)")
function ub_ns3.dissector(tvb, pinfo, tree) return dissect_native(tvb, pinfo, tree, PROFILE.ns3) end
function ub.dissector(tvb, pinfo, tree) return dissect_native(tvb, pinfo, tree, PROFILE.spec) end

local wtap_encap = DissectorTable.get("wtap_encap")
wtap_encap:add(wtap.USER0, ub_ns3)   -- LINKTYPE 147: ns-3-UB traces
wtap_encap:add(wtap.USER1, ub)       -- LINKTYPE 148: a UB network packet from its LPH
for port in pairs(PROFILE.spec.ub_udp_ports) do DissectorTable.get("udp.port"):add(port, ub_udp) end

-- ns-3-UB sends UB over UDP to any port: claim the datagram while CTX says so
ub_udp:register_heuristic("udp", function(tvb, pinfo, tree)
  if CTX and CTX.num == pinfo.number and CTX.prof.any_udp_port_is_ub then
    ub_udp.dissector(tvb, pinfo, tree)
    return true
  end
  return false
end)
