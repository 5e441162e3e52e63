/*
 * blob_q.c - rne_model_load's checks of an integer layer (fmt s16 or s8; docs/quantization.md
 * §10), run after blob.c has checked the record's op, flags, activation codes and sizes. The
 * integer step path computes no parameter and checks nothing: what it relies on is proved here,
 * in this order (the first fault decides the status; each records its field in rne_fault):
 *   op and format: DENSE and the cells s16 or s8; ACT, LAYERNORM, TAKE_LAST, SLICE s16
 *                                                                              RNE_ELAYER
 *   cell activations: Sigmoid, Tanh, HardSigmoid (an RNN also Relu)            RNE_ELAYER
 *   tensor roles: every required one present, none the op does not use        RNE_ELAYER
 *   each tensor's dtype, shape and zero point                                  RNE_ESHAPE
 *   the q tensor: the output scale finite and > 0; every scalar slot in its range and unused
 *   slots 0; per-layer slots equal in both directions; for every row, the bound of what it
 *   requantizes times |m| plus the rounding term fits int64 (the bound of W x and R h is
 *   32768 * sum |w| over the row, of a peephole term max |P| * 2^31); acc32 only if every row's
 *   bound fits int32; int16 weights symmetric (no -32768, so that two products sum in int32);
 *   Softmax / LogSoftmax over fewer than 65536 features; LAYERNORM: eps_q (slots 1, 2) in
 *   0..2^61, fewer than 65536 features, each multiplier times the bound of the normalized
 *   value, (isqrt(6F) + 2) * 2^23, fits int64                                  RNE_ELAYER
 * All arithmetic is on uint64_t / int64_t: nothing a blob holds can make it wrap.
 */
#include "qvec.h"
#include "rne_internal.h"

#define RNE__ROLE(r) (1u << (r))
#define RNE__EPS_Q_HI_MAX (1 << 30)   /* LAYERNORM: eps_q <= 2^61, its high word (eps_q >> 31) */

/* the dtype, rank and dims of role r of an integer layer; 0 if the op has no such role */
static int rne__q_role(const rne__layer *l, int r, uint8_t *dtype, unsigned *ndim, uint64_t d[3])
{
    const uint64_t dirs = rne__rec_dirs(l), hid = l->hidden, gh = (uint64_t)rne__gates(l->op) * hid;
    const uint8_t wtype = l->fmt == RNE_FMT_S8 ? RNE_DT_S8 : RNE_DT_S16;
    const int lbr = (l->flags & RNE_LF_LINEAR_BEFORE_RESET) != 0;
    *dtype = RNE_DT_S32;
    *ndim = 1;
    switch (l->op) {       /* an op compiled out: refused by blob.c first (RNE__IS) */
#if RNE__HAS_DENSE
    case RNE_OP_DENSE:
        if (r == RNE_T_W) {
            *dtype = wtype;
            *ndim = 2;
            d[0] = l->in_features;
            d[1] = l->out_features;
        } else if (r == RNE_T_B || r == RNE_T_Q) {
            d[0] = (r == RNE_T_Q ? RNE__Q_SLOTS : 0u) + (uint64_t)l->out_features;
        } else {
            return 0;
        }
        return 1;
#endif
#if RNE__HAS_LAYERNORM
    case RNE_OP_LAYERNORM:
        if (r != RNE_T_B && r != RNE_T_Q)
            return 0;
        d[0] = (r == RNE_T_Q ? RNE__Q_SLOTS : 0u) + (uint64_t)l->in_features;
        return 1;
#endif
#if RNE__HAS_ACT
    case RNE_OP_ACT:
        if (r != RNE_T_Q && r != RNE_T_LUT)
            return 0;
        *dtype = r == RNE_T_Q ? RNE_DT_S32 : RNE_DT_S16;
        d[0] = r == RNE_T_Q ? RNE__Q_SLOTS : RNE__Q_TABLE;
        return 1;
#endif
    default:
        if (rne__gates(l->op) == 0)
            return 0;
        break;
    }
    *ndim = 2;
    d[0] = dirs;
    switch (r) {
    case RNE_T_W: *dtype = wtype; *ndim = 3; d[1] = l->in_features; d[2] = gh; return 1;
    case RNE_T_R: *dtype = wtype; *ndim = 3; d[1] = hid; d[2] = gh; return 1;
    case RNE_T_B: d[1] = gh + (lbr ? hid : 0u); return 1;
    case RNE_T_H0: *dtype = RNE_DT_S16; d[1] = hid; return 1;
    case RNE_T_Q: d[1] = RNE__Q_SLOTS + 2 * gh; return 1;
    case RNE_T_P:
        if (!RNE__IS(l->op, LSTM))
            return 0;
        *dtype = RNE_DT_S16;
        *ndim = 3;
        d[1] = 3;
        d[2] = hid;
        return 1;
    case RNE_T_C0: d[1] = hid; return RNE__IS(l->op, LSTM);
    default: return 0;
    }
}

/* The kinds an integer ACT computes through its 257-entry table (role RNE_T_LUT, required):
 * rnnedge/fixedpoint.py LUT_KINDS (Log is not one: it computes log2 from the bit length). */
static int rne__act_lut(unsigned kind)
{
    return kind == RNE_ACT_ELU || kind == RNE_ACT_SOFTSIGN || kind == RNE_ACT_SOFTPLUS ||
           (kind >= RNE_ACT_SQRT && kind <= RNE_ACT_POW && kind != RNE_ACT_LOG);
}

static unsigned rne__q_required(const rne__layer *l)
{
    if (RNE__IS(l->op, DENSE))
        return RNE__ROLE(RNE_T_W) | RNE__ROLE(RNE_T_Q);
    if (RNE__IS(l->op, LAYERNORM))
        return RNE__ROLE(RNE_T_Q);
    if (RNE__IS(l->op, ACT))
        return RNE__ROLE(RNE_T_Q) | (rne__act_lut(l->act[0][0]) ? RNE__ROLE(RNE_T_LUT) : 0u);
    if (rne__gates(l->op) != 0)
        return RNE__ROLE(RNE_T_W) | RNE__ROLE(RNE_T_R) | RNE__ROLE(RNE_T_B) | RNE__ROLE(RNE_T_Q);
    return 0;
}

static int rne__q_check_roles(const rne__blobview *m, const rne__layer *l, rne_fault *w)
{
    const unsigned required = rne__q_required(l);
    int r;
    /* presence first, then contents: a layer that is not integer at all fails as RNE_ELAYER */
    for (r = 0; r < 8; r++) {
        const int32_t k = l->tensor[r];
        uint8_t dtype;
        unsigned ndim;
        uint64_t dims[3];
        if (k == -1) {
            if (required & RNE__ROLE(r))
                return rne__fail_t(w, RNE__AT(RNE_ELAYER, RNE_FF_TENSOR), l, r);
            continue;
        }
        if (k < 0 || (uint32_t)k >= m->header->n_tensors ||
            !rne__q_role(l, r, &dtype, &ndim, dims))
            return rne__fail_t(w, RNE__AT(RNE_ELAYER, RNE_FF_TENSOR), l, r);
        if (RNE__IS(l->op, ACT) && r == RNE_T_LUT && !(required & RNE__ROLE(RNE_T_LUT)))
            return rne__fail_t(w, RNE__AT(RNE_ELAYER, RNE_FF_TENSOR), l, r);  /* for kinds that read one */
    }
    for (r = 0; r < 8; r++) {
        const rne_tensor *t;
        uint8_t dtype;
        unsigned ndim, i;
        uint64_t dims[3];
        if (l->tensor[r] < 0)
            continue;
        t = &m->tensors[l->tensor[r]];
        (void)rne__q_role(l, r, &dtype, &ndim, dims);
        if (t->dtype != dtype)
            return rne__fail_t(w, RNE__AT(RNE_ESHAPE, RNE_FF_DTYPE), l, r);
        if (t->ndim != ndim)
            return rne__fail_t(w, RNE__AT(RNE_ESHAPE, RNE_FF_NDIM), l, r);
        if (t->zero_point != 0)
            return rne__fail_t(w, RNE__AT(RNE_ESHAPE, RNE_FF_ZERO_POINT), l, r);
        for (i = 0; i < ndim; i++)
            if (t->shape[i] != dims[i]) {
                w->index = (int32_t)i;
                return rne__fail_t(w, RNE__AT(RNE_ESHAPE, RNE_FF_SHAPE), l, r);
            }
    }
    return RNE_OK;
}

RNE__THUMB1_OUTLINE
static const void *rne__q_data(const rne__blobview *m, const rne__layer *l, int role)
{
    const int32_t k = l->tensor[role];
    return k < 0 ? NULL : (const void *)(m->blob + m->tensors[k].offset);
}

static int rne__q_shift_ok(int32_t s)
{
    return s >= 1 && s <= 62;
}

/* bound * |m| + 2^(shift-1) <= INT64_MAX (shift in 1..62, bound <= 2^62) */
RNE__THUMB1_OUTLINE
static int rne__q_fits(uint64_t bound, int32_t m, int32_t shift)
{
    const uint64_t am = m < 0 ? (uint64_t)(-(int64_t)m) : (uint64_t)m;
    const uint64_t room = (uint64_t)INT64_MAX - ((uint64_t)1 << (shift - 1));
    return am == 0 || bound <= room / am;
}

/* Columns j < n of W_t [k][ldw] (int8 or int16): each column's bound 32768 * sum_p |w| must fit
 * rne__q_fits with m[j], and int32 when acc32; no int16 weight is -32768. Columns in blocks of
 * 32, rows contiguous. RNE_FF_NONE if they do, else the field at fault (RNE_FF_WEIGHT: *at the
 * weight's element p * ldw + j; RNE_FF_MULTIPLIER, RNE_FF_ACC32: *at the column j). */
static unsigned rne__q_check_cols(const void *w, int s8, uint64_t k, uint64_t ldw, uint64_t n,
                                  const int32_t *m, int32_t shift, int32_t acc32, uint64_t *at)
{
    uint64_t sums[32], j0, p, j;
    for (j0 = 0; j0 < n; j0 += 32) {
        const uint64_t nn = n - j0 < 32u ? n - j0 : 32u;
        for (j = 0; j < nn; j++)
            sums[j] = 0;
        for (p = 0; p < k; p++)
            for (j = 0; j < nn; j++) {
                const int32_t v = s8 ? ((const int8_t *)w)[p * ldw + j0 + j]
                                     : ((const int16_t *)w)[p * ldw + j0 + j];
                *at = p * ldw + j0 + j;
                if (v == INT16_MIN)
                    return RNE_FF_WEIGHT;
                sums[j] += (uint64_t)(v < 0 ? -v : v);
            }
        for (j = 0; j < nn; j++) {
            const uint64_t bound = sums[j] * 32768u;  /* < 2^31 * 2^15 * 2^15 */
            *at = j0 + j;
            if (!rne__q_fits(bound, m[j0 + j], shift))
                return RNE_FF_MULTIPLIER;
            if (acc32 && bound > (uint64_t)INT32_MAX)
                return RNE_FF_ACC32;
        }
    }
    return RNE_FF_NONE;
}

/* rne__q_check_cols on role wr's weights (w: their element base), multipliers at q element
 * mbase; a fault names the weight (RNE_FF_WEIGHT) or the q element (multiplier, acc32 slot). */
static int rne__q_cols(const rne__layer *l, rne_fault *w, int wr, uint64_t wbase, const void *wt,
                       uint64_t k, uint64_t n, const int32_t *q, uint64_t mbase, int32_t shift,
                       uint64_t acc32_at)
{
    uint64_t at = 0;
    const unsigned f = rne__q_check_cols(wt, l->fmt == RNE_FMT_S8, k, n, n, q + mbase, shift,
                                         q[acc32_at], &at);
    if (f == RNE_FF_NONE)
        return RNE_OK;
    if (f == RNE_FF_WEIGHT) {
        w->index = (int32_t)(wbase + at);
        return rne__fail_t(w, RNE__AT(RNE_ELAYER, f), l, wr);
    }
    /* the row's multiplier (its bound overflows int64 with it, or int32 under acc32) */
    w->index = (int32_t)(mbase + at);
    return rne__fail_t(w, RNE__AT(RNE_ELAYER, f), l, RNE_T_Q);
}

/* q[from..to) all 0; else 0 with *at the first nonzero element */
static int rne__q_zero(const int32_t *q, unsigned from, unsigned to, uint64_t *at)
{
    unsigned i;
    for (i = from; i < to; i++)
        if (q[i] != 0) {
            *at = i;
            return 0;
        }
    return 1;
}

/* a q slot fault: element base + slot */
RNE__THUMB1_OUTLINE
static int rne__q_slot(rne_fault *w, const rne__layer *l, uint64_t element)
{
    w->index = (int32_t)element;
    return rne__fail_t(w, RNE__AT(RNE_ELAYER, RNE_FF_Q_SLOT), l, RNE_T_Q);
}

#ifndef RNE_NO_DENSE
static int rne__q_check_dense(const rne__blobview *m, const rne__layer *l, const int32_t *q,
                              rne_fault *w)
{
    uint64_t at = 0;
    if (!rne__q_shift_ok(q[0]))
        return rne__q_slot(w, l, 0);
    if (q[1] != 0)
        return rne__q_slot(w, l, 1);
    if (q[2] != 0 && q[2] != 1)
        return rne__q_slot(w, l, 2);
    if (!rne__q_zero(q, 3, RNE__Q_SLOTS, &at))
        return rne__q_slot(w, l, at);
    return rne__q_cols(l, w, RNE_T_W, 0, rne__q_data(m, l, RNE_T_W), l->in_features,
                       l->out_features, q, RNE__Q_SLOTS, q[0], 2);
}
#endif /* RNE_NO_DENSE */

RNE__THUMB1_OUTLINE
static int rne__q_check_cell(const rne__blobview *m, const rne__layer *l, const int32_t *q0,
                             rne_fault *w)
{
    const uint64_t hid = l->hidden, gh = (uint64_t)rne__gates(l->op) * hid, in = l->in_features;
    const uint64_t row = RNE__Q_SLOTS + 2 * gh;
    const unsigned acts = RNE__IS(l->op, LSTM) ? 3u : RNE__IS(l->op, GRU) ? 2u : 1u;
    const size_t wsize = l->fmt == RNE_FMT_S8 ? 1u : 2u;
    const uint8_t *wt = (const uint8_t *)rne__q_data(m, l, RNE_T_W);
    const uint8_t *rt = (const uint8_t *)rne__q_data(m, l, RNE_T_R);
    const int16_t *peep = (const int16_t *)rne__q_data(m, l, RNE_T_P);
    const int32_t zmax = RNE__IS(l->op, RNN) && l->act[0][0] == RNE_ACT_RELU ? RNE__RELU_ZMAX
                                                                             : RNE__ZMAX;
    unsigned d, a, g, s;
    uint64_t j, at = 0;
    int rc;
    for (d = 0; d < rne__rec_dirs(l); d++) {
        const int32_t *q = q0 + d * row;
        const uint64_t base = d * row;          /* q elements of this direction */
        for (s = 0; d > 0 && s < 5; s++)
            if (q[s] != q0[s])
                return rne__q_slot(w, l, base + s);     /* per-layer slots differ */
        if (!rne__q_shift_ok(q[0]))
            return rne__q_slot(w, l, base);
        if (!rne__q_shift_ok(q[1]))
            return rne__q_slot(w, l, base + 1);
        if (q[2] < 0 || q[2] > zmax)
            return rne__q_slot(w, l, base + 2);
        if (q[3] != 0 && q[3] != 1)
            return rne__q_slot(w, l, base + 3);
        if (peep == NULL && !rne__q_zero(q, 4, 8, &at))
            return rne__q_slot(w, l, base + at);
        if (peep != NULL) {
            if (!rne__q_shift_ok(q[4]))
                return rne__q_slot(w, l, base + 4);
            for (g = 0; g < 3; g++) {       /* P (int16) times c (int32): bound max|P| * 2^31 */
                uint64_t big = 0;
                for (j = 0; j < hid; j++) {
                    const int32_t v = peep[(d * 3 + g) * hid + j];
                    big = (uint64_t)(v < 0 ? -v : v) > big ? (uint64_t)(v < 0 ? -v : v) : big;
                }
                if (!rne__q_fits(big << 31, q[5 + g], q[4])) {
                    w->index = (int32_t)(base + 5 + g);
                    return rne__fail_t(w, RNE__AT(RNE_ELAYER, RNE_FF_MULTIPLIER), l, RNE_T_Q);
                }
            }
        }
        for (a = 0; a < 3; a++) {
            const int32_t *hs = q + 8 + 3 * a;
            if (a < acts && l->act[d][a] == RNE_ACT_HARDSIGMOID) {
                if (!rne__q_shift_ok(hs[1]))
                    return rne__q_slot(w, l, base + 9 + 3 * a);
            } else if (!rne__q_zero(hs, 0, 3, &at)) {
                return rne__q_slot(w, l, base + 8 + 3 * a + at);
            }
        }
#ifndef RNE_NO_STATE_IO
        for (s = 0; s < 2; s++)     /* 17, 18: c_init to Q11.20; 19, 20: Q11.20 to Y_c */
            if ((l->cio >> s & 1u) ? !rne__q_shift_ok(q[18 + 2 * s])
                                   : !rne__q_zero(q, 17 + 2 * s, 19 + 2 * s, &at))
                return rne__q_slot(w, l, base + ((l->cio >> s & 1u) ? 18 + 2 * s : at));
        if (!rne__q_zero(q, 21, RNE__Q_SLOTS, &at))
#else
        if (!rne__q_zero(q, 17, RNE__Q_SLOTS, &at))     /* no c_init / Y_c: slots 17.. are 0 */
#endif
            return rne__q_slot(w, l, base + at);
        if ((rc = rne__q_cols(l, w, RNE_T_W, d * in * gh, wt + d * in * gh * wsize, in, gh, q0,
                              base + RNE__Q_SLOTS, q[0], base + 3)) != RNE_OK ||
            (rc = rne__q_cols(l, w, RNE_T_R, d * hid * gh, rt + d * hid * gh * wsize, hid, gh,
                              q0, base + RNE__Q_SLOTS + gh, q[1], base + 3)) != RNE_OK)
            return rc;
    }
    return RNE_OK;
}

#ifndef RNE_NO_ACT
/* An ACT layer's slots: m1 always; m2 (LeakyRelu, LogSoftmax), m3 (LogSoftmax), k0, k1 by kind. */
static int rne__q_check_act(const rne__layer *l, const int32_t *q, rne_fault *w)
{
    const unsigned kind = l->act[0][0];
    const int vec = kind == RNE_ACT_SOFTMAX || kind == RNE_ACT_LOGSOFTMAX;
    const int m2 = kind == RNE_ACT_LEAKYRELU || kind == RNE_ACT_LOGSOFTMAX;
    const int m3 = kind == RNE_ACT_LOGSOFTMAX;
    const int k0 = kind == RNE_ACT_THRESHOLDEDRELU || kind == RNE_ACT_CLIP ||
                   kind == RNE_ACT_AFFINE || kind == RNE_ACT_SIGMOID || kind == RNE_ACT_TANH ||
                   kind == RNE_ACT_SCALEDTANH || kind == RNE_ACT_HARDSIGMOID || kind == RNE_ACT_LOG;
    const int k1 = kind == RNE_ACT_CLIP;
    uint64_t at = 0;
    if (!rne__q_shift_ok(q[1]))
        return rne__q_slot(w, l, 1);
    if (vec && q[0] < 0)                /* softmax: exponents never negative */
        return rne__q_slot(w, l, 0);
    if (m2 ? !rne__q_shift_ok(q[3]) : !rne__q_zero(q, 2, 4, &at))
        return rne__q_slot(w, l, m2 ? 3 : at);
    if (m3 ? !rne__q_shift_ok(q[5]) : !rne__q_zero(q, 4, 6, &at))
        return rne__q_slot(w, l, m3 ? 5 : at);
    if (!k0 && q[6] != 0)
        return rne__q_slot(w, l, 6);
    if (!k1 && q[7] != 0)
        return rne__q_slot(w, l, 7);
    if (!rne__q_zero(q, 8, RNE__Q_SLOTS, &at))
        return rne__q_slot(w, l, at);
    if (vec && l->in_features >= 65536u)       /* the sum of 32768-sized terms fits int32 */
        return RNE__AT(RNE_ELAYER, RNE_FF_IN_FEATURES);
    return RNE_OK;
}

#endif /* RNE_NO_ACT */

#ifndef RNE_NO_LAYERNORM
/* floor(sqrt(n)) for the small n of a feature count */
static uint64_t rne__q_isqrt_small(uint64_t n)
{
    uint64_t r = 0;
    while ((r + 1) * (r + 1) <= n)
        r++;
    return r;
}

/* A LAYERNORM's slots: 0 the multipliers' shift; 1, 2 eps_q = q[1] * 2^31 + q[2] in 0..2^61;
 * the rest 0. Then F < 65536 (sum of d^2 < 2^56) and every multiplier on the bound of |n|. */
static int rne__q_check_layernorm(const rne__layer *l, const int32_t *q, rne_fault *w)
{
    const uint64_t f = l->in_features;
    uint64_t bound, j, at = 0;
    if (!rne__q_shift_ok(q[0]))
        return rne__q_slot(w, l, 0);
    if (q[1] < 0 || q[1] > RNE__EPS_Q_HI_MAX)
        return rne__q_slot(w, l, 1);
    if (q[2] < 0 || (q[1] == RNE__EPS_Q_HI_MAX && q[2] != 0))
        return rne__q_slot(w, l, 2);
    if (!rne__q_zero(q, 3, RNE__Q_SLOTS, &at))
        return rne__q_slot(w, l, at);
    if (f >= 65536u)
        return RNE__AT(RNE_ELAYER, RNE_FF_IN_FEATURES);
    bound = (rne__q_isqrt_small(6u * f) + 2u) << 23;     /* < 2^33 */
    for (j = 0; j < f; j++)
        if (!rne__q_fits(bound, q[RNE__Q_SLOTS + j], q[0])) {
            w->index = (int32_t)(RNE__Q_SLOTS + j);
            return rne__fail_t(w, RNE__AT(RNE_ELAYER, RNE_FF_MULTIPLIER), l, RNE_T_Q);
        }
    return RNE_OK;
}
#endif /* RNE_NO_LAYERNORM */

int rne__check_layer_q(const rne__blobview *m, const rne__layer *l, rne_fault *w)
{
    const uint32_t gates = rne__gates(l->op);
    const int32_t *q;
    unsigned d, a;
    int rc;
    if (l->fmt == RNE_FMT_S8 && !RNE__IS(l->op, DENSE) && gates == 0)
        return RNE__AT(RNE_ELAYER, RNE_FF_FMT);    /* no weights: s16 */
    for (d = 0; gates != 0 && d < rne__rec_dirs(l); d++)
        for (a = 0; a < (RNE__IS(l->op, LSTM) ? 3u : RNE__IS(l->op, GRU) ? 2u : 1u); a++) {
            const unsigned k = l->act[d][a];
            w->index = (int32_t)(3 * d + a);            /* the slot act[d][a] */
            if (k != RNE_ACT_SIGMOID && k != RNE_ACT_TANH && k != RNE_ACT_HARDSIGMOID &&
                !(k == RNE_ACT_RELU && RNE__IS(l->op, RNN)))
                return RNE__AT(RNE_ELAYER, RNE_FF_ACT);
            if ((k == RNE_ACT_RELU) != (l->act[0][0] == RNE_ACT_RELU))
                return RNE__AT(RNE_ELAYER, RNE_FF_ACT);  /* Relu in both directions or neither */
        }
    w->index = -1;
    if ((rc = rne__q_check_roles(m, l, w)) != RNE_OK)
        return rc;
    if (l->op == RNE_OP_TAKE_LAST || l->op == RNE_OP_SLICE)
        return RNE_OK;
    if (!(m->tensors[l->tensor[RNE_T_Q]].scale > 0.0f))     /* the output scale (finite: blob.c) */
        return rne__fail_t(w, RNE__AT(RNE_ELAYER, RNE_FF_SCALE), l, RNE_T_Q);
    q = (const int32_t *)rne__q_data(m, l, RNE_T_Q);
#ifndef RNE_NO_DENSE   /* an op compiled out never gets here: blob.c refuses it first */
    if (l->op == RNE_OP_DENSE)
        return rne__q_check_dense(m, l, q, w);
#endif
#ifndef RNE_NO_ACT
    if (l->op == RNE_OP_ACT)
        return rne__q_check_act(l, q, w);
#endif
#ifndef RNE_NO_LAYERNORM
    if (l->op == RNE_OP_LAYERNORM)
        return rne__q_check_layernorm(l, q, w);
#endif
    return rne__q_check_cell(m, l, q, w);
}
