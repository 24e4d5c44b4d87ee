/* Compiled helpers of the data link: the CRC30 of the BCRC (UB 2.0 §4.7.2) over many blocks
 * of one buffer in one call, and the framing of one DLLDP into its blocks (§4.3.2).
 *
 * Optional (built by setup.py when a C compiler is there).  Without it ubpkt.link.crc30 uses
 * anycrc or its pure-Python/numpy engines and ubpkt.link.framing frames in Python; those stay
 * the reference this module is tested against (tests/link/test_crc_backends.py,
 * tests/link/test_framing.py).
 *
 * CRC30: polynomial 0x15A94AD5 (x^30 implied), register preset to all ones, MSB first, no
 * reflection, no final inversion.  It is computed as a 32-bit MSB-first CRC with generator
 * G(x) * x^2 and a register holding the 30-bit one shifted left by 2: the remainder of
 * M(x) x^32 mod G(x) x^2 is x^2 (M(x) x^30 mod G(x)), so the top 30 bits of the 32-bit
 * register are the CRC30 register at every step.  Slicing by 8: eight bytes per table round.
 *
 * crc30_blocks(buf, spans, infos) -> list[int]
 *     the BCRC's CRC30 of every block buf[start:end-4] ((start, end) in spans), followed by
 *     the block's two information bits infos[i] when infos is not None.
 * check_blocks(buf, spans, covers_info) -> list[bool]
 *     whether every block buf[start:end] carries a correct BCRC in its last 4 bytes (the
 *     information bits read from that word, covered when covers_info).
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <string.h>

#define POLY30 0x15A94AD5u
#define MASK30 0x3FFFFFFFu
#define POLY32 (POLY30 << 2)

static uint32_t T[8][256];

static void make_tables(void)
{
    for (uint32_t b = 0; b < 256; b++) {
        uint32_t c = b << 24;
        for (int i = 0; i < 8; i++)
            c = (c & 0x80000000u) ? (c << 1) ^ POLY32 : (c << 1);
        T[0][b] = c;
    }
    for (int k = 1; k < 8; k++)
        for (int b = 0; b < 256; b++)
            T[k][b] = (T[k - 1][b] << 8) ^ T[0][T[k - 1][b] >> 24];
}

/* the 30-bit register after feeding n bytes into register r30 */
static uint32_t crc30_run(uint32_t r30, const unsigned char *p, Py_ssize_t n)
{
    uint32_t c = r30 << 2;
    while (n >= 8) {
        uint32_t a = c ^ ((uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3]);
        c = T[7][a >> 24] ^ T[6][(a >> 16) & 0xFF] ^ T[5][(a >> 8) & 0xFF] ^ T[4][a & 0xFF]
            ^ T[3][p[4]] ^ T[2][p[5]] ^ T[1][p[6]] ^ T[0][p[7]];
        p += 8;
        n -= 8;
    }
    while (n-- > 0)
        c = (c << 8) ^ T[0][(c >> 24) ^ *p++];
    return c >> 2;
}

/* feed the two information bits (MSB first) */
static uint32_t crc30_info(uint32_t r, unsigned info)
{
    for (int s = 1; s >= 0; s--) {
        unsigned fb = ((r >> 29) ^ (info >> s)) & 1u;
        r = (r << 1) & MASK30;
        if (fb)
            r ^= POLY30;
    }
    return r;
}

/* The end of a DLL data block of len bytes at b (UB 2.0 §4.3.4): in CRC mode its BCRC word
   (ERROR_FLAG bit, then the CRC30 over the block, also over that bit when the profile says the
   CRC covers it: covers); in non-CRC mode the END byte's ERROR_FLAG on the last block. */
static void seal_block(unsigned char *b, Py_ssize_t len, int crc_mode, int covers,
                       int error_flag)
{
    if (crc_mode) {
        unsigned info = error_flag ? 1u : 0u;
        uint32_t r = crc30_run(MASK30, b, len - 4);
        if (covers)
            r = crc30_info(r, info);
        uint32_t w = (info << 30) | r;
        b[len - 4] = w >> 24;
        b[len - 3] = w >> 16;
        b[len - 2] = w >> 8;
        b[len - 1] = w;
    } else if (error_flag) {
        b[len - 1] = 0x40;
    }
}

/* (start, end) of span i; -1 with an exception set when it is not inside the buffer */
static int span_of(PyObject *spans, Py_ssize_t i, Py_ssize_t len, Py_ssize_t *s, Py_ssize_t *e)
{
    PyObject *t = PySequence_Fast_GET_ITEM(spans, i);
    if (!PyTuple_Check(t) || PyTuple_GET_SIZE(t) != 2) {
        PyErr_SetString(PyExc_TypeError, "spans are (start, end) tuples");
        return -1;
    }
    *s = PyLong_AsSsize_t(PyTuple_GET_ITEM(t, 0));
    *e = PyLong_AsSsize_t(PyTuple_GET_ITEM(t, 1));
    if (PyErr_Occurred())
        return -1;
    if (*s < 0 || *e > len || *e - *s < 4) {
        PyErr_SetString(PyExc_ValueError, "a span is outside the buffer or shorter than a BCRC");
        return -1;
    }
    return 0;
}

static PyObject *crc30_blocks(PyObject *self, PyObject *args)
{
    Py_buffer view;
    PyObject *spans_in, *infos_in, *spans = NULL, *infos = NULL, *out = NULL;
    if (!PyArg_ParseTuple(args, "y*OO", &view, &spans_in, &infos_in))
        return NULL;
    spans = PySequence_Fast(spans_in, "spans must be a sequence");
    if (!spans)
        goto done;
    Py_ssize_t n = PySequence_Fast_GET_SIZE(spans);
    if (infos_in != Py_None) {
        infos = PySequence_Fast(infos_in, "infos must be a sequence or None");
        if (!infos)
            goto done;
        if (PySequence_Fast_GET_SIZE(infos) < n) {
            PyErr_SetString(PyExc_ValueError, "one information value per span");
            goto done;
        }
    }
    out = PyList_New(n);
    if (!out)
        goto done;
    const unsigned char *buf = view.buf;
    for (Py_ssize_t i = 0; i < n; i++) {
        Py_ssize_t s, e;
        if (span_of(spans, i, view.len, &s, &e) < 0)
            goto fail;
        uint32_t r = crc30_run(MASK30, buf + s, e - s - 4);
        if (infos) {
            long info = PyLong_AsLong(PySequence_Fast_GET_ITEM(infos, i));
            if (info == -1 && PyErr_Occurred())
                goto fail;
            r = crc30_info(r, (unsigned)info & 3u);
        }
        PyObject *v = PyLong_FromUnsignedLong(r);
        if (!v)
            goto fail;
        PyList_SET_ITEM(out, i, v);
    }
    goto done;
fail:
    Py_CLEAR(out);
done:
    Py_XDECREF(spans);
    Py_XDECREF(infos);
    PyBuffer_Release(&view);
    return out;
}

static PyObject *check_blocks(PyObject *self, PyObject *args)
{
    Py_buffer view;
    PyObject *spans_in, *spans = NULL, *out = NULL;
    int covers;
    if (!PyArg_ParseTuple(args, "y*Op", &view, &spans_in, &covers))
        return NULL;
    spans = PySequence_Fast(spans_in, "spans must be a sequence");
    if (!spans)
        goto done;
    Py_ssize_t n = PySequence_Fast_GET_SIZE(spans);
    out = PyList_New(n);
    if (!out)
        goto done;
    const unsigned char *buf = view.buf;
    for (Py_ssize_t i = 0; i < n; i++) {
        Py_ssize_t s, e;
        if (span_of(spans, i, view.len, &s, &e) < 0) {
            Py_CLEAR(out);
            goto done;
        }
        const unsigned char *w = buf + e - 4;
        uint32_t word = (uint32_t)w[0] << 24 | (uint32_t)w[1] << 16 | (uint32_t)w[2] << 8 | w[3];
        uint32_t r = crc30_run(MASK30, buf + s, e - s - 4);
        if (covers)
            r = crc30_info(r, word >> 30);
        PyObject *v = (r == (word & MASK30)) ? Py_True : Py_False;
        Py_INCREF(v);
        PyList_SET_ITEM(out, i, v);
    }
done:
    Py_XDECREF(spans);
    PyBuffer_Release(&view);
    return out;
}

static PyObject *crc30_update(PyObject *self, PyObject *args)
{
    Py_buffer view;
    unsigned long r;
    if (!PyArg_ParseTuple(args, "ky*", &r, &view))
        return NULL;
    uint32_t c = crc30_run((uint32_t)r & MASK30, view.buf, view.len);
    PyBuffer_Release(&view);
    return PyLong_FromUnsignedLong(c);
}

/* frame(packet, lph, sizes, last_flits, crc_mode, error_flag, covers_info) -> [bytearray]
 * The blocks of one DLLDP: block 0 starts with the 4-byte LPH ``lph`` (PLENGTH already
 * filled), later blocks with the LBH (LPH byte 0 bit 0 = VL[3], byte 1); block i carries
 * sizes[i] payload bytes of packet[4:], in order; every block but the last has 32 flits, the
 * last ``last_flits``; zero padding; CRC mode: a BCRC ends every block (ERROR_FLAG in the last
 * one only, the CRC30 covering the two information bits when covers_info); non-CRC mode: the
 * last block ends with END (0x40 with ERROR_FLAG, else 0). */
static PyObject *frame(PyObject *self, PyObject *args)
{
    Py_buffer pkt, lph;
    PyObject *sizes_in, *sizes = NULL, *out = NULL;
    int last_flits, crc_mode, eflag, covers;
    if (!PyArg_ParseTuple(args, "y*y*Oippp", &pkt, &lph, &sizes_in, &last_flits, &crc_mode,
                          &eflag, &covers))
        return NULL;
    if (lph.len != 4 || last_flits < 1 || last_flits > 32) {
        PyErr_SetString(PyExc_ValueError, "a 4-byte LPH and 1..32 flits in the last block");
        goto done;
    }
    sizes = PySequence_Fast(sizes_in, "sizes must be a sequence");
    if (!sizes)
        goto done;
    Py_ssize_t nb = PySequence_Fast_GET_SIZE(sizes);
    out = PyList_New(nb);
    if (!out)
        goto done;
    const unsigned char *src = pkt.buf, *h = lph.buf;
    unsigned char lbh[2] = {(unsigned char)(h[0] & 1), h[1]};
    Py_ssize_t pos = 4;
    for (Py_ssize_t i = 0; i < nb; i++) {
        int last = i == nb - 1;
        Py_ssize_t len = (Py_ssize_t)(last ? last_flits : 32) * 20;
        Py_ssize_t hl = i == 0 ? 4 : 2;
        Py_ssize_t size = PyLong_AsSsize_t(PySequence_Fast_GET_ITEM(sizes, i));
        if (size == -1 && PyErr_Occurred())
            goto fail;
        if (size < 0 || pos + size > pkt.len || hl + size > len - (crc_mode ? 4 : (last ? 1 : 0))) {
            PyErr_SetString(PyExc_ValueError, "block sizes do not fit the packet or the blocks");
            goto fail;
        }
        PyObject *blk = PyByteArray_FromStringAndSize(NULL, len);
        if (!blk)
            goto fail;
        unsigned char *b = (unsigned char *)PyByteArray_AS_STRING(blk);
        memset(b, 0, len);
        memcpy(b, i == 0 ? h : lbh, hl);
        memcpy(b + hl, src + pos, size);
        pos += size;
        seal_block(b, len, crc_mode, covers, eflag && last);
        PyList_SET_ITEM(out, i, blk);
    }
    goto done;
fail:
    Py_CLEAR(out);
done:
    Py_XDECREF(sizes);
    PyBuffer_Release(&pkt);
    PyBuffer_Release(&lph);
    return out;
}

/* delimit(buf, total_flits, pending, crc_mode, covers_info) -> (spans, kinds, crc_ok)
 * The complete blocks at the start of buf (total_flits whole flits), delimited from their
 * headers as ubpkt.link.blocks.next_block does (UB 2.0 §4.3.4.1): a DLLCB is CLENGTH + 1
 * flits, an LPH gives its DLLDP's block count and last-block flits (PLENGTH), an LBH is 32
 * flits or the DLLDP's last-block flits.  pending: None between DLLDPs, else (blocks still to
 * come, flits of the last block) of the DLLDP being received.  spans: (start flit, flits) of
 * each complete block; kinds: "cb", "lph" or "lbh"; crc_ok: whether each block's BCRC is
 * right (CRC mode; None in non-CRC mode). */
static PyObject *KIND_CB, *KIND_LPH, *KIND_LBH;

static PyObject *delimit(PyObject *self, PyObject *args)
{
    Py_buffer view;
    Py_ssize_t total;
    PyObject *pending, *spans = NULL, *kinds = NULL, *crcs = NULL, *res = NULL;
    int crc_mode, covers;
    long left = 0, lastf = 0;
    if (!PyArg_ParseTuple(args, "y*nOpp", &view, &total, &pending, &crc_mode, &covers))
        return NULL;
    if (pending != Py_None && !PyArg_ParseTuple(pending, "ll", &left, &lastf))
        goto done;
    if (total < 0 || total * 20 > view.len) {
        PyErr_SetString(PyExc_ValueError, "total_flits beyond the buffer");
        goto done;
    }
    spans = PyList_New(0);
    kinds = PyList_New(0);
    crcs = crc_mode ? PyList_New(0) : Py_NewRef(Py_None);
    if (!spans || !kinds || !crcs)
        goto done;
    const unsigned char *b = view.buf;
    Py_ssize_t pos = 0;
    int open = pending != Py_None;
    while (pos < total) {
        const unsigned char *h = b + pos * 20;
        Py_ssize_t flits;
        PyObject *kind;
        if ((h[1] & 0x0F) == 0) {
            kind = KIND_CB;
            flits = ((h[0] >> 2) & 0x1F) + 1;
        } else if (!open) {
            unsigned plen = ((unsigned)(h[2] & 0x3F) << 8) | h[3];
            long nb = (plen >> 10) + 1, last = ((plen >> 5) & 0x1F) + 1;
            kind = KIND_LPH;
            if (nb == 1) {
                flits = last;
            } else {
                flits = 32;
                open = 1;
                left = nb - 1;
                lastf = last;
            }
        } else {
            kind = KIND_LBH;
            if (left <= 1) {
                flits = lastf;
                open = 0;
            } else {
                flits = 32;
                left -= 1;
            }
        }
        if (pos + flits > total)
            break;
        PyObject *t = Py_BuildValue("(nn)", pos, flits);
        if (!t || PyList_Append(spans, t) < 0) {
            Py_XDECREF(t);
            goto fail;
        }
        Py_DECREF(t);
        if (PyList_Append(kinds, kind) < 0)
            goto fail;
        if (crc_mode) {
            const unsigned char *w = h + flits * 20 - 4;
            uint32_t word = (uint32_t)w[0] << 24 | (uint32_t)w[1] << 16 | (uint32_t)w[2] << 8 | w[3];
            uint32_t r = crc30_run(MASK30, h, flits * 20 - 4);
            if (covers)
                r = crc30_info(r, word >> 30);
            if (PyList_Append(crcs, (r == (word & MASK30)) ? Py_True : Py_False) < 0)
                goto fail;
        }
        pos += flits;
    }
    res = PyTuple_Pack(3, spans, kinds, crcs);
    goto done;
fail:
    res = NULL;
done:
    Py_XDECREF(spans);
    Py_XDECREF(kinds);
    Py_XDECREF(crcs);
    PyBuffer_Release(&view);
    return res;
}

/* Crd_Ack (UB 2.0 §4.3.3.5), 2 flits: the LCH's first three bytes as given (the layout is
 * declared once in ubpkt.link.control), byte 3 SD (bit 7) and T (bit 0), ACK_NUM in bytes 4-5,
 * CRD_NUM in bytes 6-17 (16 x 6 bits, VL15 in the high bits), zero fill, then the BCRC (CRC
 * mode, information bits 0) or the END byte 0 (non-CRC mode).  The twin in Python is
 * ubpkt.link.control.crd_ack; tests/link/test_crd_ack_native.py compares them. */
#define CRD_ACK_BYTES 40
/* the bytes of a Crd_Ack (see crd_ack below) from checked fields: credits 0..63 per VL */
static void crd_ack_fill(unsigned char *b, const unsigned char *lch, long ack_num,
                         const long *cred, long t, long sd, int crc_mode, int covers)
{
    memset(b, 0, CRD_ACK_BYTES);
    /* CRD_NUM: 96 bits, VL v at bits 6v..6v+5 counted from the low end of bytes 6..17 */
    for (int vl = 0; vl < 16; vl++)
        for (int k = 0; k < 6; k++)
            if (cred[vl] >> k & 1) {
                int bit = 6 * vl + k;                 /* from the low end of the 96 bits */
                b[17 - bit / 8] |= (unsigned char)(1u << (bit % 8));
            }
    memcpy(b, lch, 3);
    b[3] = (unsigned char)(((sd & 1) << 7) | (t & 1));
    b[4] = (unsigned char)(ack_num >> 8);
    b[5] = (unsigned char)(ack_num & 0xFF);
    if (crc_mode) {
        uint32_t r = crc30_run(MASK30, b, CRD_ACK_BYTES - 4);
        if (covers)
            r = crc30_info(r, 0);
        b[36] = (unsigned char)(r >> 24);
        b[37] = (unsigned char)(r >> 16);
        b[38] = (unsigned char)(r >> 8);
        b[39] = (unsigned char)r;
    }
}

static PyObject *crd_ack(PyObject *self, PyObject *args)
{
    Py_buffer lch;
    long ack_num, t, sd;
    PyObject *credits_in;
    int crc_mode, covers;
    if (!PyArg_ParseTuple(args, "y*lOllpp", &lch, &ack_num, &credits_in, &t, &sd, &crc_mode,
                          &covers))
        return NULL;
    PyObject *credits = NULL;
    unsigned char b[CRD_ACK_BYTES];
    long cred[16] = {0};
    if (lch.len != 3) {
        PyErr_SetString(PyExc_ValueError, "the LCH prefix is 3 bytes");
        goto fail;
    }
    if (ack_num < 0 || ack_num > 0xFFFF) {
        PyErr_Format(PyExc_ValueError, "ACK_NUM is 16 bits, not %ld", ack_num);
        goto fail;
    }
    credits = PySequence_Fast(credits_in, "credits must be a sequence");
    if (!credits)
        goto fail;
    Py_ssize_t n = PySequence_Fast_GET_SIZE(credits);
    if (n > 16)
        n = 16;
    for (Py_ssize_t vl = 0; vl < n; vl++) {
        long c = PyLong_AsLong(PySequence_Fast_GET_ITEM(credits, vl));
        if (c == -1 && PyErr_Occurred())
            goto fail;
        if (c < 0 || c > 63) {
            PyErr_Format(PyExc_ValueError, "CRD_NUM of VL%zd is 6 bits, not %ld", vl, c);
            goto fail;
        }
        cred[vl] = c;
    }
    crd_ack_fill(b, (const unsigned char *)lch.buf, ack_num, cred, t, sd, crc_mode, covers);
    Py_DECREF(credits);
    PyBuffer_Release(&lch);
    return PyBytes_FromStringAndSize((const char *)b, CRD_ACK_BYTES);
fail:
    Py_XDECREF(credits);
    PyBuffer_Release(&lch);
    return NULL;
}

/* crd_ack_read(blk) -> (ack_num, credits list of 16, t, sd) of a Crd_Ack's bytes (at least 18);
 * the twin of ubpkt.link.control.crd_ack_values */
static PyObject *crd_ack_read(PyObject *self, PyObject *args)
{
    Py_buffer v;
    if (!PyArg_ParseTuple(args, "y*", &v))
        return NULL;
    if (v.len < 18) {
        PyBuffer_Release(&v);
        PyErr_SetString(PyExc_ValueError, "a Crd_Ack has at least 18 bytes");
        return NULL;
    }
    const unsigned char *b = v.buf;
    PyObject *credits = PyList_New(16);
    if (!credits) {
        PyBuffer_Release(&v);
        return NULL;
    }
    for (int vl = 0; vl < 16; vl++) {
        long c = 0;
        for (int k = 0; k < 6; k++) {
            int bit = 6 * vl + k;
            c |= (long)((b[17 - bit / 8] >> (bit % 8)) & 1) << k;
        }
        PyList_SET_ITEM(credits, vl, PyLong_FromLong(c));
    }
    PyObject *out = Py_BuildValue("(lNll)", (long)(b[4] << 8 | b[5]), credits, (long)(b[3] & 1),
                                  (long)(b[3] >> 7));
    PyBuffer_Release(&v);
    return out;
}

/* dlldb_gather(buf, spans, skip_first, skip, tail) -> (body, marks)
 * The DLLDBs of one DLLDP at spans ((start flit, flits) each) of buf: body is their payloads
 * joined (each block without its first `skip` bytes - `skip_first` for the first block - and
 * its last `tail` bytes), marks the byte 0 of every block whose CRD or ACK bit is set (LPH/LBH
 * bits 7 and 6, UB 2.0 §4.3.2.1), in block order.  The twin in Python is the loop of
 * ubpkt.link.dll.receive.ReceiveSide._rx_dlldbs (tested block for block against it). */
static PyObject *dlldb_gather(PyObject *self, PyObject *args)
{
    Py_buffer view;
    PyObject *spans_in, *spans = NULL, *marks = NULL, *body = NULL, *out = NULL;
    Py_ssize_t skip_first, skip, tail;
    if (!PyArg_ParseTuple(args, "y*Onnn", &view, &spans_in, &skip_first, &skip, &tail))
        return NULL;
    spans = PySequence_Fast(spans_in, "spans must be a sequence");
    if (!spans)
        goto done;
    Py_ssize_t n = PySequence_Fast_GET_SIZE(spans), total = 0;
    if (skip_first < 0 || skip < 0 || tail < 0) {
        PyErr_SetString(PyExc_ValueError, "negative header or trailer length");
        goto done;
    }
    /* first pass: check the spans, size the body */
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *t = PySequence_Fast_GET_ITEM(spans, i);
        if (!PyTuple_Check(t) || PyTuple_GET_SIZE(t) != 2) {
            PyErr_SetString(PyExc_TypeError, "spans are (start flit, flits) tuples");
            goto done;
        }
        Py_ssize_t st = PyLong_AsSsize_t(PyTuple_GET_ITEM(t, 0));
        Py_ssize_t fl = PyLong_AsSsize_t(PyTuple_GET_ITEM(t, 1));
        if (PyErr_Occurred())
            goto done;
        Py_ssize_t a = st * 20 + (i == 0 ? skip_first : skip), e = (st + fl) * 20 - tail;
        if (st < 0 || fl < 1 || (st + fl) * 20 > view.len || a > e) {
            PyErr_SetString(PyExc_ValueError, "a span is outside the buffer or too short");
            goto done;
        }
        total += e - a;
    }
    body = PyBytes_FromStringAndSize(NULL, total);
    marks = PyList_New(0);
    if (!body || !marks)
        goto done;
    char *dst = PyBytes_AS_STRING(body);
    const unsigned char *buf = view.buf;
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *t = PySequence_Fast_GET_ITEM(spans, i);
        Py_ssize_t st = PyLong_AsSsize_t(PyTuple_GET_ITEM(t, 0));
        Py_ssize_t fl = PyLong_AsSsize_t(PyTuple_GET_ITEM(t, 1));
        Py_ssize_t a = st * 20 + (i == 0 ? skip_first : skip), e = (st + fl) * 20 - tail;
        memcpy(dst, buf + a, e - a);
        dst += e - a;
        unsigned char b0 = buf[st * 20];
        if (b0 & 0xC0) {
            PyObject *m = PyLong_FromLong(b0);
            if (!m || PyList_Append(marks, m) < 0) {
                Py_XDECREF(m);
                goto done;
            }
            Py_DECREF(m);
        }
    }
    out = PyTuple_Pack(2, body, marks);
done:
    Py_XDECREF(body);
    Py_XDECREF(marks);
    Py_XDECREF(spans);
    PyBuffer_Release(&view);
    return out;
}

/* byte 0 of a block (its LPH/LBH: CRD, CRD_VL, ACK) changed from b0 to new0, its BCRC (CRC
 * mode) patched by CRC linearity: the CRC30 of the change alone XORed in (UB 2.0 §4.7.2) */
static void patch_byte0(unsigned char *b, Py_ssize_t nbytes, unsigned b0, unsigned new0,
                        int crc_mode, int covers)
{
    b[0] = (unsigned char)new0;
    if (!crc_mode)
        return;
    unsigned char zeros[640];
    memset(zeros, 0, (size_t)(nbytes - 4));
    zeros[0] = (unsigned char)(b0 ^ new0);
    uint32_t term = crc30_run(0, zeros, nbytes - 4);
    if (covers)
        term = crc30_info(term, 0);
    uint32_t w = (uint32_t)b[nbytes - 4] << 24 | (uint32_t)b[nbytes - 3] << 16
                 | (uint32_t)b[nbytes - 2] << 8 | b[nbytes - 1];
    w = (w & 0xC0000000u) | ((w & MASK30) ^ term);
    b[nbytes - 4] = (unsigned char)(w >> 24);
    b[nbytes - 3] = (unsigned char)(w >> 16);
    b[nbytes - 2] = (unsigned char)(w >> 8);
    b[nbytes - 1] = (unsigned char)w;
}

/* tx_run(blocks, i, out, kept, kept_at, wr, free, low, reserve, want, pending_ack, ack_grain,
 *        owed, crd_grains, crc_mode, covers_info) -> (i, wr, size, pending_ack, owing)
 * The DLL engine's data burst over the blocks of one DLLDP (ubpkt.link.dll.transmit,
 * TransmitSide._data_burst, whose Python loop is the reference): from block i, while out is
 * shorter than want bytes and the retry buffer has room (free flits: stop before a block when
 * free < low with ACKs owed, or when free - 1 - flits < reserve), each block carries one
 * credit grain (the first VL of owed, a list changed in place, owing at least crd_grains[vl]
 * cells: CRD, CRD_VL) and one ACK grain (ACK, while pending_ack >= ack_grain) in byte 0 of
 * its LPH/LBH (UB 2.0 §4.3.2.1), its BCRC patched by CRC linearity (§4.7.2: the change's own
 * CRC30 XORed in), is kept (kept[wr] = block, kept_at.append(wr)) and appended to out.
 * owed None: no credits owed.  Stops after the DLLDP's last block. */
static PyObject *tx_run(PyObject *self, PyObject *args)
{
    PyObject *blocks, *out, *kept, *kept_at, *owed, *grains;
    Py_ssize_t i, wr, free_, low, reserve, want, pending, ack_grain;
    int crc_mode, covers;
    if (!PyArg_ParseTuple(args, "O!nO!O!Onnnnnnn" "OOpp", &PyList_Type, &blocks, &i,
                          &PyByteArray_Type, &out, &PyDict_Type, &kept, &kept_at, &wr, &free_,
                          &low, &reserve, &want, &pending, &ack_grain, &owed, &grains,
                          &crc_mode, &covers))
        return NULL;
    long pend[16] = {0}, grain[16] = {0};
    int owing = 0;
    if (owed != Py_None) {
        if (!PyList_Check(owed) || PyList_GET_SIZE(owed) != 16 || !PySequence_Check(grains)
            || PySequence_Size(grains) != 16) {
            PyErr_SetString(PyExc_TypeError, "owed: a list of 16, crd_grains: 16 values");
            return NULL;
        }
        for (int v = 0; v < 16; v++) {
            pend[v] = PyLong_AsLong(PyList_GET_ITEM(owed, v));
            PyObject *g = PySequence_GetItem(grains, v);
            if (!g)
                return NULL;
            grain[v] = PyLong_AsLong(g);
            Py_DECREF(g);
            if (PyErr_Occurred())
                return NULL;
            if (pend[v])
                owing = 1;
        }
    }
    Py_ssize_t nblocks = PyList_GET_SIZE(blocks);
    Py_ssize_t size = PyByteArray_GET_SIZE(out);
    int owed_changed = 0;
    while (size < want && i < nblocks) {
        PyObject *blk = PyList_GET_ITEM(blocks, i);
        if (!PyByteArray_Check(blk) || PyByteArray_GET_SIZE(blk) % 20 || PyByteArray_GET_SIZE(blk) < 20
            || PyByteArray_GET_SIZE(blk) > 640) {
            PyErr_SetString(PyExc_TypeError, "blocks are bytearrays of 1..32 whole flits");
            return NULL;
        }
        Py_ssize_t nbytes = PyByteArray_GET_SIZE(blk), n = nbytes / 20;
        if ((free_ < low && pending) || free_ - 1 - n < reserve)
            break;
        unsigned char *b = (unsigned char *)PyByteArray_AS_STRING(blk);
        unsigned b0 = b[0], new0 = b0 & 0x03;
        if (owing) {
            int vl = -1;
            for (int v = 0; v < 16; v++)
                if (pend[v] >= grain[v]) {
                    vl = v;
                    break;
                }
            if (vl < 0) {
                owing = 0;
                for (int v = 0; v < 16; v++)
                    if (pend[v])
                        owing = 1;
            } else {
                pend[vl] -= grain[vl];
                owed_changed = 1;
                new0 |= 0x80 | (unsigned)vl << 2;
            }
        }
        if (pending >= ack_grain) {
            pending -= ack_grain;
            new0 |= 0x40;
        }
        if (new0 != b0)
            patch_byte0(b, nbytes, b0, new0, crc_mode, covers);
        i++;
        PyObject *key = PyLong_FromSsize_t(wr);
        if (!key)
            return NULL;
        PyObject *r = PyObject_CallMethod(kept_at, "append", "O", key);
        if (!r || PyDict_SetItem(kept, key, blk) < 0) {
            Py_XDECREF(r);
            Py_DECREF(key);
            return NULL;
        }
        Py_DECREF(r);
        Py_DECREF(key);
        wr += n;
        free_ -= n;
        if (PyByteArray_Resize(out, size + nbytes) < 0)
            return NULL;
        memcpy(PyByteArray_AS_STRING(out) + size, PyByteArray_AS_STRING(blk), nbytes);
        size += nbytes;
    }
    if (owed_changed)
        for (int v = 0; v < 16; v++) {
            PyObject *x = PyLong_FromLong(pend[v]);
            if (!x || PyList_SetItem(owed, v, x) < 0)
                return NULL;
        }
    return Py_BuildValue("(nnnni)", i, wr, size, pending, owing);
}

/* tx_plan(out, want, cur, txq, vl_rr, excl, share, shared, kept, kept_at, wr, tail, depth,
 *         pending_ack, worthy, owed, cfg)
 * -> (status, cur, wr, pending_ack, worthy, vl_rr, share, nob_due, started, crd_acks)
 * A whole data burst of one transmit call in DLL_Normal (ubpkt.link.dll.transmit,
 * TransmitSide._data_burst, whose Python loop is the reference and the fallback; the wire is
 * compared flit by flit in tests/link/test_dll_contract.py): in the order the scheduler picks
 * (UB 2.0 §4.3.3.1), a Crd_Ack T=0 whenever one is forced (ACKs owed >= the force threshold,
 * ACKs owed with NumFreeBuf below the lock-out reserve plus one DLLDB (§4.7.3.2.4), or credits
 * owed on a VL >= the force threshold (§4.6.3 rule 3)), else the next data block - the
 * DLLDP in progress (cur = [blocks, i, vl, flits]) or one started from the VL queues txq
 * (round robin from vl_rr, only with enough credits: excl per VL, plus share when shared;
 * its first DLLB must fit the retry buffer) - with one credit grain and one ACK grain
 * piggy-backed (§4.6.3 rule 1, §4.7.3.2.3) and its BCRC patched by linearity; when no data
 * block can follow, the idle Crd_Ack (§4.6.3 rule 2), or nothing.  Every block but a Null is
 * kept (kept[wr] = block, kept_at.append(wr)).  owed (credits per VL owed to the peer) and
 * excl are changed in place, queue heads popped.
 * cfg = (reserve, ack_force_flits, crd_force_cells, data_ack_grain, data_credit_grains,
 *        ctrl_ack_grain, ctrl_credit_grains, flow_ctrl_size, peer_packet_min_interval,
 *        crc_mode, covers_info, crd_ack_lch3).
 * status: 0 the scheduler decides (a forced Crd_Ack could not be made), 1 stopped with out
 * full or NOBs owed (nob_due), 2 nothing more to send now, 3 the head of a VL queue needs
 * the Python path (not framed yet, or framed in another CRC mode): start that DLLDP there
 * and call again.  started: DLLDPs started (the credit-return timer is armed by the caller). */
#define TXP_DECIDE 0
#define TXP_SENT 1
#define TXP_IDLE 2
#define TXP_START 3

typedef struct {
    PyObject *out, *kept, *kept_at;
    Py_ssize_t size, want, wr, tail, depth, pending, worthy;
    long pend[16], cgrain[16];
    long ctrl_ack_grain;
    int crc_mode, covers, owed_changed, acks;
    const unsigned char *lch;
} txp_t;

static int txp_keep(txp_t *c, PyObject *blk, Py_ssize_t nbytes)
{
    PyObject *key = PyLong_FromSsize_t(c->wr);
    if (!key)
        return -1;
    PyObject *r = PyObject_CallMethod(c->kept_at, "append", "O", key);
    if (!r || PyDict_SetItem(c->kept, key, blk) < 0) {
        Py_XDECREF(r);
        Py_DECREF(key);
        return -1;
    }
    Py_DECREF(r);
    Py_DECREF(key);
    c->wr += nbytes / 20;
    const char *src = PyBytes_Check(blk) ? PyBytes_AS_STRING(blk) : PyByteArray_AS_STRING(blk);
    if (PyByteArray_Resize(c->out, c->size + nbytes) < 0)
        return -1;
    memcpy(PyByteArray_AS_STRING(c->out) + c->size, src, nbytes);
    c->size += nbytes;
    return 0;
}

/* TransmitSide._make_crd_ack in DLL_Normal: -1 error, 0 none made, 1 appended */
static int txp_crd_ack(txp_t *c, int idle)
{
    long owed_total = 0;
    for (int v = 0; v < 16; v++)
        owed_total += c->pend[v];
    if (idle && !owed_total && !c->worthy)
        return 0;
    if (!owed_total && !c->pending)
        return 0;
    if (c->depth - (c->wr - c->tail) - 1 - 2 < 0)        /* rb.can_store(2) */
        return 0;
    long cred[16] = {0};
    int any = 0;
    for (int v = 0; v < 16; v++)
        if (c->pend[v]) {
            long n = c->pend[v] / c->cgrain[v];
            cred[v] = n > 63 ? 63 : n;
            c->pend[v] -= cred[v] * c->cgrain[v];
            if (cred[v]) {
                any = 1;
                c->owed_changed = 1;
            }
        }
    Py_ssize_t n = c->pending / c->ctrl_ack_grain;
    if (n > 0xFFFF)
        n = 0xFFFF;
    if (!any && !n)
        return 0;
    c->pending -= n * c->ctrl_ack_grain;
    c->worthy = c->pending == 0 ? 0 : (c->worthy < c->pending ? c->worthy : c->pending);
    c->acks++;
    unsigned char b[CRD_ACK_BYTES];
    crd_ack_fill(b, c->lch, (long)n, cred, 0, 0, c->crc_mode, c->covers);
    PyObject *blk = PyBytes_FromStringAndSize((const char *)b, CRD_ACK_BYTES);
    if (!blk)
        return -1;
    int r = txp_keep(c, blk, CRD_ACK_BYTES);
    Py_DECREF(blk);
    return r < 0 ? -1 : 1;
}

/* a Crd_Ack (txp_crd_ack, idle or forced), then whether the burst ends there: -1 error; 1 it
 * ends, *status set (none_status when no Crd_Ack was made, TXP_SENT once want bytes are out);
 * 0 it goes on */
static int txp_ack_then(txp_t *c, int idle, Py_ssize_t want, int none_status, int *status)
{
    int r = txp_crd_ack(c, idle);
    if (r < 0)
        return -1;
    if (!r) {
        *status = none_status;
        return 1;
    }
    if (c->size >= want) {
        *status = TXP_SENT;
        return 1;
    }
    return 0;
}

static int txp_forced(txp_t *c, Py_ssize_t reserve, long ack_force, long crd_force)
{
    if (c->pending >= ack_force)
        return 1;
    if (c->pending && c->depth - (c->wr - c->tail) < reserve + 32)
        return 1;
    for (int v = 0; v < 16; v++)
        if (c->pend[v] >= crd_force)
            return 1;
    return 0;
}

static int read16(PyObject *seq, long *dst, const char *what)
{
    if (!PySequence_Check(seq) || PySequence_Size(seq) != 16) {
        PyErr_Format(PyExc_TypeError, "%s: 16 values", what);
        return -1;
    }
    for (int v = 0; v < 16; v++) {
        PyObject *x = PySequence_GetItem(seq, v);
        if (!x)
            return -1;
        dst[v] = PyLong_AsLong(x);
        Py_DECREF(x);
        if (dst[v] == -1 && PyErr_Occurred())
            return -1;
    }
    return 0;
}

static PyObject *tx_plan(PyObject *self, PyObject *args)
{
    PyObject *out, *cur, *txq, *excl_l, *kept, *kept_at, *owed, *dgr, *cgr;
    Py_ssize_t want, rr, share, wr, tail, depth, pending, worthy;
    Py_ssize_t reserve, ack_force, crd_force, data_ack_grain, ctrl_ack_grain, fcs, pmi;
    int shared, crc_mode, covers;
    const char *lch;
    Py_ssize_t lch_len;
    if (!PyArg_ParseTuple(args, "O!nOO!nO!npO!OnnnnnO!(nnnnOnOnnppy#)", &PyByteArray_Type, &out,
                          &want, &cur, &PyList_Type, &txq, &rr, &PyList_Type, &excl_l, &share,
                          &shared, &PyDict_Type, &kept, &kept_at, &wr, &tail, &depth, &pending,
                          &worthy, &PyList_Type, &owed, &reserve, &ack_force, &crd_force,
                          &data_ack_grain, &dgr, &ctrl_ack_grain, &cgr, &fcs, &pmi, &crc_mode,
                          &covers, &lch, &lch_len))
        return NULL;
    if (lch_len != 3 || PyList_GET_SIZE(txq) != 16 || PyList_GET_SIZE(excl_l) != 16
        || PyList_GET_SIZE(owed) != 16 || fcs <= 0 || ctrl_ack_grain <= 0
        || (cur != Py_None && (!PyList_Check(cur) || PyList_GET_SIZE(cur) != 4))) {
        PyErr_SetString(PyExc_ValueError, "tx_plan: bad arguments");
        return NULL;
    }
    txp_t c;
    memset(&c, 0, sizeof c);
    c.out = out; c.kept = kept; c.kept_at = kept_at;
    c.size = PyByteArray_GET_SIZE(out); c.want = want;
    c.wr = wr; c.tail = tail; c.depth = depth; c.pending = pending; c.worthy = worthy;
    c.ctrl_ack_grain = (long)ctrl_ack_grain;
    c.crc_mode = crc_mode; c.covers = covers;
    c.lch = (const unsigned char *)lch;
    long dgrain[16], excl[16];
    if (read16(owed, c.pend, "owed") < 0 || read16(cgr, c.cgrain, "ctrl_credit_grains") < 0
        || read16(dgr, dgrain, "data_credit_grains") < 0 || read16(excl_l, excl, "excl") < 0)
        return NULL;
    for (int v = 0; v < 16; v++)
        if (c.cgrain[v] <= 0 || dgrain[v] <= 0) {
            PyErr_SetString(PyExc_ValueError, "tx_plan: credit grains are positive");
            return NULL;
        }
    int excl_changed = 0, started = 0, status;
    Py_ssize_t nob = 0, low = reserve + 32;
    /* the DLLDP in progress: its blocks (borrowed from cur), next block, flits */
    PyObject *blocks = NULL;
    Py_ssize_t bi = 0, bflits = 0;
    Py_INCREF(cur);
    if (cur != Py_None) {
        blocks = PyList_GET_ITEM(cur, 0);
        bi = PyLong_AsSsize_t(PyList_GET_ITEM(cur, 1));
        bflits = PyLong_AsSsize_t(PyList_GET_ITEM(cur, 3));
        if (!PyList_Check(blocks) || PyErr_Occurred()) {
            PyErr_SetString(PyExc_TypeError, "tx_plan: cur = [blocks, i, vl, flits]");
            goto fail;
        }
    }
    for (;;) {
        if (txp_forced(&c, reserve, ack_force, crd_force)) {
            int r = txp_ack_then(&c, 0, want, TXP_DECIDE, &status);
            if (r < 0)
                goto fail;
            if (r)
                goto done;
            continue;
        }
        /* data blocks while no Crd_Ack is forced */
        int owing = 0, stuck = 0;
        for (int v = 0; v < 16; v++)
            if (c.pend[v])
                owing = 1;
        while (c.size < want) {
            Py_ssize_t free_ = depth - (c.wr - c.tail);
            if (free_ < low && c.pending)
                break;                                   /* a Crd_Ack is forced first */
            if (cur == Py_None) {
                /* TransmitSide._start_dlldp */
                PyObject *found = NULL;
                for (int k = 0; k < 16 && !found; k++) {
                    Py_ssize_t vl = (rr + k) % 16;
                    PyObject *q = PyList_GET_ITEM(txq, vl);
                    Py_ssize_t qn = PyObject_Length(q);
                    if (qn < 0)
                        goto fail;
                    if (!qn)
                        continue;
                    PyObject *head = PySequence_GetItem(q, 0);
                    if (!head)
                        goto fail;
                    if (!PyTuple_Check(head) || PyTuple_GET_SIZE(head) != 5) {
                        Py_DECREF(head);
                        PyErr_SetString(PyExc_TypeError, "tx_plan: queue entries are 5-tuples");
                        goto fail;
                    }
                    int mode = PyObject_IsTrue(PyTuple_GET_ITEM(head, 2));
                    PyObject *hb = PyTuple_GET_ITEM(head, 4);
                    if (mode != crc_mode || !PyList_Check(hb)) {
                        Py_DECREF(head);
                        status = TXP_START;
                        goto done;
                    }
                    Py_ssize_t flits = PyLong_AsSsize_t(PyTuple_GET_ITEM(head, 3));
                    if (flits == -1 && PyErr_Occurred()) {
                        Py_DECREF(head);
                        goto fail;
                    }
                    Py_ssize_t cells = (flits + fcs - 1) / fcs;
                    if (excl[vl] + (shared ? share : 0) < cells) {
                        Py_DECREF(head);
                        continue;
                    }
                    Py_ssize_t first = flits < 32 ? flits : 32;
                    if (free_ - 1 - first < reserve) {
                        Py_DECREF(head);
                        break;                           /* stuck: the retry buffer */
                    }
                    PyObject *r = PyObject_CallMethod(q, "popleft", NULL);
                    if (!r) {
                        Py_DECREF(head);
                        goto fail;
                    }
                    Py_DECREF(r);
                    if (!shared)
                        excl[vl] -= cells;
                    else {
                        Py_ssize_t fs = share < cells ? share : cells;
                        share -= fs;
                        excl[vl] -= cells - fs;
                    }
                    excl_changed = 1;
                    started++;
                    rr = (vl + 1) % 16;
                    PyObject *ncur = Py_BuildValue("[OnnO]", hb, (Py_ssize_t)0, vl,
                                                   PyTuple_GET_ITEM(head, 3));
                    Py_DECREF(head);
                    if (!ncur)
                        goto fail;
                    Py_DECREF(cur);
                    cur = found = ncur;
                    blocks = hb;                         /* held by cur */
                    bi = 0;
                    bflits = flits;
                }
                if (!found) {
                    stuck = 1;
                    break;
                }
            }
            /* the blocks of the DLLDP in progress (tx_run) */
            Py_ssize_t nblocks = PyList_GET_SIZE(blocks);
            PyObject *blk = PyList_GET_ITEM(blocks, bi);
            if (!PyByteArray_Check(blk) || PyByteArray_GET_SIZE(blk) % 20
                || PyByteArray_GET_SIZE(blk) < 20 || PyByteArray_GET_SIZE(blk) > 640) {
                PyErr_SetString(PyExc_TypeError, "blocks are bytearrays of 1..32 whole flits");
                goto fail;
            }
            Py_ssize_t nbytes = PyByteArray_GET_SIZE(blk), n = nbytes / 20;
            if (free_ - 1 - n < reserve) {
                stuck = 1;
                break;
            }
            unsigned char *b = (unsigned char *)PyByteArray_AS_STRING(blk);
            unsigned b0 = b[0], new0 = b0 & 0x03;
            if (owing) {
                int vl = -1;
                for (int v = 0; v < 16; v++)
                    if (c.pend[v] >= dgrain[v]) {
                        vl = v;
                        break;
                    }
                if (vl < 0) {
                    owing = 0;
                    for (int v = 0; v < 16; v++)
                        if (c.pend[v])
                            owing = 1;
                } else {
                    c.pend[vl] -= dgrain[vl];
                    c.owed_changed = 1;
                    new0 |= 0x80 | (unsigned)vl << 2;
                }
            }
            if (c.pending >= data_ack_grain) {
                c.pending -= data_ack_grain;
                if (c.worthy > c.pending)
                    c.worthy = c.pending;
                new0 |= 0x40;
            }
            if (new0 != b0)
                patch_byte0(b, nbytes, b0, new0, crc_mode, covers);
            bi++;
            if (txp_keep(&c, blk, nbytes) < 0)
                goto fail;
            if (bi == nblocks) {
                Py_DECREF(cur);
                Py_INCREF(Py_None);
                cur = Py_None;
                blocks = NULL;
                if (pmi - bflits > 0)
                    nob += pmi - bflits;
                if (nob) {
                    status = TXP_SENT;
                    goto done;
                }
            }
        }
        if (c.size >= want && !stuck) {
            status = TXP_SENT;
            goto done;
        }
        if (txp_forced(&c, reserve, ack_force, crd_force))
            continue;
        /* stuck: the idle Crd_Ack, or nothing */
        int r = txp_ack_then(&c, 1, want, TXP_IDLE, &status);
        if (r < 0)
            goto fail;
        if (r)
            goto done;
    }
done:
    if (cur != Py_None) {
        PyObject *x = PyLong_FromSsize_t(bi);
        if (!x || PyList_SetItem(cur, 1, x) < 0)
            goto fail;
    }
    if (c.owed_changed)
        for (int v = 0; v < 16; v++) {
            PyObject *x = PyLong_FromLong(c.pend[v]);
            if (!x || PyList_SetItem(owed, v, x) < 0)
                goto fail;
        }
    if (excl_changed)
        for (int v = 0; v < 16; v++) {
            PyObject *x = PyLong_FromLong(excl[v]);
            if (!x || PyList_SetItem(excl_l, v, x) < 0)
                goto fail;
        }
    PyObject *res = Py_BuildValue("(iOnnnnnnii)", status, cur, c.wr, c.pending, c.worthy, rr,
                                  share, nob, started, c.acks);
    Py_DECREF(cur);
    return res;
fail:
    Py_DECREF(cur);
    return NULL;
}

/* rx_plan(buf, total_flits, pending, crc_mode, covers_info, crd_code, null_code)
 * -> (actions, counted, worthy, done), or (None, spans, kinds, crc_ok) when the call is not
 * common.  The plan of a DLL receive call whose complete blocks are all good and plain
 * (DLLDBs, Crd_Ack with T=0, Null; UB 2.0 §4.3.4, §4.6.3): the Python twin, which says what
 * every action is, is ubpkt.link.dll.rx_plan.rx_plan; tests/link/test_rx_plan.py compares
 * them.  crd_code / null_code: LCH byte 2 of Crd_Ack and Null (declared in Python). */
static int plan_flush(PyObject *actions, const unsigned char *b, PyObject *spans,
                      Py_ssize_t k0, Py_ssize_t k1, int head, Py_ssize_t tail)
{
    /* the DLLDB stretch spans[k0:k1]: its marks, then its payload */
    Py_ssize_t total = 0, s0 = 0, e = 0;
    for (Py_ssize_t k = k0; k < k1; k++) {
        PyObject *t = PyList_GET_ITEM(spans, k);
        Py_ssize_t st = PyLong_AsSsize_t(PyTuple_GET_ITEM(t, 0));
        Py_ssize_t fl = PyLong_AsSsize_t(PyTuple_GET_ITEM(t, 1));
        Py_ssize_t a = st * 20 + ((k == k0 && head) ? 4 : 2), z = (st + fl) * 20 - tail;
        if (a > z) {
            PyErr_SetString(PyExc_ValueError, "a DLLDB too short");
            return -1;
        }
        if (k == k0)
            s0 = st;
        e = st + fl;
        total += z - a;
        if (b[st * 20] & 0xC0) {
            PyObject *m = Py_BuildValue("(ii)", 0, b[st * 20]);
            if (!m || PyList_Append(actions, m) < 0) {
                Py_XDECREF(m);
                return -1;
            }
            Py_DECREF(m);
        }
    }
    PyObject *body = PyBytes_FromStringAndSize(NULL, total);
    if (!body)
        return -1;
    char *dst = PyBytes_AS_STRING(body);
    for (Py_ssize_t k = k0; k < k1; k++) {
        PyObject *t = PyList_GET_ITEM(spans, k);
        Py_ssize_t st = PyLong_AsSsize_t(PyTuple_GET_ITEM(t, 0));
        Py_ssize_t fl = PyLong_AsSsize_t(PyTuple_GET_ITEM(t, 1));
        Py_ssize_t a = st * 20 + ((k == k0 && head) ? 4 : 2), z = (st + fl) * 20 - tail;
        memcpy(dst, b + a, z - a);
        dst += z - a;
    }
    PyObject *hd = head ? PyBytes_FromStringAndSize((const char *)b + s0 * 20, 4)
                        : Py_NewRef(Py_None);
    PyObject *act = hd ? Py_BuildValue("(iOOnny#)", 2, hd, body, k1 - k0, e - s0,
                                       (const char *)b + e * 20 - 4, (Py_ssize_t)4) : NULL;
    Py_XDECREF(hd);
    Py_DECREF(body);
    if (!act || PyList_Append(actions, act) < 0) {
        Py_XDECREF(act);
        return -1;
    }
    Py_DECREF(act);
    return 0;
}

static PyObject *rx_plan(PyObject *self, PyObject *args)
{
    Py_buffer view;
    Py_ssize_t total;
    PyObject *pending, *d = NULL, *actions = NULL, *res = NULL;
    int crc_mode, covers, crd_code, null_code;
    long left = 0, lastf = 0;
    if (!PyArg_ParseTuple(args, "y*nOppii", &view, &total, &pending, &crc_mode, &covers,
                          &crd_code, &null_code))
        return NULL;
    PyObject *dargs = Py_BuildValue("(OnOii)", PyTuple_GET_ITEM(args, 0), total, pending,
                                    crc_mode, covers);
    if (!dargs)
        goto done;
    d = delimit(self, dargs);
    Py_DECREF(dargs);
    if (!d)
        goto done;
    if (pending != Py_None && !PyArg_ParseTuple(pending, "ll", &left, &lastf))
        goto done;
    PyObject *spans = PyTuple_GET_ITEM(d, 0), *kinds = PyTuple_GET_ITEM(d, 1),
             *crcs = PyTuple_GET_ITEM(d, 2);
    Py_ssize_t n = PyList_GET_SIZE(spans);
    if (crcs != Py_None)
        for (Py_ssize_t k = 0; k < n; k++)
            if (PyList_GET_ITEM(crcs, k) != Py_True)
                goto fallback;
    actions = PyList_New(0);
    if (!actions)
        goto done;
    const unsigned char *b = view.buf;
    Py_ssize_t tail = crc_mode ? 4 : 0, counted = 0, worthy = 0, run0 = -1, done_flits = 0;
    int head = 0;
    for (Py_ssize_t k = 0; k < n; k++) {
        PyObject *t = PyList_GET_ITEM(spans, k), *kind = PyList_GET_ITEM(kinds, k);
        Py_ssize_t st = PyLong_AsSsize_t(PyTuple_GET_ITEM(t, 0));
        Py_ssize_t fl = PyLong_AsSsize_t(PyTuple_GET_ITEM(t, 1));
        const unsigned char *h = b + st * 20;
        done_flits = st + fl;
        if (kind == KIND_CB) {
            int is_null = h[2] == null_code && fl == 1;
            if (!is_null && (h[2] != crd_code || (h[3] & 1) || fl * 20 < 18 + tail))
                goto fallback;
            if (run0 >= 0) {            /* a DLLCB ends a stretch of DLLDBs */
                if (plan_flush(actions, b, spans, run0, k, head, tail) < 0)
                    goto fail;
                run0 = -1;
            }
            if (is_null)
                continue;
            PyObject *credits = PyList_New(16);
            if (!credits)
                goto fail;
            int any = 0;
            for (int vl = 0; vl < 16; vl++) {
                int bit = 6 * vl;           /* CRD_NUM: bytes 6-17, VL0 in the low bits */
                int lo = 17 - bit / 8, sh = bit % 8;
                unsigned v = (h[lo] >> sh) | (lo > 6 ? (unsigned)h[lo - 1] << (8 - sh) : 0);
                v &= 0x3F;
                any |= v != 0;
                PyList_SET_ITEM(credits, vl, PyLong_FromLong(v));
            }
            counted += fl;
            if (any)
                worthy += fl;
            PyObject *act = Py_BuildValue("(iiNn)", 1, h[4] << 8 | h[5], credits, fl);
            if (!act || PyList_Append(actions, act) < 0) {
                Py_XDECREF(act);
                goto fail;
            }
            Py_DECREF(act);
            continue;
        }
        if (kind == KIND_LPH) {
            left = ((h[2] & 0x3F) >> 2) + 1;
            head = 1;
        } else if (run0 < 0) {
            head = 0;
        }
        if (run0 < 0)
            run0 = k;
        counted += fl;
        worthy += fl;
        left -= 1;
        if (left == 0) {
            if (plan_flush(actions, b, spans, run0, k + 1, head, tail) < 0)
                goto fail;
            run0 = -1;
        }
    }
    if (run0 >= 0 && plan_flush(actions, b, spans, run0, n, head, tail) < 0)
        goto fail;
    res = Py_BuildValue("(Onnn)", actions, counted, worthy, done_flits);
    goto done;
fallback:
    res = Py_BuildValue("(OOOO)", Py_None, spans, kinds, crcs);
    goto done;
fail:
    res = NULL;
done:
    Py_XDECREF(actions);
    Py_XDECREF(d);
    PyBuffer_Release(&view);
    return res;
}

/* marks: int64 triples (end, sec, frac) in record order, end = the stream offset where the
 * record's data ends (non-decreasing); the index of the first mark with end >= at (the record
 * whose data completes the stream up to at), the last mark when none reaches it */
static Py_ssize_t mark_find(const int64_t *mk, Py_ssize_t n, Py_ssize_t at)
{
    Py_ssize_t lo = 0, hi = n;
    while (lo < hi) {
        Py_ssize_t mid = (lo + hi) / 2;
        if (mk[3 * mid] < at)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo < n ? lo : n - 1;
}

/* plain_dlldps(buf, total_flits, crc_mode, covers_info, cfg_mask, lengths, out, sec, frac)
 * -> (done_flits, stop, items)
 * The bulk path of a flit stream (ubpkt.link.fastdeframe, whose Python twin says the same):
 * from buf[0], a unit boundary, every DLLDP that is *plain* - each block's BCRC right (CRC
 * mode), reserved bits and ERROR_FLAG clear in the LPH/LBH and the BCRC/END, the CFG one of
 * cfg_mask's bits, every LBH with the LPH's VL and CFG, PLENGTH describing a length (lengths:
 * 16384 int32, -1 for a reserved encoding) that its blocks carry, zero padding, no DLLCB
 * between its blocks (UB 2.0 §4.3.2, §4.3.4, §4.7.2) - is reassembled; the walk stops at the
 * first unit that is not (a DLLCB, or a DLLDP the reference reader would report on): stop 1,
 * or at a unit not complete in the total_flits whole flits given: stop 0.  done_flits: the
 * flits before the stop.  out None: items is a list of (start flit, flits, blocks, packet);
 * out a bytearray: each packet is appended to it as a classic pcap record (little endian,
 * time sec/frac) and items is their number.  marks (optional, with out a bytearray): int64
 * triples (end, sec, frac) of the capture records the stream came from (mark_find), ends
 * counted from mark_base bytes before buf[0]; a packet then gets the time of the record that
 * completed it instead of sec/frac. */
static PyObject *plain_dlldps(PyObject *self, PyObject *args)
{
    Py_buffer view, lens;
    Py_ssize_t total;
    int crc_mode, covers;
    unsigned long cfg_mask, sec, frac;
    PyObject *out, *marks_in = Py_None, *items = NULL, *res = NULL;
    Py_ssize_t mark_base = 0, nmarks = 0;
    Py_buffer marks = {0};
    const int64_t *mk = NULL;
    if (!PyArg_ParseTuple(args, "y*nppky*Okk|On", &view, &total, &crc_mode, &covers, &cfg_mask,
                          &lens, &out, &sec, &frac, &marks_in, &mark_base))
        return NULL;
    if (marks_in != Py_None) {
        if (PyObject_GetBuffer(marks_in, &marks, PyBUF_SIMPLE) < 0)
            goto done;
        mk = marks.buf;
        nmarks = marks.len / 24;
    }
    if (total < 0 || total * 20 > view.len || lens.len != 16384 * 4
        || (out != Py_None && !PyByteArray_Check(out)) || (mk && marks.len % 24)) {
        PyErr_SetString(PyExc_ValueError, "total_flits beyond the buffer, lengths not 16384 "
                        "int32, out neither None nor a bytearray, or marks not int64 triples");
        goto done;
    }
    items = out == Py_None ? PyList_New(0) : NULL;
    if (out == Py_None && !items)
        goto done;
    const unsigned char *b = view.buf;
    const int32_t *table = lens.buf;
    Py_ssize_t pos = 0, count = 0;
    int stop = 0;
    while (pos < total) {
        const unsigned char *h = b + pos * 20;
        if ((h[1] & 0x0F) == 0 || (h[0] & 0x02) || (h[1] & 0x10)
            || !((cfg_mask >> (h[1] & 0x0F)) & 1)) {
            stop = 1;                   /* a DLLCB, or an LPH the reference reports on */
            break;
        }
        unsigned plen = ((unsigned)(h[2] & 0x3F) << 8) | h[3];
        int32_t expected = table[plen];
        Py_ssize_t nb = (plen >> 10) + 1, lastf = ((plen >> 5) & 0x1F) + 1;
        Py_ssize_t flits = (nb - 1) * 32 + lastf;
        if (expected < 0) {
            stop = 1;
            break;
        }
        if (pos + flits > total)
            break;                      /* stop 0: not complete (or a DLLCB inside: later) */
        Py_ssize_t need = expected - 4, done_bytes = 0;
        int plain = 1;
        for (Py_ssize_t k = 0; k < nb && plain; k++) {
            const unsigned char *blk = h + k * 640;
            int last = k == nb - 1;
            Py_ssize_t len = (last ? lastf : 32) * 20, hl = k ? 2 : 4;
            if (k && ((blk[1] & 0x0F) == 0 || (blk[0] & 0x03) != (h[0] & 0x01)
                      || blk[1] != h[1])) {
                plain = 0;              /* a DLLCB between DLLDBs, or an LBH to report */
                break;
            }
            if (crc_mode) {
                const unsigned char *w = blk + len - 4;
                uint32_t word = (uint32_t)w[0] << 24 | (uint32_t)w[1] << 16
                                | (uint32_t)w[2] << 8 | w[3];
                uint32_t r = crc30_run(MASK30, blk, len - 4);
                if (covers)
                    r = crc30_info(r, 0);
                if ((word >> 30) || r != (word & MASK30)) {
                    plain = 0;
                    break;
                }
            } else if (last && blk[len - 1]) {
                plain = 0;              /* END with ERROR_FLAG or reserved bits */
                break;
            }
            Py_ssize_t room = len - hl - (crc_mode ? 4 : (last ? 1 : 0));
            Py_ssize_t take = last ? need - done_bytes : room;
            if (take < 0 || take > room) {
                plain = 0;
                break;
            }
            for (Py_ssize_t j = hl + take; j < len - (crc_mode ? 4 : (last ? 1 : 0)); j++)
                if (blk[j]) {
                    plain = 0;          /* padding that is not zero */
                    break;
                }
            done_bytes += take;
        }
        if (!plain) {
            stop = 1;
            break;
        }
        /* the packet: the LPH, then each block's payload */
        unsigned char *dst;
        PyObject *pkt = NULL;
        if (out == Py_None) {
            pkt = PyBytes_FromStringAndSize(NULL, expected);
            if (!pkt)
                goto fail;
            dst = (unsigned char *)PyBytes_AS_STRING(pkt);
        } else {
            Py_ssize_t size = PyByteArray_GET_SIZE(out);
            if (PyByteArray_Resize(out, size + 16 + expected) < 0)
                goto fail;
            unsigned char *r = (unsigned char *)PyByteArray_AS_STRING(out) + size;
            uint32_t v[4] = {(uint32_t)sec, (uint32_t)frac, (uint32_t)expected,
                             (uint32_t)expected};
            if (nmarks) {
                /* the time of the first record whose data reaches this DLLDP's end */
                Py_ssize_t k = mark_find(mk, nmarks, mark_base + (pos + flits) * 20);
                v[0] = (uint32_t)mk[3 * k + 1];
                v[1] = (uint32_t)mk[3 * k + 2];
            }
            for (int q = 0; q < 4; q++) {
                r[4 * q] = v[q] & 0xFF;
                r[4 * q + 1] = (v[q] >> 8) & 0xFF;
                r[4 * q + 2] = (v[q] >> 16) & 0xFF;
                r[4 * q + 3] = v[q] >> 24;
            }
            dst = r + 16;
        }
        memcpy(dst, h, 4);
        Py_ssize_t at = 4;
        for (Py_ssize_t k = 0; k < nb; k++) {
            int last = k == nb - 1;
            Py_ssize_t len = (last ? lastf : 32) * 20, hl = k ? 2 : 4;
            Py_ssize_t room = len - hl - (crc_mode ? 4 : (last ? 1 : 0));
            Py_ssize_t take = last ? expected - at : room;
            memcpy(dst + at, h + k * 640 + hl, take);
            at += take;
        }
        if (pkt) {
            PyObject *t = Py_BuildValue("(nnnN)", pos, flits, nb, pkt);
            if (!t || PyList_Append(items, t) < 0) {
                Py_XDECREF(t);
                goto fail;
            }
            Py_DECREF(t);
        }
        count++;
        pos += flits;
    }
    res = items ? Py_BuildValue("(niO)", pos, stop, items)
                : Py_BuildValue("(nin)", pos, stop, count);
    goto done;
fail:
    res = NULL;
done:
    Py_XDECREF(items);
    PyBuffer_Release(&view);
    PyBuffer_Release(&lens);
    if (mk)
        PyBuffer_Release(&marks);
    return res;
}

/* ---- classic pcap records in bulk (ubpkt.link.bulkframe; Python twins there) ---- */

static inline uint32_t rd32(const unsigned char *p, int big)
{
    return big ? (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3]
               : (uint32_t)p[3] << 24 | (uint32_t)p[2] << 16 | (uint32_t)p[1] << 8 | p[0];
}

static inline void wr32le(unsigned char *p, uint32_t v)
{
    p[0] = v & 0xFF;
    p[1] = (v >> 8) & 0xFF;
    p[2] = (v >> 16) & 0xFF;
    p[3] = v >> 24;
}

/* The DLLDP of network packet p (n bytes, PLENGTH plen) as (plen >> 10) * 32 + last-block
 * flits whole flits at dst: what frame() builds, in one piece.  0, or -1 when plen does not
 * describe n bytes (a bad table). */
static int frame_one(unsigned char *dst, const unsigned char *p, Py_ssize_t n, unsigned plen,
                     int crc_mode, int eflag, int covers)
{
    Py_ssize_t nb = (plen >> 10) + 1, lastf = ((plen >> 5) & 0x1F) + 1, pos = 4;
    unsigned char lph[4] = {p[0], p[1], (unsigned char)((p[2] & 0xC0) | (plen >> 8)),
                            (unsigned char)(plen & 0xFF)};
    unsigned char lbh[2] = {(unsigned char)(p[0] & 1), p[1]};
    for (Py_ssize_t k = 0; k < nb; k++) {
        int last = k == nb - 1;
        Py_ssize_t len = (last ? lastf : 32) * 20, hl = k ? 2 : 4;
        Py_ssize_t room = len - hl - (crc_mode ? 4 : (last ? 1 : 0));
        Py_ssize_t size = last ? n - pos : room;
        if (size < 0 || size > room || pos + size > n)
            return -1;
        unsigned char *b = dst + k * 640;
        memcpy(b, k ? lbh : lph, hl);
        memcpy(b + hl, p + pos, size);
        memset(b + hl + size, 0, len - hl - size);
        pos += size;
        seal_block(b, len, crc_mode, covers, eflag && last);
    }
    return pos == n ? 0 : -1;
}

/* frame_records(buf, pos, big_endian, nano, crc_mode, error_flag, covers_info, plengths, out,
 *               used, raw, max_record) -> (pos, stop, records, framed, used)
 * `ubpkt link frame` over the classic pcap records of buf from pos: each record's data (a
 * network packet from its LPH) is framed (frame_one) and written to the writable buffer out
 * from byte used on - as whole flits (raw) or as a little-endian nanosecond pcap record of
 * them with the record's time; a record whose length has no PLENGTH (plengths: int32 per
 * length, -1 where it cannot be framed; lengths past the table alike) or whose LPH has CFG 0
 * is skipped.  The walk stops at the end of the whole records (stop 0), at a record header it
 * leaves to the reference reader (stop 1: captured length over max_record, time fraction not
 * below a second) or at a record whose output does not fit out (stop 2: write out[:used] and
 * call again).  records: records taken; framed: those framed; used: bytes of out filled. */
static PyObject *frame_records(PyObject *self, PyObject *args)
{
    Py_buffer view, tab, out;
    Py_ssize_t pos, max_record, used;
    int big, nano, crc_mode, eflag, covers, raw;
    PyObject *res = NULL;
    if (!PyArg_ParseTuple(args, "y*npppppy*w*npn", &view, &pos, &big, &nano, &crc_mode, &eflag,
                          &covers, &tab, &out, &used, &raw, &max_record))
        return NULL;
    if (pos < 0 || pos > view.len || tab.len % 4 || used < 0 || used > out.len) {
        PyErr_SetString(PyExc_ValueError, "pos inside buf, used inside out, plengths int32");
        goto done;
    }
    const unsigned char *b = view.buf;
    unsigned char *o = out.buf;
    const int32_t *plens = tab.buf;
    Py_ssize_t ntab = tab.len / 4, end = view.len, records = 0, framed = 0;
    uint32_t fraclim = nano ? 1000000000u : 1000000u, scale = nano ? 1u : 1000u;
    int stop = 0;
    while (pos + 16 <= end) {
        const unsigned char *h = b + pos;
        uint32_t sec = rd32(h, big), frac = rd32(h + 4, big), incl = rd32(h + 8, big);
        if ((Py_ssize_t)incl > max_record || frac >= fraclim) {
            stop = 1;
            break;
        }
        if (pos + 16 + (Py_ssize_t)incl > end)
            break;
        const unsigned char *p = h + 16;
        Py_ssize_t n = incl;
        if (n < 5 || n >= ntab || plens[n] < 0 || (p[1] & 0x0F) == 0) {
            records++;                  /* not framable: the reference skips it alike */
            pos += 16 + n;
            continue;
        }
        unsigned plen = (unsigned)plens[n];
        Py_ssize_t bytes = (((Py_ssize_t)(plen >> 10)) * 32 + ((plen >> 5) & 0x1F) + 1) * 20;
        Py_ssize_t hdr = raw ? 0 : 16;
        if (used + hdr + bytes > out.len) {
            stop = 2;
            break;
        }
        unsigned char *d = o + used;
        if (!raw) {
            wr32le(d, sec);
            wr32le(d + 4, frac * scale);
            wr32le(d + 8, (uint32_t)bytes);
            wr32le(d + 12, (uint32_t)bytes);
        }
        if (frame_one(d + hdr, p, n, plen, crc_mode, eflag, covers) < 0) {
            PyErr_SetString(PyExc_ValueError, "plengths does not describe the packet lengths");
            goto done;
        }
        used += hdr + bytes;
        records++;
        framed++;
        pos += 16 + n;
    }
    res = Py_BuildValue("(ninnn)", pos, stop, records, framed, used);
done:
    PyBuffer_Release(&view);
    PyBuffer_Release(&tab);
    PyBuffer_Release(&out);
    return res;
}

/* pcap_payloads(buf, pos, big_endian, nano, stream, marks, max_record) -> (pos, stop, records)
 * `ubpkt link deframe` of a flit pcap: the data of the classic pcap records of buf from pos
 * appended to the bytearray stream (flits of consecutive records form one stream), and per
 * record an int64 triple (len(stream) after it, seconds, nanoseconds) to the bytearray marks
 * (plain_dlldps's marks).  Stops as frame_records does (stop 0 / 1). */
/* The classic pcap record header at b + at (16 bytes, then incl data bytes) within end: 0 a
 * whole record (its incl in *incl), 1 a header the per-record reader rejects (caplen past
 * max_record, a fraction of a second out of range: stop), 2 not all there (the caller's
 * buffer ends first).  pcap_payloads and pcap_scan walk records with it. */
static inline int pcap_record(const unsigned char *b, Py_ssize_t at, Py_ssize_t end, int big,
                              Py_ssize_t max_record, uint32_t fraclim, uint32_t *incl)
{
    if (at + 16 > end)
        return 2;
    const unsigned char *h = b + at;
    uint32_t frac = rd32(h + 4, big), n = rd32(h + 8, big);
    if ((Py_ssize_t)n > max_record || frac >= fraclim)
        return 1;
    if (at + 16 + (Py_ssize_t)n > end)
        return 2;
    *incl = n;
    return 0;
}

static PyObject *pcap_payloads(PyObject *self, PyObject *args)
{
    Py_buffer view;
    Py_ssize_t pos, max_record;
    int big, nano;
    PyObject *stream, *marks, *res = NULL;
    if (!PyArg_ParseTuple(args, "y*nppOOn", &view, &pos, &big, &nano, &stream, &marks,
                          &max_record))
        return NULL;
    if (!PyByteArray_Check(stream) || !PyByteArray_Check(marks) || pos < 0 || pos > view.len) {
        PyErr_SetString(PyExc_ValueError, "stream and marks must be bytearrays, pos inside buf");
        goto done;
    }
    const unsigned char *b = view.buf;
    Py_ssize_t end = view.len, records = 0;
    uint32_t fraclim = nano ? 1000000000u : 1000000u, scale = nano ? 1u : 1000u;
    int stop = 0;
    /* one pass to size both outputs, one to fill them */
    Py_ssize_t at = pos, data = 0, count = 0;
    for (;;) {
        uint32_t incl;
        int got = pcap_record(b, at, end, big, max_record, fraclim, &incl);
        if (got) {
            stop = got == 1;
            break;
        }
        data += incl;
        count++;
        at += 16 + incl;
    }
    Py_ssize_t s0 = PyByteArray_GET_SIZE(stream), m0 = PyByteArray_GET_SIZE(marks);
    if (PyByteArray_Resize(stream, s0 + data) < 0 || PyByteArray_Resize(marks, m0 + 24 * count) < 0)
        goto done;
    unsigned char *dst = (unsigned char *)PyByteArray_AS_STRING(stream) + s0;
    int64_t *mk = (int64_t *)(PyByteArray_AS_STRING(marks) + m0);   /* 8-aligned: 24 * k */
    Py_ssize_t filled = s0;
    for (; records < count; records++) {
        const unsigned char *h = b + pos;
        uint32_t sec = rd32(h, big), frac = rd32(h + 4, big), incl = rd32(h + 8, big);
        memcpy(dst, h + 16, incl);
        dst += incl;
        filled += incl;
        int64_t m[3] = {filled, sec, (int64_t)frac * scale};
        memcpy(mk + 3 * records, m, sizeof m);
        pos += 16 + incl;
    }
    res = Py_BuildValue("(nin)", pos, stop, records);
done:
    PyBuffer_Release(&view);
    return res;
}


/* ---- the exporter's bulk probe and guard (ubpkt/dissect/bulkguard.py is the reference) ----
 *
 * probe_guard(buf, offs, lens, out, groups, ngroups, slots, lists, guards, aux, blob,
 *             max_region) -> None
 *     for every frame buf[offs[i]:offs[i] + lens[i]] the index of the first template whose
 *     probe (masked header region found in a probe group's hash table, exact compare) and
 *     guard (size rule, guard mask, length relations, zero padding, ICRC) it passes; -1 where
 *     it takes the per-frame path (a template whose guard is not data, or a case the bulk
 *     guard leaves), -2 where no template of the index fits it (it goes to the dissector).
 *     The arrays are bulkguard.BulkIndex's; probe_guard_py there is this function's
 *     pure-Python twin.
 * gather_rows(buf, offs, width, out) -> None
 *     buf[offs[i]:offs[i] + width] of every i, one after the other into out (a group's
 *     header-region matrix; every row inside buf).
 * pcap_scan(buf, pos, big_endian, nano, max_record, offs, lens, ts, orig) -> (pos, stop, n)
 *     the classic pcap records of buf from pos (at most len(offs)): their data's offset and
 *     length, time in ns and original length; stop 1 at a record header the per-record
 *     checks must see (pcap_payloads' rule), else 0 at the first incomplete record.
 *
 * CRC-32 of the ICRC: zlib's (reflected polynomial 0xEDB88320, preset and final inversion),
 * sliced by 8. */
static uint32_t C32[8][256];

static void make_crc32_tables(void)
{
    for (unsigned i = 0; i < 256; i++) {
        uint32_t c = i;
        for (int k = 0; k < 8; k++)
            c = (c & 1) ? (c >> 1) ^ 0xEDB88320u : c >> 1;
        C32[0][i] = c;
    }
    for (unsigned i = 0; i < 256; i++)
        for (int t = 1; t < 8; t++)
            C32[t][i] = (C32[t - 1][i] >> 8) ^ C32[0][C32[t - 1][i] & 0xFF];
}

/* the register (inverted form) after feeding p[0:n] */
static uint32_t crc32_feed(uint32_t c, const unsigned char *p, Py_ssize_t n)
{
    while (n >= 8) {
        uint32_t a = c ^ ((uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
                          (uint32_t)p[3] << 24);
        c = C32[7][a & 0xFF] ^ C32[6][(a >> 8) & 0xFF] ^ C32[5][(a >> 16) & 0xFF] ^
            C32[4][a >> 24] ^ C32[3][p[4]] ^ C32[2][p[5]] ^ C32[1][p[6]] ^ C32[0][p[7]];
        p += 8;
        n -= 8;
    }
    while (n-- > 0)
        c = (c >> 8) ^ C32[0][(c ^ *p++) & 0xFF];
    return c;
}

static inline uint64_t load_le(const unsigned char *p, Py_ssize_t n)
{
    uint64_t v = 0;
    if (n >= 8) {
        memcpy(&v, p, 8);
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
        v = __builtin_bswap64(v);
#endif
        return v;
    }
    for (Py_ssize_t j = 0; j < n; j++)
        v |= (uint64_t)p[j] << (8 * j);
    return v;
}

/* the bits-wide (<= 56) big-endian field at bit of b (L bytes); -1 when it is not inside */
static inline int64_t read_field(const unsigned char *b, Py_ssize_t L, int64_t bit, int64_t bits)
{
    Py_ssize_t a = bit >> 3, e = (bit + bits + 7) >> 3;
    if (bits < 1 || bits > 56 || bit < 0 || e > L)
        return -1;
    uint64_t v = 0;
    for (Py_ssize_t i = a; i < e; i++)
        v = v << 8 | b[i];
    v >>= 8 * e - bit - bits;
    return (int64_t)(v & ((UINT64_C(1) << bits) - 1));
}

/* 1 pass, 0 fail, -1 outside what the bulk guard covers (bulkguard._guard_py) */
static int guard_frame(const unsigned char *b, Py_ssize_t L, const int64_t *row,
                       const int64_t *aux, Py_ssize_t naux, const unsigned char *blob,
                       Py_ssize_t nblob)
{
    int64_t region = row[1], E = 0;
    if (row[3] >= 0) {
        if (L != row[3])
            return 0;
    } else {
        if (L < row[8] || L < region)
            return 0;
        int64_t P = 0;
        if (row[9] >= 0) {
            P = read_field(b, L, row[9], row[10]);
            if (P < 0)
                return -1;
            if (!P)
                return 0;
        }
        E = L - row[4] - P;
        if (E < row[5] || (row[6] >= 0 && E > row[6]))
            return 0;
        for (int64_t j = 0; j < row[12]; j++)
            if (E - row[7] == aux[row[11] + j])
                return 0;
    }
    if (region > L || row[2] + 2 * region > nblob)
        return -1;
    const unsigned char *m = blob + row[2], *g = m + region;
    for (int64_t i = 0; i < region; i += 8) {
        Py_ssize_t k = region - i < 8 ? region - i : 8;
        if ((load_le(b + i, k) & load_le(m + i, k)) != load_le(g + i, k))
            return 0;
    }
    for (int64_t j = 0; j < row[14]; j++) {
        const int64_t *r = aux + row[13] + 3 * j;
        int64_t v = read_field(b, L, r[0], r[1]);
        if (v < 0)
            return -1;
        if (v != L - r[2])
            return 0;
    }
    for (int64_t j = 0; j < row[16]; j++) {
        const int64_t *r = aux + row[15] + 3 * j;
        int64_t v = read_field(b, L, r[0], r[1]);
        if (v < 0 || r[2] + v >= naux)
            return -1;
        if (aux[r[2] + v] != L)
            return 0;
    }
    for (int64_t j = 0; j < row[18]; j++) {
        int64_t a = aux[row[17] + 2 * j], z = aux[row[17] + 2 * j + 1];
        if (a > L || z < 0 || z > a)
            return -1;
        for (int64_t i = L - a; i < L - z; i++)
            if (b[i])
                return 0;
    }
    if (row[19] >= 0) {
        int64_t stop = L - row[19];
        if (E > stop || E < 0)
            return -1;
        for (int64_t i = E; i < stop; i++)
            if (b[i])
                return 0;
    }
    if (row[20]) {
        int64_t start = row[21], hdr_end = row[22];
        int64_t x = row[24] >= 0 ? row[24] : L - 4;
        if (x < hdr_end || x + 4 != L || start < 0 || hdr_end < start ||
            row[23] + (hdr_end - start) > nblob)
            return -1;
        const unsigned char *orm = blob + row[23];
        uint32_t c = 0xFFFFFFFFu;
        for (int64_t i = start; i < hdr_end; i++)
            c = (c >> 8) ^ C32[0][(c ^ (b[i] | orm[i - start])) & 0xFF];
        c = ~crc32_feed(c, b + hdr_end, x - hdr_end);
        uint32_t stored = rd32(b + x, !row[25]);
        if (c != stored)
            return 0;
    }
    return 1;
}

static PyObject *probe_guard(PyObject *self, PyObject *args)
{
    Py_buffer vb, vo, vl, vout, vg, vs, vli, vgu, va, vbl;
    Py_ssize_t ngroups, max_region;
    PyObject *res = NULL;
    Py_ssize_t *order = NULL;
    if (!PyArg_ParseTuple(args, "y*y*y*w*y*ny*y*y*y*y*n", &vb, &vo, &vl, &vout, &vg, &ngroups,
                          &vs, &vli, &vgu, &va, &vbl, &max_region))
        return NULL;
    Py_ssize_t n = vo.len / 8, nslots = vs.len / 24, nlists = vli.len / 8;
    Py_ssize_t nguards = vgu.len / (8 * 32), naux = va.len / 8, nblob = vbl.len;
    if (vl.len / 8 != n || vout.len / 8 < n || vg.len / 32 < ngroups || ngroups < 0 ||
        max_region < 0) {
        PyErr_SetString(PyExc_ValueError, "probe_guard: array sizes do not agree");
        goto done;
    }
    /* the probe groups in the order they are tried: a group that found a frame's template
     * moves one place forward (as TemplateCache._candidates does) */
    order = PyMem_Malloc(sizeof(Py_ssize_t) * (ngroups + 1));
    if (!order) {
        PyErr_NoMemory();
        goto done;
    }
    for (Py_ssize_t gi = 0; gi < ngroups; gi++)
        order[gi] = gi;
    const unsigned char *buf = vb.buf, *blob = vbl.buf;
    const int64_t *offs = vo.buf, *lens = vl.buf, *groups = vg.buf, *slots = vs.buf;
    const int64_t *lists = vli.buf, *guards = vgu.buf, *aux = va.buf;
    int64_t *out = vout.buf;
    Py_BEGIN_ALLOW_THREADS
    for (Py_ssize_t f = 0; f < n; f++) {
        int64_t o = offs[f], L = lens[f], res_t = -2;
        if (o < 0 || L < 0 || o + L > vb.len) {
            out[f] = -1;
            continue;
        }
        const unsigned char *b = buf + o;
        for (Py_ssize_t pi = 0; pi < ngroups; pi++) {
            Py_ssize_t gi = order[pi];
            const int64_t *g = groups + 4 * gi;
            int64_t region = g[0], mo = g[1], base = g[2], smask = g[3];
            if (L < region || region > max_region || mo + region > nblob)
                continue;
            uint64_t h = 0xCBF29CE484222325ull ^ (uint64_t)region;
            const unsigned char *gm = blob + mo;
            for (int64_t i = 0; i < region; i += 8) {
                Py_ssize_t k = region - i < 8 ? region - i : 8;
                uint64_t m = load_le(gm + i, k);
                if (!m)                 /* words the steering mask leaves out: not hashed */
                    continue;
                uint64_t w = load_le(b + i, k) & m;
                h = (h ^ w) * 0x9E3779B97F4A7C15ull;
                h ^= h >> 32;
            }
            int64_t j = (int64_t)(h & (uint64_t)smask), lo = -1, ln = 0;
            for (int64_t probes = 0; probes <= smask; probes++) {
                if (base + j >= nslots)
                    break;
                const int64_t *s = slots + 3 * (base + j);
                if (s[0] < 0)
                    break;
                if (s[0] + region <= nblob) {
                    const unsigned char *key = blob + s[0];
                    int64_t i = 0;
                    for (; i < region; i += 8) {
                        Py_ssize_t k = region - i < 8 ? region - i : 8;
                        uint64_t m = load_le(gm + i, k);
                        if (m && (load_le(b + i, k) & m) != load_le(key + i, k))
                            break;
                    }
                    if (i >= region) {
                        lo = s[1];
                        ln = s[2];
                        break;
                    }
                }
                j = (j + 1) & smask;
            }
            if (lo < 0)
                continue;
            int stop = 0;
            for (int64_t k = lo; k < lo + ln && k < nlists; k++) {
                int64_t t = lists[k];
                if (t < 0 || t >= nguards || !guards[32 * t]) {
                    stop = 1;
                    break;
                }
                int ok = guard_frame(b, L, guards + 32 * t, aux, naux, blob, nblob);
                if (ok) {
                    res_t = ok > 0 ? t : -1;
                    stop = 1;
                    break;
                }
            }
            if (stop) {
                if (res_t == -2)
                    res_t = -1;
                if (res_t >= 0 && pi > 0) {
                    order[pi] = order[pi - 1];
                    order[pi - 1] = gi;
                }
                break;
            }
        }
        out[f] = res_t;
    }
    Py_END_ALLOW_THREADS
    res = Py_None;
    Py_INCREF(res);
done:
    PyMem_Free(order);
    PyBuffer_Release(&vb); PyBuffer_Release(&vo); PyBuffer_Release(&vl); PyBuffer_Release(&vout);
    PyBuffer_Release(&vg); PyBuffer_Release(&vs); PyBuffer_Release(&vli); PyBuffer_Release(&vgu);
    PyBuffer_Release(&va); PyBuffer_Release(&vbl);
    return res;
}

static PyObject *pcap_scan(PyObject *self, PyObject *args)
{
    Py_buffer view, vo, vl, vt, vr;
    Py_ssize_t pos, max_record;
    int big, nano;
    PyObject *res = NULL;
    if (!PyArg_ParseTuple(args, "y*nppnw*w*w*w*", &view, &pos, &big, &nano, &max_record, &vo,
                          &vl, &vt, &vr))
        return NULL;
    Py_ssize_t cap = vo.len / 8;
    if (vl.len / 8 < cap || vt.len / 8 < cap || vr.len / 8 < cap || pos < 0 || pos > view.len) {
        PyErr_SetString(PyExc_ValueError, "pcap_scan: arrays too short or pos outside buf");
        goto done;
    }
    const unsigned char *b = view.buf;
    int64_t *offs = vo.buf, *lens = vl.buf, *ts = vt.buf, *orig = vr.buf;
    Py_ssize_t end = view.len, count = 0;
    uint32_t fraclim = nano ? 1000000000u : 1000000u;
    int64_t scale = nano ? 1 : 1000;
    int stop = 0;
    while (count < cap) {
        uint32_t incl;
        int got = pcap_record(b, pos, end, big, max_record, fraclim, &incl);
        if (got) {
            stop = got == 1;
            break;
        }
        const unsigned char *h = b + pos;
        uint32_t frac = rd32(h + 4, big);
        offs[count] = pos + 16;
        lens[count] = incl;
        ts[count] = (int64_t)rd32(h, big) * 1000000000 + (int64_t)frac * scale;
        orig[count] = rd32(h + 12, big);
        count++;
        pos += 16 + incl;
    }
    res = Py_BuildValue("(nin)", pos, stop, count);
done:
    PyBuffer_Release(&view); PyBuffer_Release(&vo); PyBuffer_Release(&vl);
    PyBuffer_Release(&vt); PyBuffer_Release(&vr);
    return res;
}

static PyObject *gather_rows(PyObject *self, PyObject *args)
{
    Py_buffer vb, vo, vout;
    Py_ssize_t width;
    PyObject *res = NULL;
    if (!PyArg_ParseTuple(args, "y*y*nw*", &vb, &vo, &width, &vout))
        return NULL;
    Py_ssize_t n = vo.len / 8;
    const int64_t *offs = vo.buf;
    if (width < 0 || vout.len < n * width) {
        PyErr_SetString(PyExc_ValueError, "gather_rows: out too short");
        goto done;
    }
    for (Py_ssize_t i = 0; i < n; i++)
        if (offs[i] < 0 || offs[i] + width > vb.len) {
            PyErr_SetString(PyExc_ValueError, "gather_rows: a row outside buf");
            goto done;
        }
    unsigned char *dst = vout.buf;
    const unsigned char *b = vb.buf;
    for (Py_ssize_t i = 0; i < n; i++)
        memcpy(dst + i * width, b + offs[i], width);
    res = Py_None;
    Py_INCREF(res);
done:
    PyBuffer_Release(&vb); PyBuffer_Release(&vo); PyBuffer_Release(&vout);
    return res;
}

/* ---- the exporter's Parquet column encoder (ubpkt/analytics/page_encoder.py is the reference) ----
 *
 * bit_pack(values, width, out) -> None
 *     the uint32 values (len(values) // 4 of them) bit-packed as the Parquet RLE/bit-packing
 *     hybrid's bit-packed groups store them: width bits per value, least significant bit
 *     first, value after value, groups of 8 values (out: ceil(n / 8) * width bytes, zeroed
 *     here; the last group's missing values are zero bits).  page_encoder.bit_pack_py is its
 *     numpy twin. */
static PyObject *bit_pack(PyObject *self, PyObject *args)
{
    Py_buffer vv, vout;
    int width;
    PyObject *res = NULL;
    if (!PyArg_ParseTuple(args, "y*iw*", &vv, &width, &vout))
        return NULL;
    Py_ssize_t n = vv.len / 4;
    Py_ssize_t need = (n + 7) / 8 * width;
    if (width < 1 || width > 32 || vout.len < need) {
        PyErr_SetString(PyExc_ValueError, "bit_pack: width outside 1..32 or out too short");
        goto done;
    }
    const uint32_t *v = vv.buf;
    unsigned char *o = vout.buf;
    memset(o, 0, need);
    uint64_t acc = 0;
    int bits = 0;
    Py_ssize_t w = 0;
    uint64_t mask = width == 32 ? 0xFFFFFFFFull : ((1ull << width) - 1);
    for (Py_ssize_t i = 0; i < n; i++) {
        acc |= ((uint64_t)v[i] & mask) << bits;
        bits += width;
        while (bits >= 8) {
            o[w++] = (unsigned char)acc;
            acc >>= 8;
            bits -= 8;
        }
    }
    if (bits)
        o[w++] = (unsigned char)acc;
    res = Py_None;
    Py_INCREF(res);
done:
    PyBuffer_Release(&vv); PyBuffer_Release(&vout);
    return res;
}

/* hybrid_encode(values, itemsize, width, min_groups) -> bytes
 *     the values (unsigned, itemsize 1 or 4 bytes each, each < 2**width) in the Parquet
 *     RLE/bit-packing hybrid, by page_encoder.hybrid_py's rule (its reference): all values
 *     equal: one RLE run; else groups of 8 values (the last one filled with copies of the
 *     last value to find runs), runs of at least min_groups groups of 8 equal values one RLE
 *     run each (its count exact at the end), everything between bit-packed groups (zero bits
 *     after the last value). */
static inline uint32_t hy_get(const unsigned char *b, int size, Py_ssize_t i)
{
    if (size == 1)
        return b[i];
    uint32_t v;
    memcpy(&v, b + 4 * i, 4);
    return v;
}

static unsigned char *hy_varint(unsigned char *o, uint64_t v)
{
    while (v > 0x7F) {
        *o++ = (unsigned char)((v & 0x7F) | 0x80);
        v >>= 7;
    }
    *o++ = (unsigned char)v;
    return o;
}

/* bit-pack values [a, b) (b may pass n: zero bits) at width bits into o; the end of output */
static unsigned char *hy_pack(unsigned char *o, const unsigned char *src, int size,
                              Py_ssize_t n, Py_ssize_t a, Py_ssize_t b, int width)
{
    uint64_t acc = 0, mask = width == 32 ? 0xFFFFFFFFull : ((1ull << width) - 1);
    int bits = 0;
    if (size == 1 && width == 1) {
        /* 0/1 bytes (definition levels): a whole group of 8 becomes one byte, byte k of the
         * little-endian word to bit k by one multiplication */
        for (; a + 8 <= b && a + 8 <= n; a += 8) {
            uint64_t x;
            memcpy(&x, src + a, 8);
            *o++ = (unsigned char)(((x & 0x0101010101010101ull) * 0x0102040810204080ull) >> 56);
        }
    }
    for (Py_ssize_t i = a; i < b; i++) {
        uint64_t v = i < n ? (hy_get(src, size, i) & mask) : 0;
        acc |= v << bits;
        bits += width;
        while (bits >= 8) {
            *o++ = (unsigned char)acc;
            acc >>= 8;
            bits -= 8;
        }
    }
    if (bits)
        *o++ = (unsigned char)acc;
    return o;
}

static PyObject *hybrid_encode(PyObject *self, PyObject *args)
{
    Py_buffer vv;
    int size, width;
    Py_ssize_t min_groups;
    if (!PyArg_ParseTuple(args, "y*iin", &vv, &size, &width, &min_groups))
        return NULL;
    PyObject *res = NULL;
    unsigned char *out = NULL;
    if ((size != 1 && size != 4) || width < 1 || width > 32 || min_groups < 1) {
        PyErr_SetString(PyExc_ValueError, "hybrid_encode: itemsize 1 or 4, width 1..32");
        goto done;
    }
    const unsigned char *src = vv.buf;
    Py_ssize_t n = vv.len / size;
    int vbytes = (width + 7) / 8;
    if (n == 0) {
        res = PyBytes_FromStringAndSize("", 0);
        goto done;
    }
    Py_ssize_t ng = (n + 7) / 8;
    /* worst case: every group its own bit-packed or RLE run */
    out = PyMem_Malloc((size_t)ng * (width + 20) + 32);
    if (!out) {
        PyErr_NoMemory();
        goto done;
    }
    unsigned char *o = out;
    uint32_t first = hy_get(src, size, 0);
    Py_ssize_t i = 1;
    while (i < n && hy_get(src, size, i) == first)
        i++;
    if (i == n) {
        o = hy_varint(o, (uint64_t)n << 1);
        for (int k = 0; k < vbytes; k++)
            *o++ = (unsigned char)(first >> (8 * k));
        res = PyBytes_FromStringAndSize((char *)out, o - out);
        goto done;
    }
    Py_ssize_t pad = ng * 8 - n, bp = 0, g = 0;
    uint32_t last = hy_get(src, size, n - 1);
    while (g < ng) {
        /* the run of uniform groups of one value starting at g */
        Py_ssize_t e = g;
        uint32_t lead = hy_get(src, size, 8 * g);
        uint64_t lead8 = (uint64_t)(lead & 0xFF) * 0x0101010101010101ull;
        for (; e < ng; e++) {
            int uni = 1;
            if (size == 1 && 8 * e + 8 <= n) {      /* one word compare per group */
                uint64_t x;
                memcpy(&x, src + 8 * e, 8);
                uni = x == lead8;
            } else
                for (int k = 0; k < 8 && uni; k++) {
                    Py_ssize_t j = 8 * e + k;
                    uni = (j < n ? hy_get(src, size, j) : last) == lead;
                }
            if (!uni)
                break;
        }
        if (e - g >= min_groups) {
            if (g > bp) {
                o = hy_varint(o, (uint64_t)(g - bp) << 1 | 1);
                o = hy_pack(o, src, size, n, 8 * bp, 8 * g, width);
            }
            o = hy_varint(o, (uint64_t)((e - g) * 8 - (e == ng ? pad : 0)) << 1);
            for (int k = 0; k < vbytes; k++)
                *o++ = (unsigned char)(lead >> (8 * k));
            bp = g = e;
        } else
            g = e > g ? e : g + 1;
    }
    if (bp < ng) {
        o = hy_varint(o, (uint64_t)(ng - bp) << 1 | 1);
        o = hy_pack(o, src, size, n, 8 * bp, 8 * ng, width);
    }
    res = PyBytes_FromStringAndSize((char *)out, o - out);
done:
    PyMem_Free(out);
    PyBuffer_Release(&vv);
    return res;
}

/* compact_values(values, kind, in_size, valid, out, out_size) -> count
 *     the values whose valid byte is not 0, in order, into out (out_size bytes each): kind
 *     'u' (unsigned ints of in_size 1, 2, 4 or 8 bytes, zero-extended), 'i' (signed,
 *     sign-extended) or 'f' (8-byte doubles, out_size 8); the count written.  Branch-free
 *     (every value is stored, the position only advances past a valid one): a random null
 *     mask costs what a full one does, where numpy's boolean indexing mispredicts.
 *     page_encoder.compact_py is its numpy twin. */
#define COMPACT_LOOP(TIN, TOUT) do { \
        const TIN *src_ = (const TIN *)vv.buf; TOUT *dst_ = (TOUT *)vo.buf; \
        for (Py_ssize_t i = 0; i < n; i++) { dst_[j] = (TOUT)src_[i]; j += m[i] != 0; } \
    } while (0)

static PyObject *compact_values(PyObject *self, PyObject *args)
{
    Py_buffer vv, vm, vo;
    int kind, in_size, out_size;
    if (!PyArg_ParseTuple(args, "y*Ciy*w*i", &vv, &kind, &in_size, &vm, &vo, &out_size))
        return NULL;
    PyObject *res = NULL;
    Py_ssize_t n = in_size > 0 ? vv.len / in_size : 0, j = 0;
    const unsigned char *m = vm.buf;
    if (vm.len < n || vo.len < n * out_size || (out_size != 4 && out_size != 8) ||
        in_size > out_size) {
        PyErr_SetString(PyExc_ValueError, "compact_values: sizes do not match");
        goto done;
    }
    int key = kind << 8 | in_size << 4 | out_size;
    switch (key) {
    case 'u' << 8 | 1 << 4 | 4: COMPACT_LOOP(uint8_t, uint32_t); break;
    case 'u' << 8 | 2 << 4 | 4: COMPACT_LOOP(uint16_t, uint32_t); break;
    case 'u' << 8 | 4 << 4 | 4: COMPACT_LOOP(uint32_t, uint32_t); break;
    case 'u' << 8 | 8 << 4 | 8: COMPACT_LOOP(uint64_t, uint64_t); break;
    case 'i' << 8 | 1 << 4 | 4: COMPACT_LOOP(int8_t, int32_t); break;
    case 'i' << 8 | 2 << 4 | 4: COMPACT_LOOP(int16_t, int32_t); break;
    case 'i' << 8 | 4 << 4 | 4: COMPACT_LOOP(int32_t, int32_t); break;
    case 'i' << 8 | 8 << 4 | 8: COMPACT_LOOP(int64_t, int64_t); break;
    case 'f' << 8 | 8 << 4 | 8: COMPACT_LOOP(double, double); break;
    default:
        PyErr_SetString(PyExc_ValueError, "compact_values: unsupported kind or sizes");
        goto done;
    }
    res = PyLong_FromSsize_t(j);
done:
    PyBuffer_Release(&vv); PyBuffer_Release(&vm); PyBuffer_Release(&vo);
    return res;
}

/* byte_array_plain(words, lengths) -> bytes
 *     the str items of the list words as Parquet PLAIN BYTE_ARRAY values (each a 4-byte
 *     little-endian length and its UTF-8 bytes), their UTF-8 lengths into lengths (int64,
 *     one per word): a dictionary page's body.  page_encoder.byte_array_plain_py is its
 *     Python twin. */
static PyObject *byte_array_plain(PyObject *self, PyObject *args)
{
    PyObject *words;
    Py_buffer vl;
    if (!PyArg_ParseTuple(args, "O!w*", &PyList_Type, &words, &vl))
        return NULL;
    PyObject *res = NULL;
    Py_ssize_t k = PyList_GET_SIZE(words), total = 0;
    int64_t *lens = vl.buf;
    if (vl.len < k * 8) {
        PyErr_SetString(PyExc_ValueError, "byte_array_plain: lengths too short");
        goto done;
    }
    for (Py_ssize_t i = 0; i < k; i++) {
        PyObject *w = PyList_GET_ITEM(words, i);
        Py_ssize_t len;
        if (!PyUnicode_Check(w)) {
            PyErr_SetString(PyExc_TypeError, "byte_array_plain: a word is not str");
            goto done;
        }
        if (!PyUnicode_AsUTF8AndSize(w, &len))
            goto done;
        if (len > 0x7FFFFFFF) {
            PyErr_SetString(PyExc_ValueError, "byte_array_plain: a word past 2 GiB");
            goto done;
        }
        lens[i] = len;
        total += 4 + len;
    }
    res = PyBytes_FromStringAndSize(NULL, total);
    if (!res)
        goto done;
    unsigned char *o = (unsigned char *)PyBytes_AS_STRING(res);
    for (Py_ssize_t i = 0; i < k; i++) {
        Py_ssize_t len;
        const char *u = PyUnicode_AsUTF8AndSize(PyList_GET_ITEM(words, i), &len);
        uint32_t l32 = (uint32_t)len;
        o[0] = l32 & 0xFF; o[1] = (l32 >> 8) & 0xFF; o[2] = (l32 >> 16) & 0xFF; o[3] = l32 >> 24;
        memcpy(o + 4, u, len);
        o += 4 + len;
    }
done:
    PyBuffer_Release(&vl);
    return res;
}

static PyMethodDef methods[] = {
    {"byte_array_plain", byte_array_plain, METH_VARARGS,
     "byte_array_plain(words, lengths) -> bytes: str items as PLAIN BYTE_ARRAY values"},
    {"compact_values", compact_values, METH_VARARGS,
     "compact_values(values, kind, in_size, valid, out, out_size) -> count: the valid values, "
     "widened, into out"},
    {"hybrid_encode", hybrid_encode, METH_VARARGS,
     "hybrid_encode(values, itemsize, width, min_groups) -> bytes: the Parquet RLE/bit-packing "
     "hybrid of unsigned values"},
    {"bit_pack", bit_pack, METH_VARARGS,
     "bit_pack(values, width, out) -> None: uint32 values bit-packed LSB first, width bits "
     "each (Parquet's bit-packed groups of 8)"},
    {"gather_rows", gather_rows, METH_VARARGS,
     "gather_rows(buf, offs, width, out) -> None: buf[o:o + width] of every offset into out"},
    {"probe_guard", probe_guard, METH_VARARGS,
     "probe_guard(buf, offs, lens, out, groups, ngroups, slots, lists, guards, aux, blob, "
     "max_region) -> None: each frame's first template whose probe and guard it passes (-1: "
     "per frame)"},
    {"pcap_scan", pcap_scan, METH_VARARGS,
     "pcap_scan(buf, pos, big_endian, nano, max_record, offs, lens, ts, orig) -> (pos, stop, "
     "n): classic pcap records as offset, length, time and original length arrays"},
    {"frame_records", frame_records, METH_VARARGS,
     "frame_records(buf, pos, big_endian, nano, crc_mode, error_flag, covers_info, plengths, out, "
     "used, raw, max_record) -> (pos, stop, records, framed, used): classic pcap records framed "
     "in bulk"},
    {"pcap_payloads", pcap_payloads, METH_VARARGS,
     "pcap_payloads(buf, pos, big_endian, nano, stream, marks, max_record) -> (pos, stop, "
     "records): the data of classic pcap records as one stream, with their ends and times"},
    {"plain_dlldps", plain_dlldps, METH_VARARGS,
     "plain_dlldps(buf, total_flits, crc_mode, covers_info, cfg_mask, lengths, out, sec, frac) -> "
     "(done_flits, stop, items): the plain DLLDPs at the start of buf, reassembled "
     "(optional marks, mark_base: each packet timed by the capture record completing it)"},
    {"rx_plan", rx_plan, METH_VARARGS,
     "rx_plan(buf, total_flits, pending, crc_mode, covers_info, crd_code, null_code) -> "
     "(actions, counted, worthy, done), or (None, spans, kinds, crc_ok) for an uncommon call"},
    {"tx_plan", tx_plan, METH_VARARGS,
     "tx_plan(out, want, cur, txq, vl_rr, excl, share, shared, kept, kept_at, wr, tail, depth, "
     "pending_ack, worthy, owed, cfg) -> (status, cur, wr, pending_ack, worthy, vl_rr, share, "
     "nob_due, started, crd_acks): a transmit call's data burst"},
    {"tx_run", tx_run, METH_VARARGS,
     "tx_run(blocks, i, out, kept, kept_at, wr, free, low, reserve, want, pending_ack, "
     "ack_grain, owed, crd_grains, crc_mode, covers_info) -> (i, wr, size, pending_ack, owing)"},
    {"dlldb_gather", dlldb_gather, METH_VARARGS,
     "dlldb_gather(buf, spans, skip_first, skip, tail) -> (joined payloads, byte 0 of the "
     "blocks with CRD/ACK set)"},
    {"crd_ack", crd_ack, METH_VARARGS,
     "crd_ack(lch3, ack_num, credits, t, sd, crc_mode, covers_info) -> the 2-flit Crd_Ack block"},
    {"crd_ack_read", crd_ack_read, METH_VARARGS,
     "crd_ack_read(blk) -> (ack_num, credits per VL, t, sd) of a Crd_Ack block"},
    {"delimit", delimit, METH_VARARGS,
     "delimit(buf, total_flits, pending, crc_mode, covers_info) -> (spans, kinds, crc_ok) of "
     "the complete blocks at the start of buf"},
    {"frame", frame, METH_VARARGS,
     "frame(packet, lph, sizes, last_flits, crc_mode, error_flag, covers_info) -> the blocks "
     "of one DLLDP as bytearrays"},
    {"crc30_blocks", crc30_blocks, METH_VARARGS,
     "crc30_blocks(buf, spans, infos) -> CRC30 of every block buf[start:end-4], then its two "
     "information bits when infos is not None"},
    {"check_blocks", check_blocks, METH_VARARGS,
     "check_blocks(buf, spans, covers_info) -> whether every block carries a correct BCRC"},
    {"crc30_update", crc30_update, METH_VARARGS,
     "crc30_update(register, data) -> the register after feeding data (MSB first)"},
    {NULL, NULL, 0, NULL}};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_linkc",
                                    "data-link helpers: CRC30 of many blocks, DLLDP framing (UB 2.0 §4.3.2, §4.7.2)",
                                    -1, methods};

PyMODINIT_FUNC PyInit__linkc(void)
{
    make_tables();
    make_crc32_tables();
    KIND_CB = PyUnicode_InternFromString("cb");
    KIND_LPH = PyUnicode_InternFromString("lph");
    KIND_LBH = PyUnicode_InternFromString("lbh");
    if (!KIND_CB || !KIND_LPH || !KIND_LBH)
        return NULL;
    return PyModule_Create(&module);
}
