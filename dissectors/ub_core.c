/*
 * ub_core: the CRCs of the UnifiedBus Wireshark plugin (dissectors/ub.lua) in C, for the Lua
 * that Wireshark embeds (5.2 in Wireshark 4.0, 5.4 in 4.4+).  ub_dispatch.lua loads it with
 * package.loadlib when ub_core-<Lua version>.so sits in the plugin's folder and then calls these
 * instead of its pure-Lua CRCs, which give the same results (tests/dissectors/test_lua_core.py):
 *
 *   ub_core.icrc32(s, masks) -> the ICRC (UB 2.0 §5.3.7): the reflected CRC-32 of zlib (preset
 *       ones, polynomial 0xEDB88320, final inversion) over the Lua string s, where masks is a
 *       list of {offset, length, or_mask}: byte offset (0-based) is ORed with or_mask, the
 *       length - 1 bytes after it are taken as 0xFF (the hop-varying fields).  When masks
 *       overlap, the later entry's value wins for a byte; a length of 0 still masks the byte at
 *       offset.  Masked bytes beyond the string are ignored.  The list is read once per table
 *       (cached by identity, as the Lua version caches it): change a list's entries and you
 *       must pass a new table.
 *   ub_core.icrc32_parts(masks, a, b, c, first, last) -> the ICRC of a .. b .. c:sub(first, last)
 *       (string.sub's index rules; last defaults to -1), the mask positions over that
 *       concatenation, without making it: a UBoE frame's IP/UDP header bytes and its UDP
 *       payload up to the ICRC, as they come.  a and b may be nil (taken as "").
 *   ub_core.crc30(s, first, last, value, nbits) -> the BCRC's CRC30 (UB 2.0 §4.7.2: polynomial
 *       0x15A94AD5 + x^30, MSB first, register preset to ones, no final inversion) over the
 *       bytes s[first..last] (string.byte's index rules: negative counts from the end, clamped
 *       to the string), then the nbits (0..62) low bits of value, most significant first.
 *
 * Built without linking liblua (the Lua symbols come from the Wireshark that loads it):
 * python3 dissectors/build_core.py (dissectors/README.md, "Compiled CRCs").  C99.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <lua.h>
#include <lauxlib.h>

#define CRC30_POLY 0x15A94AD5u
#define CRC30_MASK 0x3FFFFFFFu
#define CRC30_TOP 0x20000000u
/* the most bytes an ICRC mask list may mask (a guard against a runaway length) */
#define MAX_MASKED 65536

static uint32_t crc32_table[256];
static uint32_t crc30_table[256];

static void make_tables(void)
{
    for (uint32_t i = 0; i < 256; i++) {
        uint32_t c = i;
        for (int k = 0; k < 8; k++)
            c = (c & 1u) ? (c >> 1) ^ 0xEDB88320u : c >> 1;
        crc32_table[i] = c;

        uint32_t d = i << 22;          /* the byte at the top of the 30-bit register */
        for (int k = 0; k < 8; k++)
            d = (d & CRC30_TOP) ? ((d << 1) ^ CRC30_POLY) & CRC30_MASK : (d << 1) & CRC30_MASK;
        crc30_table[i] = d;
    }
}

/* reflected CRC-32 steps (state not inverted here) over n bytes */
static uint32_t crc32_run(uint32_t c, const unsigned char *p, size_t n)
{
    while (n--)
        c = (c >> 8) ^ crc32_table[(c ^ *p++) & 0xFFu];
    return c;
}

/* ---- the compiled form of an ICRC mask list: the masked positions, ascending, and the byte
 * each is ORed with (a full userdata, cached in a weak-keyed table by the list's identity) */

typedef struct {
    size_t pos;      /* 0-based byte offset */
    size_t seq;      /* order of appearance: the later entry wins a position */
    unsigned char value;
} masked_byte;

typedef struct {
    size_t n;
    masked_byte at[1];   /* n entries (at least one slot allocated) */
} mask_list;

static int by_pos_then_seq(const void *a, const void *b)
{
    const masked_byte *x = a, *y = b;
    if (x->pos != y->pos) return x->pos < y->pos ? -1 : 1;
    if (x->seq != y->seq) return x->seq < y->seq ? -1 : 1;
    return 0;
}

static lua_Integer field_int(lua_State *L, int entry, int index, lua_Integer lo, lua_Integer hi,
                             lua_Integer k)
{
    int isnum = 0;
    lua_rawgeti(L, -1, index);
    lua_Integer v = lua_tointegerx(L, -1, &isnum);
    /* lua_tointegerx in 5.2 truncates a float: insist on an integral number */
    if (!isnum || (lua_Number)v != lua_tonumber(L, -1) || v < lo || v > hi)
        luaL_error(L, "ICRC mask %d: entry %d is not an integer in [%d, %d]", (int)k, entry,
                   (int)lo, (int)hi);
    lua_pop(L, 1);
    return v;
}

/* compiles the mask list at stack index idx; leaves the mask_list userdata on the stack */
static mask_list *compile_masks(lua_State *L, int idx)
{
    size_t count = lua_rawlen(L, idx), total = 0;
    masked_byte *tmp;
    /* a first pass for the size (a mask of length 0 or 1 is its first byte only) */
    for (size_t k = 1; k <= count; k++) {
        lua_rawgeti(L, idx, (lua_Integer)k);
        luaL_argcheck(L, lua_istable(L, -1), 2, "an ICRC mask is not a table");
        lua_Integer len = field_int(L, 2, 2, 0, MAX_MASKED, (lua_Integer)k);
        total += len > 1 ? (size_t)len : 1;
        lua_pop(L, 1);
        if (total > MAX_MASKED) luaL_error(L, "ICRC masks cover more than %d bytes", MAX_MASKED);
    }
    tmp = lua_newuserdata(L, (total ? total : 1) * sizeof *tmp);   /* garbage-collected */
    size_t t = 0;
    for (size_t k = 1; k <= count; k++) {
        lua_rawgeti(L, idx, (lua_Integer)k);
        size_t off = (size_t)field_int(L, 1, 1, 0, 0x7FFFFFFF, (lua_Integer)k);
        lua_Integer len = field_int(L, 2, 2, 0, MAX_MASKED, (lua_Integer)k);
        unsigned char first = (unsigned char)field_int(L, 3, 3, 0, 255, (lua_Integer)k);
        lua_pop(L, 1);
        tmp[t].pos = off; tmp[t].seq = t; tmp[t].value = first; t++;
        for (lua_Integer j = 1; j < len; j++) {
            tmp[t].pos = off + (size_t)j; tmp[t].seq = t; tmp[t].value = 0xFF; t++;
        }
    }
    qsort(tmp, t, sizeof *tmp, by_pos_then_seq);
    size_t kept = 0;
    for (size_t i = 0; i < t; i++) {        /* one entry a position: the last one given */
        if (kept > 0 && tmp[kept - 1].pos == tmp[i].pos) tmp[kept - 1] = tmp[i];
        else tmp[kept++] = tmp[i];
    }
    mask_list *m = lua_newuserdata(L, sizeof *m + (kept ? kept - 1 : 0) * sizeof m->at[0]);
    m->n = kept;
    if (kept) memcpy(m->at, tmp, kept * sizeof *tmp);
    lua_remove(L, -2);                      /* the scratch list */
    return m;
}

/* the mask list at stack index idx, compiled once a table (upvalue 1: the weak-keyed cache
 * {masks table -> mask_list}, shared by icrc32 and icrc32_parts) */
static mask_list *masks_at(lua_State *L, int idx)
{
    luaL_checktype(L, idx, LUA_TTABLE);
    lua_pushvalue(L, idx);
    lua_rawget(L, lua_upvalueindex(1));
    mask_list *m = lua_touserdata(L, -1);
    lua_pop(L, 1);
    if (m == NULL) {
        m = compile_masks(L, idx);
        lua_pushvalue(L, idx);
        lua_pushvalue(L, -2);
        lua_rawset(L, lua_upvalueindex(1));
        lua_pop(L, 1);                      /* the cache keeps it alive */
    }
    return m;
}

/* one piece of the covered bytes: its bytes and its offset in the whole */
typedef struct {
    const unsigned char *p;
    size_t n, at;
} piece;

/* the ICRC over pieces laid end to end, masked by m (positions over the whole) */
static uint32_t icrc_over(const mask_list *m, const piece *pc, int npieces)
{
    uint32_t c = 0xFFFFFFFFu;
    size_t i = 0;
    for (int k = 0; k < npieces; k++) {
        const unsigned char *p = pc[k].p;
        size_t done = 0, at = pc[k].at, n = pc[k].n;
        for (; i < m->n && m->at[i].pos < at + n; i++) {
            size_t q = m->at[i].pos - at;
            c = crc32_run(c, p + done, q - done);
            unsigned char b = (unsigned char)(p[q] | m->at[i].value);
            c = crc32_run(c, &b, 1);
            done = q + 1;
        }
        c = crc32_run(c, p + done, n - done);
    }
    return c ^ 0xFFFFFFFFu;
}

/* string.byte's (and string.sub's) reading of a position i of a string of length len */
static lua_Integer relative(lua_Integer i, size_t len)
{
    if (i >= 0) return i;
    if ((size_t)0 - (size_t)i > len) return 0;
    return (lua_Integer)len + i + 1;
}

/* icrc32_parts(masks, a, b, c, first, last): the ICRC of a .. b .. c:sub(first, last) */
static int l_icrc32_parts(lua_State *L)
{
    size_t na = 0, nb = 0, nc;
    const char *a = lua_isnoneornil(L, 2) ? "" : luaL_checklstring(L, 2, &na);
    const char *b = lua_isnoneornil(L, 3) ? "" : luaL_checklstring(L, 3, &nb);
    const char *c = luaL_checklstring(L, 4, &nc);
    lua_Integer first = relative(luaL_optinteger(L, 5, 1), nc);
    lua_Integer last = relative(luaL_optinteger(L, 6, -1), nc);
    mask_list *m = masks_at(L, 1);
    if (first < 1) first = 1;
    if (last > (lua_Integer)nc) last = (lua_Integer)nc;
    size_t take = first <= last ? (size_t)(last - first + 1) : 0;
    piece pc[3] = {{(const unsigned char *)a, na, 0}, {(const unsigned char *)b, nb, na},
                   {(const unsigned char *)c + (take ? first - 1 : 0), take, na + nb}};
    lua_pushinteger(L, (lua_Integer)icrc_over(m, pc, 3));
    return 1;
}

/* icrc32(s, masks) */
static int l_icrc32(lua_State *L)
{
    size_t n;
    const unsigned char *s = (const unsigned char *)luaL_checklstring(L, 1, &n);
    mask_list *m = masks_at(L, 2);
    piece pc = {s, n, 0};
    lua_pushinteger(L, (lua_Integer)icrc_over(m, &pc, 1));
    return 1;
}

static int l_crc30(lua_State *L)
{
    size_t n;
    const unsigned char *s = (const unsigned char *)luaL_checklstring(L, 1, &n);
    lua_Integer first = relative(luaL_checkinteger(L, 2), n);
    lua_Integer last = relative(luaL_optinteger(L, 3, first), n);
    lua_Integer value = luaL_optinteger(L, 4, 0);
    lua_Integer nbits = luaL_optinteger(L, 5, 0);
    luaL_argcheck(L, nbits >= 0 && nbits <= 62, 5, "nbits must be 0..62");
    if (first < 1) first = 1;
    if (last > (lua_Integer)n) last = (lua_Integer)n;
    uint32_t c = CRC30_MASK;
    for (lua_Integer k = first; k <= last; k++)
        c = ((c << 8) ^ crc30_table[((c >> 22) ^ s[k - 1]) & 0xFFu]) & CRC30_MASK;
    for (lua_Integer i = nbits - 1; i >= 0; i--) {
        uint32_t feedback = ((c >> 29) ^ (uint32_t)((value >> i) & 1)) & 1u;
        c = (c << 1) & CRC30_MASK;
        if (feedback) c ^= CRC30_POLY;
    }
    lua_pushinteger(L, (lua_Integer)c);
    return 1;
}

int luaopen_ub_core(lua_State *L)
{
    luaL_checkversion(L);    /* a module built for another Lua refuses to load, with a message */
    make_tables();
    lua_newtable(L);
    lua_newtable(L);                        /* the mask-list cache, weak keys */
    lua_newtable(L);
    lua_pushliteral(L, "k");
    lua_setfield(L, -2, "__mode");
    lua_setmetatable(L, -2);
    lua_pushvalue(L, -1);                   /* the cache, shared by both ICRC entries */
    lua_pushcclosure(L, l_icrc32, 1);
    lua_setfield(L, -3, "icrc32");
    lua_pushcclosure(L, l_icrc32_parts, 1);
    lua_setfield(L, -2, "icrc32_parts");
    lua_pushcfunction(L, l_crc30);
    lua_setfield(L, -2, "crc30");
    lua_pushinteger(L, LUA_VERSION_NUM);
    lua_setfield(L, -2, "lua_version_num");
    return 1;
}
