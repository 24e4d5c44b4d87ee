-- The packet walk of the UnifiedBus plugin: a generic interpreter of the grammar tables that
-- dissectors/gen_lua.py writes into ub.lua from ubpkt/formats/grammar.py (START, NEXT, TPH,
-- VARIANTS, COMPACT_TAH, TA_REQUEST_PREFIX, TA_FLAGS, TA_*_HEADERS, MGMT_PDUS, ICRC_COVERAGE,
-- ICRC_MASKS, PADDING...), the procedures the grammar names (PROCEDURES: lengths and repetitions
-- a table cannot say) and the per-layer checks (expert infos, derived values).
--
-- ub.lua loads this file at run time from its own folder and calls the function it returns with
-- the generated tables (HDR, HF, LAYER, FIRST_HF, HF_SHIFT, EX, PROFILE, the grammar, the
-- enumerations; the standard library behind them) as its environment.  On its own (Wireshark
-- loads every .lua file of its plugins folder) this file only returns that function: it
-- registers nothing.
-- It holds no copy of a grammar table: which header follows which is only in NEXT
-- (tests/dissectors/test_lua_grammar.py checks).

return function(_ENV)
if setfenv then setfenv(1, _ENV) end   -- Lua 5.1: the same environment

local floor = math.floor
local DATA = Dissector.get("data")

-- Besides the grammar's END (the rest is payload) and RESERVED, a walk ends with STOP: decoding
-- could not go on (truncated, malformed) or a procedure took the rest of the packet.
local STOP = "!stop"

-- BEGIN BITS
-- ---------------------------------------------------------------------------------------------
-- bit operations on unsigned 32-bit values with what Lua 5.2 (Wireshark 4.0) and Lua 5.4
-- (Wireshark 4.4+, no bit32 library, no 5.3 operators usable in 5.2 source) share: arithmetic
-- and byte tables.  XOR8[a][b], AND8[a][b], OR8[a][b] are the byte results; the 32-bit helpers
-- go byte by byte.  Values stay integers in 5.4 (math.floor returns one).
-- (tests/dissectors/test_lua_bits.py runs this section in lua5.2 and lua5.4 where installed.)

local POW2 = {}
for n = 0, 62 do POW2[n] = n == 0 and 1 or POW2[n - 1] * 2 end   -- integers in 5.4 (2 ^ n is a float)
local TWO32 = POW2[32]

local XOR8, AND8, OR8 = {}, {}, {}
do
  local X4, A4, O4 = {}, {}, {}   -- nibble tables first, the byte tables from them
  for a = 0, 15 do
    X4[a], A4[a], O4[a] = {}, {}, {}
    for b = 0, 15 do
      local x, n, o, p, ra, rb = 0, 0, 0, 1, a, b
      for _ = 1, 4 do
        local la, lb = ra % 2, rb % 2
        if la ~= lb then x = x + p end
        if la + lb == 2 then n = n + p end
        if la + lb >= 1 then o = o + p end
        ra, rb, p = floor(ra / 2), floor(rb / 2), p * 2
      end
      X4[a][b], A4[a][b], O4[a][b] = x, n, o
    end
  end
  for a = 0, 255 do
    local ah, al = floor(a / 16), a % 16
    local xa, aa, oa = {}, {}, {}
    for b = 0, 255 do
      local bh, bl = floor(b / 16), b % 16
      xa[b] = X4[ah][bh] * 16 + X4[al][bl]
      aa[b] = A4[ah][bh] * 16 + A4[al][bl]
      oa[b] = O4[ah][bh] * 16 + O4[al][bl]
    end
    XOR8[a], AND8[a], OR8[a] = xa, aa, oa
  end
end

local function op32(T8, a, b)
  a, b = a % TWO32, b % TWO32
  local r, p = 0, 1
  for _ = 1, 4 do
    local la, lb = a % 256, b % 256
    r = r + T8[la][lb] * p
    a, b, p = floor(a / 256), floor(b / 256), p * 256
  end
  return r
end
local function band(a, b) return op32(AND8, a, b) end
local function bor(a, b) return op32(OR8, a, b) end
local function bxor(a, b) return op32(XOR8, a, b) end
BYTE_XOR = XOR8   -- for ub_flits.lua (loaded next with this environment)
local function rshift(a, n) return floor((a % TWO32) / POW2[n]) end
local function lshift(a, n) return (a % TWO32) * POW2[n] % TWO32 end

-- ---------------------------------------------------------------------------------------------
-- CRCs

local CRC32_T = {}
for i = 0, 255 do
  local c = i
  for _ = 1, 8 do
    if c % 2 == 1 then c = bxor(rshift(c, 1), 0xEDB88320) else c = rshift(c, 1) end
  end
  CRC32_T[i] = c
end
-- a CRC table split in bytes: four tables of byte 0 (least significant) .. byte 3 of each entry
local function split_bytes(T)
  local b0, b1, b2, b3 = {}, {}, {}, {}
  for i = 0, 255 do
    local c = T[i]
    b0[i], b1[i], b2[i], b3[i] = c % 256, floor(c / 256) % 256, floor(c / 65536) % 256,
                                 floor(c / 16777216)
  end
  return b0, b1, b2, b3
end
-- the CRC is kept as four bytes c0 (least significant) .. c3, so a step is four byte XORs by
-- table and no 32-bit operation
local T0, T1, T2, T3 = split_bytes(CRC32_T)

-- CRC-32 steps over bytes k..last of s from the state c0..c3: eight bytes a string.byte call
-- into locals (no table: nothing for the garbage collector), one table step a byte
local function crc_bytes(c0, c1, c2, c3, s, k, last)
  local byte, X = string.byte, XOR8
  local x
  while k + 7 <= last do
    local a, b, c, d, e, f, g, h = byte(s, k, k + 7)
    x = X[c0][a]; c0, c1, c2, c3 = X[c1][T0[x]], X[c2][T1[x]], X[c3][T2[x]], T3[x]
    x = X[c0][b]; c0, c1, c2, c3 = X[c1][T0[x]], X[c2][T1[x]], X[c3][T2[x]], T3[x]
    x = X[c0][c]; c0, c1, c2, c3 = X[c1][T0[x]], X[c2][T1[x]], X[c3][T2[x]], T3[x]
    x = X[c0][d]; c0, c1, c2, c3 = X[c1][T0[x]], X[c2][T1[x]], X[c3][T2[x]], T3[x]
    x = X[c0][e]; c0, c1, c2, c3 = X[c1][T0[x]], X[c2][T1[x]], X[c3][T2[x]], T3[x]
    x = X[c0][f]; c0, c1, c2, c3 = X[c1][T0[x]], X[c2][T1[x]], X[c3][T2[x]], T3[x]
    x = X[c0][g]; c0, c1, c2, c3 = X[c1][T0[x]], X[c2][T1[x]], X[c3][T2[x]], T3[x]
    x = X[c0][h]; c0, c1, c2, c3 = X[c1][T0[x]], X[c2][T1[x]], X[c3][T2[x]], T3[x]
    k = k + 8
  end
  while k <= last do
    x = X[c0][byte(s, k)]; c0, c1, c2, c3 = X[c1][T0[x]], X[c2][T1[x]], X[c3][T2[x]], T3[x]
    k = k + 1
  end
  return c0, c1, c2, c3
end

-- the masked bytes of an OR-mask list: positions (1-based, ascending) and the value each is
-- ORed with, made once a list (the lists are made once a layout)
local MASKED = setmetatable({}, {__mode = "k"})
local function masked_bytes(masks)
  local m = MASKED[masks]
  if m ~= nil then return m end
  local ormask, pos = {}, {}
  for _, mk in ipairs(masks) do
    ormask[mk[1] + 1] = mk[3]
    for j = mk[1] + 2, mk[1] + mk[2] do ormask[j] = 0xFF end
  end
  for p in pairs(ormask) do pos[#pos + 1] = p end
  table.sort(pos)
  m = {pos = pos, value = ormask}
  MASKED[masks] = m
  return m
end

-- reflected CRC-32 (zlib's) of a Lua string with OR-masks {offset, length, first-byte mask}
-- (the ICRC's hop-varying fields: the first byte ORed with the mask, the rest all ones)
local function icrc32_str(s, masks)
  local c0, c1, c2, c3 = 255, 255, 255, 255
  local n, k = #s, 1
  local m = masked_bytes(masks)
  local X = XOR8
  for _, p in ipairs(m.pos) do
    if p > n then break end
    c0, c1, c2, c3 = crc_bytes(c0, c1, c2, c3, s, k, p - 1)
    local x = X[c0][OR8[string.byte(s, p)][m.value[p]]]
    c0, c1, c2, c3 = X[c1][T0[x]], X[c2][T1[x]], X[c3][T2[x]], T3[x]
    k = p + 1
  end
  c0, c1, c2, c3 = crc_bytes(c0, c1, c2, c3, s, k, n)
  return (255 - c0) + (255 - c1) * 256 + (255 - c2) * 65536 + (255 - c3) * 16777216
end

-- the same of a ByteArray (or anything with raw())
local function icrc32(ba, masks) return icrc32_str(ba:raw(), masks) end

-- the ICRC of a .. b .. c:sub(first, last) (a, b: strings or nil; first, last: string.sub's),
-- the mask positions over that concatenation: a UBoE frame's IP and UDP header bytes, then its
-- UDP payload up to the ICRC.  Here the concatenation is made and icrc32_str (as bound: Lua or
-- compiled) runs over it; ub_core's icrc32_parts, bound in its place, makes no string.
local function icrc32_parts(masks, a, b, c, first, last)
  return icrc32_str((a or "") .. (b or "") .. c:sub(first or 1, last or -1), masks)
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

-- the CRC30 table split in bytes (C30_3: the top six bits), as the CRC-32's T0..T3
local C30_0, C30_1, C30_2, C30_3 = split_bytes(CRC30_T)

-- CRC30 (MSB first, preset ones) over bytes (a ByteArray; its raw string unpacked 4096 bytes a
-- string.byte call), then nbits of value (the BCRC information bits).  The state is kept as four
-- bytes c3 (six bits) .. c0: a step shifts them one byte up and XORs the table's bytes in.
local function crc30(ba, value, nbits)
  local s, X = ba:raw(), XOR8
  local c3, c2, c1, c0 = 63, 255, 255, 255     -- CRC30_MASK
  for first = 1, #s, 4096 do
    local run = {string.byte(s, first, math.min(first + 4095, #s))}
    for k = 1, #run do
      local i = X[c3 * 4 + floor(c2 / 64)][run[k]]
      c3, c2, c1, c0 = X[c2 % 64][C30_3[i]], X[c1][C30_2[i]], X[c0][C30_1[i]], C30_0[i]
    end
  end
  local crc = ((c3 * 256 + c2) * 256 + c1) * 256 + c0
  for i = nbits - 1, 0, -1 do
    local fb = (floor(crc / 536870912) + floor(value / POW2[i])) % 2
    crc = crc % 536870912 * 2
    if fb == 1 then crc = bxor(crc, CRC30_POLY) end
  end
  return crc
end
-- END BITS

-- the recording of a layout template's sample frame (layout templates, below): nil except while
-- the walk reads a frame whose layout has no template yet
local TRACE = nil
local select_arg = select   -- Lua's select (the walk's select(rule, st, v) is another, below)

-- ---------------------------------------------------------------------------------------------
-- The compiled CRCs (dissectors/ub_core.c, built by `python3 dissectors/build_core.py`): when
-- ub_core-<5.2|5.4>.so for the running Lua (_VERSION) sits in the plugin's folder (this file's,
-- as ub.lua found it) and loads, icrc32_str and crc30 above (and ub_flits.lua's flit_crc30,
-- through CRC_BIND) are bound to its C functions, which return what the Lua ones return
-- (tests/dissectors/test_lua_core.py); otherwise the Lua ones stay.  The preference
-- ub.crc_core (on by default) switches back to Lua; CRC_STATUS (the preference's description
-- and a note on the preferences page) says which runs and why.

local CRC_CORE, CRC_STATUS
do
  local here = debug.getinfo(1, "S").source:match("^@(.-)[^/\\]*$") or ""
  local path = here .. "ub_core-" .. (_VERSION:match("%d+%.%d+") or _VERSION) .. ".so"
  local f = io.open(path, "rb")
  if f == nil then
    CRC_STATUS = "Lua CRCs (no compiled " .. path .. ")"
  else
    f:close()
    local open, err = package.loadlib(path, "luaopen_ub_core")
    local ok, mod = false, err
    if open ~= nil then ok, mod = pcall(open) end
    if ok and type(mod) == "table" and type(mod.icrc32) == "function"
       and type(mod.crc30) == "function" then
      CRC_CORE = mod
      CRC_STATUS = "compiled CRCs from " .. path
    else
      CRC_STATUS = "Lua CRCs (" .. path .. " does not load: " .. tostring(mod) .. ")"
    end
  end
end

-- the bound names: {lua = the Lua function, core = the C one (nil without the module), set =
-- assigns the name}; use_crc_core(on) binds every one to its C or Lua function
local CRC_BINDINGS = {}
local function use_crc_core(on)
  for _, b in ipairs(CRC_BINDINGS) do b.set(on and b.core or b.lua) end
end
-- exported for ub_flits.lua: CRC_BIND(lua_fn, core_name, set) binds a name to the module's
-- core_name function (called with the same arguments) when the module is in use
function CRC_BIND(lua_fn, core_name, set)
  local b = {lua = lua_fn, core = CRC_CORE and CRC_CORE[core_name], set = set}
  CRC_BINDINGS[#CRC_BINDINGS + 1] = b
  b.set(b.core or b.lua)
end
CRC_BIND(icrc32_str, "icrc32", function(fn) icrc32_str = fn end)
CRC_BIND(icrc32_parts, "icrc32_parts", function(fn) icrc32_parts = fn end)
do
  local lua_crc30 = crc30
  local b = {lua = lua_crc30, set = function(fn) crc30 = fn end}
  if CRC_CORE then
    local core_crc30 = CRC_CORE.crc30
    b.core = function(ba, value, nbits)        -- a ByteArray: its bytes, then the bits
      local s = ba:raw()
      return core_crc30(s, 1, #s, value, nbits)
    end
  end
  CRC_BINDINGS[#CRC_BINDINGS + 1] = b
  b.set(b.core or b.lua)
end

-- ---------------------------------------------------------------------------------------------
-- headers: each HDR[layer] is data (size, record-key base, title, fields: {name, bit offset,
-- bits, kind, HF index} plus shift/rsvd/fixed/dw; gen_lua.Gen.field_entry); one function reads
-- them all

-- bits of a <= 4-byte big-endian range: drop rshift low bits, keep nbits
local function bf(r, rs, nbits)
  return floor(r:uint() / POW2[rs]) % POW2[nbits]
end

-- a 64-bit value from <= 8 bytes; keep_shift > 0: keep the low zero bits
local function u64bits(r, rs, nbits, keep_shift)
  local x = r:uint64()
  local mask = UInt64(0xFFFFFFFF, 0xFFFFFFFF):rshift(64 - nbits):lshift(rs)
  x = x:band(mask)
  if keep_shift > 0 then return x end
  return x:rshift(rs)
end

local byte = string.byte

-- a big-endian bit field from the packet's bytes (raw, a Lua string; p: the field's first byte,
-- 1-based): the same value as bf on its range, with no TvbRange and no call into Wireshark
local function raw_bits(raw, p, span, rs, nbits)
  local a, b, c, d, e = byte(raw, p, p + span - 1)
  local x = a
  if b then x = x * 256 + b end
  if c then x = x * 256 + c end
  if d then x = x * 256 + d end
  if e then x = x * 256 + e end
  return floor(x / POW2[rs]) % POW2[nbits]
end

-- a little-endian unsigned integer of span bytes from the packet's bytes (as TvbRange:le_uint)
local function raw_le(raw, p, span)
  local x = 0
  for i = p + span - 1, p, -1 do x = x * 256 + byte(raw, i) end
  return x
end

-- any bit set among nbits from bit bitoff of the header at off (raw: the packet's bytes)
local function nonzero(raw, off, bitoff, nbits)
  local b0 = off + floor(bitoff / 8)
  local b1 = off + floor((bitoff + nbits - 1) / 8)
  for i = b0, b1 do
    local b = byte(raw, i + 1)
    if i == b0 then b = b % POW2[8 - bitoff % 8] end
    if i == b1 then b = floor(b / POW2[(8 - (bitoff + nbits) % 8) % 8]) end
    if b ~= 0 then return true end
  end
  return false
end

-- the hex of a range, its 32-bit words in reverse order
local function hex_dwrev(r)
  local h, out = r:bytes():tohex(true), {}
  for i = #h - 7, 1, -8 do out[#out + 1] = h:sub(i, i + 7) end
  return table.concat(out)
end

-- ubpkt's text forms of a 128-bit identifier (32 hex digits)
local TEXT_FORMS = {
  eid = function(h)
    local g = {}
    for i = 1, 32, 4 do g[#g + 1] = h:sub(i, i + 3) end
    return table.concat(g, ":")
  end,
  -- the openEuler kernel's text form: vendor-device-version-type-reserved-sequence
  guid = function(h)
    return string.format("%s-%s-%s-%s-%s-%s", h:sub(1, 4), h:sub(5, 8), h:sub(9, 9),
                         h:sub(10, 10), h:sub(11, 16), h:sub(17, 32))
  end,
  text = function(h) return h end,
}

local function text_form(kind)
  local form = TEXT_FORMS[kind]
  return function(t, r, f)
    local text = form(f.dw and hex_dwrev(r) or r:bytes():tohex(true))
    return t:add(HF[f.hf], r, text), text
  end
end

-- kind -> add(subtree, range, field) -> tree item, value (nil: the record keeps no number)
local FIELD_KINDS = {
  uint = function(t, r, f) return t:add(HF[f.hf], r), bf(r, f.rshift, f.bits) end,
  scaled = function(t, r, f)
    local x = bf(r, f.rshift, f.bits)
    return t:add(HF[f.hf], r, x * POW2[f.shift]), x
  end,
  le = function(t, r, f) return t:add_le(HF[f.hf], r), r:le_uint() end,
  u64 = function(t, r, f) return t:add(HF[f.hf], r), r:uint64() end,
  -- 64 bits, low 32-bit word first on the wire
  u64_dw = function(t, r, f)
    local v = r:range(4, 4):uint64():lshift(32) + r:range(0, 4):uint64()
    return t:add(HF[f.hf], r, v), v
  end,
  u64_bits = function(t, r, f)
    local x = u64bits(r, f.rshift, f.bits, f.shift or 0)
    return t:add(HF[f.hf], r, x), x
  end,
  raw = function(t, r, f) return t:add(HF[f.hf], r) end,
  eid = text_form("eid"),
  guid = text_form("guid"),
  text = text_form("text"),
}

-- a tree nobody looks at, for reading a value of the kinds Wireshark reads (u64, EID text...)
local NOTREE = {}
function NOTREE:add() return self end

-- the value of field f of the header at off: integer fields (f.wire "be": big-endian bits,
-- "le": little-endian) from the packet's bytes (raw), the other kinds through their reader
local function value_of(f, raw, tvb, off)
  local wire = f.wire
  if wire == "be" then return raw_bits(raw, off + f.byte + 1, f.span, f.rshift, f.bits)
  elseif wire == "le" then return raw_le(raw, off + f.byte + 1, f.span)
  elseif f.kind == "raw" then return nil end
  local _, x = f.add(NOTREE, tvb(off + f.byte, f.span), f)
  return x
end

-- the expert infos of a field just read: reserved bits set, a value the spec fixes
local function field_checks(h, f, x, it, raw, off, st)
  if f.rsvd and not st.quiet and
     (f.wire == "be" and x ~= 0 or f.wire ~= "be" and nonzero(raw, off, f.bit, f.bits)) then
    it:add_proto_expert_info(EX.rsvd, "Reserved bits set: " .. h.base .. "." .. f.name)
    st.issues = st.issues + 1
  end
  if f.fixed ~= nil and x ~= f.fixed then
    it:add_proto_expert_info(EX.fixed, string.format("%s.%s: the spec fixes 0x%x", h.base,
                                                     f.name, f.fixed))
  end
end

local RANGES = {}   -- read_fields' TvbRanges by field position (fields on the same bytes share one)

-- read the header at off into tree: its subtree and its values by field name.  Integer fields
-- take their value from the packet's bytes (st.raw) and let Wireshark read the range for the
-- tree.  With st.fast (nobody looks at the tree: no -V, no -T fields, no filter on ub) nothing
-- is added and the values are read when asked for (v[name], h.lazy; the checked fields at once).
local function read_fields(h, tvb, off, tree, st)
  local raw = st.raw
  if st.fast then
    local v
    if TRACE then
      v = setmetatable({raw, off, tvb}, h.lazy_trace)
      if not st.quiet then TRACE.headers[#TRACE.headers + 1] = {h, off} end
    else
      v = setmetatable({raw, off, tvb}, h.lazy)
    end
    -- the reserved bits first all at once (h.rsvd_bytes): a field at a time only when one is set
    local any = false
    if not st.quiet then
      for _, rb in ipairs(h.rsvd_bytes) do
        if AND8[byte(raw, off + rb[1])][rb[2]] ~= 0 then any = true break end
      end
    end
    for _, f in ipairs(any and h.checked or h.fixed) do
      field_checks(h, f, v[f.name], tree, raw, off, st)
    end
    return v, tree
  end
  local t = tree:add(LAYER[h.layer], tvb(off, h.size))
  local v = {}
  for i, f in ipairs(h.fields) do
    local r = f.same and RANGES[f.same] or tvb(off + f.byte, f.span)
    RANGES[i] = r
    local it, x
    local wire = f.wire
    if wire == "be" then
      x = raw_bits(raw, off + f.byte + 1, f.span, f.rshift, f.bits)
      if f.shift then it = t:add(HF[f.hf], r, x * POW2[f.shift])
      else it = t:add(HF[f.hf], r) end
    elseif wire == "le" then
      x = raw_le(raw, off + f.byte + 1, f.span)
      it = t:add_le(HF[f.hf], r)
    else
      it, x = f.add(t, r, f)
    end
    v[f.name] = x
    if f.rsvd or f.fixed ~= nil then field_checks(h, f, x, it, raw, off, st) end
  end
  return v, t
end

-- a ProtoField of a header field (integers in decimal, with their value string and mask)
-- integers in decimal, or in hex where the generator says so (gen_lua.py shows_hex: addresses,
-- CNAs, EIDs, GUIDs, CRCs, tokens)
local function protofield(key, ctor, label, vs, mask, hex)
  if ctor:sub(1, 4) == "uint" then
    return ProtoField[ctor](key, label, hex and base.HEX or base.DEC, vs, mask)
  end
  return ProtoField[ctor](key, label)
end

for layer, h in pairs(HDR) do
  h.layer, h.at = layer, {}
  LAYER[layer] = ProtoField.none(layer, h.title)
  for _, f in ipairs(h.fields) do
    f.name, f.bit, f.bits, f.kind, f.hf = f[1], f[2], f[3], f[4], f[5]
    if f[6] then HF[f.hf] = protofield(h.base .. "." .. f.name, f[6], f[7], f.vs, f.mask, f.hex) end
    f.byte = floor(f.bit / 8)
    f.span = floor((f.bit + f.bits + 7) / 8) - f.byte
    f.rshift = f.span * 8 - f.bit % 8 - f.bits
    f.add = assert(FIELD_KINDS[f.kind], "no field kind " .. f.kind)
    f.wire = (f.kind == "uint" or f.kind == "scaled") and "be" or f.kind == "le" and "le" or nil
    h.at[f.name] = f.bit
  end
  -- for read_fields: the first field on the same bytes (one TvbRange), the fields with checks,
  -- the values read on demand (v[1], v[2], v[3]: the packet's bytes, the offset, the Tvb)
  -- h.fixed: the fields with a fixed value; h.rsvd_bytes: {byte (1-based), mask} of the reserved bits
  local byname, first, rsvd = {}, {}, {}
  h.checked, h.fixed, h.rsvd_bytes = {}, {}, {}
  for i, f in ipairs(h.fields) do
    local key = f.byte * 64 + f.span
    if first[key] then f.same = first[key] else first[key] = i end
    byname[f.name] = f
    if f.rsvd or f.fixed ~= nil then h.checked[#h.checked + 1] = f end
    if f.fixed ~= nil then h.fixed[#h.fixed + 1] = f end
    if f.rsvd then
      for b = f.bit, f.bit + f.bits - 1 do rsvd[b] = true end
    end
  end
  local masks = {}
  for b in pairs(rsvd) do
    local at = floor(b / 8) + 1
    masks[at] = (masks[at] or 0) + POW2[7 - b % 8]
  end
  for at, mask in pairs(masks) do h.rsvd_bytes[#h.rsvd_bytes + 1] = {at, mask} end
  table.sort(h.rsvd_bytes, function(a, b) return a[1] < b[1] end)
  h.lazy = {__index = function(v, name)
    local f = byname[name]
    if f == nil then return nil end
    local x = value_of(f, v[1], v[3], v[2])
    if x ~= nil then v[name] = x end
    return x
  end}
  -- while a template's sample is read: every value read is recorded (the template guards it),
  -- nothing is cached (so every read is seen)
  h.lazy_trace = {__index = function(v, name)
    local f = byname[name]
    if f == nil then return nil end
    if TRACE then TRACE.reads[#TRACE.reads + 1] = {v[2], f} end
    return value_of(f, v[1], v[3], v[2])
  end}
  h.byname = byname
  h.lazy.hdr, h.lazy_trace.hdr = h, h
  h.fn = function(tvb, off, tree, st) return read_fields(h, tvb, off, tree, st) end
end

-- the derived fields, the byte runs and the layers without a declared header
for _, rows in pairs(DERIVED_HF) do
  for _, d in ipairs(rows) do HF[d[1]] = protofield(d[2], d[3], d[4], d[5], nil, d.hex) end
end
for layer, title in pairs(EXTRA_LAYERS) do
  LAYER[layer] = ProtoField.none(layer, title)
  local key = BYTE_RUNS[layer]
  if key then HF[FIRST_HF[key]] = ProtoField.bytes(key, title) end
end

-- the analysis fields (ubpkt.formats.derived, layer ub.analysis; filled in by analyse() below):
-- the frame links are framenums (clickable), the response time a relative time
local AF = {
  request_in = ProtoField.framenum("ub.analysis.request_in", "Request in frame", base.NONE,
                                   frametype.REQUEST),
  response_in = ProtoField.framenum("ub.analysis.response_in", "Response in frame", base.NONE,
                                    frametype.RESPONSE),
  response_time = ProtoField.relative_time("ub.analysis.response_time", "Response time (seconds)"),
  response_time_ns = ProtoField.uint64("ub.analysis.response_time_ns", "Response time (ns)"),
  no_response = ProtoField.uint8("ub.analysis.no_response", "Request without a response (missing TAACK)"),
  psn_gap = ProtoField.uint32("ub.analysis.psn_gap", "PSNs missing before this one"),
  out_of_order = ProtoField.uint8("ub.analysis.out_of_order", "Fills an earlier PSN gap"),
  retransmission = ProtoField.uint8("ub.analysis.retransmission", "PSN seen before"),
  duplicate = ProtoField.uint8("ub.analysis.duplicate", "Same PSN as the previous packet"),
  psn_backwards = ProtoField.uint32("ub.analysis.psn_backwards", "PSN behind the highest by"),
  tpnak = ProtoField.uint8("ub.analysis.tpnak", "TPNAK (negative TP acknowledgement)"),
  ack_in = ProtoField.framenum("ub.analysis.ack_in", "Acknowledged by the TP response in frame",
                               base.NONE, frametype.ACK),
  ack_to = ProtoField.framenum("ub.analysis.ack_to", "Acknowledges the data packet in frame",
                               base.NONE, frametype.REQUEST),
  acked_frames = ProtoField.uint32("ub.analysis.acked_frames",
                                   "Data frames this response acknowledges first"),
  ack_time = ProtoField.relative_time("ub.analysis.ack_time", "Acknowledgement time (seconds)"),
  ack_time_ns = ProtoField.uint64("ub.analysis.ack_time_ns", "Acknowledgement time (ns)"),
}
local AF_ORDER = {"request_in", "response_in", "response_time", "response_time_ns", "no_response",
                  "psn_gap", "out_of_order", "retransmission", "duplicate", "psn_backwards",
                  "tpnak", "ack_in", "ack_to", "acked_frames", "ack_time", "ack_time_ns"}
local AF_LAYER = ProtoField.none("ub.analysis", "UB analysis")

do
  local all, n = {}, 0
  for _ in pairs(HF) do n = n + 1 end
  for i = 1, n do all[i] = assert(HF[i], "no ProtoField HF[" .. i .. "]") end
  for _, f in pairs(LAYER) do all[#all + 1] = f end
  for _, k in ipairs(AF_ORDER) do all[#all + 1] = AF[k] end
  all[#all + 1] = AF_LAYER
  ub.fields = all
end

-- ---------------------------------------------------------------------------------------------
-- walk state and primitives

local CTX = nil   -- set while a CFG 3/4 packet hands its IP packet to Wireshark's IP dissector

-- the preferences the dissection reads, kept here (ub.prefs.<name> is a call into Wireshark):
-- the registered defaults, then ub.prefs_changed's copy (Wireshark calls it when one changes,
-- also for tshark -o at start-up)
local PREFS = {verify_icrc = true, profile = 0, crc_mode = 0, templates = true}

-- whether the data link runs in CRC mode (UB 2.0 §4.3.2.2: a BCRC ends every block) or non-CRC
-- mode (§4.3.2.3: the END byte of Table 4-4 ends a DLLDP's last block and a DLLCB) under profile
-- p: the profile's crc_mode unless the "Data link CRC mode" preference forces one (the link's
-- mode is set by the PHY's training, not written in the blocks)
function crc_mode_of(p)
  if PREFS.crc_mode == 1 then return true end
  if PREFS.crc_mode == 2 then return false end
  return p.crc_mode
end

-- A tree item stand-in for a dissection whose tree nobody looks at (tshark without -V or
-- -T fields/json/pdml and with no filter, tap or column on a ub field; the first pass of -2):
-- adding is a no-op, so the walk reads values only; expert items go on the real root item (made
-- for the first of them), so the expert infos (tshark -z expert, the expert tap) are the same.
local SKIP = {}
SKIP.__index = SKIP
function SKIP:add() return self end
SKIP.add_le = SKIP.add
function SKIP:set_generated() end
function SKIP:append_text() end
function SKIP:add_proto_expert_info(ex, msg)
  if self.root == nil then self.root = self.ptree:add(ub, self.tvb()) end
  self.root:add_proto_expert_info(ex, msg)
  return self
end

local UB_HANDLE   -- the Dissector "ub" (set at registration, below)

-- whether Wireshark wants ub's tree items: the tree is visible or a ub field (or ub itself) is
-- referenced by a filter, a tap, a column or a Field extractor (TreeItem:referenced, 3.6+;
-- an older Wireshark always gets the tree)
local function wanted(ptree, handle)
  if ptree.referenced == nil or handle == nil then return true end
  return ptree:referenced(handle)
end

local function new_state(tvb, pinfo, ptree, prof, raw)
  -- vals: the values of the first header of each base read so far (the record keys a Switch on
  -- an earlier header looks up); compact: the packet uses the compact TAH forms (VARIANTS);
  -- section: a UB section is open (after a CNA NTH, a CFG-5 header or UDP), closed by the
  -- payload, the padding and the ICRC; raw: the packet's bytes (values, ICRC); fast: no tree
  -- items (SKIP), want_data: the payload still goes to Wireshark's data dissector
  local fast = not wanted(ptree, UB_HANDLE)
  local tree   -- the UnifiedBus root item
  if fast then tree = setmetatable({ptree = ptree, tvb = tvb}, SKIP) else tree = ptree:add(ub, tvb()) end
  return {tvb = tvb, pinfo = pinfo, ptree = ptree, tree = tree,
          pos = 0, stop = tvb:len(), raw = raw or tvb:raw(), fast = fast,
          want_data = not fast or wanted(ptree, DATA),
          pad = 0, prof = prof, vals = {}, compact = false, tp_data = false, section = false,
          icrc = nil, issues = 0, info = {}}
end

local function problem(st, ex, msg)
  st.tree:add_proto_expert_info(ex, msg)
  st.issues = st.issues + 1
end

local function peek(st, n, at)
  local p = st.pos + (at or 0)
  if p + n > st.stop then return nil end
  if TRACE then TRACE.peeks[#TRACE.peeks + 1] = {p, n} end
  return st.tvb(p, n):uint()
end

local interpret   -- below: the INTERPRETING fields of a header just read

local function take(st, layer)
  local h = HDR[layer]
  if st.pos + h.size > st.stop then
    problem(st, EX.malformed, string.format("truncated %s: needs %d bytes, %d left", h.title,
                                            h.size, math.max(st.stop - st.pos, 0)))
    return nil
  end
  local v, t = h.fn(st.tvb, st.pos, st.tree, st)
  if INTERPRETING[layer] then interpret(st, INTERPRETING[layer], v, t, st.pos, h.size) end
  st.pos = st.pos + h.size
  return v, t
end

-- a derived value on a declared (possibly bit-masked) field
local function add_value(tree, key, range, value)
  local n = FIRST_HF[key]
  local s = HF_SHIFT[n] or 0
  if s > 0 then value = value * POW2[s] end
  return tree:add(HF[n], range, value)
end

-- the record fields computed from one field (INTERPRETING), as ubpkt.formats.derived.interpret
interpret = function(st, its, v, t, start, size)
  for _, it in ipairs(its) do
    local on = true
    for _, w in ipairs(it.when) do
      if not w[2][v[w[1]]] then on = false break end
    end
    if on then
      local x, value = v[it.field], nil
      if it.kind == "bits" then value = floor(x / POW2[it.arg[1]]) % (it.arg[2] + 1)
      elseif it.kind == "pow2" then
        -- up to 2 x 2^31: past 32 bits, a 64-bit field takes a UInt64
        local n = it.arg * POW2[x]
        value = UInt64.new(n % 4294967296, floor(n / 4294967296))
      elseif it.kind == "plus" then value = x + it.arg
      else value = it.arg[x] or ("reserved_" .. x) end
      add_value(t, it.key, st.tvb(start, size), value)
    end
  end
end

-- a run of n raw bytes as a layer with its one hex field (BYTE_RUNS)
local function take_bytes(st, layer, n, zero)
  -- without a tree only the zero check reads the bytes: a template guards them
  if TRACE and zero and n > 0 then TRACE.peeks[#TRACE.peeks + 1] = {st.pos, n} end
  if n < 0 then n = 0 end
  if st.pos + n > st.stop then
    problem(st, EX.malformed, string.format("truncated: %d bytes expected, %d left", n,
                                            math.max(st.stop - st.pos, 0)))
    return nil
  end
  local r = st.tvb(st.pos, n)   -- n = 0 still shows the (empty) field, as ubpkt records it
  local t = st.tree:add(LAYER[layer], r)
  local it = t:add(HF[FIRST_HF[BYTE_RUNS[layer]]], r)
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
  if st.want_data then DATA:call(st.tvb(st.pos, n):tvb(), st.pinfo, st.ptree) end
  st.pos = st.pos + n
end

-- what is left before the padding (PADDING) and the ICRC is payload
local function rest_as_data(st)
  data(st, st.stop - st.pos - st.pad)
  if st.pad > 0 then
    if st.stop - st.pos >= st.pad then
      take_bytes(st, PADDING.pad_layer, st.pad, true)
    else
      -- the padding count reaches back into the headers (UB 2.0 §6.2.1)
      problem(st, EX.warn, string.format("Padding %d points into the headers (%d bytes after them)",
                                         st.pad, math.max(st.stop - st.pos, 0)))
    end
    st.pad = 0
  end
end

local function note_info(st, s) st.info[#st.info + 1] = s end

-- a value that only goes into the Info line (a template reads it per frame: not a guard)
local function free_value(v, name)
  local t = TRACE
  TRACE = nil
  local x = v[name]
  TRACE = t
  return x
end

-- ---------------------------------------------------------------------------------------------
-- the grammar

local LOGICAL = {}          -- concrete layer -> logical layer (VARIANTS)
for layer, choices in pairs(VARIANTS) do
  for _, c in ipairs(choices) do LOGICAL[c.layer] = layer end
end
local ICRC_BY_START = {}    -- logical layer -> its ICRC_COVERAGE entry
for _, c in ipairs(ICRC_COVERAGE) do ICRC_BY_START[c.start] = c end
local PADDED = {}           -- the headers whose PADDING.field counts the padding
for _, layer in ipairs(PADDING.headers) do PADDED[layer] = true end

-- a record key (ub.<prefix>.<field>) of a header read earlier in this packet
local KEY_PARTS = {}   -- record key -> {base, field name} (false: not a record key), once a key
local function earlier(st, key)
  local parts = KEY_PARTS[key]
  if parts == nil then
    local base, name = key:match("^(.*)%.([^.]+)$")
    parts = base and {base, name} or false
    KEY_PARTS[key] = parts
  end
  local v = parts and st.vals[parts[1]]
  return v and v[parts[2]]
end

-- the MAETAH's Length in bytes: the full form's field, or the compact form's LEN code
-- (64 bytes << code, as ubpkt derives ub.maetah.length); nil without a MAETAH
local function maetah_length(st)
  local length = earlier(st, "ub.maetah.length")
  if length == nil and earlier(st, "ub.maetah.len_code") ~= nil then
    length = 64 * POW2[earlier(st, "ub.maetah.len_code")]
  end
  return length
end

-- ubpkt.formats.checks: a field (own, or a record key of an earlier header) whose value the
-- spec restricts when the conditions hold
local CHECK_EX = {warning = EX.warn, error = EX.malformed, info = EX.note}
local DOTTED = {}   -- key -> whether it names an earlier header's field (has a dot), once a key
local function check_value(st, v, key)
  local dotted = DOTTED[key]
  if dotted == nil then dotted = key:find(".", 1, true) ~= nil; DOTTED[key] = dotted end
  if dotted then return earlier(st, key) end
  return v[key]
end
local function check_values(st, checks, v)
  for _, c in ipairs(checks) do
    local on = true
    for _, w in ipairs(c.when) do
      local x = check_value(st, v, w[1])
      if x == nil or not w[2][x] then on = false break end
    end
    local x = on and check_value(st, v, c.field)
    if x ~= nil and x ~= false and not c.values[x] then
      problem(st, CHECK_EX[c.severity], (c.message:gsub("{v}", tostring(x))))
    end
  end
end

-- the case of a rule for value x, else its default (a case may be false: COMPACT_TAH)
local function case(rule, x)
  local t = nil
  if x ~= nil then t = rule.cases[x] end
  if t == nil then return rule.default end
  return t
end

-- follow Switch, Peek and Knob rules to a layer, a procedure, END, RESERVED (or a plain value:
-- COMPACT_TAH's booleans); v: the values of the header just read (a Switch on a plain field
-- name reads it there)
local function select(rule, st, v)
  while type(rule) == "table" do
    if rule.switch then
      local key, x = rule.switch, nil
      if key:find(".", 1, true) then x = earlier(st, key) elseif v then x = v[key] end
      if type(x) == "number" then
        st.selector = {key, x}
        rule = case(rule, x)
      else
        rule = rule.default
      end
    elseif rule.peek then
      local b = peek(st, 1, rule.peek)
      if b == nil then rule = rule.missing
      else rule = case(rule, floor(AND8[b][rule.mask % 256] / POW2[rule.shift])) end
    else
      rule = case(rule, st.prof[rule.knob])
    end
  end
  return rule
end

-- the concrete header of a logical layer under the profile and the packet's TAH form (VARIANTS)
local function resolve(layer, st)
  local choices = VARIANTS[layer]
  if choices == nil then return layer end
  for _, c in ipairs(choices) do
    local match = true
    for name, want in pairs(c.when) do
      local have
      if name == "compact" then have = st.compact else have = st.prof[name] end
      if have ~= want then match = false break end
    end
    if match then return c.layer end
  end
  return layer
end

-- The ICRC (UB 2.0 §5.3.7) --------------------------------------------------------------------

local function reserve_icrc(st)
  if st.stop - st.pos < 4 then
    problem(st, EX.malformed, "no room for the ICRC")
    st.icrc = nil
    return false
  end
  st.stop = st.stop - 4
  return true
end

-- whether an ICRC_COVERAGE entry holds in this packet: its profile knobs, its unless keys, its
-- exemptions {own field, value, knob} (none when the starting header's field has that value and
-- the profile knob is off; v: that header's values, nil for an IP start)
local function covers(c, st, v)
  for name, want in pairs(c.knobs) do
    if st.prof[name] ~= want then return false end
  end
  for _, u in ipairs(c.unless) do
    if earlier(st, u[1]) == u[2] then return false end
  end
  for _, e in ipairs(c.exempt) do
    if v ~= nil and v[e[1]] == e[2] and not st.prof[e[3]] then return false end
  end
  return true
end

-- a header that starts a UB section (ICRC_COVERAGE): reserve the ICRC if the coverage holds;
-- false when there is no room for it (the walk stops)
local function open_section(st, layer, concrete, start, v)
  local c = ICRC_BY_START[layer]
  if c == nil then return true end
  if covers(c, st, v) and not c.needs_ub_udp then
    st.icrc = {start = start, masks = ICRC_MASKS[concrete] or {}}
    if not reserve_icrc(st) then return false end
  end
  st.section = true
  return true
end

-- close the section: payload, padding, then the ICRC check
local function finish_section(st)
  rest_as_data(st)
  if st.icrc == nil then return end
  if st.pos ~= st.stop then data(st, st.stop - st.pos) end
  local e = st.stop
  local r = st.tvb(e, 4)
  local stored = st.prof.icrc_byteorder == "little" and r:le_uint() or r:uint()
  local computed
  if PREFS.verify_icrc then    -- (prefix: a UBoE frame's IP and UDP header bytes)
    computed = icrc32_parts(st.icrc.masks, st.icrc.prefix, nil, st.raw, st.icrc.start + 1, e)
  end
  if TRACE then   -- (prefixed: the coverage starts at the IP header, a UBoE frame's)
    TRACE.icrc = {start = st.icrc.start, finish = e, masks = st.icrc.masks,
                  prefixed = st.icrc.prefix ~= nil}
  end
  st.stop, st.pos = e + 4, e + 4
  local t = st.tree:add(LAYER["ub.icrc"], r)
  if st.prof.icrc_byteorder == "little" then t:add_le(HF[FIRST_HF["ub.icrc.value"]], r)
  else t:add(HF[FIRST_HF["ub.icrc.value"]], r) end
  if not PREFS.verify_icrc then       -- preference: show the ICRC, do not check it
  elseif stored == computed then
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

-- The walk ------------------------------------------------------------------------------------

local AFTER = {}   -- logical layer -> check(st, v, t, start, concrete), run after the header
local PROC = {}    -- "@procedure" -> proc(st, v) -> next target[, values it applies to]

-- read a logical layer: its concrete header, its checks, the section it may open
local function read(st, layer)
  local concrete = resolve(layer, st)
  local h = HDR[concrete]
  if h == nil then
    problem(st, EX.malformed, "no declared header " .. concrete)
    return nil
  end
  local start = st.pos
  local v, t = take(st, concrete)
  if not v then return nil end
  if st.vals[h.base] == nil then st.vals[h.base] = v end
  if CHECKS[concrete] then check_values(st, CHECKS[concrete], v) end
  st.last = concrete
  if PADDED[layer] then st.pad = v[PADDING.field] end
  if COMPACT_TAH[layer] ~= nil then st.compact = select(COMPACT_TAH[layer], st, v) end
  local check = AFTER[layer]
  if check then check(st, v, t, start, concrete) end
  if not open_section(st, layer, concrete, start, v) then return nil end
  return v, t
end

local function reserved(st)
  local s = st.selector
  if s == nil then
    problem(st, EX.malformed, "reserved value: what follows is unknown")
    return
  end
  -- a reserved TPOpcode is a warning (ubpkt), any other reserved selector an error
  local ex = s[1]:match("tpopcode$") and EX.warn or EX.malformed
  problem(st, ex, string.format("%s: reserved %s %d", st.last or "?", s[1], s[2]))
end

-- walk from a target (a rule, a layer, a procedure, END, RESERVED, STOP); v: the values of the
-- header read just before (for rules on its fields)
local function walk(st, target, v)
  while true do
    target = select(target, st, v)
    if target == END then
      rest_as_data(st)
      return
    elseif target == STOP then
      return
    elseif target == RESERVED then
      reserved(st)
      rest_as_data(st)
      return
    elseif target:sub(1, 1) == "@" then
      local proc = PROC[target]
      if proc == nil then
        problem(st, EX.malformed, "no implementation of the grammar procedure " .. target)
        return
      end
      target, v = proc(st, v)
    else
      v = read(st, target)
      if v == nil then return end
      target = NEXT[target] or END
    end
  end
end

-- ---------------------------------------------------------------------------------------------
-- per-layer checks, derived values and walk state

-- the CCI word viewed in its mode (UB 2.0 §5.2.1, CCI_MODE)
local CCI_VIEWS = {[0] = "ub.cci_caqm", [4] = "ub.cci_fecn", [2] = "ub.cci_fecn_rtt"}

local function cci(st, value, off, layer)
  if st.prof.cci_dont_care_on_cna and layer ~= "ub.nth" then return end
  local h = CCI_VIEWS[floor(value / POW2[13])] or "ub.cci_rsvd"
  st.quiet = true   -- a view of a word already checked: no reserved-bit warnings (as ubpkt)
  HDR[h].fn(st.tvb, off, st.tree, st)
  st.quiet = false
end

-- UB 2.0 §4.3.2.2.2: PLENGTH in DLLDBs and flits; the ns-3-UB RT bits
AFTER["ub.lph"] = function(st, v, t, start, concrete)
  if concrete == "ub.lph_ns3" then
    add_value(t, "ub.lph.rt", st.tvb(start + 2, 1), v.rt_shortest * 2 + v.rt_perpacket)
  end
  add_value(t, "ub.lph.blocks", st.tvb(start + 2, 1), floor(v.plength / 1024) + 1)
  add_value(t, "ub.lph.last_flits", st.tvb(start + 2, 2), floor(v.plength / 32) % 32 + 1)
  note_info(st, "CFG" .. v.cfg)
end

-- UB 2.0 §5.2.2: the IP-form NTH
AFTER["ub.nth"] = function(st, v, t, start, concrete)
  cci(st, v.cci, start + HDR[concrete].at.cci / 8, concrete)
  if v.npi == 0 then
    problem(st, st.prof.check_npi and EX.warn or EX.note, "NPI 0 is invalid for IP packets")
  end
end

-- the Linux UB link netdev header (LINKTYPE_UBL): CC is the NTH's CCI word (UB 2.0 §5.2.3)
AFTER["ub.ubl_ip"] = function(st, v, t, start, concrete)
  cci(st, v.cc, start + HDR[concrete].at.cc / 8, "ub.nth")
end
AFTER["ub.ubl"] = function(st, v) note_info(st, "UBL CFG" .. v.cfg) end

-- UB 2.0 §5.2.1: the CNA NTHs; App B Table B-1: the TP-bypass packet (the grammar goes from
-- the NTH straight to the TAH) has Mgmt and NLP 0.  Which TAH form follows is COMPACT_TAH's.
local function cna(st, v, t, start, concrete)
  cci(st, v.cci, start + HDR[concrete].at.cci / 8, concrete)
  if select(NEXT[LOGICAL[concrete] or concrete], st, v) == "@tah" then
    if v.mgmt ~= nil and v.mgmt ~= 0 then
      problem(st, EX.warn, "Mgmt must be 0 in a TP-bypass packet (CFG 9)")
    end
    if v.nlp ~= 0 then
      problem(st, EX.warn, string.format("NLP %d in a TP-bypass packet (only 0, TAH, is defined)", v.nlp))
    end
  end
end
AFTER["ub.cna16"] = cna
AFTER["ub.cna24"] = cna

-- UB 2.0 §6.2.1
AFTER["ub.rtph"] = function(st, v)
  local op = v.tpopcode
  local psn = free_value(v, "psn")
  local name = TPOPCODE[op] or ("TPOpcode " .. op)
  note_info(st, string.format("%s psn=%d", name, psn))
  if TRACE then TRACE.slots[#st.info] = {v, "psn", name .. " psn=", "%d"} end
  st.tp_data = TP_PAIRS[op] ~= nil       -- an RTP data packet: what TP responses acknowledge
  if v.last == 1 and not st.tp_data then
    problem(st, EX.warn, "TPOpcode[7] (last packet) is only valid on RTP data packets")
  end
  if TPOPCODE[op] == nil and select(NEXT["ub.rtph"], st, v) ~= RESERVED then
    st.tree:add_proto_expert_info(EX.note, string.format(
      "TPOpcode %d is reserved; the %s profile decodes it (ns-3-UB 1.2 sends TPNAK so)", op,
      st.prof.name or "?"))
  end
end

AFTER["ub.utph"] = function(st, v)
  note_info(st, "UTP")
  if v.last == 1 then problem(st, EX.warn, "TPOpcode[7] set on a UTP packet") end
end

AFTER["ub.ctph"] = function(st, v)
  local name = CTP_OPCODE[v.tpopcode]
  if name == nil then
    problem(st, EX.warn, string.format("reserved CTP opcode %d", v.tpopcode))
  elseif name == "CNP" then
    note_info(st, "CTP CNP")
  end
end

AFTER["ub.ciph"] = function(st)
  st.tree:add_proto_expert_info(EX.note, "CIPH layout is a reference-profile placeholder")
end

-- UB 2.0 §7.4.2.3.2: some atomics carry their sub-operation in UDF[23:20] (ATOMIC_SUBOP_OPCODES)
local SUBOP = {}
for _, op in ipairs(ATOMIC_SUBOP_OPCODES) do SUBOP[op] = true end
AFTER["ub.udetah"] = function(st, v, t, start)
  if SUBOP[earlier(st, "ub.btah.taopcode")] then
    add_value(t, "ub.udetah.atomic_op", st.tvb(start, 1), floor(v.ud / POW2[20]) % 16)
  end
end

-- UB 2.0 §7.2.3: the compact MAETAH gives the length as a code
AFTER["ub.maetah"] = function(st, v, t, start)
  if v.len_code ~= nil then
    add_value(t, "ub.maetah.length", st.tvb(start, 8), 64 * POW2[v.len_code])
  end
end

-- UB 2.0 Table 10-11
AFTER["ub.mgmtetah"] = function(st, v, t, start)
  local names = MGMT_SUB_CODE[v.code] or {}
  t:add(HF[FIRST_HF["ub.mgmtetah.sub_code_name"]], st.tvb(start, 1),
        names[v.sub_code] or ("unknown_" .. v.sub_code))
  note_info(st, names[v.sub_code] or "Management")
end

AFTER["ub.scan"] = function(st) note_info(st, "Enumeration") end

-- ---------------------------------------------------------------------------------------------
-- procedures (grammar.PROCEDURES)

-- IP: handed to Wireshark's IP dissector; UDP to a UB port (or, for ns-3-UB, any port through
-- the heuristic below) comes back to ub (as UDP payload) with CTX telling it the profile
local function call_ip(st, dissector)
  if st.pos >= st.stop then return end
  st.pinfo.cols.info:set(table.concat(st.info, " "))
  st.handed_over = true
  -- info: the outer headers' notes, which the inner UB section's Info line starts with
  CTX = {num = st.pinfo.number, prof = st.prof, vals = st.vals, info = table.concat(st.info, " ")}
  local ok, err = pcall(function()
    Dissector.get(dissector):call(st.tvb(st.pos, st.stop - st.pos):tvb(), st.pinfo, st.ptree)
  end)
  CTX = nil
  st.pos = st.stop
  if not ok then
    -- Wireshark's IP/UDP dissectors threw (a truncated or malformed carrier): keep going
    problem(st, EX.malformed, "IP packet: " .. tostring(err):gsub("^.-Dissector_call: ", ""))
  end
end

-- RFC 791/8200: the version nibble must be the one the grammar chose
local function ip_packet(version, dissector)
  return function(st)
    local b = peek(st, 1)
    if b == nil then return STOP end
    if floor(b / 16) ~= version then
      problem(st, EX.malformed, string.format("IPv%d expected, the IP header says version %d",
                                              version, floor(b / 16)))
      return STOP
    end
    call_ip(st, dissector)
    return STOP
  end
end
PROC["@ipv4"] = ip_packet(4, "ip")
PROC["@ipv6"] = ip_packet(6, "ipv6")

-- reached through Wireshark's UDP dissector, which calls ub (below) for the UB ports
PROC["@udp"] = function() return STOP end

-- the steps after a TAH (logical layers and procedures), as grammar.ta_sequence: a request's
-- TA_REQUEST_PREFIX, then the opcode's steps, with their flag and profile gates
local function ta_sequence(st, op, response, flags)
  local steps = (response and TA_RESPONSE_HEADERS or TA_REQUEST_HEADERS)[op]
  if steps == nil then return nil end
  local out = {}
  local function add(list)
    for _, s in ipairs(list) do
      if type(s) == "string" then
        out[#out + 1] = s
      else
        local on
        if s.flag then on = (flags[s.flag] or 0) ~= 0 else on = st.prof[s.knob] end
        if on then out[#out + 1] = s.layer end
      end
    end
  end
  if not response then add(TA_REQUEST_PREFIX) end
  add(steps)
  return out
end

-- UB 2.0 §7.2.1: the TA_FLAGS that gate no step (MT_EN) must say whether the opcode's sequence
-- carries the header they announce
local UNGATED = {}
for flag, layer in pairs(TA_FLAGS) do UNGATED[flag] = layer end
for _, list in pairs(TA_REQUEST_HEADERS) do
  for _, s in ipairs(list) do if type(s) == "table" and s.flag then UNGATED[s.flag] = nil end end
end
for _, s in ipairs(TA_REQUEST_PREFIX) do if s.flag then UNGATED[s.flag] = nil end end

local function check_ta_flags(st, op, v, steps)
  for flag, layer in pairs(UNGATED) do
    if v[flag] ~= nil then
      local want = 0
      for _, s in ipairs(steps) do if s == layer then want = 1 end end
      if v[flag] ~= want then
        problem(st, EX.warn, string.format("%s is %d but %s %s %s", flag:upper(), v[flag],
                                           TAOPCODE[op], want == 1 and "carries" or "has no",
                                           layer:match("[^.]+$"):upper()))
      end
    end
  end
end

-- UB 2.0 §7.2.1-3, §7.4: the TAH by TAOpcode, then its extension headers
-- UB 2.0 §7.4.2.3.2-3: an atomic request's payload as its two operands (the example puts
-- Operand[7:0] first: least significant byte first), an Atomic_response's as the original data
-- (Origin_data[63:56] first); each shown as hex, most significant digit first
local OPERAND_SIZE = {}
for _, n in ipairs(ATOMIC_OPERAND_BYTES) do OPERAND_SIZE[n] = true end
local ATOMIC_OP = {}
for _, op in ipairs(ATOMICS) do ATOMIC_OP[op] = true end

local function hex_of(st, from, n, reversed)
  local parts = {byte(st.raw, from + 1, from + n)}
  for i = 1, n do parts[i] = string.format("%02x", parts[i]) end
  if reversed then
    for i = 1, floor(n / 2) do parts[i], parts[n + 1 - i] = parts[n + 1 - i], parts[i] end
  end
  return table.concat(parts)
end

local function atomic_values(st, op)
  if st.fast then return end   -- tree items only
  local n = st.stop - st.pos - st.pad
  if ATOMIC_OP[op] then
    local half = floor(n / 2)
    if n % 2 == 0 and OPERAND_SIZE[half] then
      st.tree:add(HF[FIRST_HF["ub.atomic.operand1"]], st.tvb(st.pos, half),
                  hex_of(st, st.pos, half, true))
      st.tree:add(HF[FIRST_HF["ub.atomic.operand2"]], st.tvb(st.pos + half, half),
                  hex_of(st, st.pos + half, half, true))
    end
  elseif op == ATOMIC_RESPONSE and OPERAND_SIZE[n] then
    st.tree:add(HF[FIRST_HF["ub.atomic.origin_data"]], st.tvb(st.pos, n), hex_of(st, st.pos, n, false))
  end
end

PROC["@tah"] = function(st)
  local p = st.prof
  local op = peek(st, 1)
  if op == nil then
    problem(st, EX.malformed, "truncated transaction header")
    return STOP
  end
  note_info(st, TAOPCODE[op] or string.format("TAOpcode 0x%02x", op))
  st.ta_at = #st.info   -- finish() puts tassn= and len= after the TA opcode
  local v, steps
  if TA_RESPONSE_HEADERS[op] ~= nil then
    if st.tp_data and not st.compact and p.ns3_layouts then
      -- ns-3-UB sends TA responses in RTP data packets as a full BTAH plus MAETAH (dialect)
      v = read(st, "ub.btah")
      steps = TA_RESPONSE_IN_DATA_NS3
    else
      v = read(st, "ub.atah")
      steps = ta_sequence(st, op, true, {})
    end
    if not v then return STOP end
  else
    v = read(st, "ub.btah")
    if not v then return STOP end
    steps = ta_sequence(st, op, false, v)
    if steps == nil then
      local dialect = TAOPCODE_NS3[op]
      if dialect ~= nil and p.ns3_layouts then
        -- the ns3 dialect's own opcodes (enums.TAOPCODE_NS3): named, the rest is payload
        st.tree:add_proto_expert_info(EX.note, string.format(
          "TAOpcode 0x%02x is reserved; ns-3-UB and umdk use it for %s", op, dialect))
        st.info[#st.info] = dialect
        return END
      end
      problem(st, EX.warn, string.format("reserved TAOpcode 0x%02x%s", op,
                                         dialect and (" (ns-3-UB and umdk: " .. dialect .. ")") or ""))
      return STOP
    end
    check_ta_flags(st, op, v, steps)
  end
  local last = nil
  for _, step in ipairs(steps) do
    if step:sub(1, 1) == "@" then
      if PROC[step](st, v) == STOP then return STOP end
    else
      v = read(st, step)
      if not v then return STOP end
    end
    last = step
  end
  atomic_values(st, op)
  return (last and NEXT[last]) or END, v
end

-- UB 2.0 §7.2.10: one BE bit per payload byte, payload 64..1024 bytes: BEETAH + payload = 9/8
-- of the payload
local BE_PAYLOADS = {[64] = true, [128] = true, [256] = true, [512] = true, [1024] = true}
PROC["@beetah"] = function(st)
  local avail = st.stop - st.pos - st.pad
  local length = maetah_length(st)
  if length ~= nil then
    -- UB 2.0 §7.4.2.1.3: the width follows the MAETAH Length (grammar.be_bits)
    local bits = BE_SIZES[1]
    for _, b in ipairs(BE_SIZES) do if b <= length then bits = b end end
    if bits / 8 > avail then
      problem(st, EX.malformed, string.format("%d bytes left, the %d-bit BEETAH of a %d-byte write does not fit",
                                              avail, bits, length))
      return STOP
    end
    if take_bytes(st, "ub.beetah", bits / 8) == nil then return STOP end
    return END
  end
  local n = floor(avail * 8 / 9)
  if n * 9 ~= avail * 8 or not BE_PAYLOADS[n] then
    problem(st, EX.malformed, string.format("%d bytes cannot be a BEETAH plus its 64..1024-byte payload", avail))
    return STOP
  end
  if take_bytes(st, "ub.beetah", n / 8) == nil then return STOP end
  return END
end

-- reference profile G10: an ATAH after a TP response when there is room for one
PROC["@tp_response_atah"] = function(st, v)
  if st.stop - st.pos - st.pad >= TP_RESPONSE_ATAH_BYTES then return PROC["@tah"](st, v) end
  return END
end

-- table[x], or nil after reporting x as a reserved value of what
local function known(st, table, x, what)
  local y = table[x]
  if y == nil then problem(st, EX.malformed, string.format("reserved %s %d", what, x)) end
  return y
end

-- UB 2.0 §6.2.3: the SACK bitmap after the SAETPH
PROC["@saetph_bitmap"] = function(st, v)
  local bits = known(st, SACK_BITMAP_BITS, v.bitmapsize, "BitMapSize")
  if bits == nil then return STOP end
  local start, n = st.pos, bits / 8
  local raw = take_bytes(st, "ub.saetph_bitmap", n)
  if raw == nil then return STOP end
  -- the PSNs reported received: BitMap[i] = RTPH.PSN + i, placed as the profile's
  -- sack_bit_order says (ubpkt.formats.sack)
  local psn = earlier(st, "ub.rtph.psn")
  if psn ~= nil and not st.fast then   -- tree items only
    local order = st.prof.sack_bit_order
    for i = 0, bits - 1 do
      local at, bit
      if order == "byte_lsb" then at, bit = floor(i / 8), i % 8
      elseif order == "msb_first" then at, bit = floor(i / 8), 7 - i % 8
      else at, bit = n - 1 - floor(i / 8), i % 8 end
      if floor(byte(st.raw, start + at + 1) / POW2[bit]) % 2 == 1 then
        st.tree:add(HF[FIRST_HF["ub.saetph.acked_psns"]], st.tvb(start + at, 1), (psn + i) % POW2[24])
      end
    end
  end
  return NEXT["ub.saetph_bitmap"] or END, v
end

-- reference profile G9: the CIPH protects the rest of the TP body, closed by the ICV (before
-- the transport padding)
PROC["@ciph_body"] = function(st)
  local icv = st.prof.ciph_icv_len
  local room = st.stop - st.pos - st.pad
  if room < icv then
    problem(st, EX.malformed, "no room for the ICV")
    return END
  end
  take_bytes(st, "ub.ciph_protected", room - icv)
  take_bytes(st, "ub.ciph_icv", icv)
  return END
end

-- UB 2.0 §10.4.3.2: path entries; reference profile G15b: entry k sits at the
-- least-significant end of its DW
local function path_entries(raw, width, hops)
  local per_dw, out = 32 / width, {}
  for k = 0, hops - 1 do
    local d = floor(k / per_dw) * 4
    local dw = ((raw:get_index(d) * 256 + raw:get_index(d + 1)) * 256 + raw:get_index(d + 2)) * 256
               + raw:get_index(d + 3)
    out[#out + 1] = floor(dw / POW2[(k % per_dw) * width]) % POW2[width]
  end
  return out
end

PROC["@scan_paths"] = function(st, s)
  local width = known(st, SCAN_PATH_BITS, s.type, "path type")
  if width == nil then return STOP end
  local path_len = math.ceil(s.hops * width / 32) * 4
  for _, name in ipairs({"fwd", "ret"}) do
    if name == "fwd" or s.r == 1 then
      local start = st.pos
      local raw = take_bytes(st, "ub.scan_" .. name, path_len)
      if raw == nil then return STOP end
      if path_len > 0 then
        for _, port in ipairs(path_entries(raw, width, s.hops)) do
          st.tree:add(HF[FIRST_HF["ub.scan." .. name .. "_ports"]], st.tvb(start, path_len), port)
        end
      end
    end
  end
  return "ub.scan_pdu", s
end

-- UB 2.0 §10.4.3.2 Table 10-9: topology TLVs to the end
PROC["@scan_tlvs"] = function(st)
  while st.stop - st.pos - st.pad >= 2 do
    local typ, length = byte(st.raw, st.pos + 1, st.pos + 2)
    if TRACE then TRACE.peeks[#TRACE.peeks + 1] = {st.pos, 2} end   -- a template guards them
    local value = SCAN_TLV_VALUES[typ]
    local room = st.stop - st.pos - st.pad
    local layer = "ub.scan_tlv"
    if value ~= nil and HDR[value].size <= length and length <= room then layer = value end
    if not take(st, layer) then return STOP end
    if length < 2 then
      problem(st, EX.malformed, string.format("TLV length %d < 2", length))
      return STOP
    end
    local n = length - HDR[layer].size
    if (n > 0 or layer == "ub.scan_tlv") and take_bytes(st, "ub.scan_tlv_value", n) == nil then
      return STOP
    end
  end
  return END
end

-- UB 2.0 App F.2.5: SUM NPIC entries
PROC["@npic_entries"] = function(st, n)
  for _ = 1, n.sum do
    if not take(st, "ub.npic_entry") then break end
  end
  return END
end

-- a run of type/length/value items up to an end TLV or the end of the frame
local function tlvs(st, layer, value_layer, value_len, end_type)
  while st.stop - st.pos - st.pad >= HDR[layer].size do
    local t = take(st, layer)
    if not t then return end
    local n = value_len(t)
    if n < 0 then
      problem(st, EX.malformed, string.format("TLV length %d", t.tlv_len))
      return
    end
    if n > 0 and take_bytes(st, value_layer, n) == nil then return end
    if t.tlv_type == end_type then return end
  end
end

-- IEEE 802.1AB: the TLV length counts the value
PROC["@lldp_tlvs"] = function(st)
  tlvs(st, "ub.lldp_tlv", "ub.lldp_value", function(t) return t.tlv_len end, 0)
  return END
end

-- IEEE 802.1AX: the TLV length counts its own two bytes
PROC["@lacp_tlvs"] = function(st)
  tlvs(st, "ub.lacp_tlv", "ub.lacp_value", function(t) return t.tlv_len - 2 end, 0)
  return END
end

-- UB 2.0 §10.4.3.1: the PDU header MGMT_PDUS names, the rest of PDU_Length as bytes
-- Wireshark's dissectors for the byte-run layers of MGMT_PAYLOADS (DMTF DSP0236, DSP0274)
local PAYLOAD_DISSECTORS = {["ub.mctp"] = "mctp", ["ub.spdm"] = "spdm"}

-- the list fields of a PDU body (PDU_LISTS): as many entries as the header announces and the
-- body holds; the bytes stay ub.pdu
local function pdu_list(st, lst, hv, body_end)
  if st.fast then return end   -- tree items only
  local n = hv[lst.count]
  for _, f in ipairs(lst.fixed) do
    if hv[f[1]] == f[2] then n = f[3] break end
  end
  local size = lst.entry_bits / 8
  n = math.min(n, floor((body_end - st.pos) / size))
  for k = 0, n - 1 do
    local r = st.tvb(st.pos + k * size, size)
    for _, f in ipairs(lst.fields) do
      local value = r:bitfield(f[2], f[3])
      st.tree:add(HF[FIRST_HF[f[1]]], r, value)
    end
  end
end

PROC["@mgmt_pdu"] = function(st, v)
  local pdu_len = v.pdu_length
  local avail = st.stop - st.pos - st.pad
  if pdu_len > avail then
    problem(st, EX.malformed, string.format("PDU length %d points past the packet (%d bytes)", pdu_len, avail))
    return END
  end
  if pdu_len > 1024 then problem(st, EX.warn, string.format("PDU length %d exceeds 1024", pdu_len)) end
  local body_end = st.pos + pdu_len
  local h = MGMT_PDUS[v.code .. "/" .. v.sub_code .. "/" .. v.rsp]
            or MGMT_PDUS[v.code .. "/*/" .. v.rsp]
  if h ~= nil and MGMT_PDU_FORMS[h] ~= nil and MGMT_PDU_FORMS[h][pdu_len] ~= nil then
    h = MGMT_PDU_FORMS[h][pdu_len]
  end
  local saved = st.stop
  st.stop = body_end
  local proc = MGMT_PDU_PROCS[v.code .. "/" .. v.sub_code .. "/" .. v.rsp]
  if proc ~= nil then
    -- a PDU of repeated structures, read inside PDU_Length (no transport padding there)
    local pad = st.pad
    st.pad = 0
    PROC[proc](st, v)
    st.pad = pad
  elseif h ~= nil and pdu_len >= HDR[h].size then
    local hv = take(st, h)
    local lst = PDU_LISTS[h]
    if hv and lst then pdu_list(st, lst, hv, body_end) end
  end
  st.stop = saved
  if st.pos < body_end then
    local layer = MGMT_PAYLOADS[v.code .. "/" .. v.sub_code] or "ub.pdu"
    local start = st.pos
    take_bytes(st, layer, body_end - st.pos)
    -- another protocol's PDU (MCTP, SPDM): its own Wireshark dissector, when there is one
    local other = PAYLOAD_DISSECTORS[layer]
    if other ~= nil then
      local ok, d = pcall(Dissector.get, other)
      if ok and d ~= nil then
        pcall(d.call, d, st.tvb(start, body_end - start):tvb(), st.pinfo, st.ptree)
      end
    end
  end
  return END
end

-- UB 2.0 §4.3.3: a DLL control block: the LCH form and the body by CTRL/SUB_CTRL, the BCRC
-- (§4.7.2) over the block
local LCH_FORMS = {Crd_Ack = "ub.lch_crd_ack", Block_Mode_Chg = "ub.lch_block_mode_chg"}
local CB_BODIES = {Retry_Req = "ub.retry_req", Retry_Ack = "ub.retry_ack",
                   Lane_Manage = "ub.lane_manage", Init = "ub.init", Null = "ub.cb_rsvd",
                   NOB = "ub.cb_rsvd", Retry_Idle = "ub.cb_rsvd", Block_Mode_Chg = "ub.cb_rsvd"}

PROC["@dllcb"] = function(st)
  local p = st.prof
  local cb = peek(st, 1, 2)
  if cb == nil then
    problem(st, EX.malformed, "truncated LCH")
    return STOP
  end
  local ctrl, sub = floor(cb / 16), cb % 16
  local kind = DLLCB_TYPES[cb]
  local v, t = take(st, LCH_FORMS[kind] or "ub.lch")
  if not v then return STOP end
  note_info(st, kind or "DLLCB")
  local flits = v.clength + 1
  t:add(HF[FIRST_HF["ub.lch.block"]], st.tvb(2, 1), kind or string.format("unknown_%d_%d", ctrl, sub))
  if kind == nil then problem(st, EX.warn, string.format("reserved CTRL/SUB_CTRL %d/%d", ctrl, sub)) end
  local size = flits * 20
  if size ~= st.stop then
    problem(st, p.ns3_layouts and EX.warn or EX.malformed,
            string.format("CLENGTH says %d flits (%d bytes), the block has %d bytes", flits, size, st.stop))
  end
  -- the trailer (G6 dllcb_bcrc): a BCRC in CRC mode, the END byte in non-CRC mode (Table 4-4)
  local crc = crc_mode_of(p)
  local has_bcrc = p.dllcb_bcrc and crc
  local has_end = p.dllcb_bcrc and not crc
  local body_end = math.min(size, st.stop) - (has_bcrc and 4 or has_end and 1 or 0)
  local saved = st.stop
  st.stop = math.max(body_end, st.pos)
  if kind == "Crd_Ack" then
    -- UB 2.0 §4.3.3.5: 16 six-bit CRD_NUM fields, VL15 first (ns-3-UB: VL0 first, VARIANTS)
    local c, ct = take(st, resolve("ub.crd_ack", st))
    if c and not st.fast then   -- tree items only
      local credits = {}
      local base = st.pos - 32 + 2   -- CRD_NUM: bytes 2..13 of the body
      for g = 0, 3 do
        local w = st.tvb(base + 3 * g, 3):uint()
        for j = 0, 3 do credits[#credits + 1] = floor(w / POW2[6 * (3 - j)]) % 64 end
      end
      for vl = 0, 15 do
        local val = p.crd_ack_vl0_first and credits[vl + 1] or credits[16 - vl]
        ct:add(HF[FIRST_HF["ub.crd_ack.crd_vl" .. vl]], st.tvb(base, 12), val)
      end
    end
  elseif kind == "Param_Exchg" then
    if take(st, "ub.param_exchg") then
      while st.stop - st.pos >= 20 do take(st, "ub.param_exchg_flit") end
    end
  elseif CB_BODIES[kind] then
    take(st, CB_BODIES[kind])
  end
  if st.pos < st.stop then take_bytes(st, "ub.cb_body", st.stop - st.pos, true) end
  st.stop = saved
  if has_end and st.stop - st.pos >= 1 and size <= saved then take(st, "ub.end") end
  if has_bcrc and st.stop - st.pos >= 4 and size <= saved then
    local b, bt = take(st, "ub.bcrc")
    if b then
      local block = st.tvb:bytes(0, st.pos - 4)
      local calc, info, nbits = nil, 0, 0
      if p.bcrc_covers_info then info, nbits = b.rsvd1 * 2 + b.error_flag, 2 end
      calc = crc30(block, info, nbits)
      local stored = free_value(b, "crc30")   -- a template computes the BCRC per frame
      if TRACE then TRACE.bcrc = {finish = st.pos - 4, info = info, nbits = nbits, v = b} end
      local r = st.tvb(st.pos - 4, 4)
      if calc == stored then
        bt:add(HF[FIRST_HF["ub.bcrc.status"]], r, "good")
      else
        local it = bt:add(HF[FIRST_HF["ub.bcrc.status"]], r, "bad")
        bt:add(HF[FIRST_HF["ub.bcrc.computed"]], r, calc)
        it:add_proto_expert_info(EX.bcrc_bad, string.format("CRC30 0x%08x, computed 0x%08x", stored, calc))
      end
    end
  end
  return STOP
end

-- every procedure the grammar names has an implementation here (gen_lua.py checks it too)
for name in pairs(PROCEDURES) do
  assert(PROC[name], "ub_dispatch.lua: no implementation of the grammar procedure " .. name)
end

-- ---------------------------------------------------------------------------------------------
-- analysis over several frames, as ubpkt.views.analysis defines it (tshark -2: the first pass
-- computes, the second shows; one pass shows what is known when the frame is read)
--
-- * request/response (TA_PAIRS, TA_MATCH; UB 2.0 §7.2.1-2): a request (BTAH) waits under
--   (initiator, target, INI_TASSN); a response (ATAH) from the target with that TASSN, the
--   TA_PAIRS response opcode and the same requester context (when both carry one) answers it.
--   A request whose only response would be a TAACK and that sets NO_TAACK waits for nothing.
-- * PSNs per TP channel (source, destination, SrcTPN, DstTPN) of RTP data packets (TP_PAIRS;
--   UB 2.0 §6.2.1, 24-bit PSNs that wrap): ahead of the highest PSN when less than half the
--   PSN space ahead; else behind: out of order when it fills a remembered gap, else a
--   retransmission (a duplicate when it repeats the previous packet's PSN).
-- * TPNAK seen: a TP response whose RSPST is a TPNAK_RSPST value, or ns-3-UB's TPNAK opcode.
-- * data -> ACK (UB 2.0 §6.4.1): any other TP response (TPACK, TPACK-CC, TPSACK, TPSACK-CC) is
--   cumulative: it acknowledges every not yet acknowledged data frame of the reverse channel
--   (TPNs swapped, TP_MATCH) whose PSN is at or behind its own (less than half the PSN space
--   behind); the TPSACK bitmap is not read.  The ACK shows acked_frames and, when one of them
--   carries its PSN, ack_to / ack_time; with two passes each data frame shows ack_in.
-- State is bounded by ubpkt's AnalysisLimits (ANALYSIS_LIMITS, generated): past a cap the oldest
-- entry is dropped.

local PSN_SPACE = 0x1000000     -- 2^24 as an integer (Lua 5.4 keeps integer table keys)
local PSN_HALF = 0x800000
local TAACK
for op, name in pairs(TAOPCODE) do if name == "TAACK" then TAACK = op end end
local TA_RESPONSE_OPS = {}
for _, rop in pairs(TA_PAIRS) do TA_RESPONSE_OPS[rop] = true end
local TP_RESPONSE_OPS, TP_NAK_OPS = {}, {}
for _, ops in pairs(TP_PAIRS) do for _, op in ipairs(ops) do TP_RESPONSE_OPS[op] = true end end
for _, op in ipairs(TP_RESPONSES_NS3) do TP_NAK_OPS[op] = true end
local F_IP_SRC, F_IP_DST = Field.new("ip.src"), Field.new("ip.dst")
local F_IP6_SRC, F_IP6_DST = Field.new("ipv6.src"), Field.new("ipv6.dst")

-- a FIFO-ordered set with a cap: put() adds a new key at the end, dropping the oldest past cap
local function capped(cap)
  return {items = {}, order = {}, head = 1, tail = 0, n = 0, cap = cap}
end
local function cap_put(c, key, value, dropped)
  if c.items[key] == nil then
    c.tail = c.tail + 1
    c.order[c.tail] = key
    c.n = c.n + 1
  end
  c.items[key] = value
  while c.n > c.cap and c.head <= c.tail do
    local old = c.order[c.head]
    c.order[c.head] = nil
    c.head = c.head + 1
    local v = c.items[old]
    if v ~= nil then
      c.items[old] = nil; c.n = c.n - 1
      if dropped then dropped(v) end
    end
  end
end
local function cap_del(c, key)
  if c.items[key] ~= nil then c.items[key] = nil; c.n = c.n - 1 end
end

local AN = {}        -- frame number -> the analysis of its first dissection {name = value}
-- the TP channel of each RTPH frame is kept (AN[frame].tp) only for the conversation tap: in
-- the GUI (its menu retaps a capture already read) or when tshark was given -z ub,conv
local CONV_WANTED = gui_enabled()
local LINKED = {}    -- request frame -> response frame
local ACKED = {}     -- data frame -> the TP response frame that acknowledges it
local PENDING, CHANNELS
-- a waiting request's values by its slot (PENDING's value; a running count, as a frame may hold
-- several packets): arrays, so a request costs no table of its own
local REQ = {}
-- PENDING's key of a request: (initiator, target, INI_TASSN) as one number, the address pair's
-- running number (PAIRS[src][dst]) x 2^32 + the TASSN: no string made a request; past 2^21 pairs
-- (where that number stops being exact) the text "src|dst|tassn"
local IDS = {}   -- pairs: PAIRS above; channels: CHANNEL_IDS below (reset with the analysis)
local pending_key, channel_key
do
  -- (each a frame: the lookups written out, no helper calls)
  function pending_key(src, dst, tassn)
    local PAIRS = IDS.pairs
    local by = PAIRS[src]                 -- PAIRS[src][dst]: the pair's number (PAIRS.n: count)
    if by == nil then by = {}; PAIRS[src] = by end
    local id = by[dst]
    if id == nil then id = PAIRS.n + 1; PAIRS.n = id; by[dst] = id end
    if id < 2097152 and tassn >= 0 and tassn < 4294967296 then return id * 4294967296 + tassn end
    return src .. "|" .. dst .. "|" .. tassn
  end
  -- CHANNELS' key of a TP channel (source, destination, SrcTPN, DstTPN): a running number a
  -- channel (by address pair and the TPNs as one number, 2 x 24 bits), no string made a packet
  function channel_key(src, dst, srctpn, dsttpn)
    local CH = IDS.channels               -- CH[src][dst][tpns]: the channel's number (CH.n)
    local by_dst = CH[src]
    if by_dst == nil then by_dst = {}; CH[src] = by_dst end
    local by_tpn = by_dst[dst]
    if by_tpn == nil then by_tpn = {}; by_dst[dst] = by_tpn end
    local tpns
    if srctpn ~= nil and dsttpn ~= nil then tpns = srctpn * 16777216 + dsttpn
    else tpns = tostring(srctpn) .. "|" .. tostring(dsttpn) end   -- (no RTPH has none today)
    local id = by_tpn[tpns]
    if id == nil then id = CH.n + 1; CH.n = id; by_tpn[tpns] = id end
    return id
  end
end
local function req_drop(slot)
  REQ.frame[slot], REQ.t[slot], REQ.op[slot], REQ.rc_type[slot], REQ.rc_id[slot] = nil, nil, nil, nil, nil
end

local function analysis_reset()
  AN, LINKED, ACKED = {}, {}, {}
  PENDING = capped(ANALYSIS_LIMITS.max_pending)
  REQ = {frame = {}, t = {}, op = {}, rc_type = {}, rc_id = {}, n = 0}
  IDS.pairs, IDS.channels = {n = 0}, {n = 0}
  CHANNELS = capped(ANALYSIS_LIMITS.max_channels)
end
analysis_reset()

local function first_value(f)
  local v = f()
  if v == nil then return nil end
  return tostring(v)
end

-- ubpkt.views.analysis._addrs: the IP addresses, else the CNAs
-- (once per dissection: the transaction, PSN and conversation analyses all ask)
local function endpoints(st)
  if st.src then return st.src, st.dst end
  -- the network addresses the IP dissector left in pinfo: there in every pass, also in the
  -- first pass of tshark -2, which builds no tree (the ip.src field extractor gives nil there,
  -- and every channel would fall into one); "NONE" without an IP layer (native UB)
  local src, dst
  local ns = tostring(st.pinfo.net_src)
  if ns ~= "NONE" and ns ~= "" then
    src, dst = ns, tostring(st.pinfo.net_dst)
  else
    src, dst = first_value(F_IP_SRC), first_value(F_IP_DST)
    if src == nil then src, dst = first_value(F_IP6_SRC), first_value(F_IP6_DST) end
  end
  if src == nil then
    local n = st.vals["ub.cna16"] or st.vals["ub.cna24"]
    if n then src, dst = tostring(n.scna), tostring(n.dcna) end
  end
  st.src, st.dst = tostring(src), tostring(dst)   -- asked for twice a packet (transaction, PSNs)
  return st.src, st.dst
end

local function transaction(st, out)
  local b, a = st.vals["ub.btah"], st.vals["ub.atah"]
  if b and b.taopcode ~= nil and TA_PAIRS[b.taopcode] ~= nil then
    if b.ini_tassn == nil then return end
    if TA_PAIRS[b.taopcode] == TAACK and (b.no_taack or 0) ~= 0 then return end
    local src, dst = endpoints(st)
    local key = pending_key(src, dst, b.ini_tassn)
    if PENDING.items[key] == nil then
      local R, slot = REQ, REQ.n + 1
      R.n = slot
      R.frame[slot], R.t[slot], R.op[slot] = st.number, st.time, b.taopcode
      R.rc_type[slot], R.rc_id[slot] = b.ini_rc_type, b.ini_rc_id
      cap_put(PENDING, key, slot, req_drop)
    end
    out.request = true
    return
  end
  if not a or a.taopcode == nil or not TA_RESPONSE_OPS[a.taopcode] then return end
  local src, dst = endpoints(st)
  local key = pending_key(dst, src, a.ini_tassn)   -- back to the initiator
  if PENDING.items[key] == nil then key = pending_key(src, dst, a.ini_tassn) end
  local req = PENDING.items[key]
  local R = REQ
  if req == nil or TA_PAIRS[R.op[req]] ~= a.taopcode then return end
  local rc_type = R.rc_type[req]
  if a.ini_rc_type ~= nil and rc_type ~= nil and
     (a.ini_rc_type ~= rc_type or a.ini_rc_id ~= R.rc_id[req]) then return end
  cap_del(PENDING, key)
  local op, frame, t = R.op[req], R.frame[req], R.t[req]
  req_drop(req)
  out.request_name = TAOPCODE[op] or tostring(op)     -- the SRT tap's row
  out.request_in = frame
  out.response_time_ns = floor((st.time - t) * 1e9 + 0.5)
  LINKED[frame] = st.number
end

-- A channel's data frames waiting for their acknowledgement: positions ua_head..ua_tail (at
-- most ANALYSIS_LIMITS.max_unacked), kept in ring arrays uf/up/ut (frame, PSN, time) of that
-- many slots: position i in slot (i - 1) % UNACKED + 1 (no table grows with the capture)
local ack_analysis, psn_analysis
do
local UNACKED = ANALYSIS_LIMITS.max_unacked

-- a TPACK/TPSACK: acknowledge the reverse channel's waiting data frames up to its PSN
function ack_analysis(st, r, out)
  local src, dst = endpoints(st)
  local ch = CHANNELS.items[channel_key(dst, src, r.dsttpn, r.srctpn)]
  if ch == nil or ch.ua_head > ch.ua_tail then return end
  local psn, frame = r.psn, st.number
  local uf, up, ut = ch.uf, ch.up, ch.ut
  -- the frames still waiting move down in place (w: the last kept), in their order
  local w, acked, named_f, named_t = ch.ua_head - 1, 0, nil, nil
  for i = ch.ua_head, ch.ua_tail do
    local k = (i - 1) % UNACKED + 1
    local p = up[k]
    if (psn - p) % PSN_SPACE < PSN_HALF then        -- at or behind the ACK's PSN
      acked = acked + 1
      if p == psn then named_f, named_t = uf[k], ut[k] end
      ACKED[uf[k]] = frame
    else
      w = w + 1
      local kw = (w - 1) % UNACKED + 1
      uf[kw], up[kw], ut[kw] = uf[k], p, ut[k]
    end
  end
  if acked == 0 then return end
  ch.ua_tail = w
  out.acked_frames = acked
  if named_f then
    out.ack_to = named_f
    out.ack_time_ns = floor((st.time - named_t) * 1e9 + 0.5)
  end
end

function psn_analysis(st, out)
  local r = st.vals["ub.rtph"]
  if not r or r.psn == nil then return end
  if TP_PAIRS[r.tpopcode] == nil then
    if TP_NAK_OPS[r.tpopcode] or (TP_RESPONSE_OPS[r.tpopcode] and TPNAK_RSPST[r.rspst]) then
      out.tpnak = 1
    elseif TP_RESPONSE_OPS[r.tpopcode] then
      ack_analysis(st, r, out)
    end
    return
  end
  local psn = r.psn
  local src, dst = endpoints(st)
  local key = channel_key(src, dst, r.srctpn, r.dsttpn)
  local ch = CHANNELS.items[key]
  if ch == nil then
    -- uf/up/ut[ua_head..ua_tail]: frame, PSN, time of the data frames waiting for an ACK
    ch = {holes = capped(ANALYSIS_LIMITS.max_holes), uf = {}, up = {}, ut = {}, ua_head = 1,
          ua_tail = 0}
    cap_put(CHANNELS, key, ch)
  end
  local tail = ch.ua_tail + 1           -- waiting for its ACK (the oldest dropped past the cap:
  local k = (tail - 1) % UNACKED + 1    -- its slot is the new one's)
  ch.uf[k], ch.up[k], ch.ut[k], ch.ua_tail = st.number, psn, st.time, tail
  if tail - ch.ua_head >= UNACKED then ch.ua_head = ch.ua_head + 1 end
  local high = ch.high
  if high ~= nil then
    local ahead = (psn - high) % PSN_SPACE
    if ahead == 0 or ahead >= PSN_HALF then                 -- not ahead: behind or equal
      out.psn_backwards = (high - psn) % PSN_SPACE
      if ch.holes.items[psn] then
        cap_del(ch.holes, psn)
        out.out_of_order = 1
      else
        out.retransmission = 1
        if psn == ch.last then out.duplicate = 1 end
      end
      ch.last = psn
      return
    end
    if ahead > 1 then
      out.psn_gap = ahead - 1
      for k = math.max(1, ahead - ANALYSIS_LIMITS.max_holes), ahead - 1 do
        cap_put(ch.holes, (high + k) % PSN_SPACE, true)
      end
    end
  end
  ch.high, ch.last = psn, psn
end
end

local EX_TEXT = {
  psn_gap = function(v) return string.format("%d PSN(s) missing before this one", v) end,
  out_of_order = function() return "Out of order: fills an earlier PSN gap" end,
  retransmission = function() return "Retransmission: PSN seen before" end,
  duplicate = function() return "Duplicate: the same PSN as the previous packet" end,
  tpnak = function() return "TPNAK: the receiver asks for a retransmission or reports an error" end,
}

local AN_SCRATCH = {}   -- the analysis of the frame being read, before it is kept
local EXPERT_ORDER = {"psn_gap", "out_of_order", "retransmission", "duplicate", "tpnak"}

-- the analysis of a frame as kept: a shared table when it is empty or only marks a request
-- the analysis kept for a frame with nothing of its own (shared: no table a frame)
local AN_SHARED = {none = {}, request = {request = true}}
local an_keep
do
local AN_NONE, AN_REQUEST = AN_SHARED.none, AN_SHARED.request
function an_keep(out)
  local first = next(out)
  if first == nil then return AN_NONE end
  if first == "request" and next(out, first) == nil then
    out.request = nil
    return AN_REQUEST
  end
  local kept = {}
  for k, v in pairs(out) do kept[k] = v end
  for k in pairs(kept) do out[k] = nil end
  return kept
end
end

-- compute (first dissection of the frame) or recall (later ones), then show (visited:
-- pinfo.visited when the caller has it)
local function analyse(st, root, visited)
  local pinfo = st.pinfo
  local number = pinfo.number
  if visited == nil then visited = pinfo.visited end
  local key = (st.unit or 1) > 1 and number .. ":" .. st.unit or number
  local out
  if not visited then
    st.number, st.time = number, pinfo.rel_ts   -- what transaction() and psn_analysis() read
    out = AN_SCRATCH     -- (empty: an_keep empties it; cleared here after an error in between)
    if next(out) ~= nil then for k in pairs(out) do out[k] = nil end end
    transaction(st, out)
    psn_analysis(st, out)
    local r = CONV_WANTED and st.vals["ub.rtph"]
    if r and r.srctpn ~= nil then       -- the conversation tap's TP channel (any RTPH frame)
      local src, dst = endpoints(st)
      out.tp = {src, r.srctpn, dst, r.dsttpn}
    end
    out = an_keep(out)
    AN[key] = out
  else
    out = AN[key]
  end
  if out == nil then return end
  if getmetatable(root) == SKIP then
    -- nobody looks at the tree: only the expert infos (SKIP puts them on the root item)
    if out.request and visited and LINKED[number] == nil then
      root:add_proto_expert_info(EX.no_response, "Request without a response in the capture")
    end
    if out ~= AN_SHARED.none and out ~= AN_SHARED.request then
      for i = 1, #EXPERT_ORDER do
        local name = EXPERT_ORDER[i]
        if out[name] then root:add_proto_expert_info(EX[name], EX_TEXT[name](out[name])) end
      end
    end
    return
  end
  local ack_in = pinfo.visited and ACKED[pinfo.number] or nil
  local shown = ack_in
  for k in pairs(out) do if k ~= "tp" then shown = true; break end end
  if not shown then return end
  local t = root:add(AF_LAYER, st.tvb(0, 0))
  t:set_generated()
  local function show(name, value)
    local it = t:add(AF[name], st.tvb(0, 0), value)
    it:set_generated()
    return it
  end
  if out.request then
    if pinfo.visited then        -- the whole capture has been read once (tshark -2, the GUI)
      local resp = LINKED[pinfo.number]
      if resp ~= nil then
        show("response_in", resp)
      else
        show("no_response", 1):add_proto_expert_info(EX.no_response,
          "Request without a response in the capture")
      end
    end
  end
  if ack_in then show("ack_in", ack_in) end
  if out.acked_frames then show("acked_frames", out.acked_frames) end
  if out.ack_to then
    show("ack_to", out.ack_to)
    local ns = out.ack_time_ns
    show("ack_time", NSTime.new(floor(ns / 1e9), ns % 1e9))
    show("ack_time_ns", UInt64.new(ns % TWO32, floor(ns / TWO32)))
  end
  if out.request_in then
    show("request_in", out.request_in)
    local ns = out.response_time_ns
    show("response_time", NSTime.new(floor(ns / 1e9), ns % 1e9))
    show("response_time_ns", UInt64.new(ns % TWO32, floor(ns / TWO32)))
  end
  for _, name in ipairs(EXPERT_ORDER) do
    if out[name] then
      show(name, out[name]):add_proto_expert_info(EX[name], EX_TEXT[name](out[name]))
    end
  end
  if out.psn_backwards then show("psn_backwards", out.psn_backwards) end
end

function ub.init()
  analysis_reset()
end

-- ---------------------------------------------------------------------------------------------
-- statistics taps: tshark -z ub,conv[,FILTER] and -z ub,srt[,FILTER]; Statistics > UB in the GUI
--
-- Lua in Wireshark 4.0 cannot feed Wireshark's own conversation and SRT tables, so these are
-- Lua taps (a "frame" Listener) that print their own tables, with the numbers of
-- `ubpkt stats conv` (its TP-channel rows) and `ubpkt stats srt`:
-- * conv: per TP channel (its two ends, address and TPN, in the order first seen): frames and
--   bytes (frame lengths) each way, relative start and duration (first to last frame); every
--   frame with an RTPH counts (data and TP responses).
-- * srt: per request TAOpcode, the requests answered (the analysis' request/response links):
--   count, min, max, avg (floor of the mean in ns), and the requests left unanswered.
-- Both read what the analysis kept for the frame (AN), so they count what the dissector saw.

local function tp_end(addr, tpn) return string.format("%s,%d", addr, tpn) end

local function conv_lines(rows, order)
  local out = {"UB TP-channel conversations (ubpkt stats conv)",
               string.format("%-28s %-28s %9s %11s %9s %11s %9s %11s %14s %14s", "A", "B",
                             "frames_ab", "bytes_ab", "frames_ba", "bytes_ba", "frames", "bytes",
                             "rel_start", "duration")}
  for _, k in ipairs(order) do
    local c = rows[k]
    out[#out + 1] = string.format("%-28s %-28s %9d %11d %9d %11d %9d %11d %14.9f %14.9f",
      c.a, c.b, c.ab[1], c.ab[2], c.ba[1], c.ba[2], c.ab[1] + c.ba[1], c.ab[2] + c.ba[2],
      c.first, c.last - c.first)
  end
  return out
end

local function srt_lines(ops)
  local names = {}
  for name in pairs(ops) do names[#names + 1] = name end
  table.sort(names)
  local out = {"UB service response time per request TAOpcode (ubpkt stats srt), seconds",
               string.format("%-24s %7s %14s %14s %14s", "opcode", "count", "min", "max", "avg")}
  for _, name in ipairs(names) do
    local o = ops[name]
    out[#out + 1] = string.format("%-24s %7d %14.9f %14.9f %14.9f", name, o.n, o.min / 1e9,
                                  o.max / 1e9, floor(o.sum / o.n) / 1e9)
  end
  out[#out + 1] = string.format("requests unanswered: %d", PENDING.n)
  return out
end

-- one tap: kind "conv" or "srt"; emit(lines) shows the table (stdout, or a GUI window)
local function stat_tap(kind, filter, emit)
  local tap = Listener.new("frame", filter)
  local rows, order, ops
  local function reset() rows, order, ops = {}, {}, {} end
  reset()
  tap.reset = reset          -- (a Listener's callbacks can be set, not read back)
  function tap.packet(pinfo)
    local out = AN[pinfo.number]
    if out == nil then return end
    if kind == "conv" and out.tp then
      local a, b = tp_end(out.tp[1], out.tp[2]), tp_end(out.tp[3], out.tp[4])
      local key = a < b and (a .. "|" .. b) or (b .. "|" .. a)
      local c = rows[key]
      if c == nil then
        c = {a = a, b = b, ab = {0, 0}, ba = {0, 0}, first = pinfo.rel_ts}
        rows[key] = c
        order[#order + 1] = key
      end
      local way = (c.a == a) and c.ab or c.ba
      way[1], way[2] = way[1] + 1, way[2] + pinfo.len
      c.last = pinfo.rel_ts
    elseif kind == "srt" and out.request_in then
      local ns, o = out.response_time_ns, ops[out.request_name]
      if o == nil then
        ops[out.request_name] = {n = 1, sum = ns, min = ns, max = ns}
      else
        o.n, o.sum = o.n + 1, o.sum + ns
        if ns < o.min then o.min = ns end
        if ns > o.max then o.max = ns end
      end
    end
  end
  function tap.draw()
    emit(kind == "conv" and conv_lines(rows, order) or srt_lines(ops))
  end
  return tap
end

local function print_lines(lines)
  print(string.rep("=", 80))
  for _, l in ipairs(lines) do print(l) end
  print(string.rep("=", 80))
end

for _, kind in ipairs({"conv", "srt"}) do
  register_stat_cmd_arg("ub," .. kind, function(arg)
    if kind == "conv" then CONV_WANTED = true end
    local filter = arg:match("^ub," .. kind .. ",(.+)$")
    stat_tap(kind, filter, print_lines)
  end)
end

if gui_enabled() then
  local function window(kind, title)
    return function()
      local w = TextWindow.new(title)
      local tap = stat_tap(kind, nil, function(lines) w:set(table.concat(lines, "\n")) end)
      w:set_atclose(function() tap:remove() end)
      retap_packets()
    end
  end
  -- Statistics > UB > ... (MENU_STAT_UNSORTED: the group every Wireshark version shows)
  register_menu("UB/TP channel conversations", window("conv", "UB TP-channel conversations"),
                MENU_STAT_UNSORTED)
  register_menu("UB/Service response time", window("srt", "UB service response time"),
                MENU_STAT_UNSORTED)
end

-- ---------------------------------------------------------------------------------------------
-- entry points

-- ---------------------------------------------------------------------------------------------
-- preferences (Edit > Preferences > Protocols > UB; tshark -o ub.<name>:<value>)

local DEFAULT_PORTS = {}
for port in pairs(PROFILE.spec.ub_udp_ports) do DEFAULT_PORTS[#DEFAULT_PORTS + 1] = port end
table.sort(DEFAULT_PORTS)
ub.prefs.udp_ports = Pref.range("UBoE UDP ports", table.concat(DEFAULT_PORTS, ","),
  "UDP destination ports that carry UB over UDP (UB 2.0 §5.2.3 assigns 4792)", 65535)
ub.prefs.verify_icrc = Pref.bool("Verify the ICRC", PREFS.verify_icrc,
  "Compute the ICRC and compare it with the stored one (off: the ICRC is shown, not checked)")
-- "auto": the profile the link type implies (ns-3-UB for LINKTYPE_USER0 traces, else the
-- reference); the others force one profile for every packet of the capture
local PROFILE_CHOICE = {auto = nil, reference = PROFILE.spec, ns3 = PROFILE.ns3}
ub.prefs.profile = Pref.enum("Profile", PREFS.profile, "Decoding profile: auto (by link type), reference "
  .. "(UB 2.0) or ns-3-UB (the ns-3-UB 1.2 dialect)",
  {{1, "auto", 0}, {2, "reference", 1}, {3, "ns3", 2}}, false)
local PROFILE_BY_PREF = {[0] = "auto", [1] = "reference", [2] = "ns3"}
ub.prefs.templates = Pref.bool("Replay layout templates when no tree is built", PREFS.templates,
  "Without a tree (nobody looks at ub's fields) read a frame whose layout was read before with a "
  .. "function made for that layout (the same Info, columns, expert infos and analysis; faster)")
ub.prefs.heuristic = Pref.bool("Try UBoE on other UDP ports", false,
  "Claim a UDP datagram to any other port whose last four bytes are a good ICRC over the IP "
  .. "and UDP headers and the payload (off by default: costs a CRC per datagram)")
-- the compiled CRCs (ub_core, above): on by default when the module loaded; the description and
-- a note on the preferences page say which CRCs run (tshark -G currentprefs prints the former)
ub.prefs.crc_core = Pref.bool("Use the compiled CRCs (ub_core)", CRC_CORE ~= nil,
  "Compute the ICRC and BCRC with the compiled module ub_core-<Lua version>.so from the plugin's "
  .. "folder when it loaded (python3 dissectors/build_core.py builds it); off: the plugin's Lua "
  .. "CRCs, same results, slower.  At start-up: " .. CRC_STATUS)
ub.prefs.crc_core_note = Pref.statictext("CRCs at start-up: " .. CRC_STATUS,
  "Which CRC code the plugin found (dissectors/README.md, Compiled CRCs)")

ub.prefs.crc_mode = Pref.enum("Data link CRC mode", PREFS.crc_mode, "DLL control blocks and "
  .. "flit streams: auto (the profile's: CRC mode), CRC mode (a BCRC ends every block) or "
  .. "non-CRC mode (an END byte ends a DLLDP's last block and a DLLCB)",
  {{1, "auto", 0}, {2, "crc", 1}, {3, "non-crc", 2}}, false)

local function profile_for(default)
  return PROFILE_CHOICE[PROFILE_BY_PREF[PREFS.profile] or "auto"] or default
end

-- the UDP ports ub is registered on (the udp_ports preference); a range string "a,b-c"
local UB_PORTS = {}
for port in pairs(PROFILE.spec.ub_udp_ports) do UB_PORTS[port] = true end
local function parse_ports(text)
  local out = {}
  for item in tostring(text or ""):gmatch("[^,%s]+") do
    local a, b = item:match("^(%d+)%-(%d+)$")
    if a then
      for p = tonumber(a), math.min(tonumber(b), 65535) do out[p] = true end
    elseif tonumber(item) then
      out[tonumber(item)] = true
    end
  end
  return out
end

-- The one-line summary (ubpkt's summary line, UB part): the notes of the walk (CFG, TP opcode
-- and psn=, TA opcode, management/enumeration names, [bad ICRC]) with the transaction's
-- tassn= (INI_TASSN of the BTAH or ATAH) and len= (the MAETAH Length) after the TA opcode.
local function summary(st)
  local parts = {}
  for i, s in ipairs(st.info) do
    parts[#parts + 1] = s
    if i == st.ta_at then
      local ta = st.vals["ub.btah"] or st.vals["ub.atah"]
      if ta and ta.ini_tassn then parts[#parts + 1] = "tassn=" .. ta.ini_tassn end
      local length = maetah_length(st)
      if length then parts[#parts + 1] = "len=" .. tostring(length) end
    end
  end
  return table.concat(parts, " ")
end

-- Source/Destination of a native UB packet (no IP header; UB 2.0 §5.2.1 CNAs, §5.3 EIDs): the
-- EIDs when an EIDH is present, else the CNAs, in hex (the CNA's width: 4 or 6 digits).
local function ub_endpoints(st)
  local e = st.vals["ub.eidh"]
  if e and e.seid ~= nil and e.deid ~= nil then
    if type(e.seid) == "number" then
      return string.format("EID 0x%05x", e.seid), string.format("EID 0x%05x", e.deid)
    end
    return "EID " .. tostring(e.seid), "EID " .. tostring(e.deid)
  end
  for _, base in ipairs({"ub.cna16", "ub.cna24"}) do
    local n = st.vals[base]
    if n and n.scna ~= nil then
      local fmt = base == "ub.cna16" and "0x%04x" or "0x%06x"
      return string.format(fmt, n.scna), string.format(fmt, n.dcna)
    end
  end
end

local function finish(st)
  if st.pos < st.tvb:len() then
    st.pad = 0
    data(st, st.tvb:len() - st.pos)
  end
  if #st.info > 0 and not st.handed_over then
    local text = summary(st)
    -- set, not append: the Info of a UB packet replaces UDP's port text (UBoE, CFG 3/4)
    if st.inner and CTX.info ~= "" then text = CTX.info .. " " .. text end
    st.pinfo.cols.info:set(text)
    st.tree:append_text(", " .. text)   -- the UnifiedBus root item carries the same line
  end
end

-- ---------------------------------------------------------------------------------------------
-- layout templates: the tree-less dissection of a frame whose layout was read before
--
-- Without a tree (st.fast) what a frame shows is its Info line, the expert infos, the analysis
-- and, natively, the Source/Destination columns.  A *layout* is an entry (UDP payload or a link
-- type), a profile, a frame length, the carrier (IPv4 header length, IPv6) and the values of
-- every field the walk steers or checks on.  The first frames of a layout go through the walk
-- with TRACE set, which records every value the walk reads (h.lazy_trace), every header read
-- (its reserved bits), every byte peeked or zero-checked, the ICRC's and the BCRC's coverage, and
-- the values that only go into the Info line (free_value: the PSN, the stored BCRC).  When that
-- walk was clean (no expert info, no hand-over to IP), the recording becomes a template: a
-- function made with load() that
--   * guards: each byte of a value the walk read, under the mask of that value's bits, and each
--     reserved-bit byte, equal to the sample's (a guard that fails: the walk reads the frame);
--   * reads, at fixed offsets with string.byte, the values the Info line, the analysis and the
--     columns take (TEMPLATE_READS) into tables reused frame after frame;
--   * returns the Info line (one string.format).
-- The runner checks the ICRC and a control block's BCRC (a bad one: the walk reads the frame,
-- and reports it), sets the columns and runs the same analysis as the walk.
-- tests/dissectors/test_lua_speed.py compares the runs with templates, without them
-- (ub.templates off) and with the full tree on varied, one-bit-mutated, built and foreign
-- captures.  TEMPLATE_LIMITS bound the recording (dissectors/README.md, Speed).

-- templates made and frames they read; the helpers the entries call once a layout (fields of
-- one table: the main function's locals are limited to 200)
local TPL = {count = 0, used = 0, carried = 0, udp_table = {}}
-- for the tests (tests/dissectors/test_lua_speed.py): templates made, frames they read so far,
-- and of those the UDP payloads whose carrier was read from the bytes (TPL.carrier)
rawset(_G, "ub_template_stats", function() return TPL.count, TPL.used, TPL.carried end)

local template_table
do
local TEMPLATE_LIMITS = {per_key = 4, samples_per_key = 8, total = 2048}
local TEMPLATES = setmetatable({}, {__mode = "k"})   -- profile -> CRC mode -> entry -> key -> list

-- the templates of (profile, entry) by layout key; the data link's CRC mode (crc_mode_of, a
-- preference) decides the trailer the walk reads (a BCRC or END), so each mode has its own
function template_table(prof, entry)
  local by_mode = TEMPLATES[prof]
  if by_mode == nil then by_mode = {}; TEMPLATES[prof] = by_mode end
  local crc = crc_mode_of(prof)
  local by_entry = by_mode[crc]
  if by_entry == nil then by_entry = {}; by_mode[crc] = by_entry end
  local t = by_entry[entry]
  if t == nil then t = {}; by_entry[entry] = t end
  return t
end

-- whether a frame with this layout key is to be recorded (and the list its template joins);
-- when it is, the walk that follows records it (TRACE)
function TPL.sample(tpl, key)
  local list = tpl[key]
  if list == nil then list = {samples = 0}; tpl[key] = list end
  if #list >= TEMPLATE_LIMITS.per_key or list.samples >= TEMPLATE_LIMITS.samples_per_key
     or TPL.count >= TEMPLATE_LIMITS.total then
    return nil
  end
  list.samples = list.samples + 1
  TRACE = TPL.new_trace()
  return list
end
end

function TPL.new_trace()
  return {reads = {}, headers = {}, peeks = {}, slots = {}}
end

do   -- (a block: the main function's locals are limited to 200)
-- what the analysis, the summary line and the native columns read of a header after the walk
-- (analyse, summary, ub_endpoints): a template fills these in per frame
local TEMPLATE_READS = {
  ["ub.btah"] = {"taopcode", "ini_tassn", "no_taack", "ini_rc_type", "ini_rc_id"},
  ["ub.atah"] = {"taopcode", "ini_tassn", "ini_rc_type", "ini_rc_id"},
  ["ub.rtph"] = {"psn", "tpopcode", "rspst", "srctpn", "dsttpn"},
  ["ub.cna16"] = {"scna", "dcna"},
  ["ub.cna24"] = {"scna", "dcna"},
  ["ub.maetah"] = {"length", "len_code"},
  ["ub.eidh"] = {"seid", "deid"},
}
-- what a UDP payload's template does not read: the EIDs are the native columns' (ub_endpoints);
-- over UDP the IP addresses are the endpoints (the 128-bit EIDs are read through Wireshark)
TPL.UDP_UNREAD = {["ub.eidh"] = true}
-- templates of one layout key (frame length, first byte), samples recorded for one key, templates
-- in all (a capture of ever new layouts stops recording)
-- BITS1[rshift * 16 + bits][b]: bits of byte b from bit rshift up (a field inside one byte: one
-- table step in a template instead of a division and a floor)
local BITS1 = setmetatable({}, {__index = function(t, k)
  local rs, bits, m = floor(k / 16), k % 16, {}
  for b = 0, 255 do m[b] = floor(b / POW2[rs]) % POW2[bits] end
  t[k] = m
  return m
end})

-- the Lua expression of field f of the header at off from the locals x<position> (the frame's
-- bytes), as raw_bits / raw_le compute it; need(position) for each byte it reads
local function field_expr(f, off, need, consts)
  local p = off + f.byte + 1
  if f.wire == "be" and f.span == 1 and f.bits < 8 then
    need(p)
    return string.format("BITS1[%d][x%d]", f.rshift * 16 + f.bits, p)
  elseif f.wire == "be" then
    local e = "x" .. p
    need(p)
    for i = 1, f.span - 1 do e = "(" .. e .. ")*256+x" .. (p + i); need(p + i) end
    if f.rshift > 0 then e = "floor((" .. e .. ")/" .. string.format("%d", POW2[f.rshift]) .. ")" end
    if f.bits < f.span * 8 then e = "(" .. e .. ")%" .. string.format("%d", POW2[f.bits]) end
    return e
  elseif f.wire == "le" then
    local e = "x" .. (p + f.span - 1)
    need(p + f.span - 1)
    for i = f.span - 2, 0, -1 do e = "(" .. e .. ")*256+x" .. (p + i); need(p + i) end
    return e
  end
  consts[#consts + 1] = f     -- another kind: read through Wireshark, as value_of does
  return string.format("VALUE(K[%d], raw, tvb, %d)", #consts, off)
end

-- a template from the recording of a clean walk (st, TRACE); nil when the layout has none.
-- unread: header bases of TEMPLATE_READS the frames of this template do not need
function TPL.build(st, trace, unread)
  local raw = st.raw
  local mask = {}       -- position -> the bits guarded
  local function guard(pos, m) mask[pos] = OR8[mask[pos] or 0][m] end
  for _, r in ipairs(trace.reads) do
    local off, f = r[1], r[2]
    if f.wire == "be" then
      for b = f.bit, f.bit + f.bits - 1 do guard(off + floor(b / 8) + 1, POW2[7 - b % 8]) end
    else
      for i = 0, f.span - 1 do guard(off + f.byte + i + 1, 255) end
    end
  end
  for _, hh in ipairs(trace.headers) do
    for _, rb in ipairs(hh[1].rsvd_bytes) do guard(hh[2] + rb[1], rb[2]) end
  end
  for _, p in ipairs(trace.peeks) do
    for i = 1, p[2] do guard(p[1] + i, 255) end
  end
  local lo, hi = nil, nil
  local function need(pos)
    if lo == nil or pos < lo then lo = pos end
    if hi == nil or pos > hi then hi = pos end
  end
  for pos in pairs(mask) do need(pos) end
  local consts, body, locals, nlocals = {}, {}, {}, 0
  -- each value once, in a local (the Info line and the analysis' tables share it)
  local function value(f, off)
    local e = field_expr(f, off, need, consts)
    local name = locals[e]
    if name == nil then
      nlocals = nlocals + 1
      name = "v" .. nlocals
      locals[e] = name
      body[#body + 1] = string.format("local %s = %s", name, e)
    end
    return name
  end
  -- the values read after the walk, into one reused table a header base
  local vals, names = {}, {}
  for base, v in pairs(st.vals) do
    local mt = getmetatable(v)
    if mt ~= nil and mt.__index ~= nil and TEMPLATE_READS[base] ~= nil
       and not (unread and unread[base]) then
      local h, off = mt.hdr, v[2]
      local into = {}
      vals[base] = into
      names[#names + 1] = base
      local slot = #names
      for _, name in ipairs(TEMPLATE_READS[base]) do
        local f = h.byname[name]
        if f ~= nil then
          local x = value(f, off)   -- (first: it may add the local's line)
          body[#body + 1] = string.format("V%d.%s = %s", slot, name, x)
        end
      end
    end
  end
  -- the Info line: the walk's notes, the free values as format slots, tassn= and len= as summary()
  local fmt, args = {}, {}
  local function free(v, name, prefix, spec)
    local mt = getmetatable(v)
    local f = mt.hdr.byname[name]
    -- an integer of up to 46 bits reads the same with %d as with tostring (either Lua)
    if f.wire ~= nil and f.bits <= 46 then spec = "%d" end
    fmt[#fmt + 1] = prefix:gsub("%%", "%%%%") .. spec
    local e = value(f, v[2])
    args[#args + 1] = spec == "%d" and e or ("tostring(" .. e .. ")")
  end
  for i, s in ipairs(st.info) do
    local slot = trace.slots[i]
    if slot then free(slot[1], slot[2], slot[3], slot[4])
    else fmt[#fmt + 1] = (s:gsub("%%", "%%%%")) end
    if i == st.ta_at then
      local ta = st.vals["ub.btah"] or st.vals["ub.atah"]
      if ta and ta.ini_tassn then free(ta, "ini_tassn", "tassn=", "%s") end
      local m = st.vals["ub.maetah"]
      if m and m.length ~= nil then free(m, "length", "len=", "%s")
      elseif m and m.len_code ~= nil then
        local f = getmetatable(m).hdr.byname.len_code
        fmt[#fmt + 1] = "len=%d"
        args[#args + 1] = "64 * POW2[" .. value(f, m[2]) .. "]"
      end
    end
  end
  -- no bytes, or more locals than a Lua function may have (200)
  if lo == nil or hi - lo + 1 + nlocals > 180 then return nil end
  local head = "local floor, byte, AND8, POW2, K, VALUE, tostring, format, FMT, BITS1"
  for i = 1, #names do head = head .. ", V" .. i end
  local src = {head .. " = ..."}
  src[#src + 1] = "return function(raw, tvb, o)"
  local xs = {}
  for pos = lo, hi do xs[#xs + 1] = "x" .. pos end
  src[#src + 1] = string.format("local %s = byte(raw, o + %d, o + %d)", table.concat(xs, ", "),
                                lo, hi)
  local tests = {}
  for pos = lo, hi do
    local m = mask[pos]
    if m then
      local want = AND8[byte(raw, pos)][m]
      if m == 255 then tests[#tests + 1] = string.format("x%d ~= %d", pos, want)
      else tests[#tests + 1] = string.format("AND8[x%d][%d] ~= %d", pos, m, want) end
    end
  end
  for i = 1, #tests, 8 do
    src[#src + 1] = "if " .. table.concat(tests, " or ", i, math.min(i + 7, #tests))
                    .. " then return false end"
  end
  for _, line in ipairs(body) do src[#src + 1] = line end
  if #args > 0 then
    src[#src + 1] = "return format(FMT, " .. table.concat(args, ", ") .. ")"
  else
    src[#src + 1] = "return FMT"
  end
  src[#src + 1] = "end"
  local text = table.concat(fmt, " ")
  if #args == 0 then text = table.concat(st.info, " ") end
  local chunk = load(table.concat(src, "\n"), "=ub template", "t", {})
  if chunk == nil then return nil end
  local tv = {}
  for i, base in ipairs(names) do tv[i] = vals[base] end
  local fn = chunk(floor, byte, AND8, POW2, consts, value_of, tostring, string.format, text, BITS1,
                   (table.unpack or unpack)(tv))
  local icrc, bcrc = trace.icrc, trace.bcrc
  if bcrc then   -- the block's BCRC (UB 2.0 §4.7.2), computed per frame as the walk does
    local v = bcrc.v
    bcrc = {finish = bcrc.finish, info = bcrc.info, nbits = bcrc.nbits, off = v[2],
            f = getmetatable(v).hdr.byname.crc30}
  end
  TPL.count = TPL.count + 1
  return {fn = fn, vals = vals, icrc = icrc, bcrc = bcrc, udp = false,
          -- reused frame after frame: the analysis' state and the tree stand-in
          st = {vals = vals}, root = setmetatable({}, SKIP)}
end
end

-- whether the walk of the recorded frame was one a template may repeat
function TPL.clean(st, trace)
  return not trace.bad and st.issues == 0 and st.tree.root == nil and not st.handed_over
         and not st.inner and #st.info > 0 and st.pad == 0
end

-- the stored ICRC of a frame at e (0-based) as the profile orders it
function TPL.stored_icrc(raw, e, prof)
  local a, b, c, d = byte(raw, e + 1, e + 4)
  if prof.icrc_byteorder == "little" then return ((d * 256 + c) * 256 + b) * 256 + a end
  return ((a * 256 + b) * 256 + c) * 256 + d
end

-- the part of a template's frame every entry shares: the analysis as the walk runs it
local function template_analyse(t, tvb, pinfo, tree, src, dst, visited)
  local tst, root = t.st, t.root
  tst.pinfo, tst.tvb, tst.src, tst.dst = pinfo, tvb, src, dst
  root.ptree, root.tvb, root.root = tree, tvb, nil
  analyse(tst, root, visited)
  return tst
end

-- whether nobody wants ub's tree items nor the payload's (a template's frames: no tree at all).
-- In tshark the answer is the pass's: what references fields (the filters, the columns, -T
-- fields, the taps) and whether trees are printed is set when tshark starts, so it is asked once
-- a pass (pinfo.visited: tshark -2's second pass) and kept; the GUI asks every frame (a frame
-- shown in the details pane has a visible tree)
local tree_less
do
local REFERENCED_OK = nil   -- whether TreeItem:referenced exists (Wireshark 3.6+), asked once
local BY_PASS = not gui_enabled() and {} or nil   -- tshark: pass (visited) -> the answer
function tree_less(tree, visited)
  if REFERENCED_OK == nil then REFERENCED_OK = tree.referenced ~= nil end
  if not REFERENCED_OK or UB_HANDLE == nil then return false end   -- (as wanted())
  if BY_PASS == nil then return not tree:referenced(UB_HANDLE) and not tree:referenced(DATA) end
  local less = BY_PASS[visited]
  if less == nil then
    less = not tree:referenced(UB_HANDLE) and not tree:referenced(DATA)
    BY_PASS[visited] = less
  end
  return less
end
end

-- the first template of list that takes the frame (its carrier, its guards, its ICRC): the
-- template and its Info line, or nil (a bad ICRC too: the walk reports it).  The frame's bytes
-- are raw from position o + 1 (o: 0, or the IP and UDP headers' length when raw starts with
-- them, TPL.udp_frame); hdr and udp: the IP and UDP header bytes (a string, udp_carrier_bytes)
-- and the UDP FieldInfo before a UDP payload when raw does not hold them (the ICRC covers them)
local template_for
do
local BLOCK = {raw = function(self) return self.s end}   -- crc30() takes anything with raw()
-- the ICRC of a template's frame over coverage c: the bytes before the payload (hdr, or raw's
-- first o) when c.prefixed, then the payload's from c.start
local function template_icrc(c, raw, o, hdr)
  if o == 0 then
    return icrc32_parts(c.masks, c.prefixed and hdr or nil, nil, raw, c.start + 1, c.finish)
  elseif not c.prefixed then
    return icrc32_parts(c.masks, nil, nil, raw, o + c.start + 1, o + c.finish)
  elseif c.start == 0 then
    return icrc32_parts(c.masks, nil, nil, raw, 1, o + c.finish)
  end
  return icrc32_parts(c.masks, raw:sub(1, o), nil, raw, o + c.start + 1, o + c.finish)
end
function template_for(list, raw, tvb, prof, layer, ip_len, hdr, udp, o)
  o = o or 0
  for i = 1, #list do
    local t = list[i]
    if t.layer == layer and t.ip_len == ip_len and t.udp == (udp ~= nil) then
      local info = t.fn(raw, tvb, o)
      if info then
        local c = t.icrc
        if c ~= nil and PREFS.verify_icrc then
          if template_icrc(c, raw, o, hdr) ~= TPL.stored_icrc(raw, o + c.finish, prof) then
            return nil, nil
          end
        end
        local b = t.bcrc
        if b ~= nil then
          BLOCK.s = raw:sub(o + 1, o + b.finish)
          -- (the BCRC field: an integer read from raw, after the block's bytes)
          if crc30(BLOCK, b.info, b.nbits) ~= value_of(b.f, raw, tvb, o + b.off) then
            return nil, nil
          end
        end
        TPL.used = TPL.used + 1
        return t, info
      end
    end
  end
  return nil, nil
end
end

-- a UB network packet from its LPH, or a DLL control block (START)
-- (unit: the packet's number in its frame when a frame holds several, ub_flits.lua)
local function dissect_native(tvb, pinfo, tree, prof, linktype, unit)
  TRACE = nil
  prof = profile_for(prof)
  pinfo.cols.protocol = "UB"
  local raw, sample = nil, nil
  local visited = unit == nil and PREFS.templates and pinfo.visited
  if unit == nil and PREFS.templates and tree_less(tree, visited) then
    raw = tvb:raw()
    local tpl = template_table(prof, linktype)
    local key = #raw * 256 + (byte(raw, 1) or 0)
    local list = tpl[key]
    local t, info = nil, nil
    if list ~= nil then
      t, info = template_for(list, raw, tvb, prof)
    end
    if t ~= nil then
      pinfo.cols.info = info
      -- the analysis' endpoints without an IP layer (nothing before ub sets pinfo's network
      -- addresses on these link types): the CNAs, as endpoints() takes them
      local n = t.vals["ub.cna16"] or t.vals["ub.cna24"]
      local tst
      if n then
        tst = template_analyse(t, tvb, pinfo, tree, tostring(n.scna), tostring(n.dcna), visited)
      else tst = template_analyse(t, tvb, pinfo, tree, nil, nil, visited) end
      local src, dst = ub_endpoints(tst)
      if src then
        pinfo.cols.src:set(src)
        pinfo.cols.dst:set(dst)
      end
      return #raw
    end
    sample = TPL.sample(tpl, key)
  end
  local st = new_state(tvb, pinfo, tree, prof, raw)
  st.unit = unit
  walk(st, START[linktype])
  if st.section then finish_section(st) end
  local trace = TRACE
  TRACE = nil
  if trace and TPL.clean(st, trace) then
    sample[#sample + 1] = TPL.build(st, trace)
  end
  finish(st)
  if not st.handed_over then    -- no IP header: Wireshark has no addresses to show
    local src, dst = ub_endpoints(st)
    if src then
      pinfo.cols.src:set(src)
      pinfo.cols.dst:set(dst)
    end
  end
  if not st.handed_over then analyse(st, st.tree) end   -- else the inner UDP dissection analyses it
  return tvb:len()
end

-- UB over UDP (UBoE, and CFG 3/4 packets): the UDP payload, from the RTPH/UTPH (TPH);
-- the ICRC coverage starts at the IP header (ICRC_COVERAGE, needs_ub_udp)

local F_IP, F_IPV6, F_UDP = Field.new("ip"), Field.new("ipv6"), Field.new("udp")

-- the last non-nil value of a Field extractor's values and how many there are (no table made;
-- up to three values without a call)
local function last_of(a, b, c, d, ...)
  if d == nil then
    if c ~= nil then return c, 3 elseif b ~= nil then return b, 2 elseif a ~= nil then return a, 1 end
    return nil, 0
  end
  for i = select_arg("#", a, b, c, d, ...), 1, -1 do
    local x = (select_arg(i, a, b, c, d, ...))
    if x ~= nil then return x, i end
  end
  return nil, 0
end

-- the ICRC masks of an IP header of ip_len bytes and the UDP header after it (made once a layout)
local IP_UDP_MASKS = {}
local function ip_udp_masks(layer, ip_len)
  local key = layer .. ip_len
  local masks = IP_UDP_MASKS[key]
  if masks == nil then
    masks = {}
    for _, m in ipairs(ICRC_MASKS[layer] or {}) do masks[#masks + 1] = m end
    for _, m in ipairs(ICRC_MASKS["udp"] or {}) do masks[#masks + 1] = {m[1] + ip_len, m[2], m[3]} end
    IP_UDP_MASKS[key] = masks
  end
  return masks
end

-- the text of an IPv4 source and destination (8 bytes) as Wireshark writes them, remembered for
-- the addresses seen last (IP4_TEXT_MAX, then it starts over)
local ip4_text
do   -- (a block: the main function's locals are limited to 200)
local IP4_TEXT, IP4_TEXT_N, IP4_TEXT_MAX = {}, 0, 4096
function ip4_text(b8)
  local pair = IP4_TEXT[b8]
  if pair == nil then
    local a, b, c, d, e, f, g, h = byte(b8, 1, 8)
    pair = {string.format("%d.%d.%d.%d", a, b, c, d), string.format("%d.%d.%d.%d", e, f, g, h)}
    if IP4_TEXT_N >= IP4_TEXT_MAX then IP4_TEXT, IP4_TEXT_N = {}, 0 end
    IP4_TEXT[b8], IP4_TEXT_N = pair, IP4_TEXT_N + 1
  end
  return pair[1], pair[2]
end
end

-- the carrier of a UDP payload: the innermost IP header (its layer and FieldInfo), the UDP
-- item (FieldInfo), and whether that IP header is the frame's only one (an IPv4 header)
local function udp_carrier()
  local ip4, n4 = last_of(F_IP())
  local ip6, udp = last_of(F_IPV6()), last_of(F_UDP())
  if ip4 ~= nil then
    if ip6 == nil then return "ip", ip4, udp, n4 == 1 end
    if ip6.offset < ip4.offset then return "ip", ip4, udp end
    return "ipv6", ip6, udp
  elseif ip6 ~= nil then
    return "ipv6", ip6, udp
  end
  return nil, nil, udp
end

-- the bytes of the IP header (FieldInfo ip, ip_len bytes) and of the UDP header after it
-- (FieldInfo udp, or nil: the IP header's only), as one string: one Tvb:raw of the packet's
-- data when the UDP header follows the IP header there (an IP item followed at once by the UDP
-- item: a UDP header reassembled from IP fragments sits at its own data's start, so never
-- right after its IP item's end), else the two items' bytes joined (IPv6 extension headers)
local function udp_carrier_bytes(ip, ip_len, udp)
  if udp == nil then return ip.range:raw() end
  local off = ip.offset
  if udp.offset == off + ip_len then return ip.source:raw(off, ip_len + udp.len) end
  return ip.range:raw() .. udp.range:raw()
end

-- A UDP payload a template takes, read with the IP and UDP headers before it in one string
-- instead of through the IP items and tvb:raw(): the innermost UDP item's data source from
-- ip_len bytes before that item (ip_len: the IP header length last found before a UDP header at
-- that offset in its frame, 20 at first), the payload's length from the UDP header, its layout
-- key from its first byte; when the key's first template has another IP header length, read
-- again with that one.  The carrier is
-- checked against the bytes (IPv4: version and IHL, protocol UDP, total length; IPv6 without
-- extension headers: version, next header UDP, payload length; the UDP length within the
-- captured bytes), so the string is the IP and UDP headers udp_carrier_bytes would give and
-- then the UDP payload exactly.  The template's Info line set and its analysis run: the payload's
-- length; else nil (the frame takes dissect_udp's other ways: the IP items).
-- Not in an ICMP error's quote: those take the IP items' way, with Wireshark's own choice of
-- addresses (the analysis' endpoints) for an error packet's contents.
-- Against udp_carrier: two Field calls, a FieldInfo, its attributes and tvb:raw() fewer a frame
-- (calls into Wireshark and the objects they make are much of a template frame's cost).
TPL.ip_len_at = {}   -- UDP header offset -> the IP header length last found before it
function TPL.udp_frame(tvb, pinfo, tree, prof, cols, visited)
  if pinfo.in_error_pkt then return nil end
  local udp, more = F_UDP()               -- (the last value: the innermost UDP header)
  if more ~= nil then udp = last_of(F_UDP()) end
  if udp == nil then return nil end
  local m = TPL.udp_table     -- template_table(prof, "udp"), kept while the profile and mode hold
  if m.prof ~= prof or m.mode ~= PREFS.crc_mode then
    m.prof, m.mode, m.t = prof, PREFS.crc_mode, template_table(prof, "udp")
  end
  local uoff, source = udp.offset, udp.source
  local ip_len = TPL.ip_len_at[uoff] or 20
  local list, tried = nil, 0
  while true do
    if uoff >= ip_len then
      local raw = source:raw(uoff - ip_len)
      local o = ip_len + 8                 -- the payload: raw[o + 1 .. o + n]
      local u1, u2 = byte(raw, ip_len + 5, ip_len + 6)
      if u2 == nil then return nil end
      local n = u1 * 256 + u2 - 8
      if n < 0 or o + n > #raw then return nil end
      list = list or m.t[n * 256 + (byte(raw, o + 1) or 0)]
      if list == nil then return nil end
      -- the IP header those bytes hold, if they hold one of ip_len bytes that ends at the UDP
      -- header and says so (protocol UDP, its length)
      local b1, layer = byte(raw, 1), nil
      if ip_len >= 20 and b1 == 64 + floor(ip_len / 4) then
        local l1, l2 = byte(raw, 3, 4)
        if byte(raw, 10) == 17 and l1 * 256 + l2 == o + n then layer = "ip" end
      elseif ip_len == 40 and floor(b1 / 16) == 6 then
        local l1, l2 = byte(raw, 5, 6)
        if byte(raw, 7) == 17 and l1 * 256 + l2 == n + 8 then layer = "ipv6" end
      end
      if layer then
        TPL.ip_len_at[uoff] = ip_len
        local t, info = template_for(list, raw, tvb, prof, layer, ip_len, nil, true, o)
        if t == nil then return nil end
        TPL.carried = TPL.carried + 1
        cols.info = info
        local src, dst
        if layer == "ip" then src, dst = ip4_text(raw:sub(13, 20)) end
        template_analyse(t, tvb, pinfo, tree, src, dst, visited)
        return n
      end
    end
    -- not an IP header of that length: the next IP header length the key's templates have
    -- (a capture of several carriers), else the IP items' way
    if list == nil then return nil end
    local next_len = nil
    while next_len == nil and tried < #list do
      tried = tried + 1
      local t = list[tried]
      if t.udp and t.ip_len ~= ip_len then next_len = t.ip_len end
    end
    if next_len == nil then return nil end
    ip_len = next_len
  end
end

local function dissect_udp(tvb, pinfo, tree)
  TRACE = nil
  local prof = PROFILE_CHOICE[PROFILE_BY_PREF[PREFS.profile] or "auto"] or PROFILE.spec   -- profile_for
  local inner = CTX ~= nil and CTX.num == pinfo.number
  if inner then prof = CTX.prof end
  local cols = pinfo.cols   -- (one Columns object a frame)
  cols.protocol = "UB"
  local visited, easy = nil, false     -- (pinfo.visited: read once, for the analysis too)
  if not inner and PREFS.templates then
    visited = pinfo.visited
    easy = tree_less(tree, visited)
  end
  local taken = easy and TPL.udp_frame(tvb, pinfo, tree, prof, cols, visited)
  if taken then return taken end
  local layer, ip, udp, lone_ip4 = udp_carrier()
  local raw, sample = nil, nil
  -- the carrier a template was made with: IP or IPv6, its header's length (for IPv4 the IHL:
  -- Wireshark's ip item spans IHL x 4 bytes), UDP or not
  local ip_len = ip and ip.len or 0
  -- the IP and UDP header bytes: for the ICRC (the walk's IPv4 header length too, below)
  local hdr = ip and PREFS.verify_icrc and udp_carrier_bytes(ip, ip_len, udp) or nil
  if easy then
    raw = tvb:raw()
    local tpl = template_table(prof, "udp")
    local key = #raw * 256 + (byte(raw, 1) or 0)
    local list = tpl[key]
    local t, info = nil, nil
    if list ~= nil then
      t, info = template_for(list, raw, tvb, prof, layer, ip_len, hdr, udp)
    end
    if t ~= nil then
      cols.info = info
      -- the analysis' endpoints: the addresses the IP dissector put in pinfo (endpoints()),
      -- here from the bytes when the frame has one IPv4 header (no Address objects made)
      local src, dst
      if lone_ip4 and ip_len >= 20 then
        src, dst = ip4_text(hdr and hdr:sub(13, 20) or ip.range:raw(12, 8))
      end
      template_analyse(t, tvb, pinfo, tree, src, dst, visited)
      return #raw
    end
    sample = TPL.sample(tpl, key)
  end
  local st = new_state(tvb, pinfo, tree, prof, raw)
  st.inner = inner
  st.section = true
  if st.inner and CTX.vals then
    for base, vals in pairs(CTX.vals) do st.vals[base] = vals end   -- the headers before IP
  end
  if ip ~= nil and hdr == nil then hdr = udp_carrier_bytes(ip, ip_len, udp) end
  if layer == "ip" then st.vals.ip = {hdr_len = byte(hdr, 1) % 16} end
  local c = layer and ICRC_BY_START[layer]
  local room = true
  if c ~= nil and udp ~= nil and covers(c, st) then
    -- the ICRC covers the IP header, the UDP header (after it) and the UDP payload
    st.icrc = {start = 0, prefix = hdr, masks = ip_udp_masks(layer, ip_len)}
    room = reserve_icrc(st)
  end
  if room then
    walk(st, TPH)
    finish_section(st)
  end
  local trace = TRACE
  TRACE = nil
  if trace and TPL.clean(st, trace) then
    local t = TPL.build(st, trace, TPL.UDP_UNREAD)
    if t then
      t.ip_len, t.layer, t.udp = ip_len, layer, udp ~= nil
      sample[#sample + 1] = t
    end
  end
  finish(st)
  analyse(st, st.tree)
  return tvb:len()
end

-- ---------------------------------------------------------------------------------------------
-- registration

-- One protocol, `ub`, does every dissection, so every expert item and column shows under one
-- name (Wireshark files an expert item under the protocol whose dissector is running): `ub` is
-- what the link types, the UDP ports and the heuristic call, and what Decode As offers on
-- udp.port.  ub_udp, ub_ns3 and ub_ubl remain as Decode As names: each says how to read the
-- data (ENTRY) and calls `ub`.  Called without an ENTRY, `ub` reads the data as UDP payload when
-- UDP called it (the udp.port table, Decode As), as an ns-3-UB trace
-- or a Linux UB link netdev frame for those link types, else as a UB packet from its LPH.
local ENTRY = nil
local ENTRY_NATIVE = {
  [wtap.USER0] = {PROFILE.ns3, 147},    -- LINKTYPE 147: ns-3-UB traces
  [wtap.USER1] = {PROFILE.spec, 148},   -- LINKTYPE 148: a UB network packet from its LPH
  [wtap.USER3] = {PROFILE.spec, 150},   -- LINKTYPE 150: the Linux UB link netdev's frames
}

-- called by UDP (its port table or Decode As): the ports are UDP's and the table matched one of
-- them (pinfo, not fields: tshark's first pass of -2 has no tree to read fields from)
local PT_UDP = 3   -- Wireshark's port_type enumeration (epan/address.h)
local function after_udp(pinfo)
  return pinfo.port_type == PT_UDP and
         (pinfo.match_uint == pinfo.dst_port or pinfo.match_uint == pinfo.src_port)
end

function ub.dissector(tvb, pinfo, tree)
  local entry = ENTRY
  ENTRY = nil
  if entry == nil then
    if after_udp(pinfo) then entry = "udp"
    else entry = ENTRY_NATIVE[pinfo.match_uint] or ENTRY_NATIVE[wtap.USER1] end
  end
  if entry == "udp" then return dissect_udp(tvb, pinfo, tree) end
  if type(entry) == "function" then return entry(tvb, pinfo, tree) end
  return dissect_native(tvb, pinfo, tree, entry[1], entry[2])
end

-- for ub_flits.lua, run next with this environment: the link-type entries of `ub` (a function
-- for a link type read by another file) and the UB packet dissector of a packet reassembled
-- from flits or a DLL control block (unit: its number in the frame)
LINK_ENTRIES = ENTRY_NATIVE
UB_PACKET = function(tvb, pinfo, tree, unit)
  local e = ENTRY_NATIVE[wtap.USER1]
  return dissect_native(tvb, pinfo, tree, e[1], e[2], unit)
end
local UB = Dissector.get("ub")
UB_HANDLE = UB

-- the entry's way of reading, then `ub` (a throw inside `ub` still reaches Wireshark as such)
local function via_ub(entry)
  return function(tvb, pinfo, tree)
    ENTRY = entry
    local ok, r = pcall(UB.call, UB, tvb, pinfo, tree)
    ENTRY = nil
    if not ok then error(r, 0) end
    return r
  end
end
ub_udp.dissector = via_ub("udp")
local ub_ns3 = Proto("ub_ns3", "UnifiedBus (ns-3-UB trace)")
ub_ns3.dissector = via_ub(ENTRY_NATIVE[wtap.USER0])
-- a capture on a Linux UB link netdev (ubpkt.record.LINKTYPE_UBL, a profile choice)
local ub_ubl = Proto("ub_ubl", "UnifiedBus (Linux UB link netdev)")
ub_ubl.dissector = via_ub(ENTRY_NATIVE[wtap.USER3])

local wtap_encap = DissectorTable.get("wtap_encap")
for encap in pairs(ENTRY_NATIVE) do wtap_encap:add(encap, ub) end
for port in pairs(UB_PORTS) do DissectorTable.get("udp.port"):add(port, ub) end
DissectorTable.get("udp.port"):add_for_decode_as(ub_udp)
function ub.prefs_changed()
  PREFS.verify_icrc, PREFS.profile = ub.prefs.verify_icrc, ub.prefs.profile
  PREFS.crc_mode = ub.prefs.crc_mode
  use_crc_core(ub.prefs.crc_core)
  PREFS.templates = ub.prefs.templates
  local want = parse_ports(ub.prefs.udp_ports)
  local udp_port = DissectorTable.get("udp.port")
  for port in pairs(UB_PORTS) do
    if not want[port] then udp_port:remove(port, ub); UB_PORTS[port] = nil end
  end
  for port in pairs(want) do
    if not UB_PORTS[port] then udp_port:add(port, ub); UB_PORTS[port] = true end
  end
end

-- UB over UDP is addressed to destination port 4792 whatever the source port (UB 2.0 §5.2.3),
-- but Wireshark's UDP tries the lower of the two ports first: a well-known source port (53,
-- scapy's default) would open the packet as DNS and never reach ub.  So every port below
-- the lowest UB port that has a dissector is routed through this guard, which hands datagrams
-- *to* a UB port to ub (through ub_udp) and everything else to the dissector it displaced (pinfo.match_uint
-- is the port the table matched).  Installed at init, once the built-in dissectors have
-- registered their ports.
local ub_guard = Proto("ub_udp_guard", "UB over UDP: destination port ahead of the source port")
local GUARDED = {}   -- port -> the dissector the guard displaced
-- a displaced dissector that throws (a malformed datagram) would surface as a Lua error through
-- Dissector:call; it is shown as the malformed-packet expert info it is instead
local ef_malformed = ProtoExpert.new("ub_udp_guard.malformed", "Malformed packet",
                                     expert.group.MALFORMED, expert.severity.ERROR)
ub_guard.experts = {ef_malformed}
function ub_guard.dissector(tvb, pinfo, tree)
  if UB_PORTS[pinfo.dst_port] then
    return ub_udp.dissector(tvb, pinfo, tree)
  end
  local orig = GUARDED[pinfo.match_uint]
  if orig == nil then return 0 end
  local ok, r = pcall(orig.call, orig, tvb, pinfo, tree)
  if ok then return r end
  tree:add_proto_expert_info(ef_malformed, "Malformed packet: " .. tostring(r))
  return tvb:len()
end
function ub_guard.init()
  local lowest
  for port in pairs(UB_PORTS) do
    if lowest == nil or port < lowest then lowest = port end
  end
  if lowest == nil then return end
  local udp_port = DissectorTable.get("udp.port")
  for port = 1, lowest - 1 do
    if GUARDED[port] == nil then
      local d = udp_port:get_dissector(port)
      if d ~= nil then
        GUARDED[port] = d
        udp_port:add(port, ub_guard)
      end
    end
  end
end

-- ns-3-UB sends UB over UDP to any port: claim the datagram while CTX says so
-- and, with the heuristic preference, UBoE to another port: claimed when the last four bytes
-- are the ICRC (reference profile) of the IP header, the UDP header and the payload
local function icrc_matches(tvb)
  local n = tvb:len()
  local layer, ip, udp = udp_carrier()
  if udp == nil or ip == nil or n < 4 + 4 then return false end
  local ip_len = ip.len
  local masks = ip_udp_masks(layer, ip_len)
  local r = tvb(n - 4, 4)
  local stored = PROFILE.spec.icrc_byteorder == "little" and r:le_uint() or r:uint()
  return icrc32_parts(masks, udp_carrier_bytes(ip, ip_len, udp), nil, tvb:raw(), 1, n - 4) == stored
end

ub:register_heuristic("udp", function(tvb, pinfo, tree)
  if (CTX and CTX.num == pinfo.number and CTX.prof.any_udp_port_is_ub)
     or (ub.prefs.heuristic and CTX == nil and icrc_matches(tvb)) then
    dissect_udp(tvb, pinfo, tree)
    return true
  end
  return false
end)
end
