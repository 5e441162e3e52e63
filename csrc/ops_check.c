/*
 * ops_check.c - rne_model_load's checks of a graph-op node (ops.h: SLICE 7 along any axis,
 * BINARY 9, CONCAT 10, TRANSPOSE 11, COPY 12, GATHER 13, REDUCE 14; docs/graph.md sections 2-3,
 * docs/quantization.md "Graph ops"). After them no kernel of ops_f32.c / ops_int.c / ops_move.c
 * can read or write outside its rows or overflow. In this order (the first fault decides; each
 * refusal is RNE__AT(status, field) with the detail in *w):
 *   op (built without RNE_NO_GRAPH_OPS), fmt f32 or s16        RNE_ELAYER  op, fmt
 *   flags, hidden, clip, act / alpha / beta, pad, reserved[1]  RNE_ELAYER  flags, hidden, clip,
 *   all 0 (reserved[0] is the node's skip, docs/graph.md 6)                act, alpha, beta,
 *                                                                          reserved (index: slot)
 *   which inputs and outputs are present                        RNE_ELAYER  in / out (index: slot)
 *   params: kind, axis, perm, bounds, mask; unused ones 0       RNE_ELAYER  param (index: which);
 *                                                                          an integer BINARY POW
 *                                                                          is refused here
 *   each input's dtype and LAST flag (those of the output)      RNE_ESHAPE  in (index: slot)
 *   the output's dtype                                          RNE_ESHAPE  out (index -1)
 *   the shapes: an input that does not fit                      RNE_ESHAPE  in (index: slot)
 *               the output's shape                              RNE_ESHAPE  out (index: its dim,
 *                                                                          -1 for ndim / size)
 *   integer: y's scale equals x's (SLICE, TRANSPOSE, COPY)      RNE_ELAYER  scale (index: slot)
 *   (BINARY's constant operand, role 0: its index, ndim 1..4 and dims >= 1 with the shapes,
 *   as RNE_ELAYER tensor / RNE_ESHAPE ndim, shape (index: its dim) for role 0)
 *   tensor roles: the ones the op needs present, no other       RNE_ELAYER  tensor (role)
 *   each tensor's dtype, ndim, zero point, shape                RNE_ESHAPE  dtype, ndim,
 *                                                                          zero_point, shape
 *                                                                          (index: dim); GATHER:
 *                                                                          table scale = y's
 *   integer q slots (section DATA, index: slot): shifts,        RNE_ELAYER  q slot, multiplier
 *   unused slots 0, REDUCE's sum times m within int64
 * All sizes are compared in uint64_t: nothing a blob holds can make them wrap.
 */
#include "ops.h"
#include "qvec.h"

#define RNE__OP_NONE 0xFFFFu

#ifndef RNE_NO_GRAPH_OPS

/* a fault in node n's tensor of role `role` (section DATA for a value in its data) */
static int rne__op_fail_t(rne_fault *w, int at, const rne_node *n, int role)
{
    w->role = (uint8_t)role;
    w->tensor = n->tensor[role];
    if (at >> 8 == RNE_FF_Q_SLOT || at >> 8 == RNE_FF_MULTIPLIER)
        w->section = RNE_SEC_DATA;
    return at;
}

static int rne__op_at(rne_fault *w, int at, int32_t index)
{
    w->index = index;
    return at;
}

static uint64_t rne__op_features(const rne_value *v)
{
    uint64_t f = 1;
    unsigned i;
    for (i = 0; i < v->ndim; i++)
        f *= v->shape[i];
    return f;
}

/* inputs present: slots 0..need-1 always, up to `most` (contiguous) */
static int rne__op_slots(const rne_node *n, unsigned need, unsigned most, rne_fault *w)
{
    unsigned i, seen = 0;
    for (i = 0; i < 4; i++) {
        const int present = n->in[i] != RNE__OP_NONE;
        if (present != (i < need || (i < most && i == seen && present)))
            return rne__op_at(w, RNE__AT(RNE_ELAYER, RNE_FF_IN), (int32_t)i);
        seen += present ? 1u : 0u;
    }
    if (n->out[0] == RNE__OP_NONE)
        return rne__op_at(w, RNE__AT(RNE_ELAYER, RNE_FF_OUT), 0);
    for (i = 1; i < 4; i++)
        if (n->out[i] != RNE__OP_NONE)
            return rne__op_at(w, RNE__AT(RNE_ELAYER, RNE_FF_OUT), (int32_t)i);
    return RNE_OK;
}

/* params[from..8) all 0 */
static int rne__op_params_zero(const rne_node *n, unsigned from, rne_fault *w)
{
    unsigned i;
    for (i = from; i < 8; i++)
        if (n->param[i] != 0)
            return rne__op_at(w, RNE__AT(RNE_ELAYER, RNE_FF_PARAM), (int32_t)i);
    return RNE_OK;
}

static int rne__op_params(const rne_node *n, const rne_value *vals, rne_fault *w)
{
    const int32_t *p = n->param;
    const rne_value *x = &vals[n->in[0] == RNE__OP_NONE ? n->out[0] : n->in[0]];
    unsigned i, used = 0;
    switch (n->op) {
    case RNE_OP_BINARY:
        if (p[0] < RNE_BIN_ADD || p[0] > RNE_BIN_LOGHYPOT ||
            (p[0] == RNE_BIN_POW && n->fmt != RNE_FMT_F32) ||   /* POW: f32 only */
            (p[0] >= RNE_BIN_HYPOT && n->fmt == RNE_FMT_F32))   /* (LOG)HYPOT: integer only */
            return rne__op_at(w, RNE__AT(RNE_ELAYER, RNE_FF_PARAM), 0);
        if (p[1] != 0 && (p[1] != 1 || n->tensor[RNE_T_W] == -1))  /* the constant on the left */
            return rne__op_at(w, RNE__AT(RNE_ELAYER, RNE_FF_PARAM), 1);
        used = 2;
        break;
    case RNE_OP_CONCAT:
        if (p[0] < 0 || (uint32_t)p[0] >= vals[n->out[0]].ndim)
            return rne__op_at(w, RNE__AT(RNE_ELAYER, RNE_FF_PARAM), 0);
        used = 1;
        break;
    case RNE_OP_TRANSPOSE: {
        unsigned seen = 0;
        for (i = 0; i < x->ndim; i++) {
            if (p[i] < 0 || (uint32_t)p[i] >= x->ndim || (seen >> p[i]) & 1u)
                return rne__op_at(w, RNE__AT(RNE_ELAYER, RNE_FF_PARAM), (int32_t)i);
            seen |= 1u << p[i];
        }
        used = x->ndim;
        break;
    }
    case RNE_OP_GATHER:
        if (p[0] < 1)                                           /* V, the table's rows */
            return rne__op_at(w, RNE__AT(RNE_ELAYER, RNE_FF_PARAM), 0);
        used = 1;
        break;
    case RNE_OP_REDUCE:
        if (p[0] < RNE_RED_SUM || p[0] > RNE_RED_MIN)
            return rne__op_at(w, RNE__AT(RNE_ELAYER, RNE_FF_PARAM), 0);
        if (p[1] < 1 || p[1] >= (1 << x->ndim))
            return rne__op_at(w, RNE__AT(RNE_ELAYER, RNE_FF_PARAM), 1);
        used = 2;
        break;
    case RNE_OP_SLICE: {
        uint64_t dim;
        if (p[0] < 0 || (uint32_t)p[0] >= x->ndim)
            return rne__op_at(w, RNE__AT(RNE_ELAYER, RNE_FF_PARAM), 0);
        dim = x->shape[p[0]];
        if (p[1] < 0 || (uint64_t)p[1] >= dim)
            return rne__op_at(w, RNE__AT(RNE_ELAYER, RNE_FF_PARAM), 1);
        if (p[2] <= p[1] || (uint64_t)p[2] > dim)
            return rne__op_at(w, RNE__AT(RNE_ELAYER, RNE_FF_PARAM), 2);
        if (p[3] < 1)
            return rne__op_at(w, RNE__AT(RNE_ELAYER, RNE_FF_PARAM), 3);
        used = 4;
        break;
    }
    default: /* COPY */
        break;
    }
    return rne__op_params_zero(n, used, w);
}

/* every input's dtype and LAST flag; the output's dtype */
static int rne__op_dtypes(const rne_node *n, const rne_value *vals, rne_fault *w)
{
    const uint8_t dt = n->fmt == RNE_FMT_F32 ? RNE_DT_F32 : RNE_DT_S16;
    const rne_value *y = &vals[n->out[0]];
    unsigned i;
    if (y->dtype != dt)
        return rne__op_at(w, RNE__AT(RNE_ESHAPE, RNE_FF_OUT), -1);
    for (i = 0; i < 4 && n->in[i] != RNE__OP_NONE; i++) {
        const rne_value *x = &vals[n->in[i]];
        if (x->dtype != (n->op == RNE_OP_GATHER ? RNE_DT_S32 : dt) ||
            (x->flags & RNE_VF_LAST) != (y->flags & RNE_VF_LAST))
            return rne__op_at(w, RNE__AT(RNE_ESHAPE, RNE_FF_IN), (int32_t)i);
    }
    return RNE_OK;
}

#define RNE__OP_IN(i) rne__op_at(w, RNE__AT(RNE_ESHAPE, RNE_FF_IN), (int32_t)(i))
#define RNE__OP_OUT(d) rne__op_at(w, RNE__AT(RNE_ESHAPE, RNE_FF_OUT), (int32_t)(d))

/* BINARY's second operand b: in[1], or the constant tensor of role 0 (its index, ndim 1..4 and
 * dims >= 1 checked here, before its shape is used) */
static int rne__op_operand_b(const rne__blobview *m, const rne_node *n, const rne_value *vals,
                             uint32_t *nd, const uint32_t **shape, rne_fault *w)
{
    const int32_t k = n->tensor[RNE_T_W];
    const rne_tensor *t;
    unsigned i;
    if (k == -1) {
        *nd = vals[n->in[1]].ndim;
        *shape = vals[n->in[1]].shape;
        return RNE_OK;
    }
    if (k < 0 || (uint32_t)k >= m->header->n_tensors)
        return rne__op_fail_t(w, RNE__AT(RNE_ELAYER, RNE_FF_TENSOR), n, RNE_T_W);
    t = &m->tensors[k];
    if (t->ndim < 1 || t->ndim > 4)
        return rne__op_fail_t(w, RNE__AT(RNE_ESHAPE, RNE_FF_NDIM), n, RNE_T_W);
    for (i = 0; i < t->ndim; i++)
        if (t->shape[i] < 1) {
            w->index = (int32_t)i;
            return rne__op_fail_t(w, RNE__AT(RNE_ESHAPE, RNE_FF_SHAPE), n, RNE_T_W);
        }
    *nd = t->ndim;
    *shape = t->shape;
    return RNE_OK;
}

static int rne__op_shapes(const rne__blobview *m, const rne_node *n, const rne_value *vals,
                          rne_fault *w)
{
    const int32_t *p = n->param;
    const rne_value *y = &vals[n->out[0]], *x = &vals[n->in[0]];
    unsigned i, j;
    switch (n->op) {
    case RNE_OP_BINARY: {
        const uint32_t *sb;
        uint32_t nb, nd;
        int rc;
        if ((rc = rne__op_operand_b(m, n, vals, &nb, &sb, w)) != RNE_OK)
            return rc;
        nd = x->ndim > nb ? x->ndim : nb;
        if (y->ndim != nd)
            return RNE__OP_OUT(-1);
        for (i = 0; i < nd; i++) {          /* aligned right: dim i of y */
            const uint32_t da = i + x->ndim >= nd ? x->shape[i + x->ndim - nd] : 1u;
            const uint32_t db = i + nb >= nd ? sb[i + nb - nd] : 1u;
            if (da != 1 && da != y->shape[i])
                return RNE__OP_IN(0);
            if (db != 1 && db != y->shape[i]) {
                if (n->tensor[RNE_T_W] == -1)
                    return RNE__OP_IN(1);
                w->index = (int32_t)(i + nb - nd);      /* the constant's dim */
                return rne__op_fail_t(w, RNE__AT(RNE_ESHAPE, RNE_FF_SHAPE), n, RNE_T_W);
            }
            if (y->shape[i] != (da == 1 ? db : da))
                return RNE__OP_OUT(i);
        }
        return RNE_OK;
    }
    case RNE_OP_CONCAT: {
        const unsigned axis = (unsigned)p[0];
        uint64_t sum = 0;
        for (j = 0; j < 4 && n->in[j] != RNE__OP_NONE; j++) {
            const rne_value *v = &vals[n->in[j]];
            if (v->ndim != y->ndim)
                return RNE__OP_IN(j);
            for (i = 0; i < y->ndim; i++)
                if (i != axis && v->shape[i] != y->shape[i])
                    return RNE__OP_IN(j);
            sum += v->shape[axis];
        }
        return sum == y->shape[axis] ? RNE_OK : RNE__OP_OUT(axis);
    }
    case RNE_OP_TRANSPOSE:
        if (y->ndim != x->ndim)
            return RNE__OP_OUT(-1);
        for (i = 0; i < y->ndim; i++)
            if (y->shape[i] != x->shape[p[i]])
                return RNE__OP_OUT(i);
        return RNE_OK;
    case RNE_OP_COPY:
        return rne__op_features(y) == rne__op_features(x) ? RNE_OK : RNE__OP_OUT(-1);
    case RNE_OP_GATHER:
        if (x->ndim != 1)
            return RNE__OP_IN(0);
        if (y->ndim != 2)
            return RNE__OP_OUT(-1);
        return y->shape[0] == x->shape[0] ? RNE_OK : RNE__OP_OUT(0);
    case RNE_OP_REDUCE: {
        /* y's shape is x's kept dims, the reduced ones kept as 1 or dropped: compare the two
         * without their 1s (the kernel needs only the count and the order, which that fixes) */
        uint32_t kept[4];
        unsigned nk = 0, ny = 0;
        for (i = 0; i < x->ndim; i++)
            if (!((unsigned)p[1] >> i & 1u) && x->shape[i] != 1)
                kept[nk++] = x->shape[i];
        for (i = 0; i < y->ndim; i++)
            if (y->shape[i] != 1) {
                if (ny >= nk || y->shape[i] != kept[ny])
                    return RNE__OP_OUT(i);
                ny++;
            }
        return ny == nk ? RNE_OK : RNE__OP_OUT(-1);
    }
    default: { /* SLICE */
        const unsigned axis = (unsigned)p[0];
        const uint64_t count = ((uint64_t)(p[2] - p[1]) + (uint64_t)p[3] - 1u) / (uint64_t)p[3];
        if (y->ndim != x->ndim)
            return RNE__OP_OUT(-1);
        for (i = 0; i < y->ndim; i++)
            if (y->shape[i] != (i == axis ? count : x->shape[i]))
                return RNE__OP_OUT(i);
        return RNE_OK;
    }
    }
}

static int rne__op_shift(int32_t s, int32_t most)
{
    return s >= 1 && s <= most;
}

/* q[from..RNE__Q_SLOTS) all 0, else the fault at the first nonzero slot */
static int rne__op_qzero(const rne_node *n, const int32_t *q, unsigned from, rne_fault *w)
{
    unsigned i;
    for (i = from; i < RNE__Q_SLOTS; i++)
        if (q[i] != 0) {
            w->index = (int32_t)i;
            return rne__op_fail_t(w, RNE__AT(RNE_ELAYER, RNE_FF_Q_SLOT), n, RNE_T_Q);
        }
    return RNE_OK;
}

static int rne__op_qslot(rne_fault *w, const rne_node *n, unsigned slot)
{
    w->index = (int32_t)slot;
    return rne__op_fail_t(w, RNE__AT(RNE_ELAYER, RNE_FF_Q_SLOT), n, RNE_T_Q);
}

static int rne__op_qslots(const rne_node *n, const rne_value *vals, const int32_t *q,
                          rne_fault *w)
{
    unsigned j;
    switch (n->op) {
    case RNE_OP_BINARY:
        if (!rne__op_shift(q[2], 62))
            return rne__op_qslot(w, n, 2);
        if ((n->param[0] == RNE_BIN_MUL || n->param[0] == RNE_BIN_DIV) && q[1] != 0)
            return rne__op_qslot(w, n, 1);
        if (n->param[0] == RNE_BIN_HYPOT) {     /* a^2 m_a + b^2 m_b < 2^61; the root takes shift/2 */
            for (j = 0; j < 2; j++)
                if (q[j] < 0 || q[j] >= (int32_t)1 << 30)
                    return rne__op_qslot(w, n, j);
            if (q[2] % 2 != 0)
                return rne__op_qslot(w, n, 2);
        }
        if (n->param[0] == RNE_BIN_LOGHYPOT) {  /* the sum < 2^59; v < 2^47 (ops_int.c) */
            for (j = 0; j < 2; j++)
                if (q[j] < 0 || q[j] >= (int32_t)1 << 28)
                    return rne__op_qslot(w, n, j);
            if (q[4] < -((int32_t)1 << 15) || q[4] > (int32_t)1 << 15 ||     /* e = hi 2^31 + lo */
                (q[4] == (int32_t)1 << 15 && q[5] != 0))                     /* |e| <= 2^46 */
                return rne__op_qslot(w, n, 4);
            if (q[5] < 0)
                return rne__op_qslot(w, n, 5);
            return rne__op_qzero(n, q, 7, w);   /* slots 3 (m1) and 6 (k0): any int32 */
        }
        return rne__op_qzero(n, q, 3, w);
    case RNE_OP_CONCAT:
        for (j = 0; j < 4; j++)
            if (n->in[j] != RNE__OP_NONE ? !rne__op_shift(q[2 * j + 1], 62) : q[2 * j + 1] != 0)
                return rne__op_qslot(w, n, 2 * j + 1);
            else if (n->in[j] == RNE__OP_NONE && q[2 * j] != 0)
                return rne__op_qslot(w, n, 2 * j);
        return rne__op_qzero(n, q, 8, w);
    default: { /* REDUCE: |sum| <= 2^15 n, n the reduced count (<= 2^20) */
        const rne_value *x = &vals[n->in[0]];
        const uint64_t am = q[0] < 0 ? (uint64_t)(-(int64_t)q[0]) : (uint64_t)q[0];
        uint64_t count = 1;
        unsigned i;
        if (!rne__op_shift(q[1], 62))
            return rne__op_qslot(w, n, 1);
        for (i = 0; i < x->ndim; i++)
            if ((unsigned)n->param[1] >> i & 1u)
                count *= x->shape[i];
        if (am != 0 && (count << 15) > ((uint64_t)INT64_MAX - ((uint64_t)1 << (q[1] - 1))) / am) {
            w->index = 0;
            return rne__op_fail_t(w, RNE__AT(RNE_ELAYER, RNE_FF_MULTIPLIER), n, RNE_T_Q);
        }
        return rne__op_qzero(n, q, 2, w);
    }
    }
}

static int rne__op_tensors(const rne__blobview *m, const rne_node *n, const rne_value *vals,
                           rne_fault *w)
{
    const int integer = n->fmt != RNE_FMT_F32;
    const int needs_q = integer && (n->op == RNE_OP_BINARY || n->op == RNE_OP_CONCAT ||
                                    n->op == RNE_OP_REDUCE);
    const rne_value *y = &vals[n->out[0]];
    int r;
    for (r = 0; r < 8; r++) {
        const int32_t k = n->tensor[r];
        const int needed = (r == RNE_T_W && (n->op == RNE_OP_GATHER ||
                                             (n->op == RNE_OP_BINARY && k != -1))) ||
                           (r == RNE_T_Q && needs_q);
        if (k == -1 && !needed)
            continue;
        if (k < 0 || (uint32_t)k >= m->header->n_tensors || !needed)
            return rne__op_fail_t(w, RNE__AT(RNE_ELAYER, RNE_FF_TENSOR), n, r);
    }
    if (n->op == RNE_OP_GATHER) {
        const rne_tensor *t = &m->tensors[n->tensor[RNE_T_W]];
        if (t->dtype != (integer ? RNE_DT_S16 : RNE_DT_F32))
            return rne__op_fail_t(w, RNE__AT(RNE_ESHAPE, RNE_FF_DTYPE), n, RNE_T_W);
        if (t->ndim != 2)
            return rne__op_fail_t(w, RNE__AT(RNE_ESHAPE, RNE_FF_NDIM), n, RNE_T_W);
        if (t->zero_point != 0)
            return rne__op_fail_t(w, RNE__AT(RNE_ESHAPE, RNE_FF_ZERO_POINT), n, RNE_T_W);
        if (t->shape[0] != (uint32_t)n->param[0] || t->shape[1] != y->shape[1]) {
            w->index = t->shape[0] != (uint32_t)n->param[0] ? 0 : 1;
            return rne__op_fail_t(w, RNE__AT(RNE_ESHAPE, RNE_FF_SHAPE), n, RNE_T_W);
        }
        if (integer && t->scale != y->scale)
            return rne__op_fail_t(w, RNE__AT(RNE_ESHAPE, RNE_FF_SCALE), n, RNE_T_W);
    }
    if (n->op == RNE_OP_BINARY && n->tensor[RNE_T_W] != -1) {  /* the constant operand */
        const rne_tensor *t = &m->tensors[n->tensor[RNE_T_W]];
        if (t->dtype != (integer ? RNE_DT_S16 : RNE_DT_F32))
            return rne__op_fail_t(w, RNE__AT(RNE_ESHAPE, RNE_FF_DTYPE), n, RNE_T_W);
        if (t->zero_point != 0)
            return rne__op_fail_t(w, RNE__AT(RNE_ESHAPE, RNE_FF_ZERO_POINT), n, RNE_T_W);
    }
    if (needs_q) {
        const rne_tensor *t = &m->tensors[n->tensor[RNE_T_Q]];
        if (t->dtype != RNE_DT_S32)
            return rne__op_fail_t(w, RNE__AT(RNE_ESHAPE, RNE_FF_DTYPE), n, RNE_T_Q);
        if (t->ndim != 1)
            return rne__op_fail_t(w, RNE__AT(RNE_ESHAPE, RNE_FF_NDIM), n, RNE_T_Q);
        if (t->zero_point != 0)
            return rne__op_fail_t(w, RNE__AT(RNE_ESHAPE, RNE_FF_ZERO_POINT), n, RNE_T_Q);
        if (t->shape[0] != RNE__Q_SLOTS) {
            w->index = 0;
            return rne__op_fail_t(w, RNE__AT(RNE_ESHAPE, RNE_FF_SHAPE), n, RNE_T_Q);
        }
        return rne__op_qslots(n, vals, (const int32_t *)(const void *)(m->blob + t->offset), w);
    }
    return RNE_OK;
}

int rne__check_op(const rne__blobview *m, const rne_node *n, const rne_value *vals, rne_fault *w)
{
    unsigned d, a;
    int rc;
    w->index = -1;
    if (n->op != RNE_OP_SLICE && (n->op < RNE_OP_BINARY || n->op > RNE_OP_REDUCE))
        return RNE__AT(RNE_ELAYER, RNE_FF_OP);
    if (n->fmt != RNE_FMT_F32 && n->fmt != RNE_FMT_S16)
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
    for (d = 0; d < 2; d++) {
        w->index = (int32_t)d;
        if (n->pad[d] != 0 || (d == 1 && n->reserved[d] != 0))     /* reserved[0]: the skip */
            return RNE__AT(RNE_ELAYER, RNE_FF_RESERVED);
    }
    w->index = -1;
    if ((rc = rne__op_slots(n, n->op == RNE_OP_CONCAT ||
                                   (n->op == RNE_OP_BINARY && n->tensor[RNE_T_W] == -1) ? 2u : 1u,
                            n->op == RNE_OP_CONCAT ? 4u : 0u, w)) != RNE_OK ||
        (rc = rne__op_params(n, vals, w)) != RNE_OK ||
        (rc = rne__op_dtypes(n, vals, w)) != RNE_OK ||
        (rc = rne__op_shapes(m, n, vals, w)) != RNE_OK)
        return rc;
    w->index = -1;
    if (n->fmt == RNE_FMT_S16 && (n->op == RNE_OP_SLICE || n->op == RNE_OP_TRANSPOSE ||
                                  n->op == RNE_OP_COPY) &&
        vals[n->out[0]].scale != vals[n->in[0]].scale)
        return rne__op_at(w, RNE__AT(RNE_ELAYER, RNE_FF_SCALE), 0);
    return rne__op_tensors(m, n, vals, w);
}

#else

int rne__check_op(const rne__blobview *m, const rne_node *n, const rne_value *vals, rne_fault *w)
{
    (void)m;
    (void)n;
    (void)vals;
    w->index = -1;
    return RNE__AT(RNE_ELAYER, RNE_FF_OP);
}

#endif /* RNE_NO_GRAPH_OPS */

int rne__check_ids(const int32_t *ids, size_t n, uint32_t vocab)
{
    size_t i;
    for (i = 0; i < n; i++)
        if (ids[i] < 0 || (uint32_t)ids[i] >= vocab)
            return RNE_EINPUT;
    return RNE_OK;
}
