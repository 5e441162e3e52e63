/*
 * test_ops.c - the graph ops (csrc/ops.h) called directly through rne__opcall with hand-built
 * rne_model_layer copies (no blob: the loader does not dispatch to them yet), and their load
 * checks (rne__check_op) on hand-built records.
 *
 *   test_ops DIR         DIR/ops.bin: the vectors of tests/make_op_vectors.py
 *
 * - every case of ops.bin: each input and the output allocated to size (`make asan` sees a byte
 *   read or written outside them), the output compared with the expected one bit for bit (integer
 *   cases and exact f32 cases; NaN equals NaN) or within the case's bound per element (f32
 *   reductions, libm activations); and rne__check_op accepts the case's node as the loader would
 *   see it (values, tensors, q tensor of 24 slots);
 * - the load checks' refusals: one field of a valid case changed at a time (MUTATIONS below), each
 *   refused with the status, field, index (and section, tensor, role where they apply) ops_check.c
 *   documents;
 * - 200000 random nodes (every op, both formats, random shapes, params and q slots near the
 *   valid ones): each one rne__check_op accepts is run on 1..3 rows in buffers of exactly the
 *   sizes it proved, with int16 extremes and GATHER ids outside the table, so that under
 *   `make asan` an accepted node that reads or writes out of bounds or overflows stops the
 *   program (a SLICE check weakened to let stop pass the axis' end does: tried); every op and
 *   format must run at least 100 times;
 * - rne__bin_f32 / rne__bin_s16 (the SIMD variant compiled in) against their scalar references on
 *   every length 0 .. 100 at offsets 0 .. 3, random and extreme operands and multipliers, nothing
 *   written past n; rne__check_ids.
 * Built with -DRNE_NO_GRAPH_OPS (library too, `make noops`), it checks that rne__check_op refuses
 * every case with RNE_ELAYER, field op, instead.
 */
#define _POSIX_C_SOURCE 200809L

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ops.h"
#include "qvec.h"
#include "testutil.h"
#include "vec.h"

#define META 50

#ifndef RNE_NO_GRAPH_OPS
/* the largest |C - exact| / |exact| of the f32 reductions (a note, beside the bound tested) */
static double worst_reduce_rel;
#endif
enum { T_F32 = 0, T_I16 = 1, T_I32 = 2 };

typedef struct op_array {
    uint32_t dtype, count;
    const void *data;
} op_array;

typedef struct op_case {
    char name[96];
    int32_t meta[META];
    op_array a[7];              /* 0..3 inputs, 4 table, 5 expected, 6 tol */
} op_case;

/* ---- reading ops.bin ------------------------------------------------------------------------- */

static const uint8_t *rd_u32(const uint8_t *p, const uint8_t *end, uint32_t *v)
{
    if (p == NULL || end - p < 4)
        return NULL;
    memcpy(v, p, 4);
    return p + 4;
}

static const uint8_t *read_case(const uint8_t *p, const uint8_t *end, op_case *c)
{
    static const uint32_t esize[3] = {4, 2, 4};
    uint32_t len, n, i;
    memset(c, 0, sizeof *c);
    if ((p = rd_u32(p, end, &len)) == NULL || len >= sizeof c->name || (size_t)(end - p) < len)
        return NULL;
    memcpy(c->name, p, len);
    p += (len + 3u) & ~3u;
    if ((size_t)(end - p) < sizeof c->meta)
        return NULL;
    memcpy(c->meta, p, sizeof c->meta);
    p += sizeof c->meta;
    if ((p = rd_u32(p, end, &n)) == NULL)
        return NULL;
    for (i = 0; i < n; i++) {
        uint32_t tag, dt, count;
        size_t bytes;
        if ((p = rd_u32(p, end, &tag)) == NULL || (p = rd_u32(p, end, &dt)) == NULL ||
            (p = rd_u32(p, end, &count)) == NULL || tag > 6 || dt > 2)
            return NULL;
        bytes = (size_t)count * esize[dt];
        if ((size_t)(end - p) < bytes)
            return NULL;
        c->a[tag].dtype = dt;
        c->a[tag].count = count;
        c->a[tag].data = p;
        p += (bytes + 3u) & ~(size_t)3u;
    }
    return p;
}

/* ---- running one case ------------------------------------------------------------------------ */
#ifndef RNE_NO_GRAPH_OPS

static size_t esize_of(uint32_t dt)
{
    return dt == T_I16 ? 2u : 4u;
}

/* a copy of the array in a block of exactly its size (ASan: nothing outside it is touched) */
static void *exact_copy(const op_array *a)
{
    const size_t n = (size_t)a->count * esize_of(a->dtype);
    void *p = exact_alloc(n);
    if (n > 0)
        memcpy(p, a->data, n);
    return p;
}

static int f32_same(float a, float b)
{
    uint32_t x, y;
    if (a != a && b != b)
        return 1;
    memcpy(&x, &a, 4);
    memcpy(&y, &b, 4);
    return x == y;
}

static void run_case(const op_case *c)
{
    const int32_t *m = c->meta;
    const uint32_t op = (uint32_t)m[0], fmt = (uint32_t)m[1], n_in = (uint32_t)m[3];
    const op_array *want = &c->a[5];
    rne_model_layer node;
    rne__opcall k;
    void *in[4] = {NULL, NULL, NULL, NULL}, *out, *table = NULL;
    uint32_t i, j;
    size_t bad = (size_t)-1;
    double worst = 0.0;
    memset(&node, 0, sizeof node);
    memset(&k, 0, sizeof k);
    node.op = (uint16_t)op;
    node.fmt = (uint16_t)fmt;
    memcpy(node.q, m + 12, sizeof node.q);
    if (c->a[4].data != NULL) {
        table = exact_copy(&c->a[4]);
        node.data[RNE_T_W] = table;
    }
    if (m[49]) {                /* a constant operand: input 1 is the node's tensor of role 0 */
        in[1] = exact_copy(&c->a[1]);
        node.data[RNE_T_W] = in[1];
    }
    k.node = &node;
    k.param = m + 4;
    k.rows = (size_t)m[2];
    for (i = 0; i < n_in; i++) {
        if (in[i] == NULL)
            in[i] = exact_copy(&c->a[i]);
        k.in[i] = in[i];
        k.in_ndim[i] = (uint32_t)m[20 + i];
        for (j = 0; j < 4; j++)
            k.in_shape[i][j] = j < k.in_ndim[i] ? (uint32_t)m[24 + 4 * i + j] : 1u;
    }
    k.out_ndim = (uint32_t)m[40];
    for (j = 0; j < 4; j++)
        k.out_shape[j] = j < k.out_ndim ? (uint32_t)m[41 + j] : 1u;
    out = exact_alloc((size_t)want->count * esize_of(want->dtype));
    k.out = out;
    if (op == RNE_OP_ACT) {
        float alpha;
        memcpy(&alpha, &m[47], 4);
        memcpy(out, in[0], (size_t)want->count * 4);
        rne__f32_act((float *)out, want->count, (unsigned)m[4], alpha, 0.0f);
    } else if (fmt == RNE_FMT_F32) {
        rne__op_f32(&k);
    } else {
        rne__op_int(&k);
    }
    for (i = 0; i < want->count && bad == (size_t)-1; i++) {
        if (want->dtype == T_I16) {
            if (((const int16_t *)out)[i] != ((const int16_t *)want->data)[i])
                bad = i;
        } else if (m[48]) {
            if (!f32_same(((const float *)out)[i], ((const float *)want->data)[i]))
                bad = i;
        } else if (!isfinite(((const float *)want->data)[i])) {   /* inf, NaN: exactly */
            if (!f32_same(((const float *)out)[i], ((const float *)want->data)[i]))
                bad = i;
        } else {
            const double d = fabs((double)((const float *)out)[i] -
                                  (double)((const float *)want->data)[i]);
            const double tol = (double)((const float *)c->a[6].data)[i];
            const double e = fabs((double)((const float *)want->data)[i]);
            worst = d / (tol > 0 ? tol : 1e-300) > worst ? d / (tol > 0 ? tol : 1e-300) : worst;
            if (op == RNE_OP_REDUCE && e > 0 && d / e > worst_reduce_rel)
                worst_reduce_rel = d / e;
            if (!(d <= tol))
                bad = i;
        }
    }
    if (bad == (size_t)-1)
        check(1, c->name, "");
    else if (want->dtype == T_I16)
        check(0, c->name, "element %zu: %d, expected %d", bad, ((const int16_t *)out)[bad],
              ((const int16_t *)want->data)[bad]);
    else
        check(0, c->name, "element %zu: %.9g, expected %.9g", bad,
              (double)((const float *)out)[bad], (double)((const float *)want->data)[bad]);
    free(out);
    free(table);
    for (i = 0; i < 4; i++)
        free(in[i]);
}

#endif /* RNE_NO_GRAPH_OPS */

/* ---- the load checks ------------------------------------------------------------------------- */

/* A case as the loader would see it: node record, its values, a tensor table (0: GATHER's
 * table, 1: the q tensor of 24 slots, whose data sits in `blob`). */
typedef struct op_blob {
    rne_node node;
    rne_value vals[5];
    rne_tensor tensors[2];
    rne_header header;
    int32_t blob[64];
} op_blob;

static void make_blob(const op_case *c, op_blob *b)
{
    const int32_t *m = c->meta;
    const uint32_t n_in = (uint32_t)m[3], fmt = (uint32_t)m[1];
    const uint8_t dt = fmt == RNE_FMT_F32 ? RNE_DT_F32 : RNE_DT_S16;
    const int needs_q = fmt != RNE_FMT_F32 && (m[0] == RNE_OP_BINARY || m[0] == RNE_OP_CONCAT ||
                                               m[0] == RNE_OP_REDUCE);
    uint32_t i, j;
    memset(b, 0, sizeof *b);
    b->node.op = (uint16_t)m[0];
    b->node.fmt = (uint16_t)fmt;
    memcpy(b->node.param, m + 4, sizeof b->node.param);
    for (i = 0; i < 8; i++)
        b->node.tensor[i] = -1;
    for (i = 0; i < 4; i++) {
        b->node.in[i] = i < n_in && !(m[49] && i == 1) ? (uint16_t)i : RNE_NONE;
        b->node.out[i] = i == 0 ? (uint16_t)n_in : RNE_NONE;
    }
    for (i = 0; i <= n_in; i++) {
        rne_value *v = &b->vals[i];
        const int32_t *shape = i < n_in ? m + 24 + 4 * i : m + 41;
        v->kind = i < n_in ? RNE_V_TEMP : RNE_V_OUTPUT;
        v->dtype = m[0] == RNE_OP_GATHER && i < n_in ? RNE_DT_S32 : dt;
        v->ndim = (uint8_t)(i < n_in ? m[20 + i] : m[40]);
        for (j = 0; j < 4; j++)
            v->shape[j] = j < v->ndim ? (uint32_t)shape[j] : 1u;
        v->update = v->init = -1;
        v->scale = dt == RNE_DT_S16 ? 0.5f : 0.0f;
    }
    b->header.n_tensors = 2;
    b->tensors[0].dtype = dt;
    b->tensors[0].ndim = 2;
    b->tensors[0].shape[0] = (uint32_t)m[45];
    b->tensors[0].shape[1] = (uint32_t)m[46];
    b->tensors[0].scale = dt == RNE_DT_S16 ? 0.5f : 0.0f;
    b->tensors[1].dtype = RNE_DT_S32;
    b->tensors[1].ndim = 1;
    b->tensors[1].shape[0] = RNE__Q_SLOTS;
    b->tensors[1].offset = 0;
    b->tensors[1].scale = 0.5f;
    memcpy(b->blob, m + 12, 8 * sizeof(int32_t));
    if (m[0] == RNE_OP_GATHER)
        b->node.tensor[RNE_T_W] = 0;
    if (m[49]) {                /* the constant operand: tensor 0 of input 1's shape */
        b->node.tensor[RNE_T_W] = 0;
        b->tensors[0].ndim = b->vals[1].ndim;
        memcpy(b->tensors[0].shape, b->vals[1].shape, sizeof b->tensors[0].shape);
    }
    if (needs_q)
        b->node.tensor[RNE_T_Q] = 1;
}

static int check_blob(const op_blob *b, rne_fault *w)
{
    rne__blobview v;
    memset(&v, 0, sizeof v);
    v.blob = (const uint8_t *)b->blob;
    v.header = &b->header;
    v.tensors = b->tensors;
    w->layer = 0;
    w->tensor = -1;
    w->index = -1;
    w->role = 255;
    w->section = RNE_SEC_LAYER;
    w->field = RNE_FF_NONE;
    return rne__check_op(&v, &b->node, b->vals, w);
}

static void accept_case(const op_case *c)
{
    char name[128];
    op_blob b;
    rne_fault w;
    int rc;
    if (c->meta[0] == RNE_OP_ACT)
        return;
    make_blob(c, &b);
    rc = check_blob(&b, &w);
    snprintf(name, sizeof name, "check_accepts_%s", c->name);
#ifdef RNE_NO_GRAPH_OPS
    check(rc == RNE__AT(RNE_ELAYER, RNE_FF_OP), name, "rc 0x%x, expected ELAYER op", (unsigned)rc);
#else
    check(rc == RNE_OK, name, "refused: status %d field %s index %d", rc & 0xFF,
          rne_fault_field_name(rc >> 8), (int)w.index);
#endif
}

/* One field changed: what, a, b, value; the expected status, field, index and (for a tensor) the
 * role. */
enum { M_OP, M_FMT, M_FLAGS, M_HIDDEN, M_CLIP, M_ACT, M_ALPHA, M_RESERVED, M_PARAM, M_IN, M_OUT,
       M_VSHAPE, M_VNDIM, M_VDTYPE, M_VFLAGS, M_VSCALE, M_TENSOR, M_TDTYPE, M_TNDIM, M_TSHAPE,
       M_TZERO, M_TSCALE, M_Q };

typedef struct mutation {
    const char *base;
    int what, a, b;
    int32_t value;
    int status, field, index, role;   /* role 255: none */
} mutation;

#define N RNE_ESHAPE
#define L RNE_ELAYER
static const mutation MUTATIONS[] = {
    {"f32_binary_add_4", M_OP, 0, 0, 15, L, RNE_FF_OP, -1, 255},
    {"f32_binary_add_4", M_OP, 0, 0, 8, L, RNE_FF_OP, -1, 255},
    {"f32_binary_add_4", M_FMT, 0, 0, RNE_FMT_S8, L, RNE_FF_FMT, -1, 255},
    {"f32_binary_add_4", M_FLAGS, 0, 0, 1, L, RNE_FF_FLAGS, -1, 255},
    {"f32_binary_add_4", M_HIDDEN, 0, 0, 4, L, RNE_FF_HIDDEN, -1, 255},
    {"f32_binary_add_4", M_CLIP, 0, 0, 1, L, RNE_FF_CLIP, -1, 255},
    {"f32_binary_add_4", M_ACT, 1, 2, 1, L, RNE_FF_ACT, 5, 255},
    {"f32_binary_add_4", M_ALPHA, 0, 1, 1, L, RNE_FF_ALPHA, 1, 255},
    {"f32_binary_add_4", M_RESERVED, 1, 0, 1, L, RNE_FF_RESERVED, 1, 255},
    {"f32_binary_add_4", M_PARAM, 0, 0, 9, L, RNE_FF_PARAM, 0, 255},
    {"f32_binary_add_4", M_PARAM, 0, 0, RNE_BIN_HYPOT, L, RNE_FF_PARAM, 0, 255},  /* integer only */
    {"f32_binary_add_4", M_PARAM, 0, 0, RNE_BIN_LOGHYPOT, L, RNE_FF_PARAM, 0, 255},
    {"f32_binary_add_4", M_PARAM, 0, 0, -1, L, RNE_FF_PARAM, 0, 255},
    {"f32_binary_add_4", M_PARAM, 7, 0, 1, L, RNE_FF_PARAM, 7, 255},
    {"f32_binary_add_4", M_IN, 1, 0, RNE_NONE, L, RNE_FF_IN, 1, 255},
    {"f32_binary_add_4", M_IN, 2, 0, 0, L, RNE_FF_IN, 2, 255},
    {"f32_binary_add_4", M_OUT, 0, 0, RNE_NONE, L, RNE_FF_OUT, 0, 255},
    {"f32_binary_add_4", M_OUT, 3, 0, 1, L, RNE_FF_OUT, 3, 255},
    {"f32_binary_add_4", M_VDTYPE, 1, 0, RNE_DT_S16, N, RNE_FF_IN, 1, 255},
    {"f32_binary_add_4", M_VDTYPE, 2, 0, RNE_DT_S16, N, RNE_FF_OUT, -1, 255},
    {"f32_binary_add_4", M_VFLAGS, 0, 0, RNE_VF_LAST, N, RNE_FF_IN, 0, 255},
    {"f32_binary_add_4", M_VFLAGS, 2, 0, RNE_VF_LAST, N, RNE_FF_IN, 0, 255},
    {"f32_binary_add_4", M_VSHAPE, 1, 0, 2, N, RNE_FF_IN, 1, 255},    /* b [2,1] vs y [2,3,4] */
    {"f32_binary_add_4", M_VSHAPE, 0, 2, 3, N, RNE_FF_IN, 0, 255},    /* a [2,1,3] */
    {"f32_binary_add_4", M_VSHAPE, 2, 1, 1, N, RNE_FF_IN, 1, 255},    /* y [2,1,4], b [3,1] */
    {"f32_binary_add_4", M_VNDIM, 2, 0, 4, N, RNE_FF_OUT, -1, 255},
    {"f32_binary_add_4", M_TENSOR, RNE_T_Q, 0, 1, L, RNE_FF_TENSOR, -1, RNE_T_Q},
    {"f32_binary_pow_0", M_FMT, 0, 0, RNE_FMT_S16, L, RNE_FF_PARAM, 0, 255},  /* POW: f32 only */
    {"f32_binary_add_4", M_PARAM, 1, 0, 1, L, RNE_FF_PARAM, 1, 255},  /* left, no constant */
    {"f32_const_add_r0", M_PARAM, 1, 0, 2, L, RNE_FF_PARAM, 1, 255},
    {"f32_const_add_r0", M_IN, 1, 0, 1, L, RNE_FF_IN, 1, 255},       /* a constant and in[1] */
    {"f32_const_add_r0", M_TENSOR, RNE_T_W, 0, 2, L, RNE_FF_TENSOR, -1, RNE_T_W},
    {"f32_const_add_r0", M_TENSOR, RNE_T_W, 0, -1, L, RNE_FF_IN, 1, 255},  /* neither */
    {"f32_const_add_r0", M_TNDIM, 0, 0, 0, N, RNE_FF_NDIM, -1, RNE_T_W},
    {"f32_const_add_r0", M_TNDIM, 0, 0, 5, N, RNE_FF_NDIM, -1, RNE_T_W},
    {"f32_const_add_r0", M_TSHAPE, 0, 0, 0, N, RNE_FF_SHAPE, 0, RNE_T_W},
    {"f32_const_add_r0", M_TSHAPE, 0, 0, 3, N, RNE_FF_SHAPE, 0, RNE_T_W},  /* [3] vs y's 4 */
    {"f32_const_add_r0", M_TDTYPE, 0, 0, RNE_DT_S16, N, RNE_FF_DTYPE, -1, RNE_T_W},
    {"f32_const_add_r0", M_TZERO, 0, 0, 2, N, RNE_FF_ZERO_POINT, -1, RNE_T_W},
    {"q16_const_mul_l1", M_TDTYPE, 0, 0, RNE_DT_F32, N, RNE_FF_DTYPE, -1, RNE_T_W},
    {"q16_const_mul_l1", M_Q, 1, 0, 3, L, RNE_FF_Q_SLOT, 1, RNE_T_Q},
    {"q16_binary_add_0", M_PARAM, 0, 0, RNE_BIN_POW, L, RNE_FF_PARAM, 0, 255},
    {"q16_binary_hypot_0", M_Q, 0, 0, -1, L, RNE_FF_Q_SLOT, 0, RNE_T_Q},      /* m_a in [0, 2^30) */
    {"q16_binary_hypot_0", M_Q, 1, 0, 1 << 30, L, RNE_FF_Q_SLOT, 1, RNE_T_Q},
    {"q16_binary_hypot_0", M_Q, 2, 0, 61, L, RNE_FF_Q_SLOT, 2, RNE_T_Q},      /* an even shift */
    {"q16_binary_hypot_0", M_Q, 2, 0, 64, L, RNE_FF_Q_SLOT, 2, RNE_T_Q},
    {"q16_binary_loghypot_0", M_Q, 0, 0, 1 << 28, L, RNE_FF_Q_SLOT, 0, RNE_T_Q},  /* [0, 2^28) */
    {"q16_binary_loghypot_0", M_Q, 1, 0, -1, L, RNE_FF_Q_SLOT, 1, RNE_T_Q},
    {"q16_binary_loghypot_0", M_Q, 4, 0, (1 << 15) + 1, L, RNE_FF_Q_SLOT, 4, RNE_T_Q}, /* |e| */
    {"q16_binary_loghypot_0", M_Q, 4, 0, -(1 << 15) - 1, L, RNE_FF_Q_SLOT, 4, RNE_T_Q},
    {"q16_binary_loghypot_0", M_Q, 5, 0, -1, L, RNE_FF_Q_SLOT, 5, RNE_T_Q},
    {"q16_binary_loghypot_max_0", M_Q, 5, 0, 1, L, RNE_FF_Q_SLOT, 4, RNE_T_Q},    /* 2^46 + 1 */
    {"q16_binary_loghypot_0", M_Q, 2, 0, 0, L, RNE_FF_Q_SLOT, 2, RNE_T_Q},
    {"q16_binary_loghypot_0", M_Q, 7, 0, 1, L, RNE_FF_Q_SLOT, 7, RNE_T_Q},
    {"q16_binary_add_0", M_Q, 2, 0, 0, L, RNE_FF_Q_SLOT, 2, RNE_T_Q},
    {"q16_binary_add_0", M_Q, 2, 0, 63, L, RNE_FF_Q_SLOT, 2, RNE_T_Q},
    {"q16_binary_add_0", M_Q, 3, 0, 1, L, RNE_FF_Q_SLOT, 3, RNE_T_Q},
    {"q16_binary_add_0", M_Q, 23, 0, -1, L, RNE_FF_Q_SLOT, 23, RNE_T_Q},
    {"q16_binary_add_0", M_TENSOR, RNE_T_Q, 0, -1, L, RNE_FF_TENSOR, -1, RNE_T_Q},
    {"q16_binary_add_0", M_TENSOR, RNE_T_Q, 0, 2, L, RNE_FF_TENSOR, -1, RNE_T_Q},
    {"q16_binary_add_0", M_TENSOR, RNE_T_Q, 0, -2, L, RNE_FF_TENSOR, -1, RNE_T_Q},
    {"q16_binary_add_0", M_TENSOR, RNE_T_LUT, 0, 0, L, RNE_FF_TENSOR, -1, RNE_T_LUT},
    {"q16_binary_add_0", M_TDTYPE, 1, 0, RNE_DT_F32, N, RNE_FF_DTYPE, -1, RNE_T_Q},
    {"q16_binary_add_0", M_TNDIM, 1, 0, 2, N, RNE_FF_NDIM, -1, RNE_T_Q},
    {"q16_binary_add_0", M_TSHAPE, 1, 0, 23, N, RNE_FF_SHAPE, 0, RNE_T_Q},
    {"q16_binary_add_0", M_TZERO, 1, 0, 3, N, RNE_FF_ZERO_POINT, -1, RNE_T_Q},
    {"q16_binary_add_0", M_VDTYPE, 0, 0, RNE_DT_F32, N, RNE_FF_IN, 0, 255},
    {"q16_binary_mul_0", M_Q, 1, 0, 5, L, RNE_FF_Q_SLOT, 1, RNE_T_Q},
    {"q16_binary_div_0", M_Q, 1, 0, 5, L, RNE_FF_Q_SLOT, 1, RNE_T_Q},
    {"q16_binary_div_0", M_Q, 2, 0, 62, RNE_OK, RNE_FF_NONE, -1, 255},
    {"q16_binary_div_0", M_Q, 2, 0, 63, L, RNE_FF_Q_SLOT, 2, RNE_T_Q},
    {"q16_binary_max_0", M_Q, 2, 0, 62, RNE_OK, RNE_FF_NONE, -1, 255},
    {"f32_concat_2", M_PARAM, 0, 0, 2, L, RNE_FF_PARAM, 0, 255},
    {"f32_concat_2", M_PARAM, 1, 0, 1, L, RNE_FF_PARAM, 1, 255},
    {"f32_concat_2", M_IN, 2, 0, RNE_NONE, L, RNE_FF_IN, 3, 255},   /* a gap before in[3] */
    {"f32_concat_2", M_VSHAPE, 2, 1, 4, N, RNE_FF_IN, 2, 255},
    {"f32_concat_2", M_VNDIM, 3, 0, 1, N, RNE_FF_IN, 3, 255},
    {"f32_concat_2", M_VSHAPE, 4, 0, 6, N, RNE_FF_OUT, 0, 255},
    {"f32_concat_0", M_IN, 1, 0, RNE_NONE, L, RNE_FF_IN, 1, 255},
    {"q16_concat_rand_1", M_Q, 5, 0, 0, L, RNE_FF_Q_SLOT, 5, RNE_T_Q},
    {"q16_concat_rand_1", M_Q, 6, 0, 1, L, RNE_FF_Q_SLOT, 6, RNE_T_Q},
    {"q16_concat_rand_1", M_Q, 7, 0, 1, L, RNE_FF_Q_SLOT, 7, RNE_T_Q},
    {"q16_concat_rand_1", M_Q, 8, 0, 1, L, RNE_FF_Q_SLOT, 8, RNE_T_Q},
    {"q16_concat_rand_1", M_Q, 3, 0, 63, L, RNE_FF_Q_SLOT, 3, RNE_T_Q},
    {"f32_transpose_1", M_PARAM, 1, 0, 2, L, RNE_FF_PARAM, 1, 255},
    {"f32_transpose_1", M_PARAM, 2, 0, 3, L, RNE_FF_PARAM, 2, 255},
    {"f32_transpose_1", M_PARAM, 0, 0, -1, L, RNE_FF_PARAM, 0, 255},
    {"f32_transpose_1", M_PARAM, 3, 0, 1, L, RNE_FF_PARAM, 3, 255},
    {"f32_transpose_1", M_VSHAPE, 1, 1, 3, N, RNE_FF_OUT, 1, 255},
    {"f32_transpose_1", M_VNDIM, 1, 0, 2, N, RNE_FF_OUT, -1, 255},
    {"q16_transpose_1", M_VSCALE, 1, 0, 1, L, RNE_FF_SCALE, 0, 255},
    {"f32_slice_1", M_PARAM, 0, 0, 2, L, RNE_FF_PARAM, 0, 255},
    {"f32_slice_1", M_PARAM, 1, 0, 4, L, RNE_FF_PARAM, 1, 255},
    {"f32_slice_1", M_PARAM, 1, 0, -1, L, RNE_FF_PARAM, 1, 255},
    {"f32_slice_1", M_PARAM, 2, 0, 5, L, RNE_FF_PARAM, 2, 255},
    {"f32_slice_1", M_PARAM, 2, 0, 1, L, RNE_FF_PARAM, 2, 255},
    {"f32_slice_1", M_PARAM, 3, 0, 0, L, RNE_FF_PARAM, 3, 255},
    {"f32_slice_1", M_PARAM, 3, 0, 1, N, RNE_FF_OUT, 0, 255},     /* 3 rows, not 2 */
    {"f32_slice_1", M_PARAM, 4, 0, 1, L, RNE_FF_PARAM, 4, 255},
    {"f32_slice_1", M_VSHAPE, 1, 1, 5, N, RNE_FF_OUT, 1, 255},
    {"q16_slice_1", M_VSCALE, 1, 0, 1, L, RNE_FF_SCALE, 0, 255},
    {"f32_copy_0", M_VSHAPE, 1, 0, 11, N, RNE_FF_OUT, -1, 255},
    {"f32_copy_0", M_PARAM, 0, 0, 1, L, RNE_FF_PARAM, 0, 255},
    {"f32_copy_0", M_IN, 1, 0, 0, L, RNE_FF_IN, 1, 255},
    {"q16_copy_0", M_VSCALE, 1, 0, 1, L, RNE_FF_SCALE, 0, 255},
    {"f32_gather_0", M_PARAM, 0, 0, 0, L, RNE_FF_PARAM, 0, 255},
    {"f32_gather_0", M_PARAM, 0, 0, 11, N, RNE_FF_SHAPE, 0, RNE_T_W},
    {"f32_gather_0", M_TSHAPE, 0, 1, 4, N, RNE_FF_SHAPE, 1, RNE_T_W},
    {"f32_gather_0", M_TDTYPE, 0, 0, RNE_DT_S16, N, RNE_FF_DTYPE, -1, RNE_T_W},
    {"f32_gather_0", M_TNDIM, 0, 0, 3, N, RNE_FF_NDIM, -1, RNE_T_W},
    {"f32_gather_0", M_TZERO, 0, 0, 1, N, RNE_FF_ZERO_POINT, -1, RNE_T_W},
    {"f32_gather_0", M_TENSOR, RNE_T_W, 0, -1, L, RNE_FF_TENSOR, -1, RNE_T_W},
    {"f32_gather_0", M_VDTYPE, 0, 0, RNE_DT_F32, N, RNE_FF_IN, 0, 255},
    {"f32_gather_0", M_VNDIM, 0, 0, 2, N, RNE_FF_IN, 0, 255},
    {"f32_gather_0", M_VNDIM, 1, 0, 1, N, RNE_FF_OUT, -1, 255},
    {"f32_gather_0", M_VSHAPE, 1, 0, 5, N, RNE_FF_OUT, 0, 255},
    {"q16_gather_0", M_TSCALE, 0, 0, 1, N, RNE_FF_SCALE, -1, RNE_T_W},
    {"q16_gather_0", M_TENSOR, RNE_T_Q, 0, 1, L, RNE_FF_TENSOR, -1, RNE_T_Q},
    {"f32_reduce_sum_4", M_PARAM, 0, 0, 4, L, RNE_FF_PARAM, 0, 255},
    {"f32_reduce_sum_4", M_PARAM, 1, 0, 0, L, RNE_FF_PARAM, 1, 255},
    {"f32_reduce_sum_4", M_PARAM, 1, 0, 8, L, RNE_FF_PARAM, 1, 255},
    {"f32_reduce_sum_4", M_PARAM, 1, 0, 1, N, RNE_FF_OUT, -1, 255},  /* y [3] lacks the 4 */
    {"f32_reduce_sum_4", M_VSHAPE, 1, 0, 4, N, RNE_FF_OUT, 0, 255},
    {"f32_reduce_sum_4", M_PARAM, 2, 0, 1, L, RNE_FF_PARAM, 2, 255},
    /* m = INT32_MIN at shift 62: 2^15 n 2^31 + 2^61 <= INT64_MAX for n <= 3 * 2^15 - 1 */
    {"q16_reduce_sum_edge_7", M_VSHAPE, 0, 0, (3 << 15) - 1, RNE_OK, RNE_FF_NONE, -1, 255},
    {"q16_reduce_sum_edge_7", M_VSHAPE, 0, 0, 3 << 15, L, RNE_FF_MULTIPLIER, 0, RNE_T_Q},
    {"q16_reduce_sum_edge_7", M_Q, 1, 0, 0, L, RNE_FF_Q_SLOT, 1, RNE_T_Q},
    {"q16_reduce_sum_edge_7", M_Q, 2, 0, 1, L, RNE_FF_Q_SLOT, 2, RNE_T_Q},
    {"q16_reduce_max_rand_1", M_Q, 1, 0, 63, L, RNE_FF_Q_SLOT, 1, RNE_T_Q},
};
#undef N
#undef L

static void mutate(op_blob *b, const mutation *mu)
{
    rne_node *n = &b->node;
    switch (mu->what) {
    case M_OP: n->op = (uint16_t)mu->value; break;
    case M_FMT: n->fmt = (uint16_t)mu->value; break;
    case M_FLAGS: n->flags = (uint32_t)mu->value; break;
    case M_HIDDEN: n->hidden = (uint32_t)mu->value; break;
    case M_CLIP: n->clip = (float)mu->value; break;
    case M_ACT: n->act[mu->a][mu->b] = (uint8_t)mu->value; break;
    case M_ALPHA: n->alpha[mu->a][mu->b] = (float)mu->value; break;
    case M_RESERVED: n->reserved[mu->a] = (uint32_t)mu->value; break;
    case M_PARAM: n->param[mu->a] = mu->value; break;
    case M_IN: n->in[mu->a] = (uint16_t)mu->value; break;
    case M_OUT: n->out[mu->a] = (uint16_t)mu->value; break;
    case M_VSHAPE: b->vals[mu->a].shape[mu->b] = (uint32_t)mu->value; break;
    case M_VNDIM: b->vals[mu->a].ndim = (uint8_t)mu->value; break;
    case M_VDTYPE: b->vals[mu->a].dtype = (uint8_t)mu->value; break;
    case M_VFLAGS: b->vals[mu->a].flags = (uint8_t)mu->value; break;
    case M_VSCALE: b->vals[mu->a].scale = (float)mu->value; break;
    case M_TENSOR: n->tensor[mu->a] = mu->value; break;
    case M_TDTYPE: b->tensors[mu->a].dtype = (uint8_t)mu->value; break;
    case M_TNDIM: b->tensors[mu->a].ndim = (uint8_t)mu->value; break;
    case M_TSHAPE: b->tensors[mu->a].shape[mu->b] = (uint32_t)mu->value; break;
    case M_TZERO: b->tensors[mu->a].zero_point = mu->value; break;
    case M_TSCALE: b->tensors[mu->a].scale = (float)mu->value; break;
    default: b->blob[mu->a] = mu->value; break;         /* M_Q */
    }
}

static void refusals(const op_case *cases, size_t n_cases)
{
    size_t i, j;
    for (i = 0; i < sizeof MUTATIONS / sizeof MUTATIONS[0]; i++) {
        const mutation *mu = &MUTATIONS[i];
        char name[160];
        op_blob b;
        rne_fault w;
        int rc, expect = RNE__AT(mu->status, mu->field);
        snprintf(name, sizeof name, "refuse_%s_%zu", mu->base, i);
        for (j = 0; j < n_cases && strcmp(cases[j].name, mu->base) != 0; j++)
            continue;
        if (j == n_cases) {
            check(0, name, "no case %s", mu->base);
            continue;
        }
        make_blob(&cases[j], &b);
        mutate(&b, mu);
        rc = check_blob(&b, &w);
#ifdef RNE_NO_GRAPH_OPS
        expect = RNE__AT(RNE_ELAYER, RNE_FF_OP);
        check(rc == expect, name, "rc 0x%x", (unsigned)rc);
#else
        if (mu->status == RNE_OK)
            expect = RNE_OK;
        check(rc == expect && (rc == RNE_OK || w.index == mu->index) &&
                  (mu->role == 255 || (w.role == mu->role && w.tensor == b.node.tensor[mu->role])) &&
                  (w.section == (mu->field == RNE_FF_Q_SLOT || mu->field == RNE_FF_MULTIPLIER
                                     ? RNE_SEC_DATA : RNE_SEC_LAYER)),
              name, "status %d field %s index %d role %u section %u; expected status %d field %s "
              "index %d role %d", rc & 0xFF, rne_fault_field_name(rc >> 8), (int)w.index,
              (unsigned)w.role, (unsigned)w.section, mu->status, rne_fault_field_name(mu->field),
              mu->index, mu->role);
#endif
    }
}

/* ---- random nodes: whatever rne__check_op accepts runs in bounds and without UB ---------------- */

#ifndef RNE_NO_GRAPH_OPS
static size_t val_features(const rne_value *v)
{
    return rne__op_count(v->shape, v->ndim);
}

static uint32_t fz_pick(uint32_t *s, uint32_t n)
{
    return lcg(s) % n;
}

static void fz_shape(uint32_t *s, rne_value *v)
{
    uint32_t i;
    v->ndim = (uint8_t)(1 + fz_pick(s, 4));
    for (i = 0; i < 4; i++)
        v->shape[i] = i < v->ndim ? 1 + fz_pick(s, 4) : 1u;
}

static int32_t fz_q(uint32_t *s)
{
    switch (fz_pick(s, 6)) {
    case 0: return INT32_MIN;
    case 1: return INT32_MAX;
    case 2: return (int32_t)fz_pick(s, 64);
    case 3: return 1 + (int32_t)fz_pick(s, 62);
    case 4: return 0;
    default: return (int32_t)(lcg(s) << 8 ^ lcg(s));
    }
}

/* y's shape as the op would make it (most of the time), or something near it */
static void fz_out(uint32_t *s, const op_blob *b, rne_value *y, uint32_t n_in)
{
    const rne_node *n = &b->node;
    const rne_value *x = &b->vals[0];
    uint32_t i, j, nd = 0;
    *y = *x;
    y->kind = RNE_V_OUTPUT;
    y->dtype = n->fmt == RNE_FMT_F32 ? RNE_DT_F32 : RNE_DT_S16;
    y->scale = n->fmt == RNE_FMT_F32 ? 0.0f : 0.5f;
    switch (n->op) {
    case RNE_OP_BINARY: {
        const rne_value *v = &b->vals[1];
        nd = x->ndim > v->ndim ? x->ndim : v->ndim;
        y->ndim = (uint8_t)nd;
        for (i = 0; i < 4; i++) {
            const uint32_t da = i < nd && i + x->ndim >= nd ? x->shape[i + x->ndim - nd] : 1u;
            const uint32_t db = i < nd && i + v->ndim >= nd ? v->shape[i + v->ndim - nd] : 1u;
            y->shape[i] = da > db ? da : db;
        }
        break;
    }
    case RNE_OP_CONCAT:
        if (n->param[0] >= 0 && n->param[0] < 4)
            for (j = 1; j < n_in; j++)
                y->shape[n->param[0]] += b->vals[j].shape[n->param[0]];
        break;
    case RNE_OP_TRANSPOSE:
        for (i = 0; i < x->ndim; i++)
            if (n->param[i] >= 0 && n->param[i] < 4)
                y->shape[i] = x->shape[n->param[i]];
        break;
    case RNE_OP_GATHER:
        y->ndim = 2;
        y->shape[0] = x->shape[0];
        y->shape[1] = b->tensors[0].shape[1];
        y->shape[2] = y->shape[3] = 1;
        break;
    case RNE_OP_REDUCE:
        for (i = 0; i < x->ndim; i++)
            if ((n->param[1] >> i) & 1)
                y->shape[i] = 1;
        break;
    case RNE_OP_SLICE:
        if (n->param[0] >= 0 && n->param[0] < 4 && n->param[3] > 0 && n->param[2] > n->param[1])
            y->shape[n->param[0]] = (uint32_t)((n->param[2] - n->param[1] + n->param[3] - 1) /
                                               n->param[3]);
        break;
    default: /* COPY */
        y->ndim = 1;
        y->shape[0] = (uint32_t)val_features(x);
        y->shape[1] = y->shape[2] = y->shape[3] = 1;
        break;
    }
    if (fz_pick(s, 10) == 0)
        y->shape[fz_pick(s, 4)] = 1 + fz_pick(s, 5);
}

static void fuzz_ops(void)
{
    static const uint16_t ops[7] = {RNE_OP_SLICE, RNE_OP_BINARY, RNE_OP_CONCAT, RNE_OP_TRANSPOSE,
                                    RNE_OP_COPY, RNE_OP_GATHER, RNE_OP_REDUCE};
    uint32_t s = 777u, iter, accepted = 0, per_op[15][2], least = UINT32_MAX, n_const = 0;
    memset(per_op, 0, sizeof per_op);
    for (iter = 0; iter < 200000; iter++) {
        op_blob b;
        rne_fault w;
        rne_model_layer node;
        rne__opcall k;
        void *in[4] = {NULL, NULL, NULL, NULL}, *out, *table = NULL;
        const int integer = (int)fz_pick(&s, 2);
        const size_t es = integer ? 2u : 4u, rows = 1 + fz_pick(&s, 3);
        uint32_t i, n_in, j;
        int konst;
        memset(&b, 0, sizeof b);
        b.node.op = ops[fz_pick(&s, 7)];
        b.node.fmt = (uint16_t)(integer ? RNE_FMT_S16 : RNE_FMT_F32);
        n_in = b.node.op == RNE_OP_BINARY ? 2u : b.node.op == RNE_OP_CONCAT ? 2 + fz_pick(&s, 3) : 1u;
        for (i = 0; i < 8; i++) {
            b.node.tensor[i] = -1;
            b.node.param[i] = fz_pick(&s, 8) == 0 ? (int32_t)fz_pick(&s, 9) - 2 : 0;
        }
        switch (b.node.op) {
        case RNE_OP_BINARY: b.node.param[0] = (int32_t)fz_pick(&s, 8); break;
        case RNE_OP_REDUCE:
            b.node.param[0] = (int32_t)fz_pick(&s, 4);
            b.node.param[1] = (int32_t)fz_pick(&s, 17);
            break;
        case RNE_OP_TRANSPOSE:
            for (i = 0; i < 4; i++)
                b.node.param[i] = (int32_t)((i + fz_pick(&s, 2)) % 4);
            break;
        case RNE_OP_SLICE:
            b.node.param[0] = (int32_t)fz_pick(&s, 4);
            b.node.param[1] = (int32_t)fz_pick(&s, 4);
            b.node.param[2] = b.node.param[1] + 1 + (int32_t)fz_pick(&s, 4);
            b.node.param[3] = 1 + (int32_t)fz_pick(&s, 3);
            break;
        case RNE_OP_GATHER: b.node.param[0] = 1 + (int32_t)fz_pick(&s, 5); break;
        default: b.node.param[0] = (int32_t)fz_pick(&s, 4); break;
        }
        for (i = 0; i < 4; i++) {
            b.node.in[i] = i < n_in ? (uint16_t)i : RNE_NONE;
            b.node.out[i] = i == 0 ? (uint16_t)n_in : RNE_NONE;
        }
        for (i = 0; i < n_in; i++) {
            fz_shape(&s, &b.vals[i]);
            b.vals[i].dtype = b.node.op == RNE_OP_GATHER ? RNE_DT_S32
                                                           : integer ? RNE_DT_S16 : RNE_DT_F32;
            b.vals[i].scale = integer ? 0.5f : 0.0f;
            if (b.node.op == RNE_OP_CONCAT && i > 0 && fz_pick(&s, 4) != 0) {
                const uint32_t ax = (uint32_t)b.node.param[0] & 3u, keep = b.vals[i].shape[ax];
                memcpy(b.vals[i].shape, b.vals[0].shape, sizeof b.vals[i].shape);
                b.vals[i].ndim = b.vals[0].ndim;
                b.vals[i].shape[ax] = ax < b.vals[0].ndim ? keep : 1u;
            }
        }
        if (b.node.op == RNE_OP_GATHER) {
            b.vals[0].ndim = 1;
            b.vals[0].shape[1] = b.vals[0].shape[2] = b.vals[0].shape[3] = 1;
        }
        b.header.n_tensors = 2;
        b.tensors[0].dtype = integer ? RNE_DT_S16 : RNE_DT_F32;
        b.tensors[0].ndim = 2;
        b.tensors[0].shape[0] = (uint32_t)(b.node.param[0] > 0 ? b.node.param[0] : 1);
        b.tensors[0].shape[1] = 1 + fz_pick(&s, 4);
        b.tensors[0].scale = integer ? 0.5f : 0.0f;
        b.tensors[1].dtype = RNE_DT_S32;
        b.tensors[1].ndim = 1;
        b.tensors[1].shape[0] = RNE__Q_SLOTS;
        /* the q slots the op reads (multipliers anywhere in int32, shifts 1..62), the rest 0;
         * now and then one slot anything */
        if (b.node.op == RNE_OP_CONCAT)
            for (i = 0; i < n_in; i++) {
                b.blob[2 * i] = fz_q(&s);
                b.blob[2 * i + 1] = 1 + (int32_t)fz_pick(&s, 62);
            }
        else if (b.node.op == RNE_OP_REDUCE) {
            b.blob[0] = fz_q(&s);
            b.blob[1] = 1 + (int32_t)fz_pick(&s, 62);
        } else if (b.node.op == RNE_OP_BINARY) {
            b.blob[0] = fz_q(&s);
            b.blob[1] = b.node.param[0] == RNE_BIN_MUL || b.node.param[0] == RNE_BIN_DIV ? 0 : fz_q(&s);
            b.blob[2] = 1 + (int32_t)fz_pick(&s, 62);
        }
        if (fz_pick(&s, 8) == 0)
            b.blob[fz_pick(&s, 8)] = fz_q(&s);
        if (b.node.op == RNE_OP_GATHER)
            b.node.tensor[RNE_T_W] = 0;
        konst = b.node.op == RNE_OP_BINARY && fz_pick(&s, 3) == 0;
        if (konst) {            /* input 1 becomes a constant operand, on either side */
            b.node.tensor[RNE_T_W] = 0;
            b.node.in[1] = RNE_NONE;
            b.node.param[1] = (int32_t)fz_pick(&s, 2);
            b.tensors[0].ndim = b.vals[1].ndim;
            memcpy(b.tensors[0].shape, b.vals[1].shape, sizeof b.tensors[0].shape);
        }
        if (integer && (b.node.op == RNE_OP_BINARY || b.node.op == RNE_OP_CONCAT ||
                        b.node.op == RNE_OP_REDUCE))
            b.node.tensor[RNE_T_Q] = 1;
        fz_out(&s, &b, &b.vals[n_in], n_in);
        if (check_blob(&b, &w) != RNE_OK)
            continue;
        accepted++;
        per_op[b.node.op][integer]++;
        /* run it on buffers of exactly the proved sizes */
        memset(&node, 0, sizeof node);
        memset(&k, 0, sizeof k);
        node.op = b.node.op;
        node.fmt = b.node.fmt;
        memcpy(node.q, b.blob, sizeof node.q);
        k.node = &node;
        k.param = b.node.param;
        k.rows = rows;
        for (i = 0; i < n_in; i++) {
            const size_t f = (size_t)val_features(&b.vals[i]);
            const size_t ies = b.node.op == RNE_OP_GATHER ? 4u : es;
            const size_t nrows = konst && i == 1 ? 1u : rows;     /* a constant: one row */
            in[i] = exact_alloc(nrows * f * ies);
            if (konst && i == 1)
                node.data[RNE_T_W] = in[i];
            for (j = 0; j < nrows * f; j++) {
                if (b.node.op == RNE_OP_GATHER)
                    ((int32_t *)in[i])[j] = (int32_t)fz_pick(&s, (uint32_t)b.node.param[0] + 3) - 1;
                else if (integer)
                    ((int16_t *)in[i])[j] = (int16_t)(fz_pick(&s, 4) == 0
                                                          ? (fz_pick(&s, 2) ? INT16_MIN : INT16_MAX)
                                                          : (int32_t)fz_pick(&s, 65536) - 32768);
                else
                    ((float *)in[i])[j] = lcg_float(&s);
            }
            k.in[i] = in[i];
            k.in_ndim[i] = b.vals[i].ndim;
            memcpy(k.in_shape[i], b.vals[i].shape, sizeof k.in_shape[i]);
        }
        if (b.node.op == RNE_OP_GATHER) {
            const size_t tn = (size_t)b.tensors[0].shape[0] * b.tensors[0].shape[1];
            table = exact_alloc(tn * es);
            node.data[RNE_T_W] = table;
        }
        k.out_ndim = b.vals[n_in].ndim;
        memcpy(k.out_shape, b.vals[n_in].shape, sizeof k.out_shape);
        out = exact_alloc(rows * (size_t)val_features(&b.vals[n_in]) * es);
        n_const += (uint32_t)konst;
        k.out = out;
        if (integer)
            rne__op_int(&k);
        else
            rne__op_f32(&k);
        free(out);
        free(table);
        for (i = 0; i < 4; i++)
            free(in[i]);
    }
    printf("note fuzz_ops: %u of 200000 random nodes accepted and run; f32 / int16 per op:",
           (unsigned)accepted);
    for (iter = 0; iter < 7; iter++) {
        const uint32_t *c = per_op[ops[iter]];
        printf(" %u: %u / %u", (unsigned)ops[iter], (unsigned)c[0], (unsigned)c[1]);
        least = c[0] < least ? c[0] : least;
        least = c[1] < least ? c[1] : least;
    }
    printf("; BINARY with a constant operand: %u\n", (unsigned)n_const);
    /* a fault would have stopped the program (ASan, UBSan): here, every op and format ran often */
    check(least >= 100 && n_const >= 100,
          "fuzz_ops_accepted_nodes_run_in_bounds",
          "an op or format ran %u times, a constant operand %u", (unsigned)least,
          (unsigned)n_const);
}
#endif

/* ---- the SIMD primitives against their references; rne__check_ids ---------------------------- */

static void simd_bin(void)
{
    uint32_t s = 12345u;
    size_t n, off;
    int mul, fails = 0;
    static const int32_t ms[][3] = {{1 << 14, 1 << 14, 14}, {INT32_MIN, INT32_MIN, 62},
                                    {INT32_MAX, -INT32_MAX, 1}, {-77777, 123457, 20},
                                    {INT32_MAX, INT32_MAX, 62}, {3, -5, 2}};
    for (n = 0; n <= 100; n++)
        for (off = 0; off < 4; off++)
            for (mul = 0; mul < 2; mul++) {
                const size_t len = n + off + 1;
                float *a = (float *)exact_alloc(len * 4), *b = (float *)exact_alloc(len * 4);
                float *y = (float *)exact_alloc(len * 4), *r = (float *)exact_alloc(len * 4);
                int16_t *qa = (int16_t *)exact_alloc(len * 2), *qb = (int16_t *)exact_alloc(len * 2);
                int16_t *qy = (int16_t *)exact_alloc(len * 2), *qr = (int16_t *)exact_alloc(len * 2);
                size_t i, t;
                for (i = 0; i < len; i++) {
                    a[i] = lcg_float(&s) * 1e3f;
                    b[i] = lcg_float(&s) * 1e-3f;
                    qa[i] = (int16_t)(int32_t)(lcg(&s) & 0xFFFF);
                    qb[i] = (int16_t)(int32_t)(lcg(&s) & 0xFFFF);
                    if (i % 7 == 3)
                        qa[i] = INT16_MIN;
                    if (i % 5 == 1)
                        qb[i] = i % 2 ? INT16_MIN : INT16_MAX;
                }
                y[off + n] = r[off + n] = 42.0f;
                rne__bin_f32(y + off, a + off, b + off, n, mul);
                rne__bin_f32_ref(r + off, a + off, b + off, n, mul);
                fails += memcmp(y + off, r + off, (n + 1) * 4) != 0;
                for (t = 0; t < sizeof ms / sizeof ms[0]; t++) {
                    qy[off + n] = qr[off + n] = 4242;
                    rne__bin_s16(qy + off, qa + off, qb + off, n, mul, ms[t][0], ms[t][1],
                                 (unsigned)ms[t][2]);
                    rne__bin_s16_ref(qr + off, qa + off, qb + off, n, mul, ms[t][0], ms[t][1],
                                     (unsigned)ms[t][2]);
                    fails += memcmp(qy + off, qr + off, (n + 1) * 2) != 0;
                    for (i = 0; i < n && t == 0 && !mul; i++)   /* the oracle formula */
                        fails += qr[off + i] != rne__sat16(rne__rshr(
                                                    (int64_t)qa[off + i] * ms[t][0] +
                                                    (int64_t)qb[off + i] * ms[t][1], 14));
                }
                free(a), free(b), free(y), free(r), free(qa), free(qb), free(qy), free(qr);
            }
    printf("note SIMD variants: f32 %s, integer %s\n", rne__f32_simd(), rne__q_simd());
    check(fails == 0, "simd_bin_matches_reference", "%d mismatches", fails);
}

static void ids(void)
{
    const int32_t good[4] = {0, 9, 3, 9}, neg[3] = {0, -1, 2}, big[3] = {0, 10, 2},
                  huge[2] = {INT32_MAX, INT32_MIN};
    check(rne__check_ids(good, 4, 10) == RNE_OK && rne__check_ids(good, 0, 0) == RNE_OK &&
              rne__check_ids(neg, 3, 10) == RNE_EINPUT && rne__check_ids(big, 3, 10) == RNE_EINPUT &&
              rne__check_ids(huge, 1, 10) == RNE_EINPUT && rne__check_ids(huge + 1, 1, 10) == RNE_EINPUT,
          "check_ids", "an id outside [0, vocab) passed or one inside failed");
}

int main(int argc, char **argv)
{
    char path[1024];
    buf file;
    const uint8_t *p, *end;
    uint32_t n_cases = 0, i;
    op_case *cases;
    if (argc != 2) {
        fprintf(stderr, "usage: %s DIR (tests/data/ops)\n", argv[0]);
        return 2;
    }
    snprintf(path, sizeof path, "%s/ops.bin", argv[1]);
    if (!read_file(path, &file, 0) || file.size < 8 || memcmp(file.p, "RNOP", 4) != 0) {
        check(0, "ops_bin", "cannot read %s (python tests/make_op_vectors.py writes it)", path);
        return test_summary();
    }
    end = file.p + file.size;
    p = rd_u32(file.p + 4, end, &n_cases);
    cases = (op_case *)xmalloc((size_t)n_cases * sizeof *cases);
    for (i = 0; i < n_cases && p != NULL; i++)
        p = read_case(p, end, &cases[i]);
    check(p == end && n_cases > 0, "ops_bin", "%s: malformed after case %u", path, (unsigned)i);
    for (i = 0; p == end && i < n_cases; i++) {
#ifndef RNE_NO_GRAPH_OPS
        run_case(&cases[i]);
#endif
        accept_case(&cases[i]);
    }
    if (p == end)
        refusals(cases, n_cases);
#ifndef RNE_NO_GRAPH_OPS
    printf("note largest relative error of an f32 REDUCE SUM / MEAN against float64: %.3g\n",
           worst_reduce_rel);
    fuzz_ops();
#endif
    simd_bin();
    ids();
    free(cases);
    buf_free(&file);
    return test_summary();
}
