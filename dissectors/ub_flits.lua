-- Flit streams in the UnifiedBus plugin: pcap link type 151 (LINKTYPE_USER4, wtap_encap USER4;
-- ubpkt.record.LINKTYPE_FLITS), records of whole 20-byte flits, consecutive records forming one
-- stream (UB 2.0 §4.3.4).  The stream is cut into blocks by their headers (§4.3.4.1): DLL control
-- blocks (LCH CFG 0, CLENGTH + 1 flits, §4.3.3) and DLL data blocks (the LPH's PLENGTH gives the
-- DLLDP's block count and last-block flits, §4.3.2.2 Table 4-1; later blocks start with an LBH).
-- Every block's BCRC (CRC30, §4.7.2) is checked; the DLLDBs of a DLLDP are reassembled into the
-- network packet (PLENGTH says where its payload ends) and handed, like every control block, to
-- the UB packet dissector of ub_dispatch.lua (UB_PACKET), so the fields are the ub.<header>.
-- <field> names ubpkt's flit-stream records use (ubpkt.dissect.flitstream).
--
-- Blocks and DLLDPs may span pcap records: the first pass (pinfo.visited false, frames in order)
-- delimits the stream and remembers, per frame, the units (DLLCBs, DLLDPs) whose last flit it
-- holds; a unit is shown in that frame, from the frame's bytes when it lies in them whole, else
-- from a "Reassembled flits" data source.  Frames with only a piece of a unit say so.
--
-- ub.lua loads this file after ub_dispatch.lua, with the same environment (the generated tables,
-- EX, HF, LAYER, PROFILE, DLLDP_CFGS, and what ub_dispatch.lua exports: UB_PACKET, LINK_ENTRIES).
-- On its own it only returns that function, as ub_dispatch.lua does.  CRC mode or non-CRC mode
-- (an END byte instead of the BCRCs) as the "Data link CRC mode" preference says (default: the
-- profile's, CRC mode).

return function(_ENV)
if setfenv then setfenv(1, _ENV) end   -- Lua 5.1: the same environment

local floor = math.floor
local byte, sub = string.byte, string.sub
-- sizes from the generated tables (ubpkt.link.plength, the header declarations)
local FLIT, MAX_FLITS = DLL_FRAMING.flit, DLL_FRAMING.max_flits
local LPH_LEN, LBH_LEN, BCRC_LEN = HDR["ub.lph"].size, HDR["ub.lbh"].size, HDR["ub.bcrc"].size
local END_LEN = HDR["ub.end"].size
local PROF = PROFILE.spec

-- BEGIN BITS
-- ---------------------------------------------------------------------------------------------
-- The BCRC's CRC30 (UB 2.0 §4.7.2: MSB first, register preset to ones, no final inversion), by
-- table, in what Lua 5.2 and 5.4 share (no bit32, no 5.3 operators).  The register is kept
-- shifted left by two as four bytes c3 (most significant) .. c0, so a byte step is four byte
-- XORs by table (XOR8) and no 32-bit operation.  tests/dissectors/test_lua_flits.py runs this
-- section in tshark's Lua, lua5.2 and lua5.4 against ubpkt.link.crc30.
local sbyte = string.byte
local FLIT_POW2 = {}
for n = 0, 32 do FLIT_POW2[n] = n == 0 and 1 or FLIT_POW2[n - 1] * 2 end
-- XOR8[a][b]: ub_dispatch.lua's byte table when ub.lua loads this file (BYTE_XOR, made once for
-- both files), else made here (this section on its own, as the tests run it)
local FXOR8 = BYTE_XOR
if FXOR8 == nil then
  FXOR8 = {}
  local X4 = {}
  for a = 0, 15 do
    X4[a] = {}
    for b = 0, 15 do
      local x, p, ra, rb = 0, 1, a, b
      for _ = 1, 4 do
        if ra % 2 ~= rb % 2 then x = x + p end
        ra, rb, p = floor(ra / 2), floor(rb / 2), p * 2
      end
      X4[a][b] = x
    end
  end
  for a = 0, 255 do
    local row, ah, al = {}, floor(a / 16), a % 16
    for b = 0, 255 do row[b] = X4[ah][floor(b / 16)] * 16 + X4[al][b % 16] end
    FXOR8[a] = row
  end
end

local function xor32(a, b)
  local r, p = 0, 1
  for _ = 1, 4 do
    r = r + FXOR8[a % 256][b % 256] * p
    a, b, p = floor(a / 256), floor(b / 256), p * 256
  end
  return r
end

local CRC30_POLY, CRC30_TOP = 0x15A94AD5, FLIT_POW2[29]
-- the table of the register shifted by two, split in bytes: Q3[x] .. Q0[x]
local Q0, Q1, Q2, Q3 = {}, {}, {}, {}
for i = 0, 255 do
  local c = i * FLIT_POW2[22]
  for _ = 1, 8 do
    if c >= CRC30_TOP then c = xor32((c - CRC30_TOP) * 2, CRC30_POLY) else c = c * 2 end
  end
  c = c * 4
  Q0[i], Q1[i], Q2[i], Q3[i] = c % 256, floor(c / 256) % 256, floor(c / 65536) % 256,
                               floor(c / 16777216)
end

-- CRC30 of the bytes s[first..last] (a Lua string), then nbits of value (the BCRC's reserved
-- bit and ERROR_FLAG, when the profile's bcrc_covers_info says they are covered)
local function flit_crc30(s, first, last, value, nbits)
  local c3, c2, c1, c0 = 255, 255, 255, 252
  local run = {sbyte(s, first, last)}
  for k = 1, #run do
    local x = FXOR8[c3][run[k]]
    c3, c2, c1, c0 = FXOR8[c2][Q3[x]], FXOR8[c1][Q2[x]], FXOR8[c0][Q1[x]], Q0[x]
  end
  local crc = floor((((c3 * 256 + c2) * 256 + c1) * 256 + c0) / 4)
  for i = nbits - 1, 0, -1 do
    local fb = (floor(crc / CRC30_TOP) + floor(value / FLIT_POW2[i])) % 2
    crc = crc % CRC30_TOP * 2
    if fb == 1 then crc = xor32(crc, CRC30_POLY) end
  end
  return crc
end
-- END BITS
-- the compiled CRC30 (ub_core's crc30 takes the same arguments) when ub_dispatch.lua loaded the
-- module and the preference ub.crc_core is on; else the Lua one above
CRC_BIND(flit_crc30, "crc30", function(fn) flit_crc30 = fn end)

-- ---------------------------------------------------------------------------------------------
-- PLENGTH (UB 2.0 §4.3.2.2 Table 4-1), as ubpkt.link.plength: PLENGTH[13:10] blocks - 1,
-- [9:5] flits of the last block - 1, [4:0] the payload bytes in the flit where it ends and
-- whether that is the last or the second-to-last flit.  crc: CRC mode (a BCRC ends every
-- block) or non-CRC mode (the END byte, byte 19 of the last flit, ends the last block only)

local function capacity(first, last, crc)   -- payload bytes of a block of 32 flits
  local header = first and LPH_LEN or LBH_LEN
  if crc then return MAX_FLITS * FLIT - header - BCRC_LEN end
  return MAX_FLITS * FLIT - header - (last and END_LEN or 0)
end
local MAX_PACKET = DLL_FRAMING.max_packet

-- the PLENGTH framing writes for a network packet of n bytes (LPH included); nil out of range
local function plength_of(n, crc)
  if n < LPH_LEN + 1 or n > MAX_PACKET[crc] then return nil end
  local remaining, blocks, first = n - LPH_LEN, 1, true
  while remaining > capacity(first, true, crc) do
    remaining, blocks, first = remaining - capacity(first, false, crc), blocks + 1, false
    -- non-CRC mode: a payload that exactly fills the blocks before ends with a block of one
    -- flit (LBH + END); PLENGTH[4:0] then points at the previous block's full last flit
    if remaining == 0 then return (blocks - 1) * 1024 + 19 end
  end
  local header = blocks == 1 and LPH_LEN or LBH_LEN
  local used = header + remaining
  local room = crc and BCRC_LEN or END_LEN   -- the BCRC at bytes 16..19, END at byte 19
  local flits = floor((used + room + FLIT - 1) / FLIT)
  local end_flit = floor((used - 1) / FLIT)
  local in_flit = used - end_flit * FLIT - (end_flit == 0 and header or 0)
  local tail
  if end_flit == flits - 1 then tail = in_flit <= 16 and in_flit - 1 or in_flit + 11
  else tail = in_flit <= 16 and in_flit + 11 or in_flit - 1 end
  return (blocks - 1) * 1024 + (flits - 1) * 32 + tail
end

-- the network packet length (LPH included) a PLENGTH value describes; nil when reserved
local function packet_length(plv, crc)
  local blocks, flits, tail = floor(plv / 1024) + 1, floor(plv / 32) % 32 + 1, plv % 32
  local where, count
  if tail <= 15 then where, count = 0, tail + 1
  elseif crc and tail <= 19 then where, count = 1, tail + 1
  elseif crc and tail >= 24 and tail <= 27 then where, count = 1, tail - 11
  elseif not crc and (tail == 17 or tail == 19) then where, count = 1, tail + 1
  elseif not crc and tail == 27 then where, count = 1, 16
  elseif not crc and tail >= 28 and tail <= 30 then where, count = 0, tail - 11
  else return nil end
  local end_flit = flits - 1 - where
  local header = blocks == 1 and LPH_LEN or LBH_LEN
  local total = LPH_LEN
  for b = 1, blocks - 1 do total = total + capacity(b == 1, false, crc) end
  if end_flit < 0 then
    -- the payload ends in the previous block's last flit (non-CRC mode, an empty last block)
    if crc or blocks == 1 or count ~= FLIT then return nil end
    return total
  end
  local last = end_flit * FLIT + count - (end_flit > 0 and header or 0)
  if last <= 0 then return nil end
  total = total + last
  if plength_of(total, crc) ~= plv then return nil end
  return total
end

-- ---------------------------------------------------------------------------------------------
-- delimiting (ubpkt.link.blocks.next_block, UB 2.0 §4.3.4.1): the kind and flits of the block at
-- s[pos + 1...] and the DLLDP still being delimited after it ({blocks to come, last flits})

local function next_block(s, pos, pending)
  local b0, b1, b2, b3 = byte(s, pos + 1, pos + 4)
  if b1 % 16 == 0 then return "cb", floor(b0 / 4) % 32 + 1, pending end
  if pending == nil then
    local plv = (b2 % 64) * 256 + b3
    local blocks, last = floor(plv / 1024) + 1, floor(plv / 32) % 32 + 1
    if blocks == 1 then return "lph", last, nil end
    return "lph", MAX_FLITS, {blocks - 1, last}
  end
  if pending[1] <= 1 then return "lbh", pending[2], nil end
  return "lbh", MAX_FLITS, {pending[1] - 1, pending[2]}
end

-- ---------------------------------------------------------------------------------------------
-- the first pass: the stream state and, per frame, the units it completes
--
-- FR[frame] = {base = stream offset of the frame's first byte, units = {unit...}, carried =
-- bytes of a block begun earlier, open = DLLDBs of an unfinished DLLDP, left = bytes carried to
-- the next frame}; a unit = {kind = "cb" | "dp", off = its first flit's stream offset, blocks =
-- {{at = offset in the unit's bytes, flits, kind}...}, flits, fpos = its place in the frame
-- when it lies in it whole (else data = its bytes), between = a DLLCB between DLLDBs}

local S, FR
local function reset()
  S = {last = 0, carry = "", base = 0, pending = nil, dp = nil}
  FR = {}
end
reset()

local function close_unit(u, fbase, flen, units)
  local parts, at, size = {}, 0, 0
  local contiguous, next_off = true, u.blocks[1].off
  for i, b in ipairs(u.blocks) do
    parts[i] = b.s
    b.s = nil
    b.at = at
    at = at + b.flits * FLIT
    if b.off ~= next_off then contiguous = false end
    next_off = b.off + b.flits * FLIT
  end
  size = at
  u.flits, u.size = floor(size / FLIT), size
  if contiguous and u.off >= fbase and u.off + size <= fbase + flen then
    u.fpos = u.off - fbase
  else
    u.data = table.concat(parts)
  end
  units[#units + 1] = u
end

local function first_pass(tvb, pinfo)
  if pinfo.number <= S.last then reset() end   -- a new capture (or a reload): start again
  S.last = pinfo.number
  local frame = tvb:raw(0, tvb:len())
  local carried = #S.carry
  local buf = S.carry .. frame
  local bstart = S.base
  local fbase = bstart + carried
  local units, pos, n = {}, 0, #buf
  local blocks_here = 0
  while n - pos >= FLIT do
    local kind, flits, after = next_block(buf, pos, S.pending)
    local size = flits * FLIT
    if n - pos < size then break end
    S.pending = after
    local b = {off = bstart + pos, flits = flits, kind = kind, s = sub(buf, pos + 1, pos + size)}
    blocks_here = blocks_here + 1
    if kind == "cb" then
      close_unit({kind = "cb", off = b.off, blocks = {b}, between = S.dp ~= nil}, fbase, #frame,
                 units)
    elseif kind == "lph" then
      S.dp = {kind = "dp", off = b.off, blocks = {b}}
      if after == nil then close_unit(S.dp, fbase, #frame, units); S.dp = nil end
    else
      local dp = S.dp
      dp.blocks[#dp.blocks + 1] = b
      if after == nil then close_unit(dp, fbase, #frame, units); S.dp = nil end
    end
    pos = pos + size
  end
  S.carry = sub(buf, pos + 1)
  S.base = bstart + pos
  FR[pinfo.number] = {base = fbase, units = units, carried = carried, left = #S.carry,
                      open = S.dp and #S.dp.blocks or 0, blocks = blocks_here}
end

-- ---------------------------------------------------------------------------------------------
-- display

local FLITS_ITEM = LAYER["ub.flits"]
local DLLDP_ITEM = LAYER["ub.dlldp"]
local function hf(key) return HF[FIRST_HF[key]] end

local function u64(x) return UInt64.new(x % 4294967296, floor(x / 4294967296)) end

local function problem(item, ex, msg) item:add_proto_expert_info(ex, msg) end

-- the BCRC of the block at ut(at, size): its fields, the check, the verdict
local function bcrc(ut, raw, at, size, tree)
  local st = {issues = 0, raw = raw}   -- the header readers take values from st.raw
  local v, t = HDR["ub.bcrc"].fn(ut, at + size - BCRC_LEN, tree, st)
  local info = v.rsvd1 * 2 + v.error_flag
  local calc
  if PROF.bcrc_covers_info then calc = flit_crc30(raw, at + 1, at + size - BCRC_LEN, info, 2)
  else calc = flit_crc30(raw, at + 1, at + size - BCRC_LEN, 0, 0) end
  local r = ut(at + size - BCRC_LEN, BCRC_LEN)
  if calc == v.crc30 then
    t:add(hf("ub.bcrc.status"), r, "good")
  else
    local it = t:add(hf("ub.bcrc.status"), r, "bad")
    t:add(hf("ub.bcrc.computed"), r, calc)
    problem(it, EX.bcrc_bad, string.format("BCRC mismatch: CRC30 0x%08x, computed 0x%08x",
                                           v.crc30, calc))
  end
  return v
end

-- a field of the LBH at raw[at + 1..]: the LPH's first two bytes are laid out alike (UB 2.0
-- §4.3.2.2.3), so this reads the LPH's CFG and VL too
local LBH_FIELD = {}
for _, f in ipairs(HDR["ub.lbh"].fields) do LBH_FIELD[f.name] = f end
local function lbh_value(raw, at, name)
  local f = LBH_FIELD[name]
  local w = byte(raw, at + 1) * 256 + byte(raw, at + 2)
  return floor(w / FLIT_POW2[16 - f.bit - f.bits]) % FLIT_POW2[f.bits]
end

-- a DLLDP: its blocks (LBHs, BCRCs, padding), PLENGTH, the reassembled network packet
local function show_dlldp(u, ut, raw, ftree)
  local nblocks = #u.blocks
  local d = ftree:add(DLLDP_ITEM, ut(0, u.size))
  d:add(hf("ub.dlldp.blocks"), ut(0, u.size), nblocks)
  d:add(hf("ub.dlldp.flits"), ut(0, u.size), u.flits)
  local cfg, vl = lbh_value(raw, 0, "cfg"), lbh_value(raw, 0, "vl")
  local plv = (byte(raw, 3) % 64) * 256 + byte(raw, 4)
  local crc = crc_mode_of(PROF)
  local expected = packet_length(plv, crc)
  if not DLLDP_CFGS[cfg] then
    problem(d, EX.warn, string.format("reserved CFG value %d in a DLLDP", cfg))
  end
  if expected == nil then
    problem(d, EX.malformed, string.format("PLENGTH 0x%04x uses a reserved encoding", plv))
  end
  local parts, carried, eflag = {sub(raw, 1, LPH_LEN)}, 0, 0
  for i, b in ipairs(u.blocks) do
    local size = b.flits * FLIT
    local last = i == nblocks
    local hlen = i == 1 and LPH_LEN or LBH_LEN
    if i > 1 then
      local st = {issues = 0, raw = raw}
      local lv = HDR["ub.lbh"].fn(ut, b.at, d, st)
      if lv.cfg ~= cfg then
        problem(d, EX.malformed, string.format("LBH CFG %d differs from the LPH's %d", lv.cfg, cfg))
      end
      if lv.vl ~= vl then
        problem(d, EX.malformed, string.format("LBH VL %d differs from the LPH's %d (all DLLDBs "
                                               .. "of a DLLDP share one VL, UB 2.0 §4.5.1)", lv.vl, vl))
      end
    end
    local trailer = BCRC_LEN
    if crc then
      local v = bcrc(ut, raw, b.at, size, d)
      if v.error_flag ~= 0 and not last then
        problem(d, EX.warn, "ERROR_FLAG set in a block that is not the DLLDP's last block")
      end
      if last then eflag = v.error_flag end
    elseif last then        -- non-CRC mode: END, byte 19 of the DLLDP's last flit (Table 4-4)
      trailer = END_LEN
      local st = {issues = 0, raw = raw}
      eflag = HDR["ub.end"].fn(ut, b.at + size - END_LEN, d, st).error_flag
    else
      trailer = 0
    end
    local room = size - hlen - trailer
    local take = room
    if last and expected ~= nil then
      take = math.max(0, math.min(expected - LPH_LEN - carried, room))
    end
    parts[#parts + 1] = sub(raw, b.at + hlen + 1, b.at + hlen + take)
    carried = carried + take
    local pad = sub(raw, b.at + hlen + take + 1, b.at + size - trailer)
    if pad:find("[^\0]") then
      problem(d, EX.warn, "flit padding bytes are not zero")
    end
  end
  d:add(hf("ub.dlldp.error_flag"), ut(u.size - (crc and BCRC_LEN or END_LEN), 1), eflag)
  if eflag ~= 0 then
    problem(d, EX.warn, "ERROR_FLAG: the sender marked this DLLDP bad; it is to be dropped "
                        .. "above the data link (UB 2.0 §4.8.3)")
  end
  local packet = table.concat(parts)
  if expected ~= nil and #packet ~= expected then
    problem(d, EX.malformed, string.format("PLENGTH describes %d bytes, %d were carried",
                                           expected, #packet))
  end
  d:append_text(string.format(": %d block%s, %d flits, packet of %d bytes", nblocks,
                              nblocks == 1 and "" or "s", u.flits, #packet))
  if nblocks == 1 then return ut(0, #packet):tvb() end   -- the packet's bytes are the block's
  return ByteArray.new(packet, true):tvb("Reassembled UB packet")
end

local function col_text(pinfo)
  local ok, text = pcall(tostring, pinfo.cols.info)
  return ok and text or ""
end

local function dissect_flits(tvb, pinfo, tree)
  if not pinfo.visited then first_pass(tvb, pinfo) end
  local fr = FR[pinfo.number]
  pinfo.cols.protocol:set("UB")
  local root = tree:add(ub, tvb(), "UnifiedBus flit stream")
  if fr == nil then        -- revisited without a first pass here (cannot happen in Wireshark)
    root:add_proto_expert_info(EX.note, "flit stream state lost: reload the capture")
    return tvb:len()
  end
  local notes = {}
  if fr.carried > 0 then
    root:add_proto_expert_info(EX.note, string.format("%d bytes of a block begun in an earlier "
                                                      .. "frame", fr.carried))
  end
  local infos = {}
  for i, u in ipairs(fr.units) do
    local ut
    if u.fpos then ut = tvb(u.fpos, u.size):tvb()
    else ut = ByteArray.new(u.data, true):tvb("Reassembled flits") end
    local raw = ut:raw(0, u.size)
    -- one UnifiedBus item per unit, followed by its packet's: the tree (and the order of
    -- repeated fields) goes unit by unit, as ubpkt's records do
    local ur = tree:add(ub, ut(0, u.size), "UnifiedBus flit-stream unit")
    local ft = ur:add(FLITS_ITEM, ut(0, u.size))
    ft:add(hf("ub.flit.offset"), ut(0, u.size), u64(u.off))
    ft:add(hf("ub.flit.index"), ut(0, u.size), u64(floor(u.off / FLIT)))
    ft:add(hf("ub.flit.count"), ut(0, u.size), u.flits)
    ft:add(hf("ub.dll.kind"), ut(0, u.size), u.kind == "cb" and "DLLCB" or "DLLDP")
    ft:append_text(string.format(" %s, flits %d..%d", u.kind == "cb" and "DLLCB" or "DLLDP",
                                 floor(u.off / FLIT), floor(u.off / FLIT) + u.flits - 1))
    if not u.fpos then ft:append_text(" (reassembled across frames)") end
    ur:append_text(string.format(" %d: %s, flits %d..%d", i, u.kind == "cb" and "DLLCB" or "DLLDP",
                                 floor(u.off / FLIT), floor(u.off / FLIT) + u.flits - 1))
    local ptvb = ut
    if u.kind == "cb" then
      if u.between then problem(ft, EX.note, "DLLCB between the DLLDBs of a DLLDP") end
    else
      ptvb = show_dlldp(u, ut, raw, ur)
    end
    pinfo.cols.info:clear()
    UB_PACKET(ptvb, pinfo, tree, i)
    infos[#infos + 1] = col_text(pinfo)
  end
  if fr.open > 0 then
    notes[#notes + 1] = string.format("%d DLLDB%s of a DLLDP continued later", fr.open,
                                      fr.open == 1 and "" or "s")
  end
  if fr.left > 0 and fr.blocks == 0 and #fr.units == 0 then
    notes[#notes + 1] = string.format("%d bytes of a block continued later", fr.left)
  elseif fr.left > 0 then
    notes[#notes + 1] = string.format("%d bytes of the next block", fr.left)
  end
  for _, s in ipairs(notes) do root:add_proto_expert_info(EX.note, s) end
  pinfo.cols.protocol:set("UB")
  local text = table.concat(infos, "; ")
  if #notes > 0 then text = text .. (text ~= "" and " " or "") .. "[" .. table.concat(notes, ", ") .. "]" end
  pinfo.cols.info:set(text)
  root:append_text(string.format(": %d unit%s", #fr.units, #fr.units == 1 and "" or "s"))
  return tvb:len()
end

-- ---------------------------------------------------------------------------------------------
-- registration: `ub` on wtap_encap USER4 (the link-type table of ub_dispatch.lua, so expert items
-- are filed under UB), and `ub_flits` as a name for Decode As and Wireshark's DLT User table

LINK_ENTRIES[wtap.USER4] = dissect_flits
DissectorTable.get("wtap_encap"):add(wtap.USER4, ub)
local ub_flits = Proto("ub_flits", "UnifiedBus flit stream")
ub_flits.dissector = dissect_flits
end
