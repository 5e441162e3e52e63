/*
 * layers_int.c - the integer formats' layer dispatch, scratch layout and cell parameters, and their
 * stateless layers: DENSE, ACT (every kind), LAYERNORM, TAKE_LAST and SLICE on int16. Semantics
 * and every formula: docs/quantization.md §5 (rnnedge/fixedpoint.py is the executable form).
 * Integer-only.
 */
#include "qvec.h"
#include "rne_internal.h"

/* ---- scratch --------------------------------------------------------------------------------- */

static size_t rne__q_cols(const rne_model_layer *l)
{
    if (rne__gates(l->op) != 0)
        return (size_t)rne__gates(l->op) * l->hidden;
    return l->op == RNE_OP_DENSE ? (size_t)l->out_features : 0u;
}

/* The elements of each block of an integer layer's work space (qvec.h, rne__work_int: wx, acc,
 * rq, gate, tmp) for `rows` rows, and each element's bytes. */
static const size_t rne__q_elem[5] = { sizeof(int32_t), sizeof(int64_t), sizeof(int32_t),
                                       sizeof(int32_t), sizeof(int16_t) };

static void rne__q_counts(const rne_model_layer *l, size_t rows, size_t count[5])
{
    const size_t n = rne__q_cols(l);
    count[0] = rne__gates(l->op) != 0 ? rows * n : 0u;     /* rows * n: checked by the caller */
    if (rne__gates(l->op) != 0 && RNE__INNER(l->flags))  /* L rows of input terms, then h and c */
        count[0] = (size_t)l->param[0] * n + 2 * rne__inner_state(l);
    count[1] = count[2] = n;
    count[3] = l->op == RNE_OP_GRU ? 2u * l->hidden : 0u;
    count[4] = l->op == RNE_OP_GRU ? (size_t)l->hidden : 0u;
}

/* The bytes of that work space (16-byte aligned blocks); 0 and *ok = 0 on overflow. */
size_t rne__work_int_bytes(const rne_model_layer *l, size_t rows, int *ok)
{
    const size_t n = rne__q_cols(l);
    size_t count[5], total = 0, i;
    if (rne__gates(l->op) != 0 && rows != 0 && n > (size_t)-1 / rows) {
        *ok = 0;
        return 0;
    }
    rne__q_counts(l, rows, count);
    for (i = 0; i < 5; i++) {
        size_t bytes;
        if (count[i] != 0 && rne__q_elem[i] > ((size_t)-1 - 15u) / count[i]) {
            *ok = 0;
            return 0;
        }
        bytes = (count[i] * rne__q_elem[i] + 15u) & ~(size_t)15u;
        if (bytes > (size_t)-1 - total) {
            *ok = 0;
            return 0;
        }
        total += bytes;
    }
    return *ok ? total : 0u;
}

/* The blocks in turn, for rows that rne__work_int_bytes sized (no overflow left to check: a step
 * carves its work space every call). */
void rne__work_int_carve(void *work, const rne_model_layer *l, size_t rows, rne__work_int *w)
{
    uint8_t *p = (uint8_t *)work, *at[5];
    size_t count[5], i;
    rne__q_counts(l, rows, count);
    for (i = 0; i < 5; i++) {
        at[i] = p;
        p += (count[i] * rne__q_elem[i] + 15u) & ~(size_t)15u;
    }
    w->wx = (int32_t *)(void *)at[0];
    w->acc = at[1];
    w->rq = (int32_t *)(void *)at[2];
    w->gate = (int32_t *)(void *)at[3];
    w->tmp = (int16_t *)(void *)at[4];
}

/* ---- cell parameters ------------------------------------------------------------------------- */

/* A step reads from the blob only what it multiplies or adds (weights, biases, multipliers,
 * tables); every shift, clamp, flag and size comes from the copies in rne_model_layer. */
static const void *rne__q_tensor(const rne_model_layer *l, int role)
{
    return l->data[role];
}

void rne__cell_int_fill(const rne_model_layer *l, size_t d, rne__cell_int *c)
{
    const size_t hs = l->hidden, gh = (size_t)rne__gates(l->op) * hs, in = l->in_features;
    const int lbr = (l->flags & RNE_LF_LINEAR_BEFORE_RESET) != 0;
    const size_t nb = gh + (lbr ? hs : 0u);
    const int32_t *q = (const int32_t *)rne__q_tensor(l, RNE_T_Q) + d * (RNE__Q_SLOTS + 2 * gh);
    const int16_t *peep = (const int16_t *)rne__q_tensor(l, RNE_T_P);
    const int s8 = l->fmt == RNE_FMT_S8;
    const size_t wsize = s8 ? sizeof(int8_t) : sizeof(int16_t);
    size_t a;
    c->w.w = (const uint8_t *)rne__q_tensor(l, RNE_T_W) + d * in * gh * wsize;
    c->r.w = (const uint8_t *)rne__q_tensor(l, RNE_T_R) + d * hs * gh * wsize;
    c->w.ldw = c->r.ldw = gh;
    c->w.s8 = c->r.s8 = s8;
    c->w.acc32 = c->r.acc32 = l->q[3];
    c->bias = (const int32_t *)rne__q_tensor(l, RNE_T_B) + d * nb;
    c->mw = q + RNE__Q_SLOTS;
    c->mr = q + RNE__Q_SLOTS + gh;
    c->shift_w = (unsigned)l->q[0];
    c->shift_r = (unsigned)l->q[1];
    c->zlim = l->q[2];
    c->peep = peep != NULL ? peep + d * 3 * hs : NULL;
    c->pshift = (unsigned)l->q[4];
    c->pm[0] = q[5];
    c->pm[1] = q[6];
    c->pm[2] = q[7];
    for (a = 0; a < 3; a++) {
        c->act[a].kind = l->act[d][a];
        c->act[a].m = q[8 + 3 * a];
        c->act[a].shift = l->qshift[d][a];
        c->act[a].beta = q[10 + 3 * a];
    }
}

#ifndef RNE_NO_DENSE
/* ---- DENSE ----------------------------------------------------------------------------------- */

/* y[n] = sat16(rq32(sum_k W[n,k] x[k], M[n]) + b[n]) */
static void rne__dense_int(const rne__call *k, const rne__work_int *w)
{
    const rne_model_layer *l = k->layer;
    const size_t rows = k->steps * k->batch, in = l->in_features, n = l->out_features;
    const int32_t *m = (const int32_t *)rne__q_tensor(l, RNE_T_Q) + RNE__Q_SLOTS;
    const int32_t *b = (const int32_t *)rne__q_tensor(l, RNE_T_B);
    const int16_t *x = (const int16_t *)k->x;
    int16_t *y = (int16_t *)k->y;
    rne__qmat mat;
    size_t r, j;
    mat.w = rne__q_tensor(l, RNE_T_W);
    mat.ldw = n;
    mat.s8 = l->fmt == RNE_FMT_S8;
    mat.acc32 = l->q[2];
    for (r = 0; r < rows; r++) {
        rne__q_matvec(w->rq, x + r * in, in, &mat, 0, n, m, (unsigned)l->q[0], w->acc);
        for (j = 0; j < n; j++)
            y[r * n + j] = rne__sat16((int64_t)w->rq[j] + (b != NULL ? b[j] : 0));
    }
}
#endif /* RNE_NO_DENSE */

#ifndef RNE_NO_ACT
/* ---- ACT ------------------------------------------------------------------------------------- */

/* The q tensor of an ACT layer: m1, m2, m3 as (m, shift) pairs in slots 0..5, k0, k1 in 6, 7. */
typedef struct rne__qact {
    int32_t m[3];
    unsigned s[3];
    int32_t k0, k1;
} rne__qact;

/* e_k = 2^-u_k in Q1.15 for d_k = max - x_k >= 0, u_k = rq(d_k, m1) in Q16 log2 units (m1 >= 0,
 * proved at load, so u_k >= 0): 0 past 2^-16, else the exp2 table interpolated, shifted by the
 * integer part with one rounding. The row's maximum gives exactly 32768. */
static int32_t rne__q_exp2_neg(int32_t d, const rne__qact *a)
{
    const int64_t u = rne__rshr((int64_t)d * a->m[0], a->s[0]);
    int32_t i, f, v, ip;
    if (u >= ((int64_t)16 << 16))
        return 0;
    i = (int32_t)((u & 0xFFFF) >> 8);
    f = (int32_t)(u & 0xFF);
    v = ((int32_t)rne__q_exp2[i] * (256 - f) + (int32_t)rne__q_exp2[i + 1] * f + 128) >> 8;
    ip = (int32_t)(u >> 16);
    return (v + (((int32_t)1 << ip) >> 1)) >> ip;
}

/* Softmax or LogSoftmax of one row of f (< 65536, proved at load) features. */
static void rne__softmax_int(const int16_t *x, int16_t *y, size_t f, const rne__qact *a, int logsm)
{
    int32_t mx = x[0], total = 0;
    size_t j;
    for (j = 1; j < f; j++)
        mx = x[j] > mx ? x[j] : mx;
    for (j = 0; j < f; j++)
        total += rne__q_exp2_neg(mx - x[j], a);          /* <= f * 32768 < 2^31 */
    if (!logsm) {
        for (j = 0; j < f; j++) {
            const uint32_t e = (uint32_t)rne__q_exp2_neg(mx - x[j], a);
            const uint32_t p = (e * 32768u + ((uint32_t)total >> 1)) / (uint32_t)total;
            y[j] = (int16_t)(p < (uint32_t)INT16_MAX ? p : (uint32_t)INT16_MAX);
        }
    } else {
        const int32_t lg = rne__log2_q15(total) - 15 * 32768;   /* log2(total / 32768), Q15 */
        for (j = 0; j < f; j++)
            y[j] = rne__sat16((int64_t)rne__rq32(-(int64_t)(mx - x[j]), a->m[1], a->s[1]) -
                              rne__rq32(lg, a->m[2], a->s[2]));
    }
}

/* One element of an elementwise kind (docs/quantization.md, "Activation layers"). */
static int16_t rne__act1_int(unsigned kind, int32_t x, const rne__qact *a, const int16_t *lut)
{
    int32_t z;
    switch (kind) {
    case RNE_ACT_IDENTITY: return rne__sat16(rne__rq32(x, a->m[0], a->s[0]));
    case RNE_ACT_RELU: return rne__sat16(rne__rq32(x > 0 ? x : 0, a->m[0], a->s[0]));
    case RNE_ACT_LEAKYRELU:
        return rne__sat16(x >= 0 ? rne__rq32(x, a->m[0], a->s[0]) : rne__rq32(x, a->m[1], a->s[1]));
    case RNE_ACT_THRESHOLDEDRELU: return x > a->k0 ? rne__sat16(rne__rq32(x, a->m[0], a->s[0])) : 0;
    case RNE_ACT_CLIP:
        return rne__sat16(rne__rq32(rne__sat(x, a->k0, a->k1), a->m[0], a->s[0]));
    case RNE_ACT_AFFINE: return rne__sat16((int64_t)rne__rq32(x, a->m[0], a->s[0]) + a->k0);
    case RNE_ACT_SIGMOID:
    case RNE_ACT_TANH:
    case RNE_ACT_SCALEDTANH:
        z = (int32_t)rne__sat(rne__rq32(x, a->m[0], a->s[0]), -RNE__ZMAX, RNE__ZMAX);
        z = kind == RNE_ACT_SIGMOID ? rne__sigmoid_q15(z) : rne__tanh_q15(z);
        return (int16_t)(a->k0 < 0 ? -z : z);
    case RNE_ACT_HARDSIGMOID: return (int16_t)rne__hardsigmoid_q15(x, a->m[0], a->s[0], a->k0);
    case RNE_ACT_ABS: return rne__sat16(rne__rq32(x < 0 ? -x : x, a->m[0], a->s[0]));
    case RNE_ACT_NEG: return rne__sat16(rne__rq32(-x, a->m[0], a->s[0]));
    case RNE_ACT_LOG:     /* ln: log2 in Q15 requantized, ln(s_in) added; ln 0 -> -32767; x < 0: 0 */
        if (x <= 0)
            return (int16_t)(x == 0 ? -INT16_MAX : 0);
        return rne__sat16((int64_t)rne__rq32(rne__log2_q15(x), a->m[0], a->s[0]) + a->k0);
    default: {      /* ELU, SOFTSIGN, SOFTPLUS, SQRT .. POW but LOG: the layer's table over int16 */
        const int32_t u = x + 32768, i = u >> 8, f = u & 255;
        const int32_t t0 = lut[i], t1 = lut[i + 1];
        return rne__sat16(t0 + rne__rshr((int64_t)(t1 - t0) * f, 8));
    }
    }
}

static void rne__act_int(const rne__call *k)
{
    const rne_model_layer *l = k->layer;
    const size_t f = l->in_features, rows = k->steps * k->batch;
    const unsigned kind = l->act[0][0];
    const int32_t *q = l->q;            /* the whole q tensor of an ACT layer, copied at load */
    const int16_t *lut = (const int16_t *)rne__q_tensor(l, RNE_T_LUT);
    const int16_t *x = (const int16_t *)k->x;
    int16_t *y = (int16_t *)k->y;
    rne__qact a;
    size_t i;
    for (i = 0; i < 3; i++) {
        a.m[i] = q[2 * i];
        a.s[i] = (unsigned)q[2 * i + 1];
    }
    a.k0 = q[6];
    a.k1 = q[7];
    if (kind == RNE_ACT_SOFTMAX || kind == RNE_ACT_LOGSOFTMAX) {
        for (i = 0; i < rows; i++)
            rne__softmax_int(x + i * f, y + i * f, f, &a, kind == RNE_ACT_LOGSOFTMAX);
    } else if (kind == RNE_ACT_RELU || kind == RNE_ACT_IDENTITY) {
        /* sat16(rq32(max(x, 0), m, shift)) a row at a time: a ReLU passes its input's scale
         * (m = 2^shift, rnnedge/quant/graph.py), where rq32 is the identity: max(x, 0) or a copy
         * (the compiler vectorises it); else max(x, 0) first, then rne__bin_s16's requantization
         * (SIMD) as an ADD with b = 0 times m_b = 0: the same integers as rne__act1_int. */
        const int relu = kind == RNE_ACT_RELU;
        const size_t n = rows * f;
        if (relu || x != y)
            for (i = 0; i < n; i++)
                y[i] = relu && x[i] < 0 ? (int16_t)0 : x[i];
        if (!(a.s[0] <= 30u && a.m[0] == (int32_t)1 << a.s[0]))
            rne__bin_s16(y, y, y, n, 0, a.m[0], 0, a.s[0]);
    } else {
        for (i = 0; i < rows * f; i++)
            y[i] = rne__act1_int(kind, x[i], &a, lut);
    }
}
#endif /* RNE_NO_ACT */

#ifndef RNE_NO_LAYERNORM
/* ---- LAYERNORM ------------------------------------------------------------------------------- */

/* a / b rounded half up, b > 0: floor((2a + b) / (2b)). C division truncates towards zero, so a
 * negative quotient with a remainder is one less. |2a + b| < 2^62. */
static int64_t rne__rdiv(int64_t a, int64_t b)
{
    const int64_t num = 2 * a + b, den = 2 * b, q = num / den;
    return q - (num % den != 0 && num < 0 ? 1 : 0);
}

/* number of bits of v (0 for 0), without a compiler builtin (a Cortex-M0 has no clz) */
static unsigned rne__bits64(uint64_t v)
{
    unsigned n = 0;
    while (v != 0) {
        n++;
        v >>= 1;
    }
    return n;
}

/* One row of F < 65536 features (docs/quantization.md §5, LayerNorm):
 *   mu = rdiv(16 S, F); d = 16 x - mu (|d| < 2^20); V = max(1, rdiv(sum d^2, F) + eps_q) < 2^62;
 *   e even with V 2^e in [2^60, 2^62); inv = floor(2^61 / isqrt(V 2^e)) in (2^30, 2^31];
 *   n = rshr(d inv, 37 - e/2) in Q24; y = sat16(rq32(n, m[k], shift) + b[k]).
 * The load proved |n| * |m[k]| + 2^(shift-1) <= INT64_MAX for the bound of |n|. */
static void rne__layernorm_row(const int16_t *x, int16_t *y, size_t f, const int32_t *q,
                               const int32_t *m, const int32_t *b)
{
    const int64_t eps = (int64_t)q[1] * ((int64_t)1 << 31) + q[2];    /* 0..2^61 */
    const unsigned shift = (unsigned)q[0];
    int64_t s = 0, mu, inv;
    uint64_t ss = 0, v;
    unsigned e, nshift;
    size_t j;
    for (j = 0; j < f; j++)
        s += x[j];                                      /* |s| < 2^31 */
    mu = rne__rdiv(16 * s, (int64_t)f);
    for (j = 0; j < f; j++) {
        const int64_t d = 16 * (int64_t)x[j] - mu;
        ss += (uint64_t)(d * d);                        /* < 2^56 */
    }
    v = (uint64_t)(rne__rdiv((int64_t)ss, (int64_t)f) + eps);
    if (v == 0)
        v = 1;
    e = (62u - rne__bits64(v)) & ~1u;                   /* 0..60 */
    inv = (int64_t)(((uint64_t)1 << 61) / rne__isqrt64(v << e));
    nshift = 37u - e / 2u;                              /* 7..37 */
    for (j = 0; j < f; j++) {
        const int64_t d = 16 * (int64_t)x[j] - mu;
        const int64_t n = rne__rshr(d * inv, nshift);   /* |d inv| < 2^51 */
        const int64_t bias = b != NULL ? b[j] : 0;
        y[j] = rne__sat16((int64_t)rne__rq32(n, m[j], shift) + bias);
    }
}

static void rne__layernorm_int(const rne__call *k)
{
    const rne_model_layer *l = k->layer;
    const size_t f = l->in_features, rows = k->steps * k->batch;
    const int32_t *m = (const int32_t *)rne__q_tensor(l, RNE_T_Q) + RNE__Q_SLOTS;
    const int32_t *b = (const int32_t *)rne__q_tensor(l, RNE_T_B);
    size_t r;
    for (r = 0; r < rows; r++)      /* slots 0..2 (shift, eps_q) from the copy, multipliers not */
        rne__layernorm_row((const int16_t *)k->x + r * f, (int16_t *)k->y + r * f, f, l->q, m, b);
}
#endif /* RNE_NO_LAYERNORM */

/* ---- TAKE_LAST, SLICE: int16 copies ---------------------------------------------------------- */

static void rne__copy16(int16_t *dst, const int16_t *src, size_t n)
{
    size_t i;
    for (i = 0; i < n; i++)
        dst[i] = src[i];
}

static void rne__slice_int(const rne__call *k)
{
    const rne_model_layer *l = k->layer;
    const size_t f = l->in_features, n = l->out_features, rows = k->steps * k->batch;
    size_t r;
    for (r = 0; r < rows; r++)
        rne__copy16((int16_t *)k->y + r * n, (const int16_t *)k->x + r * f + (size_t)l->param[1], n);
}

/* features [0, split) from step T-1, [split, F) from step 0 */
static void rne__take_last_int(const rne__call *k)
{
    const rne_model_layer *l = k->layer;
    const size_t f = l->in_features, split = (size_t)l->param[0], last = k->steps - 1;
    size_t b;
    for (b = 0; b < k->batch; b++) {
        int16_t *y = (int16_t *)k->y + b * f;
        rne__copy16(y, (const int16_t *)k->x + (last * k->batch + b) * f, split);
        rne__copy16(y + split, (const int16_t *)k->x + b * f + split, f - split);
    }
}

#if !defined(RNE_NO_LSTM) || !defined(RNE_NO_GRU) || !defined(RNE_NO_RNN)
/* A recurrent node: over each step's rows (RNE_LF_INNER, rne__inner_int) or over time. */
static void rne__recurrent_int(const rne__call *k, const rne__work_int *w, rne__step_int step)
{
    if (RNE__INNER(k->layer->flags))
        rne__inner_int(k, w, step);
    else
        rne__seq_int(k, w, step);
}
#endif

void rne__layer_int(const rne__call *k)
{
    rne__work_int w;
    rne__work_int_carve(k->work, k->layer, k->steps * k->batch, &w);
    switch (k->layer->op) {
#ifndef RNE_NO_DENSE
    case RNE_OP_DENSE: rne__dense_int(k, &w); break;
#endif
#ifndef RNE_NO_ACT
    case RNE_OP_ACT: rne__act_int(k); break;
#endif
#ifndef RNE_NO_LSTM
    case RNE_OP_LSTM:
        rne__recurrent_int(k, &w, rne__lstm_int_step);
        break;
#endif
#ifndef RNE_NO_GRU
    case RNE_OP_GRU:
        rne__recurrent_int(k, &w, rne__gru_int_step);
        break;
#endif
#ifndef RNE_NO_RNN
    case RNE_OP_RNN:
        rne__recurrent_int(k, &w, rne__rnn_int_step);
        break;
#endif
    case RNE_OP_TAKE_LAST: rne__take_last_int(k); break;
    case RNE_OP_SLICE: rne__slice_int(k); break;
#ifndef RNE_NO_LAYERNORM
    case RNE_OP_LAYERNORM: rne__layernorm_int(k); break;
#endif
    default: break;     /* rne_model_load refuses any other op */
    }
}
