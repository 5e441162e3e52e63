/*
 * blob.c - rne_model_load: prove a .rne blob (docs/format.md) sound before anything reads it.
 *
 * Every number in the blob is distrusted and checked in a fixed order; the first fault decides
 * the status, and every refusal records where (rne_fault: section, layer, tensor and role, field,
 * element; rnnedge/blob/check.py turns it into words for Python):
 *   arguments, host byte order                               RNE_EARG / RNE_EHEADER
 *   size >= 64                                               RNE_ETRUNC
 *   magic                                                    RNE_EMAGIC
 *   version (> RNE_FORMAT_VERSION: RNE_EVERSION, 0: RNE_EHEADER)
 *   header_size, flags and reserved, alignment               RNE_EHEADER
 *   the blob pointer aligned to header.alignment             RNE_EALIGN
 *   file_size >= header + CRC, layer and tensor counts       RNE_EHEADER
 *   file_size <= size                                        RNE_ETRUNC
 *   CRC-32                                                   RNE_ECRC
 *   table offsets multiple of 8                              RNE_EALIGN
 *   sections inside [0, file_size - 4)                       RNE_ETRUNC
 *   sections overlapping each other or the header            RNE_EHEADER
 *   each tensor record (name, dtype, dims, nbytes, offset alignment (RNE_EALIGN), reserved,
 *   f32 scale/zero point, data inside (RNE_ETRUNC)), unique names, no overlap  RNE_ETENSOR
 *   each layer record (op, fmt, flags, padding, clip, activations, features, params, tensors)
 *                                                            RNE_ELAYER / RNE_ESHAPE
 *     an integer layer (fmt s16 / s8): blob_q.c, which also proves every q-tensor value
 *     every in_features / out_features in 1..RNE_MAX_FEATURES (2^20)   RNE_ESHAPE
 *   the chain of feature sizes, one TAKE_LAST, no cell after it, one family of number formats
 *   (all f32 or all integer)                                 RNE_ESHAPE / RNE_ELAYER
 * All arithmetic on blob fields is done in uint64_t, so nothing can wrap, also where size_t has
 * 32 bits. Reads before the alignment check go through memcpy (the pointer may be misaligned).
 * Only when every check has passed is *model filled: each layer record's fields the step path
 * uses, its tensors' data addresses and an integer layer's small q values (rne_model_layer) are
 * copied into it, so that nothing the blob holds after load can change a size, an index, a shift
 * or a loop bound of the step path.
 */
#include <math.h>
#include <string.h>

#include "rne_internal.h"

#define RNE__HEADER_SIZE 64u
#define RNE__LAYER_SIZE 128u
#define RNE__TENSOR_SIZE 64u
#define RNE__LF_ALL 31u

/* ---- status strings ------------------------------------------------------------------------- */

const char *rne_strerror(int code)
{
    switch (code) {
    case RNE_OK: return "success";
    case RNE_EARG: return "invalid argument (NULL pointer, zero batch or bad value)";
    case RNE_EMAGIC: return "not an rnnedge blob (bad magic)";
    case RNE_EVERSION: return "blob format version is newer than this library reads";
    case RNE_ETRUNC: return "blob is truncated (shorter than its header or file_size says)";
    case RNE_ECRC: return "blob checksum mismatch: the blob is corrupt";
    case RNE_EALIGN: return "blob, table or tensor data is not aligned as required";
    case RNE_EHEADER:
        return "blob header field out of range, reserved field set, or big-endian host";
    case RNE_ETENSOR: return "invalid tensor record (dtype, shape, offset, size or name)";
    case RNE_ELAYER: return "invalid layer record (op, number format, flags, activation or params)";
    case RNE_ESHAPE: return "layer tensors or feature sizes do not fit together";
    case RNE_ESTREAM: return "the model reads the sequence backwards and cannot be stepped";
    case RNE_ESIZE: return "a caller buffer is too small or misaligned";
    case RNE_EMODEL:
        return "the stream's model was re-loaded with another blob (or failed to load): "
               "initialize the stream again";
    default: return "unknown rnnedge status code";
    }
}

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

uint32_t rne__gates(uint32_t op)
{
    switch (op) {
    case RNE_OP_LSTM: return 4;
    case RNE_OP_GRU: return 3;
    case RNE_OP_RNN: return 1;
    default: return 0;
    }
}

/* Activations per direction of a cell (LSTM f,g,h; GRU f,g; RNN f). */
static uint32_t rne__cell_acts(uint32_t op)
{
    switch (op) {
    case RNE_OP_LSTM: return 3;
    case RNE_OP_GRU: return 2;
    case RNE_OP_RNN: return 1;
    default: return 0;
    }
}

/* ---- header and sections -------------------------------------------------------------------- */

static int rne__is_little_endian(void)
{
    const uint32_t one = 1;
    uint8_t first;
    memcpy(&first, &one, 1);
    return first == 1;
}

static int rne__check_header(const rne_header *h, const void *blob, size_t size)
{
    if (memcmp(h->magic, "RNNE", 4) != 0)
        return RNE__AT(RNE_EMAGIC, RNE_FF_MAGIC);
    if (h->version > RNE_FORMAT_VERSION)
        return RNE__AT(RNE_EVERSION, RNE_FF_VERSION);
    if (h->version == 0)
        return RNE__AT(RNE_EHEADER, RNE_FF_VERSION);
    if (h->header_size != RNE__HEADER_SIZE)
        return RNE__AT(RNE_EHEADER, RNE_FF_HEADER_SIZE);
    if (h->flags != 0)
        return RNE__AT(RNE_EHEADER, RNE_FF_FLAGS);
    if (h->reserved[0] != 0 || h->reserved[1] != 0 || h->reserved[2] != 0 || h->reserved[3] != 0)
        return RNE__AT(RNE_EHEADER, RNE_FF_RESERVED);
    if (h->alignment < 16 || h->alignment > 4096 || (h->alignment & (h->alignment - 1)) != 0)
        return RNE__AT(RNE_EHEADER, RNE_FF_ALIGNMENT);
    if ((uintptr_t)blob % h->alignment != 0)
        return RNE__AT(RNE_EALIGN, RNE_FF_BLOB);
    if (h->file_size < RNE__HEADER_SIZE + 4)
        return RNE__AT(RNE_EHEADER, RNE_FF_FILE_SIZE);
    if (h->n_layers < 1 || h->n_layers > RNE_MAX_LAYERS)
        return RNE__AT(RNE_EHEADER, RNE_FF_N_LAYERS);  /* this build's capacity (rnnedge.h) */
    if (h->n_tensors > RNE_MAX_TENSORS)
        return RNE__AT(RNE_EHEADER, RNE_FF_N_TENSORS);
    if (h->file_size > size)
        return RNE__AT(RNE_ETRUNC, RNE_FF_FILE_SIZE);
    return RNE_OK;
}

/* [off, off + len) as 64-bit numbers */
typedef struct rne__span {
    uint64_t off, len;
} rne__span;

static int rne__overlap(rne__span a, rne__span b)
{
    return a.len != 0 && b.len != 0 && a.off < b.off + b.len && b.off < a.off + a.len;
}

/* Header (0), metadata (1), layer table (2), tensor table (3). */
static void rne__sections(const rne_header *h, rne__span s[4])
{
    s[0].off = 0;
    s[0].len = RNE__HEADER_SIZE;
    s[1].off = h->meta_off;
    s[1].len = h->meta_size;
    s[2].off = h->layer_off;
    s[2].len = (uint64_t)h->n_layers * RNE__LAYER_SIZE;
    s[3].off = h->tensor_off;
    s[3].len = (uint64_t)h->n_tensors * RNE__TENSOR_SIZE;
}

/* the field that places section i (1 metadata, 2 layer table, 3 tensor table) */
static int rne__section_fail(rne_fault *w, int rc, int i)
{
    if (i == 1)
        w->section = RNE_SEC_META;
    return RNE__AT(rc, i == 1 ? RNE_FF_META : i == 2 ? RNE_FF_LAYER_OFF : RNE_FF_TENSOR_OFF);
}

static int rne__check_sections(const rne_header *h, rne_fault *w)
{
    const uint64_t end = (uint64_t)h->file_size - 4u;
    rne__span s[4];
    int i, j;
    if (h->layer_off % 8u != 0)
        return RNE__AT(RNE_EALIGN, RNE_FF_LAYER_OFF);
    if (h->tensor_off % 8u != 0)
        return RNE__AT(RNE_EALIGN, RNE_FF_TENSOR_OFF);
    rne__sections(h, s);
    for (i = 1; i < 4; i++)
        if (s[i].off + s[i].len > end)
            return rne__section_fail(w, RNE_ETRUNC, i);
    for (j = 1; j < 4; j++)             /* the later section of an overlapping pair: index the other */
        for (i = 0; i < j; i++)
            if (rne__overlap(s[i], s[j])) {
                w->index = i;
                return rne__section_fail(w, RNE_EHEADER, j);
            }
    return RNE_OK;
}

/* ---- tensors -------------------------------------------------------------------------------- */

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
    rne__span sec[4];
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
        for (j = 0; j < 4; j++)
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

/* ---- layers --------------------------------------------------------------------------------- */

/* tensor roles each op uses, and those it requires (bit r = role r) */
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

static int rne__check_acts(const rne_layer *l, rne_fault *w)
{
    const uint32_t cell_acts = rne__cell_acts(l->op), dirs = rne__rec_dirs(l);
    unsigned d, k;
    for (d = 0; d < 2; d++)
        for (k = 0; k < 3; k++) {
            const unsigned code = l->act[d][k];
            const float a = l->alpha[d][k], b = l->beta[d][k];
            const int used = l->op == RNE_OP_ACT ? (d == 0 && k == 0)
                                                 : (d < dirs && k < cell_acts);
            const unsigned last = l->op == RNE_OP_ACT ? RNE_ACT_LOGSOFTMAX : RNE_ACT_CLIP;
            /* LAYERNORM keeps epsilon in alpha[0][0] */
            const int eps = l->op == RNE_OP_LAYERNORM && d == 0 && k == 0;
            if (used ? code > last || isnan(a) || isnan(b)
                     : code != 0 || (a != 0.0f && !eps) || b != 0.0f) {
                w->index = (int32_t)(3 * d + k);        /* the slot act[d][k] (alpha, beta) */
                return RNE__AT(RNE_ELAYER, RNE_FF_ACT);
            }
        }
    return RNE_OK;
}

static int rne__check_flags(const rne_layer *l)
{
    uint32_t allowed = 0;
    if (rne__gates(l->op)) {
        allowed = RNE_LF_REVERSE | RNE_LF_BIDIR | RNE_LF_CLIP;
        allowed |= l->op == RNE_OP_LSTM ? RNE_LF_INPUT_FORGET : 0u;
        allowed |= l->op == RNE_OP_GRU ? RNE_LF_LINEAR_BEFORE_RESET : 0u;
    }
    if ((l->flags & ~allowed) != 0 ||
        ((l->flags & RNE_LF_REVERSE) != 0 && (l->flags & RNE_LF_BIDIR) != 0))
        return RNE__AT(RNE_ELAYER, RNE_FF_FLAGS);
    if ((l->flags & RNE_LF_CLIP) != 0 ? !(isfinite(l->clip) && l->clip > 0.0f) : l->clip != 0.0f)
        return RNE__AT(RNE_ELAYER, RNE_FF_CLIP);
    return RNE_OK;
}

/* features, hidden size and params */
static int rne__check_sizes(const rne_layer *l, rne_fault *w)
{
    const uint64_t fin = l->in_features, fout = l->out_features;
    const uint32_t g = rne__gates(l->op);
    int params_ok, sizes_ok;
    if (fin < 1 || fin > RNE_MAX_FEATURES)  /* the cap bounds layers no tensor bounds (ACT...) */
        return RNE__AT(RNE_ESHAPE, RNE_FF_IN_FEATURES);
    if (fout < 1 || fout > RNE_MAX_FEATURES)
        return RNE__AT(RNE_ESHAPE, RNE_FF_OUT_FEATURES);
    if ((l->hidden >= 1) != (g != 0))
        return RNE__AT(RNE_ELAYER, RNE_FF_HIDDEN);
    switch (l->op) {
    case RNE_OP_TAKE_LAST:
        params_ok = l->param[0] <= fin && l->param[1] == 0;
        sizes_ok = fout == fin;
        break;
    case RNE_OP_SLICE:
        params_ok = l->param[0] < l->param[1] && l->param[1] <= fin;
        sizes_ok = params_ok && fout == (uint64_t)l->param[1] - l->param[0];
        break;
    default:
        params_ok = l->param[0] == 0 && l->param[1] == 0;
        sizes_ok = g ? fout == (uint64_t)rne__rec_dirs(l) * l->hidden
                     : (l->op == RNE_OP_DENSE || fout == fin);
        break;
    }
    if (!params_ok)
        return RNE__AT(RNE_ELAYER, RNE_FF_PARAM);
    if (!sizes_ok)
        return RNE__AT(RNE_ESHAPE, RNE_FF_OUT_FEATURES);
    if (l->op == RNE_OP_LAYERNORM && !(isfinite(l->alpha[0][0]) && l->alpha[0][0] > 0.0f)) {
        w->index = 0;                   /* epsilon: alpha[0][0] */
        return RNE__AT(RNE_ELAYER, RNE_FF_ALPHA);
    }
    return RNE_OK;
}

/* The shape the op table gives role r (ndim 0: the op has no such role). */
static void rne__role_shape(const rne_layer *l, int r, unsigned *ndim, uint64_t dims[3])
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

static int rne__check_layer_tensors(const rne_layer *l, const rne_tensor *ts, uint32_t n_tensors,
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

static int rne__check_layer(const rne__blobview *m, const rne_layer *l, rne_fault *w)
{
    int rc;
    if (l->op < RNE_OP_DENSE || l->op > RNE_OP_LAYERNORM)
        return RNE__AT(RNE_ELAYER, RNE_FF_OP);
    if (l->fmt > RNE_FMT_S8)
        return RNE__AT(RNE_ELAYER, RNE_FF_FMT);
    if ((l->flags & ~RNE__LF_ALL) != 0)
        return RNE__AT(RNE_ELAYER, RNE_FF_FLAGS);
    if (l->pad[0] != 0 || l->pad[1] != 0 || l->reserved[0] != 0 || l->reserved[1] != 0)
        return RNE__AT(RNE_ELAYER, RNE_FF_RESERVED);
    if ((rc = rne__check_flags(l)) != RNE_OK || (rc = rne__check_acts(l, w)) != RNE_OK ||
        (rc = rne__check_sizes(l, w)) != RNE_OK)
        return rc;
    if (l->fmt != RNE_FMT_F32)
        return rne__check_layer_q(m, l, w);
    return rne__check_layer_tensors(l, m->tensors, m->header->n_tensors, w);
}

/* The pipeline: sizes chain, at most one TAKE_LAST, no cell after it; fills the derived figures
 * of m (the caller's model, zeroed). */
static int rne__check_chain(const rne__blobview *v, rne_model *m, rne_fault *w)
{
    uint32_t i, seen_last = 0;
    m->n_layers = v->header->n_layers;
    m->streamable = 1;
    m->many_to_one = 0;
    m->max_features = 0;
    m->max_gates = 0;
    for (i = 0; i < m->n_layers; i++) {
        const rne_layer *l = &v->layers[i];
        const uint32_t g = rne__gates(l->op);
        w->layer = (int32_t)i;
        if (i > 0 && l->in_features != v->layers[i - 1].out_features)
            return RNE__AT(RNE_ESHAPE, RNE_FF_IN_FEATURES);
        if ((l->fmt == RNE_FMT_F32) != (v->layers[0].fmt == RNE_FMT_F32))
            return RNE__AT(RNE_ELAYER, RNE_FF_FMT);    /* floats or int16, not both */
        if ((g != 0 || l->op == RNE_OP_TAKE_LAST) && seen_last)
            return RNE__AT(RNE_ELAYER, RNE_FF_OP);     /* a cell or TAKE_LAST after one */
        if (l->op == RNE_OP_TAKE_LAST)
            seen_last = 1;
        if ((l->flags & (RNE_LF_REVERSE | RNE_LF_BIDIR)) != 0)
            m->streamable = 0;
        if (l->in_features > m->max_features)
            m->max_features = l->in_features;
        if (l->out_features > m->max_features)
            m->max_features = l->out_features;
        /* g * hidden fits: the W tensor [D, I, g*H] was proved to hold < 2^31 elements */
        if (g * l->hidden > m->max_gates)
            m->max_gates = g * l->hidden;
    }
    m->many_to_one = seen_last;
    m->in_features = v->layers[0].in_features;
    m->out_features = v->layers[m->n_layers - 1].out_features;
    return RNE_OK;
}

/* Copy a proved layer record into the model: the fields the step path reads, each role's tensor
 * data address, and an integer layer's q slots 0..7 (direction 0) and each direction's
 * activation shifts (slot 9 + 3a). */
static void rne__copy_layer(const rne__blobview *v, const rne_layer *l, rne_model_layer *c)
{
    unsigned r, d, a;
    for (r = 0; r < 8; r++)
        c->data[r] = l->tensor[r] < 0 ? NULL : v->blob + v->tensors[l->tensor[r]].offset;
    c->op = l->op;
    c->fmt = l->fmt;
    c->flags = l->flags;
    c->in_features = l->in_features;
    c->out_features = l->out_features;
    c->hidden = l->hidden;
    c->param[0] = l->param[0];
    c->param[1] = l->param[1];
    c->clip = l->clip;
    memcpy(c->act, l->act, sizeof c->act);
    memcpy(c->alpha, l->alpha, sizeof c->alpha);
    memcpy(c->beta, l->beta, sizeof c->beta);
    memset(c->qshift, 0, sizeof c->qshift);
    memset(c->q, 0, sizeof c->q);
    if (l->fmt != RNE_FMT_F32 && c->data[RNE_T_Q] != NULL) {
        const int32_t *q = (const int32_t *)c->data[RNE_T_Q];   /* >= RNE__Q_SLOTS (24) slots */
        const uint64_t row = 24u + 2u * (uint64_t)rne__gates(l->op) * l->hidden;
        memcpy(c->q, q, sizeof c->q);
        for (d = 0; rne__gates(l->op) != 0 && d < rne__rec_dirs(l); d++)
            for (a = 0; a < 3; a++)
                c->qshift[d][a] = (uint8_t)q[d * row + 9u + 3u * a];    /* 0 or 1..62 */
    }
}

/* ---- the loader ----------------------------------------------------------------------------- */

int rne__fail_t(rne_fault *w, int at, const rne_layer *l, int role)
{
    w->role = (uint8_t)role;
    w->tensor = l->tensor[role];
    if (at >> 8 >= RNE_FF_Q_SLOT)       /* a value in the tensor's data */
        w->section = RNE_SEC_DATA;
    return at;
}
static int rne__load(const void *blob, size_t size, rne_model *model, rne_fault *w)
{
    const uint8_t *p = (const uint8_t *)blob;
    rne_header h;
    uint32_t stored_crc, i;
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
    v.layers = (const rne_layer *)(const void *)(p + h.layer_off);
    v.tensors = (const rne_tensor *)(const void *)(p + h.tensor_off);
    w->section = RNE_SEC_TENSOR;
    if ((rc = rne__check_tensors(v.tensors, &h, w)) != RNE_OK)
        return rc;
    w->section = RNE_SEC_LAYER;
    for (i = 0; i < h.n_layers; i++) {
        w->layer = (int32_t)i;
        if ((rc = rne__check_layer(&v, &v.layers[i], w)) != RNE_OK)
            return rc;
    }
    if ((rc = rne__check_chain(&v, model, w)) != RNE_OK) {
        memset(model, 0, sizeof *model);
        return rc;
    }
    for (i = 0; i < h.n_layers; i++)
        rne__copy_layer(&v, &v.layers[i], &model->layers[i]);
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
    w->layer = w->tensor = w->index = -1;
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
    static const char names[] = "none\0arguments\0header\0metadata\0tensor\0layer\0data\0crc";
    return rne__nth_name(names, RNE_SEC_CRC + 1, section);
}

const char *rne_fault_field_name(int field)
{
    static const char names[] =
        "none\0blob\0model\0host byte order\0size\0magic\0version\0header_size\0flags\0"
        "reserved\0alignment\0file_size\0n_layers\0n_tensors\0crc\0meta_off/meta_size\0"
        "layer_off\0tensor_off\0name\0dtype\0ndim\0shape\0nbytes\0offset\0scale\0zero_point\0"
        "op\0fmt\0clip\0act\0alpha\0beta\0in_features\0out_features\0hidden\0param\0tensor\0"
        "q slot\0multiplier\0acc32\0weight";
    return rne__nth_name(names, RNE_FF_WEIGHT + 1, field);
}
