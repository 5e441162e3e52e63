/*
 * blob.c - rne_model_load: prove a .rne blob (docs/format.md) sound before anything reads it.
 *
 * Every number in the blob is distrusted and checked in a fixed order; the first fault decides
 * the status, and every refusal records where (rne_fault: section, node, value, tensor and role,
 * field, element; rnnedge/blob/check.py turns it into words for Python):
 *   arguments, host byte order                               RNE_EARG / RNE_EHEADER
 *   size >= 64                                               RNE_ETRUNC
 *   magic                                                    RNE_EMAGIC
 *   version (0: RNE_EHEADER; anything but RNE_FORMAT_VERSION, 1 included: RNE_EVERSION)
 *   header_size, flags and reserved, alignment               RNE_EHEADER
 *   the blob pointer aligned to header.alignment             RNE_EALIGN
 *   file_size >= header + CRC, node, tensor and value counts, arena_row RNE_EHEADER
 *   file_size <= size                                        RNE_ETRUNC
 *   CRC-32                                                   RNE_ECRC
 *   table offsets multiple of 8                              RNE_EALIGN
 *   sections inside [0, file_size - 4)                       RNE_ETRUNC
 *   sections overlapping each other or the header            RNE_EHEADER
 *   each tensor record (name, dtype, dims, nbytes, offset alignment (RNE_EALIGN), reserved,
 *   f32 scale/zero point, data inside (RNE_ETRUNC)), unique names, no overlap  RNE_ETENSOR
 *   each value record (section value): kind, dtype, flags, reserved, scale, offset of an
 *   INPUT / OUTPUT, update and init (RNE_ELAYER); ndim, shape, features <= 2^20, TEMP inside
 *   arena_row, update / init of another size (RNE_ESHAPE); offsets 16-aligned (RNE_EALIGN);
 *   one INPUT, one OUTPUT, one family of dtypes; STATE blocks disjoint
 *   each node record (section node): op, fmt, flags, padding; its value slots (present as the
 *   op says, read after written, written once, dtypes, LAST rules)  RNE_ELAYER / RNE_ESHAPE
 *     a graph op (ops 9..14, SLICE off the last axis): rne__check_op (ops_check.c)
 *     else flags, clip, activations, sizes against its values, params, tensors
 *                                                            RNE_ELAYER / RNE_ESHAPE
 *     an integer node (fmt s16 / s8): blob_q.c, which also proves every q-tensor value
 *   every TEMP / OUTPUT value written (RNE_ELAYER), the arena plan: live TEMP values disjoint
 *   (RNE_ESHAPE, field lifetime)
 * All arithmetic on blob fields is done in uint64_t, so nothing can wrap, also where size_t has
 * 32 bits. Reads before the alignment check go through memcpy (the pointer may be misaligned).
 * Only when every check has passed is *model filled: each node record's fields the step path
 * uses, its tensors' data addresses, its values and an integer node's small q values
 * (rne_model_layer), and each value's kind, shape, offsets and init data (rne_model_value) are
 * copied into it, so that nothing the blob holds after load can change a size, an index, a shift
 * or a loop bound of the step path.
 */
#include <math.h>
#include <string.h>

#include "conv.h"
#include "ops.h"
#include "rne_internal.h"

#define RNE__HEADER_SIZE 64u
#define RNE__NODE_SIZE 160u
#define RNE__VALUE_SIZE 48u
#define RNE__TENSOR_SIZE 64u
#define RNE__LF_ALL 63u

/* ---- status strings ------------------------------------------------------------------------- */

#ifdef RNE_NO_FAULT_NAMES
const char *rne_strerror(int code)      /* the names compiled out (rne_internal.h) */
{
    return code == RNE_OK ? "success" : "rnnedge error (RNE_NO_FAULT_NAMES build: see the code)";
}
#else
const char *rne_strerror(int code)
{
    switch (code) {
    case RNE_OK: return "success";
    case RNE_EARG: return "invalid argument (NULL pointer, zero batch or bad value)";
    case RNE_EMAGIC: return "not an rnnedge blob (bad magic)";
    case RNE_EVERSION:
        return "blob format version is not the one this library reads (version 1 blobs: reconvert the model)";
    case RNE_ETRUNC: return "blob is truncated (shorter than its header or file_size says)";
    case RNE_ECRC: return "blob checksum mismatch: the blob is corrupt";
    case RNE_EALIGN: return "blob, table or tensor data is not aligned as required";
    case RNE_EHEADER:
        return "blob header field out of range, reserved field set, or big-endian host";
    case RNE_ETENSOR: return "invalid tensor record (dtype, shape, offset, size or name)";
    case RNE_ELAYER:
        return "invalid node or value record (op, number format, flags, activation, params, values)";
    case RNE_ESHAPE: return "node tensors, value shapes or the arena plan do not fit together";
    case RNE_ESTREAM: return "the model reads the sequence backwards and cannot be stepped";
    case RNE_ESIZE: return "a caller buffer is too small or misaligned";
    case RNE_EMODEL:
        return "the stream's model was re-loaded with another blob (or failed to load): "
               "initialize the stream again";
    case RNE_EINPUT: return "an input id is out of range (nothing was written)";
    default: return "unknown rnnedge status code";
    }
}
#endif

/* ---- CRC-32 --------------------------------------------------------------------------------- */

/* CRC-32 of zlib (reflected polynomial 0xEDB88320, init and final xor ~0), four bits at a time
 * from a 16-entry const table (64 bytes of read-only data, where a byte-wise table takes 1 KiB
 * of a microcontroller's flash; entry k is the CRC register after shifting nibble k through four
 * times). It runs once per load. */
uint32_t rne__crc32(const uint8_t *p, size_t n)
{
    static const uint32_t tab[16] = {
        0x00000000u, 0x1DB71064u, 0x3B6E20C8u, 0x26D930ACu, 0x76DC4190u, 0x6B6B51F4u, 0x4DB26158u,
        0x5005713Cu, 0xEDB88320u, 0xF00F9344u, 0xD6D6A3E8u, 0xCB61B38Cu, 0x9B64C2B0u, 0x86D3D2D4u,
        0xA00AE278u, 0xBDBDF21Cu
    };
    uint32_t crc = 0xFFFFFFFFu;
    size_t i;
    for (i = 0; i < n; i++) {
        crc ^= p[i];
        crc = (crc >> 4) ^ tab[crc & 0xFu];
        crc = (crc >> 4) ^ tab[crc & 0xFu];
    }
    return crc ^ 0xFFFFFFFFu;
}

/* (an op compiled out: 0; rne_model_load has refused it before anything asks: RNE__IS) */
uint32_t rne__gates(uint32_t op)
{
    return RNE__IS(op, LSTM) ? 4u : RNE__IS(op, GRU) ? 3u : RNE__IS(op, RNN) ? 1u : 0u;
}

/* The last ACT kind this build runs: ABS .. POW come with the graph ops (vec.c). */
#if RNE__GRAPH_OPS && !defined(RNE_NO_GRAPH_OPS)
#define RNE__ACT_LAST RNE_ACT_POW
#else
#define RNE__ACT_LAST RNE_ACT_LOGSOFTMAX
#endif

/* Activations per direction of a cell (LSTM f,g,h; GRU f,g; RNN f). */
RNE__THUMB1_OUTLINE
static uint32_t rne__cell_acts(uint32_t op)
{
    return RNE__IS(op, LSTM) ? 3u : RNE__IS(op, GRU) ? 2u : RNE__IS(op, RNN) ? 1u : 0u;
}

/* ---- header and sections -------------------------------------------------------------------- */

static int rne__is_little_endian(void)
{
    const uint32_t one = 1;
    uint8_t first;
    memcpy(&first, &one, 1);
    return first == 1;
}

RNE__THUMB1_OUTLINE
static int rne__check_header(const rne_header *h, const void *blob, size_t size)
{
    if (memcmp(h->magic, "RNNE", 4) != 0)
        return RNE__AT(RNE_EMAGIC, RNE_FF_MAGIC);
    if (h->version == 0)
        return RNE__AT(RNE_EHEADER, RNE_FF_VERSION);
    if (h->version != RNE_FORMAT_VERSION)           /* version 1: the layer pipeline, reconvert */
        return RNE__AT(RNE_EVERSION, RNE_FF_VERSION);
    if (h->header_size != RNE__HEADER_SIZE)
        return RNE__AT(RNE_EHEADER, RNE_FF_HEADER_SIZE);
    if (h->flags != 0)
        return RNE__AT(RNE_EHEADER, RNE_FF_FLAGS);
    if (h->reserved != 0)
        return RNE__AT(RNE_EHEADER, RNE_FF_RESERVED);
    if (h->alignment < 16 || h->alignment > 4096 || (h->alignment & (h->alignment - 1)) != 0)
        return RNE__AT(RNE_EHEADER, RNE_FF_ALIGNMENT);
    if ((uintptr_t)blob % h->alignment != 0)
        return RNE__AT(RNE_EALIGN, RNE_FF_BLOB);
    if (h->file_size < RNE__HEADER_SIZE + 4)
        return RNE__AT(RNE_EHEADER, RNE_FF_FILE_SIZE);
    if (h->n_nodes < 1 || h->n_nodes > RNE_MAX_NODES)
        return RNE__AT(RNE_EHEADER, RNE_FF_N_NODES);   /* this build's capacity (rnnedge.h) */
    if (h->n_tensors > RNE_MAX_TENSORS)
        return RNE__AT(RNE_EHEADER, RNE_FF_N_TENSORS);
    if (h->n_values < 2 || h->n_values > RNE_MAX_VALUES)
        return RNE__AT(RNE_EHEADER, RNE_FF_N_VALUES);
    if (h->arena_row % 16u != 0)
        return RNE__AT(RNE_EHEADER, RNE_FF_ARENA);
    if (h->file_size > size)
        return RNE__AT(RNE_ETRUNC, RNE_FF_FILE_SIZE);
    return RNE_OK;
}

/* [off, off + len) as 64-bit numbers */
typedef struct rne__span {
    uint64_t off, len;
} rne__span;

RNE__THUMB1_OUTLINE
static int rne__overlap(rne__span a, rne__span b)
{
    return a.len != 0 && b.len != 0 && a.off < b.off + b.len && b.off < a.off + a.len;
}

/* Header (0), metadata (1), node table (2), tensor table (3), value table (4). */
#define RNE__NSEC 5
RNE__THUMB1_OUTLINE
static void rne__sections(const rne_header *h, rne__span s[RNE__NSEC])
{
    s[0].off = 0;
    s[0].len = RNE__HEADER_SIZE;
    s[1].off = h->meta_off;
    s[1].len = h->meta_size;
    s[2].off = h->node_off;
    s[2].len = (uint64_t)h->n_nodes * RNE__NODE_SIZE;
    s[3].off = h->tensor_off;
    s[3].len = (uint64_t)h->n_tensors * RNE__TENSOR_SIZE;
    s[4].off = h->value_off;
    s[4].len = (uint64_t)h->n_values * RNE__VALUE_SIZE;
}

/* the field that places section i (1 metadata, 2 node table, 3 tensor table, 4 value table) */
RNE__THUMB1_OUTLINE
static int rne__section_fail(rne_fault *w, int rc, int i)
{
    if (i == 1)
        w->section = RNE_SEC_META;
    return RNE__AT(rc, i == 1   ? RNE_FF_META
                       : i == 2 ? RNE_FF_NODE_OFF
                       : i == 3 ? RNE_FF_TENSOR_OFF
                                : RNE_FF_VALUE_OFF);
}

static int rne__check_sections(const rne_header *h, rne_fault *w)
{
    const uint64_t end = (uint64_t)h->file_size - 4u;
    rne__span s[RNE__NSEC];
    int i, j;
    if (h->node_off % 8u != 0)
        return RNE__AT(RNE_EALIGN, RNE_FF_NODE_OFF);
    if (h->tensor_off % 8u != 0)
        return RNE__AT(RNE_EALIGN, RNE_FF_TENSOR_OFF);
    if (h->value_off % 8u != 0)
        return RNE__AT(RNE_EALIGN, RNE_FF_VALUE_OFF);
    rne__sections(h, s);
    for (i = 1; i < RNE__NSEC; i++)
        if (s[i].off + s[i].len > end)
            return rne__section_fail(w, RNE_ETRUNC, i);
    for (j = 1; j < RNE__NSEC; j++)             /* the later section of an overlapping pair: index the other */
        for (i = 0; i < j; i++)
            if (rne__overlap(s[i], s[j])) {
                w->index = i;
                return rne__section_fail(w, RNE_EHEADER, j);
            }
    return RNE_OK;
}

/* ---- tensors -------------------------------------------------------------------------------- */

RNE__THUMB1_OUTLINE
static uint64_t rne__dtype_size(uint8_t dtype)
{
    switch (dtype) {
    case RNE_DT_F32: return 4;
    case RNE_DT_S8: return 1;
    case RNE_DT_S16: return 2;
    case RNE_DT_S32: return 4;
    case RNE_DT_S64: return 8;
    case RNE_DT_U16: return 2;
    default: return 0;
    }
}

/* printable ASCII (no space), at least one character, NUL-padded to the end */
static int rne__name_ok(const char name[24])
{
    size_t n = 0, i;
    while (n < 24 && name[n] != '\0') {
        const unsigned char ch = (unsigned char)name[n];
        if (ch <= 32 || ch >= 127)
            return 0;
        n++;
    }
    if (n == 0 || n == 24)
        return 0;
    for (i = n; i < 24; i++)
        if (name[i] != '\0')
            return 0;
    return 1;
}

static int rne__check_tensor(const rne_tensor *t, const rne_header *h, rne_fault *w)
{
    uint64_t count = 1;
    const uint64_t size = rne__dtype_size(t->dtype);
    unsigned d;
    if (!rne__name_ok(t->name))
        return RNE__AT(RNE_ETENSOR, RNE_FF_NAME);
    if (size == 0)
        return RNE__AT(RNE_ETENSOR, RNE_FF_DTYPE);
    if (t->ndim < 1 || t->ndim > 4)
        return RNE__AT(RNE_ETENSOR, RNE_FF_NDIM);
    for (d = 0; d < 4; d++) {
        w->index = (int32_t)d;
        if (t->shape[d] < 1 || (d >= t->ndim && t->shape[d] != 1))
            return RNE__AT(RNE_ETENSOR, RNE_FF_SHAPE);
        count *= t->shape[d];            /* 4 factors < 2^32 each would overflow: stop early */
        if (count >= ((uint64_t)1 << 31))
            return RNE__AT(RNE_ETENSOR, RNE_FF_SHAPE);
    }
    w->index = -1;
    if ((uint64_t)t->nbytes != count * size)
        return RNE__AT(RNE_ETENSOR, RNE_FF_NBYTES);
    if (t->offset % h->alignment != 0)
        return RNE__AT(RNE_EALIGN, RNE_FF_OFFSET);
    if (t->reserved0 != 0 || t->reserved1 != 0)
        return RNE__AT(RNE_ETENSOR, RNE_FF_RESERVED);
    if (t->dtype == RNE_DT_F32 ? t->scale != 0.0f : !isfinite(t->scale))
        return RNE__AT(RNE_ETENSOR, RNE_FF_SCALE);
    if (t->dtype == RNE_DT_F32 && t->zero_point != 0)
        return RNE__AT(RNE_ETENSOR, RNE_FF_ZERO_POINT);
    if ((uint64_t)t->offset + t->nbytes > (uint64_t)h->file_size - 4u)
        return RNE__AT(RNE_ETRUNC, RNE_FF_OFFSET);
    return RNE_OK;
}

static int rne__check_tensors(const rne_tensor *ts, const rne_header *h, rne_fault *w)
{
    rne__span sec[RNE__NSEC];
    uint32_t i, j;
    int sorted = 1, rc;
    for (i = 0; i < h->n_tensors; i++) {
        w->tensor = (int32_t)i;
        if ((rc = rne__check_tensor(&ts[i], h, w)) != RNE_OK)
            return rc;
    }
    /* a fault between two tensors names the later one, and the earlier in index */
    for (j = 1; j < h->n_tensors; j++)
        for (i = 0; i < j; i++)
            if (memcmp(ts[i].name, ts[j].name, sizeof ts[i].name) == 0) {
                w->tensor = (int32_t)j;
                w->index = (int32_t)i;
                return RNE__AT(RNE_ETENSOR, RNE_FF_NAME);
            }
    rne__sections(h, sec);
    for (i = 0; i < h->n_tensors; i++) {
        const rne__span s = { ts[i].offset, ts[i].nbytes };
        for (j = 0; j < RNE__NSEC; j++)
            if (rne__overlap(s, sec[j])) {
                w->tensor = (int32_t)i;
                return RNE__AT(RNE_ETENSOR, RNE_FF_OFFSET);
            }
        if (i > 0 && (uint64_t)ts[i - 1].offset + ts[i - 1].nbytes > ts[i].offset)
            sorted = 0;
    }
    /* tensors in offset order cannot overlap each other (the writer's case); else check pairs */
    for (j = 1; !sorted && j < h->n_tensors; j++)
        for (i = 0; i < j; i++) {
            const rne__span a = { ts[i].offset, ts[i].nbytes }, b = { ts[j].offset, ts[j].nbytes };
            if (rne__overlap(a, b)) {
                w->tensor = (int32_t)j;
                w->index = (int32_t)i;
                return RNE__AT(RNE_ETENSOR, RNE_FF_OFFSET);
            }
        }
    w->tensor = -1;
    return RNE_OK;
}

/* ---- values (docs/graph.md section 1) ------------------------------------------------------- */

RNE__THUMB1_OUTLINE
static uint64_t rne__round16(uint64_t n)
{
    return (n + 15u) & ~(uint64_t)15u;
}

RNE__THUMB1_OUTLINE
static uint64_t rne__value_features(const rne_value *v)
{
    return (uint64_t)v->shape[0] * v->shape[1] * v->shape[2] * v->shape[3];
}

/* bytes of one row of a value (its shape was proved: < 2^22) */
static uint64_t rne__value_row(const rne_value *v)
{
    return rne__value_features(v) * rne__dtype_size(v->dtype);
}

/* the tensor dtype of a value's elements (f32 or s16 values; init tensors have it) */
RNE__THUMB1_OUTLINE
static int rne__check_value(const rne__blobview *m, uint32_t i, rne_fault *w)
{
    const rne_header *h = m->header;
    const rne_value *v = &m->values[i];
    uint64_t features = 1;
    unsigned d;
    if (v->kind > RNE_V_STATE)
        return RNE__AT(RNE_ELAYER, RNE_FF_KIND);
    if (!(v->dtype == RNE_DT_F32 || v->dtype == RNE_DT_S16 ||
          (v->dtype == RNE_DT_S32 && v->kind == RNE_V_INPUT)))
        return RNE__AT(RNE_ELAYER, RNE_FF_DTYPE);
    if ((v->flags & ~(unsigned)RNE_VF_LAST) != 0 ||
        ((v->flags & RNE_VF_LAST) != 0 && (v->kind == RNE_V_INPUT || v->kind == RNE_V_STATE)))
        return RNE__AT(RNE_ELAYER, RNE_FF_FLAGS);
    if (v->reserved[0] != 0 || v->reserved[1] != 0 || v->reserved[2] != 0)
        return RNE__AT(RNE_ELAYER, RNE_FF_RESERVED);
    if (v->ndim < 1 || v->ndim > 4)
        return RNE__AT(RNE_ESHAPE, RNE_FF_NDIM);
    for (d = 0; d < 4; d++) {
        if (v->shape[d] < 1 || (d >= v->ndim && v->shape[d] != 1) ||
            v->shape[d] > RNE_MAX_FEATURES) {
            w->index = (int32_t)d;
            return RNE__AT(RNE_ESHAPE, RNE_FF_SHAPE);
        }
        features *= v->shape[d];        /* < 2^21 * 2^20 after any factor: no wrap */
        if (features > RNE_MAX_FEATURES)
            return RNE__AT(RNE_ESHAPE, RNE_FF_SHAPE);  /* index -1: the product */
    }
    if (v->dtype == RNE_DT_S16 ? !(isfinite(v->scale) && v->scale > 0.0f) : v->scale != 0.0f)
        return RNE__AT(RNE_ELAYER, RNE_FF_SCALE);
    if (v->kind == RNE_V_TEMP || v->kind == RNE_V_STATE) {
        if (v->offset % 16u != 0)
            return RNE__AT(RNE_EALIGN, RNE_FF_OFFSET);
        if (v->kind == RNE_V_TEMP &&
            (uint64_t)v->offset + rne__round16(rne__value_row(v)) > h->arena_row)
            return RNE__AT(RNE_ESHAPE, RNE_FF_ARENA);
    } else if (v->offset != 0) {
        return RNE__AT(RNE_ELAYER, RNE_FF_OFFSET);
    }
    if (v->kind != RNE_V_STATE ? v->update != -1
                               : v->update != -1 && (v->update < 0 ||
                                                     (uint32_t)v->update >= h->n_values)) {
        w->index = v->update;
        return RNE__AT(RNE_ELAYER, RNE_FF_UPDATE);
    }
    if (v->kind == RNE_V_STATE && v->update != -1) {
        const rne_value *u = &m->values[v->update];
        w->index = v->update;
        if (!(u->kind == RNE_V_TEMP || u->kind == RNE_V_OUTPUT) || u->dtype != v->dtype ||
            u->ndim > 4 ||
            rne__value_features(u) != features || !(u->scale == v->scale))
            return RNE__AT(RNE_ESHAPE, RNE_FF_UPDATE);
        w->index = -1;
    }
    if (v->init != -1) {
        const rne_tensor *t;
        if (v->kind != RNE_V_STATE || v->init < 0 || (uint32_t)v->init >= h->n_tensors)
            return RNE__AT(RNE_ELAYER, RNE_FF_INIT);
        t = &m->tensors[v->init];
        w->tensor = v->init;
        if (t->dtype != v->dtype || (uint64_t)t->nbytes != features * rne__dtype_size(v->dtype))
            return RNE__AT(RNE_ESHAPE, RNE_FF_INIT);
        w->tensor = -1;
    }
    return RNE_OK;
}

/* every value record; one INPUT, one OUTPUT; one family of dtypes (f32, or s16; an s32 INPUT
 * aside); STATE blocks disjoint */
static int rne__check_values(const rne__blobview *m, rne_model *model, rne_fault *w)
{
    const rne_header *h = m->header;
    uint32_t i, j, n_in = 0, n_out = 0, family = 255;
    int rc;
    for (i = 0; i < h->n_values; i++) {
        const rne_value *v = &m->values[i];
        w->value = (int32_t)i;
        if ((rc = rne__check_value(m, i, w)) != RNE_OK)
            return rc;
        if (v->dtype != RNE_DT_S32) {
            if (family == 255)
                family = v->dtype;
            else if (v->dtype != family)
                return RNE__AT(RNE_ELAYER, RNE_FF_DTYPE);  /* floats or int16, not both */
        }
        if (v->kind == RNE_V_INPUT && n_in++ != 0)
            return RNE__AT(RNE_ELAYER, RNE_FF_KIND);       /* a second INPUT */
        if (v->kind == RNE_V_OUTPUT && n_out++ != 0)
            return RNE__AT(RNE_ELAYER, RNE_FF_KIND);
        if (v->kind == RNE_V_INPUT)
            model->input = i;
        if (v->kind == RNE_V_OUTPUT)
            model->output = i;
        if (v->kind == RNE_V_STATE)
            model->explicit_state = 1;
    }
    w->value = -1;
    if (n_in != 1 || n_out != 1 || family == 255)
        return RNE__AT(RNE_ELAYER, RNE_FF_KIND);           /* none: value -1 */
    for (j = 1; j < h->n_values; j++)
        for (i = 0; i < j && m->values[j].kind == RNE_V_STATE; i++) {
            const rne_value *a = &m->values[i], *b = &m->values[j];
            const rne__span sa = { a->offset, rne__round16(rne__value_row(a)) };
            const rne__span sb = { b->offset, rne__round16(rne__value_row(b)) };
            if (a->kind == RNE_V_STATE && rne__overlap(sa, sb)) {
                w->value = (int32_t)j;
                w->index = (int32_t)i;
                return RNE__AT(RNE_ESHAPE, RNE_FF_OFFSET);
            }
        }
    return RNE_OK;
}

/* ---- nodes ---------------------------------------------------------------------------------- */

/* tensor roles each op uses, and those it requires (bit r = role r) */
#ifndef RNE_NO_F32 /* the float layers' tensor checks (rne__check_layer_tensors) */
static unsigned rne__roles_allowed(uint32_t op)
{
    switch (op) {
    case RNE_OP_DENSE: return 1u << RNE_T_W | 1u << RNE_T_B;
    case RNE_OP_LAYERNORM: return 1u << RNE_T_W | 1u << RNE_T_B;
    case RNE_OP_LSTM: return 0x3Fu;
    case RNE_OP_GRU:
    case RNE_OP_RNN: return 1u << RNE_T_W | 1u << RNE_T_R | 1u << RNE_T_B | 1u << RNE_T_H0;
    default: return 0;
    }
}

static unsigned rne__roles_required(uint32_t op)
{
    return rne__gates(op) ? (1u << RNE_T_W | 1u << RNE_T_R)
                          : (op == RNE_OP_DENSE || op == RNE_OP_LAYERNORM) ? 1u << RNE_T_W : 0u;
}
#endif

static int rne__check_acts(const rne__layer *l, rne_fault *w)
{
    const uint32_t cell_acts = rne__cell_acts(l->op), dirs = rne__rec_dirs(l);
    unsigned d, k;
    for (d = 0; d < 2; d++)
        for (k = 0; k < 3; k++) {
            const unsigned code = l->act[d][k];
            const float a = l->alpha[d][k], b = l->beta[d][k];
            const int used = RNE__IS(l->op, ACT) ? (d == 0 && k == 0)
                                                 : (d < dirs && k < cell_acts);
            const unsigned last = RNE__IS(l->op, ACT) ? RNE__ACT_LAST : RNE_ACT_CLIP;
            /* LAYERNORM keeps epsilon in alpha[0][0] */
            const int eps = RNE__IS(l->op, LAYERNORM) && d == 0 && k == 0;
            if (used ? code > last || isnan(a) || isnan(b)
                     : code != 0 || (a != 0.0f && !eps) || b != 0.0f) {
                w->index = (int32_t)(3 * d + k);        /* the slot act[d][k] (alpha, beta) */
                return RNE__AT(RNE_ELAYER, RNE_FF_ACT);
            }
        }
    return RNE_OK;
}

static int rne__check_flags(const rne__layer *l)
{
    uint32_t allowed = 0;
    if (rne__gates(l->op)) {
        allowed = RNE_LF_REVERSE | RNE_LF_BIDIR | RNE_LF_CLIP;
        allowed |= RNE__IS(l->op, LSTM) ? RNE_LF_INPUT_FORGET : 0u;
        allowed |= RNE__IS(l->op, GRU) ? RNE_LF_LINEAR_BEFORE_RESET : 0u;
        allowed |= RNE__HAS_INNER ? RNE_LF_INNER : 0u;
    }
    if ((l->flags & ~allowed) != 0 ||
        ((l->flags & RNE_LF_REVERSE) != 0 && (l->flags & RNE_LF_BIDIR) != 0))
        return RNE__AT(RNE_ELAYER, RNE_FF_FLAGS);
    if ((l->flags & RNE_LF_CLIP) != 0 ? !(isfinite(l->clip) && l->clip > 0.0f) : l->clip != 0.0f)
        return RNE__AT(RNE_ELAYER, RNE_FF_CLIP);
    return RNE_OK;
}

/* hidden size, params, and the kernel row widths against the op (its values' shapes are
 * proved: in_features, out_features in 1..RNE_MAX_FEATURES) */
static int rne__check_sizes(const rne__layer *l, rne_fault *w)
{
    const uint64_t fin = l->in_features, fout = l->out_features;
    const uint32_t g = rne__gates(l->op);
    int params_ok = 1, sizes_ok, p;
    if ((l->hidden >= 1) != (g != 0))
        return RNE__AT(RNE_ELAYER, RNE_FF_HIDDEN);
    switch (l->op) {
    case RNE_OP_TAKE_LAST:
        params_ok = l->param[0] >= 0 && (uint64_t)l->param[0] <= fin;
        sizes_ok = fout == fin;
        p = 1;
        break;
    case RNE_OP_SLICE:        /* along the last axis, step 1 (the others: rne__check_op) */
        params_ok = l->param[1] >= 0 && l->param[1] < l->param[2] &&
                    (uint64_t)l->param[2] <= fin;
        sizes_ok = params_ok && fout == (uint64_t)l->param[2] - (uint64_t)l->param[1];
        p = 4;
        break;
    default:
        sizes_ok = g ? fout == (uint64_t)rne__rec_dirs(l) * l->hidden
                     : (RNE__IS(l->op, DENSE) || fout == fin);
        p = g != 0 && RNE__INNER(l->flags) ? 1 : 0;  /* param[0]: rne__node_layer */
        break;
    }
    for (; params_ok && p < 8; p++)
        if (l->param[p] != 0) {
            w->index = p;
            params_ok = 0;
        }
    if (!params_ok)
        return RNE__AT(RNE_ELAYER, RNE_FF_PARAM);
    if (!sizes_ok)
        return RNE__AT(RNE_ESHAPE, RNE_FF_OUT_FEATURES);
    if (RNE__IS(l->op, LAYERNORM) && !(isfinite(l->alpha[0][0]) && l->alpha[0][0] > 0.0f)) {
        w->index = 0;                   /* epsilon: alpha[0][0] */
        return RNE__AT(RNE_ELAYER, RNE_FF_ALPHA);
    }
    return RNE_OK;
}

/* The shape the op table gives role r (ndim 0: the op has no such role). */
#ifndef RNE_NO_F32
static void rne__role_shape(const rne__layer *l, int r, unsigned *ndim, uint64_t dims[3])
{
    const uint64_t d = rne__rec_dirs(l), hid = l->hidden, gh = (uint64_t)rne__gates(l->op) * hid;
    *ndim = 0;
    if (l->op == RNE_OP_DENSE || l->op == RNE_OP_LAYERNORM) {
        if (r == RNE_T_W && l->op == RNE_OP_DENSE) {
            *ndim = 2;
            dims[0] = l->in_features;
            dims[1] = l->out_features;
        } else {
            *ndim = 1;
            dims[0] = l->out_features;
        }
        return;
    }
    *ndim = r == RNE_T_H0 || r == RNE_T_C0 ? 2u : 3u;
    dims[0] = d;
    switch (r) {
    case RNE_T_W: dims[1] = l->in_features; dims[2] = gh; break;
    case RNE_T_R: dims[1] = hid; dims[2] = gh; break;
    case RNE_T_B: dims[1] = 2; dims[2] = gh; break;
    case RNE_T_P: dims[1] = 3; dims[2] = hid; break;
    default: dims[1] = hid; break;               /* H0, C0 */
    }
}

static int rne__check_layer_tensors(const rne__layer *l, const rne_tensor *ts, uint32_t n_tensors,
                                    rne_fault *w)
{
    const unsigned allowed = rne__roles_allowed(l->op), required = rne__roles_required(l->op);
    int r;
    for (r = 0; r < 8; r++) {
        const int32_t k = l->tensor[r];
        unsigned ndim, i;
        uint64_t dims[3];
        if (k == -1) {
            if (required & (1u << r))
                return rne__fail_t(w, RNE__AT(RNE_ELAYER, RNE_FF_TENSOR), l, r);
            continue;
        }
        if (!(allowed & (1u << r)) || k < 0 || (uint32_t)k >= n_tensors)
            return rne__fail_t(w, RNE__AT(RNE_ELAYER, RNE_FF_TENSOR), l, r);
        rne__role_shape(l, r, &ndim, dims);
        if (ts[k].dtype != RNE_DT_F32)
            return rne__fail_t(w, RNE__AT(RNE_ESHAPE, RNE_FF_DTYPE), l, r);
        if (ts[k].ndim != ndim)
            return rne__fail_t(w, RNE__AT(RNE_ESHAPE, RNE_FF_NDIM), l, r);
        for (i = 0; i < ndim; i++)
            if (ts[k].shape[i] != dims[i]) {
                w->index = (int32_t)i;
                return rne__fail_t(w, RNE__AT(RNE_ESHAPE, RNE_FF_SHAPE), l, r);
            }
    }
    return RNE_OK;
}

#endif /* RNE_NO_F32 */

/* An op the graph-op kernels (csrc/ops.h) run: 9..14, and SLICE along another axis than the
 * last or with a step; and the convs (csrc/conv.h), whose records are read the same way. */
static int rne__is_graph_op(const rne_node *n, const rne_value *x)
{
    if (n->op == RNE_OP_SLICE)
        return n->param[0] != (int32_t)x->ndim - 1 || n->param[3] != 1;
    return n->op >= RNE_OP_BINARY && n->op <= RNE_OP_CONV_T;
}

/* Which inputs and outputs op has: bit k of *need (must be present), *may (may be present). */
static void rne__io_slots(const rne_node *n, unsigned *in_need, unsigned *in_may,
                          unsigned *out_need, unsigned *out_may)
{
    *in_need = *in_may = *out_need = *out_may = 1u;
    if (rne__gates(n->op) != 0) {
#ifndef RNE_NO_STATE_IO     /* else x and Y alone (rne_internal.h) */
        *in_may = n->op == RNE_OP_LSTM ? 7u : 3u;       /* x, h_init, c_init */
        *out_may = n->op == RNE_OP_LSTM ? 7u : 3u;      /* Y, Y_h, Y_c */
#endif
    } else if (n->op == RNE_OP_BINARY) {
        *in_may = 3u;                   /* b, or a constant tensor (rne__check_op) */
    } else if (n->op == RNE_OP_CONCAT) {
        *in_need = 3u;
        *in_may = 15u;
    }
}

/* A node's value slots (docs/graph.md section 2): indices in range, present or absent as the op
 * says, inputs written before (or INPUT / STATE), outputs TEMP / OUTPUT written once, dtypes of
 * the model's family, the LAST rules. Marks the outputs in written[]. */
static int rne__check_node_values(const rne__blobview *m, const rne_node *n,
                                  rne_model_value *written, uint32_t explicit_state,
                                  rne_fault *w)
{
    const rne_value *vals = m->values;
    const uint32_t nv = m->header->n_values;
    const int integer = n->fmt != RNE_FMT_F32;
    unsigned in_need, in_may, out_need, out_may, k, any_last = 0, all_last = 1;
    rne__io_slots(n, &in_need, &in_may, &out_need, &out_may);
    for (k = 0; k < 4; k++) {
        const uint16_t i = n->in[k];
        const rne_value *v = &vals[i < nv ? i : 0];
        w->index = (int32_t)k;
        if (i == RNE_NONE ? (in_need >> k & 1u) != 0 : (in_may >> k & 1u) == 0 || i >= nv)
            return RNE__AT(RNE_ELAYER, RNE_FF_IN);
        if (i == RNE_NONE)
            continue;
        w->value = (int32_t)i;
        if (!(v->kind == RNE_V_INPUT || v->kind == RNE_V_STATE || written[i].flags))
            return RNE__AT(RNE_ELAYER, RNE_FF_IN);          /* read before written */
        if (v->dtype == RNE_DT_S32 ? !(n->op == RNE_OP_GATHER && k == 0)
                                   : n->op == RNE_OP_GATHER ||
                                         (v->dtype == RNE_DT_S16) != integer)
            return RNE__AT(RNE_ESHAPE, RNE_FF_DTYPE);
        if (k == 0 || rne__gates(n->op) == 0) {             /* h_init / c_init: any row */
            any_last |= vals[i].flags & RNE_VF_LAST;
            all_last &= vals[i].flags & RNE_VF_LAST;
        }
        w->value = -1;
    }
    /* a recurrent node or TAKE_LAST reads a sequence; the others' inputs agree */
    if (any_last != all_last || (any_last && (rne__gates(n->op) != 0 ||
                                              n->op == RNE_OP_TAKE_LAST))) {
        w->index = 0;
        w->value = n->in[0];
        return RNE__AT(RNE_ELAYER, RNE_FF_IN);
    }
    for (k = 0; k < 4; k++) {
        const uint16_t i = n->out[k];
        const rne_value *v = &vals[i < nv ? i : 0];
        unsigned last;
        w->index = (int32_t)k;
        if (i == RNE_NONE ? (out_need >> k & 1u) != 0 : (out_may >> k & 1u) == 0 || i >= nv)
            return RNE__AT(RNE_ELAYER, RNE_FF_OUT);
        if (i == RNE_NONE)
            continue;
        w->value = (int32_t)i;
        if (!(v->kind == RNE_V_TEMP || v->kind == RNE_V_OUTPUT) || written[i].flags)
            return RNE__AT(RNE_ELAYER, RNE_FF_OUT);         /* written twice, or INPUT / STATE */
        if (v->dtype == RNE_DT_S32 || (v->dtype == RNE_DT_S16) != integer)
            return RNE__AT(RNE_ESHAPE, RNE_FF_DTYPE);
        /* Y_h, Y_c and TAKE_LAST's y are LAST; else as the inputs. A model with STATE values
           runs one step per chunk, so there a Y_h / Y_c has one row per stream either way and
           may be non-LAST too (a step function's graph: its values are all one step) */
        last = (rne__gates(n->op) != 0 && k > 0) || n->op == RNE_OP_TAKE_LAST ? 1u : any_last;
        if ((v->flags & RNE_VF_LAST) != last &&
            !(explicit_state && rne__gates(n->op) != 0 && k > 0))
            return RNE__AT(RNE_ELAYER, RNE_FF_FLAGS);
        written[i].flags = 1;
        w->value = -1;
    }
    w->index = -1;
    return RNE_OK;
}

/* the last-axis size of a value, and the leading rows; 0 if the two values' leading axes differ */
static uint32_t rne__lead(const rne_value *x, const rne_value *y)
{
    unsigned d;
    uint32_t lead = 1;
    if (x->ndim != y->ndim)
        return 0;
    for (d = 0; d + 1u < x->ndim; d++) {
        if (x->shape[d] != y->shape[d])
            return 0;
        lead *= x->shape[d];
    }
    return lead;
}

/* A recurrent node over a per-step axis (RNE_LF_INNER): x [L, ..] and y [L, ..] with L =
 * param[0] >= 1; each of the L elements is a kernel row (lead L, in_features I, out_features
 * D*H); no state slots or initial-state tensors (every sequence starts from zeros). */
static int rne__inner_layer(const rne_node *n, const rne_value *x, const rne_value *y,
                            rne__layer *l, rne_fault *w)
{
    const uint32_t len = n->param[0] > 0 ? (uint32_t)n->param[0] : 0u;
    unsigned k;
    if (len == 0 || x->ndim < 2 || y->ndim < 2 || x->shape[0] != len || y->shape[0] != len) {
        w->index = 0;
        return RNE__AT(RNE_ELAYER, RNE_FF_PARAM);
    }
    for (k = 1; k < 3; k++) {
        w->index = (int32_t)k;
        if (n->in[k] != RNE_NONE)
            return RNE__AT(RNE_ELAYER, RNE_FF_IN);
        if (n->out[k] != RNE_NONE)
            return RNE__AT(RNE_ELAYER, RNE_FF_OUT);
    }
    if (n->tensor[RNE_T_H0] != -1 || n->tensor[RNE_T_C0] != -1) {
        w->index = n->tensor[RNE_T_H0] != -1 ? RNE_T_H0 : RNE_T_C0;
        return RNE__AT(RNE_ELAYER, RNE_FF_TENSOR);
    }
    l->in_features /= len;
    l->out_features /= len;
    l->lead = len;
    return RNE_OK;
}

/* The rne__layer of a node whose values are proved: the record's fields, the kernel row widths */
static int rne__node_layer(const rne__blobview *m, const rne_node *n, rne__layer *l,
                           rne_fault *w)
{
    const rne_value *x = &m->values[n->in[0]], *y = &m->values[n->out[0]];
    const int rowwise = RNE__IS(n->op, DENSE) || RNE__IS(n->op, ACT) ||
                        RNE__IS(n->op, LAYERNORM) || n->op == RNE_OP_SLICE;
    l->op = n->op;
    l->fmt = n->fmt;
    l->hidden = n->hidden;
    l->flags = n->flags;
    l->clip = n->clip;
    memcpy(l->param, n->param, sizeof l->param);
    memcpy(l->act, n->act, sizeof l->act);
    memcpy(l->pad, n->pad, sizeof l->pad);
    memcpy(l->alpha, n->alpha, sizeof l->alpha);
    memcpy(l->beta, n->beta, sizeof l->beta);
    memcpy(l->tensor, n->tensor, sizeof l->tensor);
    memcpy(l->reserved, n->reserved, sizeof l->reserved);
#ifndef RNE_NO_STATE_IO
    l->cio = (uint8_t)((n->in[2] != RNE_NONE) | (n->out[2] != RNE_NONE) << 1);
#else
    l->cio = 0;
#endif
    if (rowwise) {
        l->in_features = x->shape[x->ndim - 1];
        l->out_features = y->shape[y->ndim - 1];
        l->lead = rne__lead(x, y);
        if (l->lead == 0) {             /* the leading axes of x and y differ */
            w->value = n->out[0];
            return RNE__AT(RNE_ESHAPE, RNE_FF_SHAPE);
        }
    } else {
        l->in_features = (uint32_t)rne__value_features(x);
        l->out_features = (uint32_t)rne__value_features(y);
        l->lead = 1;
    }
    if (rne__gates(n->op) != 0 && RNE__INNER(n->flags))
        return rne__inner_layer(n, x, y, l, w);
    return RNE_OK;
}

#ifndef RNE_NO_STATE_IO
/* a recurrent node's h_init / c_init inputs and Y_h / Y_c outputs: [D, H] each (D * H elements) */
static int rne__check_state_io(const rne__blobview *m, const rne_node *n, const rne__layer *l,
                               rne_fault *w)
{
    const uint64_t dh = (uint64_t)rne__rec_dirs(l) * l->hidden;
    unsigned k;
    for (k = 1; k < 3; k++) {
        if (n->in[k] != RNE_NONE && rne__value_features(&m->values[n->in[k]]) != dh) {
            w->index = (int32_t)k;
            w->value = n->in[k];
            return RNE__AT(RNE_ESHAPE, RNE_FF_IN);
        }
        if (n->out[k] != RNE_NONE && rne__value_features(&m->values[n->out[k]]) != dh) {
            w->index = (int32_t)k;
            w->value = n->out[k];
            return RNE__AT(RNE_ESHAPE, RNE_FF_OUT);
        }
    }
    return RNE_OK;
}
#endif

RNE__THUMB1_OUTLINE
static int rne__check_node(const rne__blobview *m, const rne_node *n, rne_model_value *written,
                           uint32_t explicit_state, rne__layer *l, rne_fault *w)
{
    int rc;
#ifndef RNE_NO_CONV
    if (n->op < RNE_OP_DENSE || n->op > RNE_OP_CONV_T)
#else
    if (n->op < RNE_OP_DENSE || n->op > RNE_OP_REDUCE)          /* convs compiled out (conv.h) */
#endif
        return RNE__AT(RNE_ELAYER, RNE_FF_OP);
    if (n->fmt > RNE_FMT_S8)
        return RNE__AT(RNE_ELAYER, RNE_FF_FMT);
    if ((n->flags & ~RNE__LF_ALL) != 0)
        return RNE__AT(RNE_ELAYER, RNE_FF_FLAGS);
    /* reserved[0]: the node's skip (docs/graph.md section 6: the steps of a stream it skips,
     * its input's delay), any value; a recurrent node fed its state by values cannot skip */
    if (n->pad[0] != 0 || n->pad[1] != 0 || n->reserved[1] != 0 ||
        (n->reserved[0] != 0 && (n->op == RNE_OP_LSTM || n->op == RNE_OP_GRU ||
                                 n->op == RNE_OP_RNN) &&
         (n->in[1] != RNE_NONE || n->in[2] != RNE_NONE)))
        return RNE__AT(RNE_ELAYER, RNE_FF_RESERVED);
#ifdef RNE_NO_CONV
    if (n->reserved[0] != 0)        /* skips come from lookahead convs: compiled out with them */
        return RNE__AT(RNE_ELAYER, RNE_FF_RESERVED);
#endif
#ifdef RNE_NO_F32
    if (n->fmt == RNE_FMT_F32)                  /* compiled out (rne_internal.h) */
        return RNE__AT(RNE_ELAYER, RNE_FF_FMT);
#endif
#ifdef RNE_NO_S16
    if (n->fmt == RNE_FMT_S16)
        return RNE__AT(RNE_ELAYER, RNE_FF_FMT);
#endif
#ifdef RNE_NO_S8
    if (n->fmt == RNE_FMT_S8)
        return RNE__AT(RNE_ELAYER, RNE_FF_FMT);
#endif
    if (0
#ifdef RNE_NO_DENSE
        || n->op == RNE_OP_DENSE
#endif
#ifdef RNE_NO_ACT
        || n->op == RNE_OP_ACT
#endif
#ifdef RNE_NO_LSTM
        || n->op == RNE_OP_LSTM
#endif
#ifdef RNE_NO_GRU
        || n->op == RNE_OP_GRU
#endif
#ifdef RNE_NO_RNN
        || n->op == RNE_OP_RNN
#endif
#ifdef RNE_NO_LAYERNORM
        || n->op == RNE_OP_LAYERNORM
#endif
    )
        return RNE__AT(RNE_ELAYER, RNE_FF_OP);  /* compiled out (rne_internal.h) */
    if ((rc = rne__check_node_values(m, n, written, explicit_state, w)) != RNE_OK)
        return rc;
#ifndef RNE_NO_CONV
    if (n->op == RNE_OP_CONV || n->op == RNE_OP_CONV_T)
        return rne__check_conv(m, n, m->values, w);
#endif
    if (rne__is_graph_op(n, &m->values[n->in[0]])) {
#if RNE__GRAPH_OPS && !defined(RNE_NO_GRAPH_OPS)
        return rne__check_op(m, n, m->values, w);
#else
        return RNE__AT(RNE_ELAYER, RNE_FF_OP);        /* compiled out (ops.h) */
#endif
    }
    if ((rc = rne__node_layer(m, n, l, w)) != RNE_OK)
        return rc;
    if ((rc = rne__check_flags(l)) != RNE_OK || (rc = rne__check_acts(l, w)) != RNE_OK ||
        (rc = rne__check_sizes(l, w)) != RNE_OK)
        return rc;
#ifndef RNE_NO_STATE_IO
    if (rne__gates(l->op) != 0 && (rc = rne__check_state_io(m, n, l, w)) != RNE_OK)
        return rc;
#endif
#ifdef RNE_NO_F32
    return rne__check_layer_q(m, l, w);         /* every node is integer here (above) */
#elif defined(RNE__NO_INT)
    return rne__check_layer_tensors(l, m->tensors, m->header->n_tensors, w);  /* every one f32 */
#else
    if (l->fmt != RNE_FMT_F32)
        return rne__check_layer_q(m, l, w);
    return rne__check_layer_tensors(l, m->tensors, m->header->n_tensors, w);
#endif
}

/* ---- the arena plan ------------------------------------------------------------------------- */

/* Every TEMP and OUTPUT value written by some node; two TEMP values whose lifetimes (from the node
 * that writes one to the last node that reads it; a STATE's update lives to the end) overlap
 * never share arena bytes. The loader's per-value notes live in the model's value array until
 * the copies replace them (no stack in proportion to RNE_MAX_VALUES): flags = written,
 * features = the node that writes it, offset = the last node that reads it. */
RNE__THUMB1_OUTLINE
static int rne__check_arena(const rne__blobview *m, rne_model_value *note, rne_fault *w)
{
    const rne_header *h = m->header;
    uint32_t i, j, k;
    for (i = 0; i < h->n_values; i++)
        if ((m->values[i].kind == RNE_V_TEMP || m->values[i].kind == RNE_V_OUTPUT) &&
            !note[i].flags) {
            w->section = RNE_SEC_VALUE;
            w->value = (int32_t)i;
            return RNE__AT(RNE_ELAYER, RNE_FF_OUT);         /* never written */
        }
    for (i = 0; i < h->n_nodes; i++)
        for (k = 0; k < 4; k++) {
            const uint16_t o = m->nodes[i].out[k], x = m->nodes[i].in[k];
            if (o != RNE_NONE)
                note[o].features = note[o].offset = i;
            if (x != RNE_NONE)
                note[x].offset = i;             /* nodes in order: the last read wins */
        }
    for (i = 0; i < h->n_values; i++)
        if (m->values[i].kind == RNE_V_STATE && m->values[i].update >= 0)
            note[m->values[i].update].offset = h->n_nodes;
    for (j = 1; j < h->n_values; j++)
        for (i = 0; i < j && m->values[j].kind == RNE_V_TEMP; i++) {
            const rne_value *a = &m->values[i], *b = &m->values[j];
            const rne__span sa = { a->offset, rne__round16(rne__value_row(a)) };
            const rne__span sb = { b->offset, rne__round16(rne__value_row(b)) };
            if (a->kind == RNE_V_TEMP &&
                !(note[i].offset < note[j].features || note[j].offset < note[i].features) &&
                rne__overlap(sa, sb)) {
                w->section = RNE_SEC_VALUE;
                w->value = (int32_t)j;
                w->index = (int32_t)i;
                return RNE__AT(RNE_ESHAPE, RNE_FF_LIFETIME);
            }
        }
    return RNE_OK;
}

/* The model's figures from its proved nodes and values. */
static void rne__figures(const rne__blobview *v, rne_model *m)
{
    uint32_t i;
    m->n_nodes = v->header->n_nodes;
    m->n_values = v->header->n_values;
    m->arena_row = v->header->arena_row;
    m->streamable = 1;
    for (i = 0; i < m->n_values; i++) {
        const uint32_t f = (uint32_t)rne__value_features(&v->values[i]);
        m->max_features = f > m->max_features ? f : m->max_features;
    }
    for (i = 0; i < m->n_nodes; i++) {
        const rne_model_layer *l = &m->nodes[i];
        const uint32_t g = rne__gates(l->op);
        if ((l->flags & (RNE_LF_REVERSE | RNE_LF_BIDIR)) != 0 && !RNE__INNER(l->flags))
            m->streamable = 0;          /* (an inner node reads its sequence within one step) */
        /* g * hidden fits: the W tensor [D, I, g*H] was proved to hold < 2^31 elements */
        if (g * l->hidden > m->max_gates)
            m->max_gates = g * l->hidden;
#ifndef RNE_NO_CONV
        if (l->skip != 0)           /* a lookahead conv's delay (refused without convs) */
            m->skips = 1;
#endif
#if RNE__GRAPH_OPS && !defined(RNE_NO_GRAPH_OPS)
        if (l->op == RNE_OP_GATHER && l->in[0] == m->input)
            m->checks_ids = 1;
#endif
    }
    for (i = 0; i < m->n_values; i++)
        if (m->values[i].kind == RNE_V_STATE && m->values[i].update >= 0)
            m->updates++;
    m->in_dtype = v->values[m->input].dtype;
    m->in_scale = v->values[m->input].scale;    /* proved: s16 finite > 0, else 0 */
    m->out_scale = v->values[m->output].scale;
    m->many_to_one = (v->values[m->output].flags & RNE_VF_LAST) != 0;
    m->in_features = m->values[m->input].features;
    m->out_features = m->values[m->output].features;
}

/* Copy a proved node into the model: the fields the step path reads, each role's tensor data
 * address, its values, and an integer node's q slots 0..7 (direction 0) and each direction's
 * activation shifts (slot 9 + 3a). A graph op's node has no rne__layer: its fields come from
 * the record (in_features, out_features: all elements of in[0], out[0]). */
RNE__THUMB1_OUTLINE
static void rne__copy_layer(const rne__blobview *v, const rne_node *n, const rne__layer *l,
                            int graph_op, rne_model_layer *c)
{
    unsigned r, d, a;
    for (r = 0; r < 8; r++)
        c->data[r] = n->tensor[r] < 0 ? NULL : v->blob + v->tensors[n->tensor[r]].offset;
    c->op = n->op;
    c->fmt = n->fmt;
    c->flags = n->flags;
    c->in_features = graph_op ? (uint32_t)rne__value_features(&v->values[n->in[0]])
                              : l->in_features;
    c->out_features = graph_op ? (uint32_t)rne__value_features(&v->values[n->out[0]])
                               : l->out_features;
    c->lead = graph_op ? 1u : l->lead;
    c->hidden = n->hidden;
    memcpy(c->param, n->param, sizeof c->param);
    memcpy(c->in, n->in, sizeof c->in);
    memcpy(c->out, n->out, sizeof c->out);
    c->clip = n->clip;
    memcpy(c->act, n->act, sizeof c->act);
    memcpy(c->alpha, n->alpha, sizeof c->alpha);
    memcpy(c->beta, n->beta, sizeof c->beta);
    memset(c->qshift, 0, sizeof c->qshift);
    memset(c->q, 0, sizeof c->q);
    memset(c->wshape, 0, sizeof c->wshape);
    c->wndim = 0;
    c->skip = n->reserved[0];
    if (n->tensor[RNE_T_W] >= 0) {      /* its shape, for a BINARY's constant operand */
        const rne_tensor *t = &v->tensors[n->tensor[RNE_T_W]];
        memcpy(c->wshape, t->shape, sizeof c->wshape);
        c->wndim = t->ndim;
    }
    if (n->fmt != RNE_FMT_F32 && c->data[RNE_T_Q] != NULL) {
        const int32_t *q = (const int32_t *)c->data[RNE_T_Q];   /* >= RNE__Q_SLOTS (24) slots */
        const uint64_t row = 24u + 2u * (uint64_t)rne__gates(n->op) * n->hidden;
        memcpy(c->q, q, sizeof c->q);
        for (d = 0; rne__gates(n->op) != 0 && d < ((n->flags & RNE_LF_BIDIR) ? 2u : 1u); d++)
            for (a = 0; a < 3; a++)
                c->qshift[d][a] = (uint8_t)q[d * row + 9u + 3u * a];    /* 0 or 1..62 */
    }
}

static void rne__copy_value(const rne__blobview *v, const rne_value *r, rne_model_value *c)
{
    c->init = r->init < 0 ? NULL : v->blob + v->tensors[r->init].offset;
    c->kind = r->kind;
    c->dtype = r->dtype;
    c->flags = r->flags;
    c->ndim = r->ndim;
    memcpy(c->shape, r->shape, sizeof c->shape);
    c->features = (uint32_t)rne__value_features(r);
    c->offset = r->offset;
    c->update = r->update;
}

/* ---- the loader ----------------------------------------------------------------------------- */

int rne__fail_t(rne_fault *w, int at, const rne__layer *l, int role)
{
    w->role = (uint8_t)role;
    w->tensor = l->tensor[role];
    if (at >> 8 >= RNE_FF_Q_SLOT && at >> 8 <= RNE_FF_WEIGHT)   /* a value in the tensor's data */
        w->section = RNE_SEC_DATA;
    return at;
}

/* The node and value checks and the copies into *model (zeroed by the caller: the notes of
 * rne__check_arena start at 0). */
RNE__THUMB1_OUTLINE
static int rne__load_graph(const rne__blobview *v, rne_model *model, rne_fault *w)
{
    const rne_header *h = v->header;
    uint32_t i;
    int rc;
    w->section = RNE_SEC_VALUE;
    if ((rc = rne__check_values(v, model, w)) != RNE_OK)
        return rc;
    w->section = RNE_SEC_LAYER;
    for (i = 0; i < h->n_nodes; i++) {
        rne__layer l;
        w->layer = (int32_t)i;
        if ((rc = rne__check_node(v, &v->nodes[i], model->values, model->explicit_state, &l,
                                  w)) != RNE_OK)
            return rc;
        rne__copy_layer(v, &v->nodes[i], &l, rne__is_graph_op(&v->nodes[i],
                        &v->values[v->nodes[i].in[0]]), &model->nodes[i]);
    }
    w->layer = -1;
    if ((rc = rne__check_arena(v, model->values, w)) != RNE_OK)
        return rc;
    for (i = 0; i < h->n_values; i++)
        rne__copy_value(v, &v->values[i], &model->values[i]);
    rne__figures(v, model);
    return RNE_OK;
}

static int rne__load(const void *blob, size_t size, rne_model *model, rne_fault *w)
{
    const uint8_t *p = (const uint8_t *)blob;
    rne_header h;
    uint32_t stored_crc;
    rne__blobview v;
    int rc;
    w->section = RNE_SEC_ARG;
    if (blob == NULL)
        return RNE__AT(RNE_EARG, RNE_FF_BLOB);
    if (model == NULL)
        return RNE__AT(RNE_EARG, RNE_FF_MODEL);
    memset(model, 0, sizeof *model);
    if (!rne__is_little_endian())
        return RNE__AT(RNE_EHEADER, RNE_FF_HOST);
    w->section = RNE_SEC_HEADER;
    if (size < RNE__HEADER_SIZE)
        return RNE__AT(RNE_ETRUNC, RNE_FF_SIZE);
    memcpy(&h, p, sizeof h);
    if ((rc = rne__check_header(&h, blob, size)) != RNE_OK)
        return rc;
    /* from here on the blob is aligned to >= 16 bytes: records can be read in place */
    memcpy(&stored_crc, p + h.file_size - 4u, 4);
    if (rne__crc32(p, (size_t)h.file_size - 4u) != stored_crc) {
        w->section = RNE_SEC_CRC;
        return RNE__AT(RNE_ECRC, RNE_FF_CRC);
    }
    if ((rc = rne__check_sections(&h, w)) != RNE_OK)
        return rc;
    v.blob = p;
    v.header = (const rne_header *)blob;
    v.nodes = (const rne_node *)(const void *)(p + h.node_off);
    v.tensors = (const rne_tensor *)(const void *)(p + h.tensor_off);
    v.values = (const rne_value *)(const void *)(p + h.value_off);
    w->section = RNE_SEC_TENSOR;
    if ((rc = rne__check_tensors(v.tensors, &h, w)) != RNE_OK)
        return rc;
    if ((rc = rne__load_graph(&v, model, w)) != RNE_OK) {
        memset(model, 0, sizeof *model);
        return rc;
    }
    model->crc = stored_crc;
    model->blob = p;            /* last: a model with blob == NULL is not loaded */
    w->section = RNE_SEC_NONE;
    w->layer = -1;
    return RNE_OK;
}

int rne_model_load_where(const void *blob, size_t size, rne_model *model, rne_fault *where)
{
    rne_fault local;
    rne_fault *w = where != NULL ? where : &local;
    int rc;
    w->layer = w->tensor = w->index = w->value = -1;
    w->section = RNE_SEC_NONE;
    w->role = 255;
    w->field = RNE_FF_NONE;
    rc = rne__load(blob, size, model, w);
    w->field = (uint16_t)(rc >> 8);             /* RNE__AT(status, field) */
    return rc & 0xFF;
}

int rne_model_load(const void *blob, size_t size, rne_model *model)
{
    return rne_model_load_where(blob, size, model, NULL);
}

#ifdef RNE_NO_FAULT_NAMES
const char *rne_fault_section_name(int section)
{
    (void)section;
    return "?";       /* the names compiled out (rne_internal.h) */
}

const char *rne_fault_field_name(int field)
{
    (void)field;
    return "?";
}
#else
/* The n-th of a list of NUL-separated names, "?" past its end: one char array per list, in its
 * own section, so that firmware that never asks for a name links none. */
static const char *rne__nth_name(const char *names, int count, int n)
{
    if (n < 0 || n >= count)
        return "?";
    for (; n > 0; n--)
        while (*names++ != '\0') {
        }
    return names;
}

const char *rne_fault_section_name(int section)
{
    static const char names[] =
        "none\0arguments\0header\0metadata\0tensor\0node\0data\0crc\0value";
    return rne__nth_name(names, RNE_SEC_VALUE + 1, section);
}

const char *rne_fault_field_name(int field)
{
    static const char names[] =
        "none\0blob\0model\0host byte order\0size\0magic\0version\0header_size\0flags\0"
        "reserved\0alignment\0file_size\0n_nodes\0n_tensors\0crc\0meta_off/meta_size\0"
        "node_off\0tensor_off\0name\0dtype\0ndim\0shape\0nbytes\0offset\0scale\0zero_point\0"
        "op\0fmt\0clip\0act\0alpha\0beta\0in_features\0out_features\0hidden\0param\0tensor\0"
        "q slot\0multiplier\0acc32\0weight\0n_values\0value_off\0arena_row\0kind\0update\0init\0"
        "in\0out\0lifetime";
    return rne__nth_name(names, RNE_FF_LIFETIME + 1, field);
}
#endif /* RNE_NO_FAULT_NAMES */

/* ---- the model's input and output (rne_model_io) ------------------------------------------- */

int rne_model_io(const rne_model *model, int which, rne_io *io)
{
    const rne_model_value *v;
    uint32_t i;
    if (io != NULL)
        memset(io, 0, sizeof *io);
    if (model == NULL || io == NULL || model->blob == NULL ||
        (which != RNE_V_INPUT && which != RNE_V_OUTPUT))
        return RNE_EARG;
    io->value = which == RNE_V_INPUT ? model->input : model->output;
    if (model->n_values > RNE_MAX_VALUES || io->value >= model->n_values) {
        memset(io, 0, sizeof *io);  /* not a model rne_model_load filled */
        return RNE_EARG;
    }
    v = &model->values[io->value];
    io->dtype = v->dtype;
    io->scale = which == RNE_V_INPUT ? model->in_scale : model->out_scale;
    io->ndim = v->ndim;
    for (i = 0; i < v->ndim && i < 4; i++)
        io->shape[i] = v->shape[i];
    io->features = v->features;
    io->last = which == RNE_V_OUTPUT && (v->flags & RNE_VF_LAST) != 0;
    io->fmt = RNE_FMT_F32;
    for (i = 0; i < model->n_nodes; i++) {
        if (model->nodes[i].fmt == RNE_FMT_S8)
            io->fmt = RNE_FMT_S8;
        else if (model->nodes[i].fmt == RNE_FMT_S16 && io->fmt == RNE_FMT_F32)
            io->fmt = RNE_FMT_S16;
    }
    if (io->fmt == RNE_FMT_F32 && v->dtype == RNE_DT_S16)
        io->fmt = RNE_FMT_S16;      /* an integer graph of nodes without weights */
    return RNE_OK;
}
