/*
 * conv_check.c - rne_model_load's checks of a conv node (conv.h: CONV 15, CONV_T 16;
 * docs/graph.md section 6, docs/quantization.md "Convolutions"). After them no kernel of
 * conv_f32.c / conv_int.c can read or write outside its rows, its cache, its work or a tensor,
 * or overflow. In this order (the first fault decides; each refusal is RNE__AT(status, field)
 * with the detail in *w):
 *   op (built without RNE_NO_CONV); fmt f32, s16 or s8          RNE_ELAYER  op, fmt
 *   flags, hidden, clip, act / alpha / beta, pad, reserved[1]   RNE_ELAYER  flags, hidden, clip,
 *   all 0 (reserved[0] is the node's skip, docs/graph.md 6)                 act, alpha, beta,
 *                                                                           reserved (index)
 *   inputs: in[0] only; outputs: out[0] only                    RNE_ELAYER  in / out (index)
 *   params: kt, dt, groups, kw, sw, dw in 1..2^20, pads in      RNE_ELAYER  param (index: which)
 *   0..2^20, (kt - 1) dt <= 2^20; CONV_T: kt and dt 1; a [C] value:
 *   kw, sw, dw 1, pads 0
 *   x's dtype; kt > 1 on a LAST value; y's dtype and LAST      RNE_ESHAPE  in (0), out (-1)
 *   x [C_in] or [C_in, W], C_in divisible by groups            RNE_ESHAPE  in (index 0)
 *   y's ndim = x's (out -1), C_out divisible by groups (out 0), W_out by the formula (out 1;
 *   CONV_T: the formula plus an output_padding 0..max(sw, dw) - 1)
 *   the patch K = C_in / g kt kw, the cache (kt - 1) dt C_in W and the work W_out (K + C_out / g)
 *   elements <= 2^26; a CONV tap by tap along W (conv.h rne__conv_direct) also its padded rows
 *   (C_in / g) kt (W_out + (kw - 1) dw) and C_out W_out        RNE_ESHAPE  in (index 0)
 *   tensor roles: W, integer q present, bias optional, no other RNE_ELAYER  tensor (role)
 *   each tensor's dtype, ndim, zero point, shape                RNE_ESHAPE  dtype, ndim,
 *                                                                           zero_point, shape
 *   integer q (section DATA, index: element): shift 1..62 (slot 0), acc32 0 or 1 (slot 2; 0 for
 *   CONV_T), other slots 0; no int16 weight -32768; every output channel's 32768 sum |w| times
 *   |m| plus 2^(shift-1) within int64, and within int32 under acc32
 *                                                               RNE_ELAYER  q slot, weight,
 *                                                                           multiplier, acc32
 * All sizes are compared in uint64_t: nothing a blob holds can make them wrap.
 */
#include "conv.h"
#include "qvec.h"

#define RNE__CV_NONE 0xFFFFu
#define RNE__CV_MAX (1 << 20)               /* the largest param */
#define RNE__CV_ELEMS ((uint64_t)1 << 26)   /* the largest patch and cache (elements) */

#ifndef RNE_NO_CONV

static int rne__cv_at(rne_fault *w, int at, int32_t index)
{
    w->index = index;
    return at;
}

/* a fault in node n's tensor of role `role` (section DATA for a value in its data) */
static int rne__cv_fail_t(rne_fault *w, int at, const rne_node *n, int role, int32_t index)
{
    w->role = (uint8_t)role;
    w->tensor = n->tensor[role];
    w->index = index;
    if (at >> 8 >= RNE_FF_Q_SLOT && at >> 8 <= RNE_FF_WEIGHT)
        w->section = RNE_SEC_DATA;
    return at;
}

static int rne__cv_record(const rne_node *n, rne_fault *w)
{
    unsigned d, a;
    if (n->fmt != RNE_FMT_F32 && n->fmt != RNE_FMT_S16 && n->fmt != RNE_FMT_S8)
        return RNE__AT(RNE_ELAYER, RNE_FF_FMT);
    if (n->flags != 0)
        return RNE__AT(RNE_ELAYER, RNE_FF_FLAGS);
    if (n->hidden != 0)
        return RNE__AT(RNE_ELAYER, RNE_FF_HIDDEN);
    if (n->clip != 0.0f)
        return RNE__AT(RNE_ELAYER, RNE_FF_CLIP);
    for (d = 0; d < 2; d++)
        for (a = 0; a < 3; a++) {
            w->index = (int32_t)(3 * d + a);
            if (n->act[d][a] != 0)
                return RNE__AT(RNE_ELAYER, RNE_FF_ACT);
            if (n->alpha[d][a] != 0.0f)
                return RNE__AT(RNE_ELAYER, RNE_FF_ALPHA);
            if (n->beta[d][a] != 0.0f)
                return RNE__AT(RNE_ELAYER, RNE_FF_BETA);
        }
    for (d = 0; d < 2; d++)
        if (n->pad[d] != 0)
            return rne__cv_at(w, RNE__AT(RNE_ELAYER, RNE_FF_RESERVED), (int32_t)d);
    if (n->reserved[1] != 0)
        return rne__cv_at(w, RNE__AT(RNE_ELAYER, RNE_FF_RESERVED), 1);
    for (d = 0; d < 4; d++) {
        if ((n->in[d] != RNE__CV_NONE) != (d == 0))
            return rne__cv_at(w, RNE__AT(RNE_ELAYER, RNE_FF_IN), (int32_t)d);
        if ((n->out[d] != RNE__CV_NONE) != (d == 0))
            return rne__cv_at(w, RNE__AT(RNE_ELAYER, RNE_FF_OUT), (int32_t)d);
    }
    w->index = -1;
    return RNE_OK;
}

static int rne__cv_params(const rne_node *n, const rne_value *x, rne_fault *w)
{
    const int32_t *p = n->param;
    const int transpose = n->op == RNE_OP_CONV_T;
    unsigned i;
    for (i = 0; i < 8; i++) {
        const int32_t lo = (i == 5 || i == 6) ? 0 : 1;
        if (p[i] < lo || p[i] > RNE__CV_MAX)
            return rne__cv_at(w, RNE__AT(RNE_ELAYER, RNE_FF_PARAM), (int32_t)i);
    }
    if (transpose) {
        if (p[0] != 1 || p[1] != 1)                     /* over W only */
            return rne__cv_at(w, RNE__AT(RNE_ELAYER, RNE_FF_PARAM), p[0] != 1 ? 0 : 1);
    } else if ((uint64_t)(p[0] - 1) * (uint64_t)p[1] > RNE__CV_MAX) {
        return rne__cv_at(w, RNE__AT(RNE_ELAYER, RNE_FF_PARAM), 1);
    }
    if (x->ndim == 1)                                   /* no feature axis: a 1 x 1 kernel */
        for (i = 3; i < 8; i++)
            if (p[i] != (i == 5 || i == 6 ? 0 : 1))
                return rne__cv_at(w, RNE__AT(RNE_ELAYER, RNE_FF_PARAM), (int32_t)i);
    return RNE_OK;
}

static int rne__cv_shapes(const rne_node *n, const rne_value *x, const rne_value *y, rne_fault *w)
{
    const int32_t *p = n->param;
    const uint8_t dt = n->fmt == RNE_FMT_F32 ? RNE_DT_F32 : RNE_DT_S16;
    const uint64_t g = (uint64_t)p[2], cin = x->shape[0], win = x->ndim == 2 ? x->shape[1] : 1u;
    if (x->dtype != dt || (p[0] > 1 && (x->flags & RNE_VF_LAST)) || x->ndim > 2 || cin % g != 0)
        return rne__cv_at(w, RNE__AT(RNE_ESHAPE, RNE_FF_IN), 0);
    if (y->dtype != dt || (y->flags & RNE_VF_LAST) != (x->flags & RNE_VF_LAST) ||
        y->ndim != x->ndim)
        return rne__cv_at(w, RNE__AT(RNE_ESHAPE, RNE_FF_OUT), -1);
    if (y->shape[0] % g != 0)
        return rne__cv_at(w, RNE__AT(RNE_ESHAPE, RNE_FF_OUT), 0);
    {
        const uint64_t wo = y->ndim == 2 ? y->shape[1] : 1u;
        const uint64_t base = rne__conv_w_out(n->op == RNE_OP_CONV_T, win, p);
        const uint64_t most = n->op == RNE_OP_CONV_T ? (uint64_t)(p[4] > p[7] ? p[4] : p[7]) : 1u;
        if (base == 0 || wo < base || wo - base >= most)    /* CONV_T: + output_padding */
            return rne__cv_at(w, RNE__AT(RNE_ESHAPE, RNE_FF_OUT), 1);
    }
    /* the patch, the cache, and the f32 work of one row (W_out patches and products): their
     * byte counts then fit a 32-bit size_t */
    if (cin / g * (uint64_t)p[0] * (uint64_t)p[3] > RNE__CV_ELEMS ||
        (uint64_t)(p[0] - 1) * (uint64_t)p[1] * cin * win > RNE__CV_ELEMS ||
        (y->ndim == 2 ? y->shape[1] : 1u) *
                (cin / g * (uint64_t)p[0] * (uint64_t)p[3] + y->shape[0] / g) > RNE__CV_ELEMS)
        return rne__cv_at(w, RNE__AT(RNE_ESHAPE, RNE_FF_IN), 0);
    if (y->ndim == 2 && rne__conv_direct(n->op, p, y->shape[1]) &&    /* tap by tap (conv.h) */
        (cin / g * (uint64_t)p[0] * (y->shape[1] + (uint64_t)(p[3] - 1) * (uint64_t)p[7]) >
             RNE__CV_ELEMS ||
         y->shape[0] * y->shape[1] > RNE__CV_ELEMS))
        return rne__cv_at(w, RNE__AT(RNE_ESHAPE, RNE_FF_IN), 0);
    return RNE_OK;
}

/* tensor t of role r: dtype, ndim, zero point, shape d[0..nd) */
static int rne__cv_tensor(const rne_node *n, const rne_tensor *t, int r, uint8_t dtype,
                          unsigned nd, const uint64_t *d, rne_fault *w)
{
    unsigned i;
    if (t->dtype != dtype)
        return rne__cv_fail_t(w, RNE__AT(RNE_ESHAPE, RNE_FF_DTYPE), n, r, -1);
    if (t->ndim != nd)
        return rne__cv_fail_t(w, RNE__AT(RNE_ESHAPE, RNE_FF_NDIM), n, r, -1);
    if (t->zero_point != 0)
        return rne__cv_fail_t(w, RNE__AT(RNE_ESHAPE, RNE_FF_ZERO_POINT), n, r, -1);
    for (i = 0; i < nd; i++)
        if (t->shape[i] != d[i])
            return rne__cv_fail_t(w, RNE__AT(RNE_ESHAPE, RNE_FF_SHAPE), n, r, (int32_t)i);
    return RNE_OK;
}

/* bound * |m| + 2^(shift-1) <= INT64_MAX (shift 1..62, bound < 2^52) */
static int rne__cv_fits(uint64_t bound, int32_t m, int32_t shift)
{
    const uint64_t am = m < 0 ? (uint64_t)(-(int64_t)m) : (uint64_t)m;
    return am == 0 || bound <= ((uint64_t)INT64_MAX - ((uint64_t)1 << (shift - 1))) / am;
}

/* the q slots, the weights and every output channel's bound */
static int rne__cv_q(const rne__blobview *m, const rne_node *n, uint64_t cin, uint64_t cout,
                     uint64_t kk, rne_fault *w)
{
    const int32_t *q = (const int32_t *)(const void *)(m->blob +
                                                      m->tensors[n->tensor[RNE_T_Q]].offset);
    const void *wt = m->blob + m->tensors[n->tensor[RNE_T_W]].offset;
    const int s8 = n->fmt == RNE_FMT_S8, transpose = n->op == RNE_OP_CONV_T;
    const uint64_t g = (uint64_t)n->param[2], ng = cout / g, cg = cin / g;
    const uint64_t kw = (uint64_t)n->param[3];
    uint64_t co, e, s;
    unsigned i;
    if (q[0] < 1 || q[0] > 62)
        return rne__cv_fail_t(w, RNE__AT(RNE_ELAYER, RNE_FF_Q_SLOT), n, RNE_T_Q, 0);
    if (q[2] < 0 || q[2] > (transpose ? 0 : 1))
        return rne__cv_fail_t(w, RNE__AT(RNE_ELAYER, RNE_FF_Q_SLOT), n, RNE_T_Q, 2);
    for (i = 1; i < RNE__Q_SLOTS; i++)
        if (i != 2 && q[i] != 0)
            return rne__cv_fail_t(w, RNE__AT(RNE_ELAYER, RNE_FF_Q_SLOT), n, RNE_T_Q, (int32_t)i);
    for (co = 0; co < cout; co++) {
        uint64_t sum = 0;
        const uint64_t gi = co / ng, cl = co % ng;
        const uint64_t terms = transpose ? cg * kw : kk;
        for (s = 0; s < terms; s++) {
            int32_t v;
            /* CONV: W_t [K][C_out] column co; CONV_T: W [C_in][ng][1][kw], ci of co's group */
            e = transpose ? ((gi * cg + s / kw) * ng + cl) * kw + s % kw : s * cout + co;
            v = s8 ? ((const int8_t *)wt)[e] : ((const int16_t *)wt)[e];
            if (v == INT16_MIN)
                return rne__cv_fail_t(w, RNE__AT(RNE_ELAYER, RNE_FF_WEIGHT), n, RNE_T_W,
                                      (int32_t)e);
            sum += (uint64_t)(v < 0 ? -v : v);
        }
        sum *= 32768u;                                  /* < 2^26 * 2^15 * 2^15 */
        if (!rne__cv_fits(sum, q[RNE__Q_SLOTS + co], q[0]))
            return rne__cv_fail_t(w, RNE__AT(RNE_ELAYER, RNE_FF_MULTIPLIER), n, RNE_T_Q,
                                  (int32_t)(RNE__Q_SLOTS + co));
        if (q[2] && sum > (uint64_t)INT32_MAX)
            return rne__cv_fail_t(w, RNE__AT(RNE_ELAYER, RNE_FF_ACC32), n, RNE_T_Q, 2);
    }
    return RNE_OK;
}

static int rne__cv_tensors(const rne__blobview *m, const rne_node *n, const rne_value *x,
                           const rne_value *y, rne_fault *w)
{
    const int integer = n->fmt != RNE_FMT_F32, transpose = n->op == RNE_OP_CONV_T;
    const uint64_t g = (uint64_t)n->param[2], cin = x->shape[0], cout = y->shape[0];
    const uint64_t kk = cin / g * (uint64_t)n->param[0] * (uint64_t)n->param[3];
    uint64_t d[4];
    int r, rc;
    for (r = 0; r < 8; r++) {
        const int32_t k = n->tensor[r];
        const int needed = r == RNE_T_W || (r == RNE_T_Q && integer);
        if (k == -1 && (r == RNE_T_B || !needed))
            continue;
        if (k < 0 || (uint32_t)k >= m->header->n_tensors || (!needed && r != RNE_T_B))
            return rne__cv_fail_t(w, RNE__AT(RNE_ELAYER, RNE_FF_TENSOR), n, r, -1);
    }
    d[0] = transpose ? cin : kk;
    d[1] = transpose ? cout / g : cout;
    d[2] = 1;
    d[3] = (uint64_t)n->param[3];
    if ((rc = rne__cv_tensor(n, &m->tensors[n->tensor[RNE_T_W]], RNE_T_W,
                             !integer ? RNE_DT_F32 : n->fmt == RNE_FMT_S8 ? RNE_DT_S8
                                                                          : RNE_DT_S16,
                             transpose ? 4u : 2u, d, w)) != RNE_OK)
        return rc;
    d[0] = cout;
    if (n->tensor[RNE_T_B] != -1 &&
        (rc = rne__cv_tensor(n, &m->tensors[n->tensor[RNE_T_B]], RNE_T_B,
                             integer ? RNE_DT_S32 : RNE_DT_F32, 1, d, w)) != RNE_OK)
        return rc;
    if (!integer)
        return RNE_OK;
    d[0] = RNE__Q_SLOTS + cout;
    if ((rc = rne__cv_tensor(n, &m->tensors[n->tensor[RNE_T_Q]], RNE_T_Q, RNE_DT_S32, 1, d,
                             w)) != RNE_OK)
        return rc;
    return rne__cv_q(m, n, cin, cout, kk, w);
}

int rne__check_conv(const rne__blobview *m, const rne_node *n, const rne_value *vals,
                    rne_fault *w)
{
    const rne_value *x, *y;
    int rc;
    w->index = -1;
    if (n->op != RNE_OP_CONV && n->op != RNE_OP_CONV_T)
        return RNE__AT(RNE_ELAYER, RNE_FF_OP);
    if ((rc = rne__cv_record(n, w)) != RNE_OK)
        return rc;
    x = &vals[n->in[0]];
    y = &vals[n->out[0]];
    if ((rc = rne__cv_params(n, x, w)) != RNE_OK || (rc = rne__cv_shapes(n, x, y, w)) != RNE_OK)
        return rc;
    w->index = -1;
    return rne__cv_tensors(m, n, x, y, w);
}

#else

int rne__check_conv(const rne__blobview *m, const rne_node *n, const rne_value *vals,
                    rne_fault *w)
{
    (void)m;
    (void)n;
    (void)vals;
    w->index = -1;
    return RNE__AT(RNE_ELAYER, RNE_FF_OP);
}

#endif /* RNE_NO_CONV */
