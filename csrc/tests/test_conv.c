/*
 * test_conv.c - the conv kernels (csrc/conv.h: CONV, CONV_T; f32 and integer) called directly
 * through rne__convcall with hand-built rne_model_layer copies, and their load checks
 * (rne__check_conv) on hand-built records.
 *
 *   test_conv DIR        DIR/conv.bin: the vectors of tests/make_conv_vectors.py
 *
 * - every case: the whole sequence in one chunk, then in chunks of 1, 2 and 3 steps (the cache
 *   carried between chunks), each chunk's input, output, cache and work allocated to size (`make
 *   asan` sees a byte read or written outside them); the output compared with the expected one
 *   exactly (integer cases: conv_q's) or within the case's bound per element (f32: a float64
 *   direct convolution), and every chunked run bit for bit equal to the one-chunk run (the cache
 *   across steps equals the whole-sequence conv); the largest f32 error is printed;
 * - rne__check_conv accepts every case's node, and refuses one changed field at a time with the
 *   status, field and index conv_check.c documents (MUTATIONS).
 * Built with -DRNE_NO_CONV (library too), it checks that rne__check_conv refuses every case with
 * RNE_ELAYER, field op, instead.
 */
#define _POSIX_C_SOURCE 200809L

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "conv.h"
#include "qvec.h"
#include "testutil.h"

#define META 24
enum { T_F32 = 0, T_I16 = 1, T_I32 = 2, T_I8 = 3 };
enum { A_X, A_W, A_B, A_Q, A_Y, A_TOL, N_ARR };

typedef struct cv_array {
    uint32_t dtype, count;
    const void *data;
} cv_array;

typedef struct cv_case {
    char name[96];
    int32_t meta[META];
    cv_array a[N_ARR];
} cv_case;

static const uint8_t *rd_u32(const uint8_t *p, const uint8_t *end, uint32_t *v)
{
    if (p == NULL || end - p < 4)
        return NULL;
    memcpy(v, p, 4);
    return p + 4;
}

static size_t esize_of(uint32_t dtype)
{
    return dtype == T_I16 ? 2u : dtype == T_I8 ? 1u : 4u;
}

static const uint8_t *read_case(const uint8_t *p, const uint8_t *end, cv_case *c)
{
    uint32_t len, i;
    p = rd_u32(p, end, &len);
    if (p == NULL || len >= sizeof c->name || (size_t)(end - p) < ((len + 3u) & ~3u))
        return NULL;
    memcpy(c->name, p, len);
    c->name[len] = '\0';
    p += (len + 3u) & ~3u;
    if ((size_t)(end - p) < sizeof c->meta)
        return NULL;
    memcpy(c->meta, p, sizeof c->meta);
    p += sizeof c->meta;
    for (i = 0; i < N_ARR; i++) {
        size_t n;
        p = rd_u32(p, end, &c->a[i].dtype);
        p = rd_u32(p, end, &c->a[i].count);
        if (p == NULL || c->a[i].dtype > T_I8)
            return NULL;
        n = ((size_t)c->a[i].count * esize_of(c->a[i].dtype) + 3u) & ~(size_t)3;
        if ((size_t)(end - p) < n)
            return NULL;
        c->a[i].data = c->a[i].count ? p : NULL;
        p += n;
    }
    return p;
}

/* ---- the node as the loader would copy it, and a blob for rne__check_conv ---------------------- */

typedef struct cv_blob {
    rne_node node;
    rne_value vals[2];
    rne_tensor tensors[3];
    rne_header header;
    uint8_t *blob;                  /* W, bias, q: each 16-aligned */
} cv_blob;

static void make_blob(const cv_case *c, cv_blob *b)
{
    const int32_t *m = c->meta;
    const uint8_t dt = m[1] == RNE_FMT_F32 ? RNE_DT_F32 : RNE_DT_S16;
    static const uint8_t rne_dt[4] = {RNE_DT_F32, RNE_DT_S16, RNE_DT_S32, RNE_DT_S8};
    size_t off = 0, sizes[3];
    uint32_t i;
    memset(b, 0, sizeof *b);
    b->node.op = (uint16_t)m[0];
    b->node.fmt = (uint16_t)m[1];
    memcpy(b->node.param, m + 9, sizeof b->node.param);
    for (i = 0; i < 8; i++)
        b->node.tensor[i] = -1;
    for (i = 0; i < 4; i++) {
        b->node.in[i] = i == 0 ? 0 : RNE_NONE;
        b->node.out[i] = i == 0 ? 1 : RNE_NONE;
    }
    for (i = 0; i < 2; i++) {
        rne_value *v = &b->vals[i];
        v->kind = i == 0 ? RNE_V_TEMP : RNE_V_OUTPUT;
        v->dtype = dt;
        v->ndim = (uint8_t)m[4];
        v->shape[0] = (uint32_t)(i == 0 ? m[5] : m[7]);
        v->shape[1] = m[4] == 2 ? (uint32_t)(i == 0 ? m[6] : m[8]) : 1u;
        v->shape[2] = v->shape[3] = 1;
        v->update = v->init = -1;
        v->scale = dt == RNE_DT_S16 ? 0.5f : 0.0f;
    }
    for (i = 0; i < 3; i++) {
        const cv_array *a = &c->a[A_W + i];
        sizes[i] = (size_t)a->count * esize_of(a->dtype);
    }
    b->blob = (uint8_t *)exact_alloc(round16(sizes[0]) + round16(sizes[1]) + round16(sizes[2]));
    b->header.n_tensors = 3;
    for (i = 0; i < 3; i++) {
        const cv_array *a = &c->a[A_W + i];
        rne_tensor *t = &b->tensors[i];
        if (a->count == 0)
            continue;
        memcpy(b->blob + off, a->data, sizes[i]);
        t->dtype = rne_dt[a->dtype];
        t->offset = (uint32_t)off;
        t->nbytes = (uint32_t)sizes[i];
        t->ndim = 1;
        t->shape[0] = a->count;
        b->node.tensor[i == 0 ? RNE_T_W : i == 1 ? RNE_T_B : RNE_T_Q] = (int32_t)i;
        off += round16(sizes[i]);
    }
    /* W's shape: CONV [K, C_out], CONV_T [C_in, C_out / g, 1, kw] */
    if (m[0] == RNE_OP_CONV) {
        b->tensors[0].ndim = 2;
        b->tensors[0].shape[0] = c->a[A_W].count / (uint32_t)m[7];
        b->tensors[0].shape[1] = (uint32_t)m[7];
    } else {
        b->tensors[0].ndim = 4;
        b->tensors[0].shape[0] = (uint32_t)m[5];
        b->tensors[0].shape[1] = (uint32_t)(m[7] / m[11]);
        b->tensors[0].shape[2] = 1;
        b->tensors[0].shape[3] = (uint32_t)m[12];
    }
}

static int check_blob(const cv_blob *b, rne_fault *w)
{
    rne__blobview v;
    memset(&v, 0, sizeof v);
    v.blob = b->blob;
    v.header = &b->header;
    v.tensors = b->tensors;
    w->layer = 0;
    w->tensor = -1;
    w->index = -1;
    w->role = 255;
    w->section = RNE_SEC_LAYER;
    w->field = RNE_FF_NONE;
    return rne__check_conv(&v, &b->node, b->vals, w);
}

static void copy_layer(const cv_blob *b, rne_model_layer *l)
{
    unsigned r;
    memset(l, 0, sizeof *l);
    for (r = 0; r < 8; r++)
        l->data[r] = b->node.tensor[r] < 0 ? NULL : b->blob + b->tensors[b->node.tensor[r]].offset;
    l->op = b->node.op;
    l->fmt = b->node.fmt;
    memcpy(l->param, b->node.param, sizeof l->param);
    if (l->data[RNE_T_Q] != NULL)
        memcpy(l->q, l->data[RNE_T_Q], sizeof l->q);
}

/* ---- running a case in chunks ---------------------------------------------------------------- */

/* y [steps * batch * C_out * W_out] from chunks of `chunk` steps, every buffer exactly sized;
 * `ref`: CONV_T through its scalar reference (rne__conv_t_*_ref) instead of the kernel */
static void run_chunks(const cv_case *c, const rne_model_layer *l, size_t chunk, uint8_t *y,
                       int ref)
{
    const int32_t *m = c->meta;
    const size_t steps = (size_t)m[2], batch = (size_t)m[3];
    const size_t es = m[1] == RNE_FMT_F32 ? 4u : 2u;
    const size_t xrow = (size_t)m[5] * (size_t)m[6] * es, yrow = (size_t)m[7] * (size_t)m[8] * es;
    const size_t cache_bytes = rne__conv_cache_bytes(l, (uint32_t)m[5], (uint32_t)m[6]) * batch;
    void *cache = cache_bytes ? exact_alloc(cache_bytes) : NULL;
    void *work = exact_alloc(rne__conv_work_bytes(l, (uint32_t)m[5], (uint32_t)m[6],
                                                  (uint32_t)m[7], (uint32_t)m[8]));
    size_t t0;
    for (t0 = 0; t0 < steps; t0 += chunk) {
        const size_t n = steps - t0 < chunk ? steps - t0 : chunk;
        void *x = exact_alloc(n * batch * xrow), *yc = exact_alloc(n * batch * yrow);
        rne__convcall k;
        memcpy(x, (const uint8_t *)c->a[A_X].data + t0 * batch * xrow, n * batch * xrow);
        k.node = l;
        k.param = l->param;
        k.x = x;
        k.y = yc;
        k.cache = cache;
        k.work = work;
        k.c_in = (uint32_t)m[5];
        k.w_in = (uint32_t)m[6];
        k.c_out = (uint32_t)m[7];
        k.w_out = (uint32_t)m[8];
        k.steps = n;
        k.batch = batch;
        if (ref && m[1] == RNE_FMT_F32)
            rne__conv_t_f32_ref(&k);
        else if (ref)
            rne__conv_t_int_ref(&k);
        else if (m[1] == RNE_FMT_F32)
            rne__conv_f32(&k);
        else
            rne__conv_int(&k);
        memcpy(y + t0 * batch * yrow, yc, n * batch * yrow);
        free(x);
        free(yc);
    }
    free(cache);
    free(work);
}

static double worst_f32;

static void run_case(const cv_case *c)
{
    const int32_t *m = c->meta;
    const size_t n = c->a[A_Y].count, es = m[1] == RNE_FMT_F32 ? 4u : 2u;
    static const size_t chunks[3] = {1, 2, 3};
    char name[160];
    uint8_t *whole = (uint8_t *)xmalloc(n * es), *part = (uint8_t *)xmalloc(n * es);
    cv_blob b;
    rne_model_layer l;
    rne_fault w;
    size_t i, j, bad = 0;
    double err = 0.0;
    int rc;
    make_blob(c, &b);
    rc = check_blob(&b, &w);
    snprintf(name, sizeof name, "check_accepts_%s", c->name);
#ifdef RNE_NO_CONV
    check(rc == RNE__AT(RNE_ELAYER, RNE_FF_OP), name, "rc 0x%x, expected ELAYER op", (unsigned)rc);
    free(b.blob);
    free(whole);
    free(part);
    return;
#else
    check(rc == RNE_OK, name, "refused: status %d field %s index %d", rc & 0xFF,
          rne_fault_field_name(rc >> 8), (int)w.index);
#endif
    copy_layer(&b, &l);
    run_chunks(c, &l, (size_t)m[2], whole, 0);
    for (i = 0; i < n; i++) {
        if (m[19]) {
            bad += ((const int16_t *)(const void *)whole)[i] !=
                   ((const int16_t *)c->a[A_Y].data)[i];
        } else {
            const double d = fabs((double)((const float *)(const void *)whole)[i] -
                                  (double)((const float *)c->a[A_Y].data)[i]);
            err = d > err ? d : err;
            bad += !(d <= (double)((const float *)c->a[A_TOL].data)[i]);
        }
    }
    worst_f32 = err > worst_f32 ? err : worst_f32;
    snprintf(name, sizeof name, "conv_%s", c->name);
    check(bad == 0, name, "%zu of %zu elements differ (max |err| %g)", bad, n, err);
    for (j = 0; j < 3; j++) {
        run_chunks(c, &l, chunks[j], part, 0);
        snprintf(name, sizeof name, "chunks_of_%zu_%s", chunks[j], c->name);
        check(memcmp(whole, part, n * es) == 0, name, "differs from one chunk");
    }
    if (m[0] == RNE_OP_CONV_T) {
        /* the kernel's vector path against the scalar reference: integer bit for bit; f32 the
         * same terms in another order, each within the case's bound of the float64 result */
        run_chunks(c, &l, (size_t)m[2], part, 1);
        for (i = 0, bad = 0, err = 0.0; i < n; i++) {
            if (m[19]) {
                bad += ((const int16_t *)(const void *)whole)[i] !=
                       ((const int16_t *)(const void *)part)[i];
            } else {
                const double d = fabs((double)((const float *)(const void *)whole)[i] -
                                      (double)((const float *)(const void *)part)[i]);
                err = d > err ? d : err;
                bad += !(d <= 2.0 * (double)((const float *)c->a[A_TOL].data)[i]);
            }
        }
        snprintf(name, sizeof name, "conv_t_vector_equals_reference_%s", c->name);
        check(bad == 0, name, "%zu of %zu elements differ (max |err| %g)", bad, n, err);
    }
    free(b.blob);
    free(whole);
    free(part);
}

/* ---- the load checks' refusals ---------------------------------------------------------------- */
#ifndef RNE_NO_CONV

enum { M_PARAM, M_YSHAPE, M_XSHAPE, M_XNDIM, M_XLAST, M_RESERVED, M_IN, M_Q, M_WDTYPE, M_BSHAPE,
       M_WELEM, M_FMT, M_ROLE };

typedef struct mutation {
    const char *base;
    int what, a;
    int32_t value;
    int status, field, index;
} mutation;

static const mutation MUTATIONS[] = {
    {"time_dense_f32", M_PARAM, 0, 0, RNE_ELAYER, RNE_FF_PARAM, 0},         /* kt 0 */
    {"time_dense_f32", M_PARAM, 1, 0, RNE_ELAYER, RNE_FF_PARAM, 1},         /* dt 0 */
    {"time_dense_f32", M_PARAM, 1, 1 << 21, RNE_ELAYER, RNE_FF_PARAM, 1},   /* dt huge */
    {"time_dense_nobias_f32", M_PARAM, 1, (1 << 19) + 1, RNE_ELAYER, RNE_FF_PARAM, 1}, /* F > 2^20 */
    {"time_dense_f32", M_PARAM, 3, 2, RNE_ELAYER, RNE_FF_PARAM, 3},         /* kw 2 on [C] */
    {"time_dense_f32", M_PARAM, 5, 1, RNE_ELAYER, RNE_FF_PARAM, 5},         /* a pad on [C] */
    {"time_dense_f32", M_PARAM, 2, -1, RNE_ELAYER, RNE_FF_PARAM, 2},        /* groups -1 */
    {"time_dense_f32", M_PARAM, 2, 2, RNE_ESHAPE, RNE_FF_IN, 0},            /* 3 % 2 != 0 */
    {"time_grouped_f32", M_YSHAPE, 0, 5, RNE_ESHAPE, RNE_FF_OUT, 0},        /* 5 % 2 != 0 */
    {"time_and_feature_f32", M_YSHAPE, 1, 5, RNE_ESHAPE, RNE_FF_OUT, 1},    /* W_out 4 */
    {"time_and_feature_f32", M_XSHAPE, 1, 9, RNE_ESHAPE, RNE_FF_OUT, 1},    /* W 9: W_out 5 */
    {"time_and_feature_f32", M_PARAM, 4, 0, RNE_ELAYER, RNE_FF_PARAM, 4},   /* stride 0 */
    {"time_and_feature_f32", M_PARAM, 6, -1, RNE_ELAYER, RNE_FF_PARAM, 6},  /* pad -1 */
    {"feature_grouped_dilated_s16", M_PARAM, 3, 9, RNE_ESHAPE, RNE_FF_OUT, 1}, /* kernel > input */
    {"time_dense_f32", M_XNDIM, 3, 0, RNE_ESHAPE, RNE_FF_IN, 0},            /* x of 3 dims */
    {"time_dense_f32", M_XLAST, 0, 0, RNE_ESHAPE, RNE_FF_IN, 0},            /* kt 2 on LAST */
    {"pointwise_f32", M_XLAST, 0, 0, RNE_ESHAPE, RNE_FF_OUT, -1},           /* x LAST, y not */
    {"time_dense_f32", M_RESERVED, 1, 1, RNE_ELAYER, RNE_FF_RESERVED, 1},
    {"time_dense_f32", M_IN, 1, 0, RNE_ELAYER, RNE_FF_IN, 1},               /* a second input */
    {"time_dense_f32", M_ROLE, RNE_T_Q, 2, RNE_ELAYER, RNE_FF_TENSOR, -1},  /* q on f32 */
    {"time_dense_s16", M_ROLE, RNE_T_Q, -1, RNE_ELAYER, RNE_FF_TENSOR, -1}, /* no q */
    {"time_dense_s16", M_ROLE, RNE_T_R, 0, RNE_ELAYER, RNE_FF_TENSOR, -1},  /* a role it lacks */
    {"transpose_strided_f32", M_PARAM, 1, 2, RNE_ELAYER, RNE_FF_PARAM, 1},  /* dt 2 */
    {"transpose_strided_f32", M_PARAM, 0, 2, RNE_ELAYER, RNE_FF_PARAM, 0},  /* kt 2 */
    {"transpose_strided_f32", M_YSHAPE, 1, 12, RNE_ESHAPE, RNE_FF_OUT, 1},  /* op 2 >= sw */
    {"transpose_strided_f32", M_YSHAPE, 1, 9, RNE_ESHAPE, RNE_FF_OUT, 1},   /* op -1 */
    {"time_dense_f32", M_WDTYPE, 0, RNE_DT_S16, RNE_ESHAPE, RNE_FF_DTYPE, -1},
    {"time_dense_s8", M_WDTYPE, 0, RNE_DT_S16, RNE_ESHAPE, RNE_FF_DTYPE, -1},
    {"time_dense_s16", M_BSHAPE, 0, 4, RNE_ESHAPE, RNE_FF_SHAPE, 0},
    {"time_dense_s16", M_Q, 0, 0, RNE_ELAYER, RNE_FF_Q_SLOT, 0},            /* shift 0 */
    {"time_dense_s16", M_Q, 0, 63, RNE_ELAYER, RNE_FF_Q_SLOT, 0},
    {"time_dense_s16", M_Q, 2, 2, RNE_ELAYER, RNE_FF_Q_SLOT, 2},            /* acc32 2 */
    {"time_dense_s16", M_Q, 5, 1, RNE_ELAYER, RNE_FF_Q_SLOT, 5},            /* unused slot */
    {"transpose_strided_s8", M_Q, 2, 1, RNE_ELAYER, RNE_FF_Q_SLOT, 2},      /* acc32 on CONV_T */
    {"time_wide_s16", M_Q, 25, 0x7FFFFFFF, RNE_ELAYER, RNE_FF_MULTIPLIER, 25},
    {"transpose_wide_s16", M_Q, 27, 0x7FFFFFFF, RNE_ELAYER, RNE_FF_MULTIPLIER, 27},
    {"time_dense_s16", M_Q, 2, 1, RNE_ELAYER, RNE_FF_ACC32, 2},             /* int16 W > int32 */
    {"time_dense_s16", M_WELEM, 4, -32768, RNE_ELAYER, RNE_FF_WEIGHT, 4},
    {"transpose_strided_s16", M_WELEM, 7, -32768, RNE_ELAYER, RNE_FF_WEIGHT, 7},
    {"time_dense_f32", M_FMT, 0, 3, RNE_ELAYER, RNE_FF_FMT, -1},
};

static void mutate(cv_blob *b, const mutation *u)
{
    switch (u->what) {
    case M_PARAM: b->node.param[u->a] = u->value; break;
    case M_YSHAPE: b->vals[1].shape[u->a] = (uint32_t)u->value; break;
    case M_XSHAPE: b->vals[0].shape[u->a] = (uint32_t)u->value; break;
    case M_XNDIM: b->vals[0].ndim = (uint8_t)u->a; break;
    case M_XLAST: b->vals[0].flags = RNE_VF_LAST; break;
    case M_RESERVED: b->node.reserved[u->a] = (uint32_t)u->value; break;
    case M_IN: b->node.in[u->a] = 0; break;
    case M_ROLE: b->node.tensor[u->a] = u->value; break;
    case M_WDTYPE: b->tensors[0].dtype = (uint8_t)u->value; break;
    case M_BSHAPE: b->tensors[1].shape[0] = (uint32_t)u->value; break;
    case M_FMT: b->node.fmt = (uint16_t)u->value; break;
    case M_Q: ((int32_t *)(void *)(b->blob + b->tensors[2].offset))[u->a] = u->value; break;
    default: /* M_WELEM */
        if (b->tensors[0].dtype == RNE_DT_S8)
            ((int8_t *)b->blob)[u->a] = (int8_t)u->value;
        else
            ((int16_t *)(void *)b->blob)[u->a] = (int16_t)u->value;
        break;
    }
}

static void run_mutations(const cv_case *cases, size_t n)
{
    size_t i, j;
    for (i = 0; i < sizeof MUTATIONS / sizeof MUTATIONS[0]; i++) {
        const mutation *u = &MUTATIONS[i];
        char name[160];
        cv_blob b;
        rne_fault w;
        int rc;
        for (j = 0; j < n && strcmp(cases[j].name, u->base) != 0; j++)
            continue;
        snprintf(name, sizeof name, "refuses_%s_%d_%d", u->base, u->what, u->a);
        if (j == n) {
            check(0, name, "no case %s", u->base);
            continue;
        }
        make_blob(&cases[j], &b);
        mutate(&b, u);
        rc = check_blob(&b, &w);
        check(rc == RNE__AT(u->status, u->field) && w.index == u->index, name,
              "rc: status %d field %s index %d, expected status %d field %s index %d", rc & 0xFF,
              rne_fault_field_name(rc >> 8), (int)w.index, u->status,
              rne_fault_field_name(u->field), u->index);
        free(b.blob);
    }
}

/* A node whose f32 work for one row, W_out (K + C_out / g) elements, passes 2^26 (x [1, 65536],
 * kw 2048: 63,489 x 2,049) is refused: its byte count would wrap a 32-bit size_t. */
static void refuses_work_too_large(void)
{
    static const float zeros[2048];
    cv_case c;
    cv_blob b;
    rne_fault w;
    int rc;
    memset(&c, 0, sizeof c);
    strcpy(c.name, "work_too_large");
    c.meta[0] = RNE_OP_CONV;
    c.meta[1] = RNE_FMT_F32;
    c.meta[4] = 2;
    c.meta[5] = 1;                              /* C_in */
    c.meta[6] = 65536;                          /* W */
    c.meta[7] = 1;                              /* C_out */
    c.meta[8] = 65536 - 2047;                   /* W_out */
    c.meta[9] = c.meta[10] = c.meta[11] = c.meta[13] = c.meta[16] = 1;
    c.meta[12] = 2048;                          /* kw */
    c.a[A_W].dtype = T_F32;
    c.a[A_W].count = 2048;
    c.a[A_W].data = zeros;
    make_blob(&c, &b);
    rc = check_blob(&b, &w);
    check(rc == RNE__AT(RNE_ESHAPE, RNE_FF_IN) && w.index == 0, "refuses_work_too_large",
          "rc: status %d field %s index %d", rc & 0xFF, rne_fault_field_name(rc >> 8),
          (int)w.index);
    free(b.blob);
}

/* A stride-1 conv over W goes tap by tap (conv.h rne__conv_direct): its padded input rows,
 * (C_in / g) kt (W_out + (kw - 1) dw) elements, are bounded like the patch: 64 channels and a
 * dilation of 2^20 make them 2^26 + 512 while the patch and the work stay small */
static void refuses_tap_rows_too_large(void)
{
    static const float zeros[128];
    cv_case c;
    cv_blob b;
    rne_fault w;
    int rc;
    memset(&c, 0, sizeof c);
    strcpy(c.name, "tap_rows_too_large");
    c.meta[0] = RNE_OP_CONV;
    c.meta[1] = RNE_FMT_F32;
    c.meta[4] = 2;
    c.meta[5] = 64;                             /* C_in */
    c.meta[6] = (1 << 20) + 8;                  /* W */
    c.meta[7] = 1;                              /* C_out */
    c.meta[8] = 8;                              /* W_out = W - dw (kw - 1) */
    c.meta[9] = c.meta[10] = c.meta[11] = c.meta[13] = 1;
    c.meta[12] = 2;                             /* kw */
    c.meta[16] = 1 << 20;                       /* dw */
    c.a[A_W].dtype = T_F32;
    c.a[A_W].count = 128;
    c.a[A_W].data = zeros;
    make_blob(&c, &b);
    rc = check_blob(&b, &w);
    check(rc == RNE__AT(RNE_ESHAPE, RNE_FF_IN) && w.index == 0, "refuses_tap_rows_too_large",
          "rc: status %d field %s index %d", rc & 0xFF, rne_fault_field_name(rc >> 8),
          (int)w.index);
    free(b.blob);
    c.meta[6] = (1 << 19) + 8;                  /* half the dilation: 2^25 + 512, accepted */
    c.meta[16] = 1 << 19;
    make_blob(&c, &b);
    rc = check_blob(&b, &w);
    check(rc == RNE_OK, "accepts_tap_rows_within_bound", "rc: status %d field %s index %d",
          rc & 0xFF, rne_fault_field_name(rc >> 8), (int)w.index);
    free(b.blob);
}

/* The tap-by-tap path's SIMD variants (f32 and integer) against their scalar loops, bit for bit,
 * on random operands (f32: subnormal and huge magnitudes among them) over the shapes its blocks and edges meet: W_out a
 * multiple of 8 and not, 1 to 4, 6 and 8 channels, dilations, padded rows longer than needed, an odd and
 * an even number of taps, more taps than the AVX2 integer form prepares at once (64: 90 and 66);
 * the integer form also at its extreme operands where 2 taps or fewer keep the sums within
 * int32. */
static void taps_simd_equals_reference(void)
{
    static const size_t shapes[][5] = {/* wout, nc, nr, kw, dw */
                                       {8, 4, 1, 1, 1},  {40, 4, 8, 3, 1}, {38, 4, 1, 5, 1},
                                       {13, 4, 6, 3, 2}, {64, 3, 2, 2, 4}, {9, 1, 3, 4, 1},
                                       {17, 4, 5, 1, 1}, {129, 4, 3, 3, 3}, {16, 4, 1, 2, 3},
                                       {11, 4, 2, 1, 1}, {40, 8, 8, 3, 1}, {13, 8, 1, 5, 2},
                                       {8, 8, 1, 1, 1}, {21, 6, 2, 2, 1}, {13, 8, 30, 3, 1},
                                       {24, 4, 33, 2, 2}};
    uint32_t lcg = 2463534242u;
    size_t s, e, bad;
    char name[96];
    for (s = 0; s < sizeof shapes / sizeof shapes[0]; s++) {
        const size_t wout = shapes[s][0], nc = shapes[s][1], nr = shapes[s][2];
        const size_t kw = shapes[s][3], dw = shapes[s][4], np = wout + (kw - 1) * dw + 3;
        const size_t ldw = nc + 2, nw = nr * kw * ldw, npad = nr * np;
        float *pad = (float *)xmalloc(npad * sizeof(float)), *w = (float *)xmalloc(nw * sizeof(float));
        float *y = (float *)xmalloc(8 * wout * sizeof(float));
        float *yr = (float *)xmalloc(8 * wout * sizeof(float));
        float b[8];
        for (e = 0; e < npad + nw + 8; e++) {
            float v;
            lcg = lcg * 1664525u + 1013904223u;
            v = (float)(lcg >> 8) / 8388608.0f - 1.0f;
            if ((lcg & 31u) == 0)
                v *= 1e-38f; /* subnormal */
            else if ((lcg & 31u) == 1)
                v *= 1e30f;
            if (e < npad)
                pad[e] = v;
            else if (e < npad + nw)
                w[e - npad] = v;
            else
                b[e - npad - nw] = v;
        }
        rne__conv_taps(y, wout, nc, b, pad, np, nr, kw, dw, w, ldw);
        {   /* the integer form, int8 and int16 weights (sums within int32, as acc32 proves) */
            int16_t *qp = (int16_t *)xmalloc(npad * sizeof(int16_t));
            int8_t *w8 = (int8_t *)xmalloc(nw);
            int16_t *w16 = (int16_t *)xmalloc(nw * sizeof(int16_t));
            int32_t *qa = (int32_t *)xmalloc(8 * wout * sizeof(int32_t));
            int32_t *qr = (int32_t *)xmalloc(8 * wout * sizeof(int32_t));
            int s8, extreme;
            for (extreme = 0; extreme < (nr * kw <= 2 ? 2 : 1); extreme++)
            {   /* extreme: x -32768 and the weights at their largest magnitude, -32767 / -128 (a
                 * tap pair's sum 2 * 32768 * 32767, just under 2^31: within acc32 for 2 taps) */
            for (e = 0; e < npad; e++)
                qp[e] = extreme ? INT16_MIN
                                : (int16_t)((int32_t)(lcg = lcg * 1664525u + 1013904223u) >> 16);
            for (e = 0; e < nw; e++) {
                lcg = lcg * 1664525u + 1013904223u;
                w8[e] = extreme ? INT8_MIN : (int8_t)(lcg >> 24);
                w16[e] = extreme ? -INT16_MAX : (int16_t)((int32_t)(lcg >> 16 & 2047u) - 1024);
            }
            for (s8 = 0; s8 < 2; s8++) {
                rne__qconv_taps32(qa, wout, nc, qp, np, nr, kw, dw, s8 ? (const void *)w8 : w16,
                                  s8, ldw);
                rne__qconv_taps32_ref(qr, wout, nc, qp, np, nr, kw, dw,
                                      s8 ? (const void *)w8 : w16, s8, ldw);
                snprintf(name, sizeof name, "qtaps_simd_equals_reference_%s%s_w%zu_c%zu_r%zu_k%zu_d%zu",
                         s8 ? "s8" : "s16", extreme ? "_extreme" : "", wout, nc, nr, kw, dw);
                check(memcmp(qa, qr, nc * wout * sizeof(int32_t)) == 0, name, "differs");
            }
            }
            free(qp);
            free(w8);
            free(w16);
            free(qa);
            free(qr);
        }
        rne__conv_taps_ref(yr, wout, nc, b, pad, np, nr, kw, dw, w, ldw);
        for (e = 0, bad = 0; e < nc * wout; e++)
            bad += memcmp(&y[e], &yr[e], sizeof(float)) != 0;
        snprintf(name, sizeof name, "taps_simd_equals_reference_w%zu_c%zu_r%zu_k%zu_d%zu",
                 wout, nc, nr, kw, dw);
        check(bad == 0, name, "%zu of %zu elements differ", bad, nc * wout);
        free(pad);
        free(w);
        free(y);
        free(yr);
    }
}

#endif /* RNE_NO_CONV */

int main(int argc, char **argv)
{
    char path[4096];
    buf file;
    const uint8_t *p, *end;
    uint32_t magic, n, i;
    cv_case *cases;
    if (argc != 2) {
        fprintf(stderr, "usage: test_conv DIR (DIR/conv.bin from tests/make_conv_vectors.py)\n");
        return 2;
    }
    snprintf(path, sizeof path, "%s/conv.bin", argv[1]);
    if (!read_file(path, &file, 0)) {
        fprintf(stderr, "test_conv: cannot read %s\n", path);
        return 2;
    }
    p = file.p;
    end = file.p + file.size;
    p = rd_u32(p, end, &magic);
    p = rd_u32(p, end, &n);
    if (p == NULL || memcmp(&magic, "RNCV", 4) != 0 || n == 0 || n > 10000) {
        fprintf(stderr, "test_conv: %s is not a conv vector file\n", path);
        return 2;
    }
    cases = (cv_case *)xmalloc(n * sizeof *cases);
    for (i = 0; i < n; i++)
        if ((p = read_case(p, end, &cases[i])) == NULL) {
            fprintf(stderr, "test_conv: %s: case %u is truncated\n", path, i);
            return 2;
        }
    for (i = 0; i < n; i++)
        run_case(&cases[i]);
#ifndef RNE_NO_CONV
    run_mutations(cases, n);
    refuses_work_too_large();
    refuses_tap_rows_too_large();
    taps_simd_equals_reference();
    printf("f32: max |C - float64 direct convolution| %.3g\n", worst_f32);
#endif
    free(cases);
    buf_free(&file);
    return test_summary();
}
