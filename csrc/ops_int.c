/*
 * ops_int.c - the graph ops on int16 values (docs/quantization.md "Graph ops" is the
 * specification, rnnedge/fixedpoint.py's "graph ops" section its numpy oracle; contract in
 * ops.h). Integer-only, like every *_int.c file (`make intonly`, the Cortex-M0 check).
 *
 * Every product and sum is int64 and bounded by what rne__check_op proved (q slots copied into
 * node->q at load, so they cannot change afterwards):
 *   BINARY ADD / SUB  sat16(rshr(a m_a +- b m_b, shift))           |.| <= 2 * 2^15 * 2^31 = 2^47
 *   BINARY MIN / MAX  sat16(min / max(rshr(a m_a, shift), rshr(b m_b, shift)))
 *   BINARY MUL        sat16(rshr(a b m, shift))                     |.| <= 2^30 * 2^31 = 2^61
 *   BINARY HYPOT      sat16(rshr(isqrt(4 (a^2 m_a + b^2 m_b)), shift/2 + 1)), 0 <= m_a, m_b < 2^30
 *                     and shift even (rne__check_op): the sum < 2^61, times 4 < 2^63
 *   BINARY LOGHYPOT   v = (rshr(isqrt(4 (a^2 m_a + b^2 m_b)), 1) << 16) + e, 0 <= m_a, m_b < 2^28
 *                     and |e| <= 2^46 (the sum < 2^59, the root < 2^29.5 + 1, v < 2^47); v > 0:
 *                     sat16(rq32(log2_q15(v), m1, shift) + k0), v == 0: -32767, v < 0: 0
 *   BINARY DIV        b != 0: sat16(rshr(rdiv(a m, b), shift)), rdiv rounding half up with
 *                     b's sign moved onto a m (|a m| <= 2^46, the quotient too);
 *                     b == 0: 32767 if a > 0, -32768 if a < 0, 0 if a == 0
 *   CONCAT            input k: sat16(rshr(x m_k, shift_k))
 *   REDUCE SUM / MEAN sat16(rshr(sum m, shift)), sum of n <= 2^20 values: |sum| <= 2^35, and
 *                     rne__check_op proved 2^15 n |m| + 2^(shift-1) <= INT64_MAX
 *   REDUCE MAX / MIN  sat16(rshr(v m, shift)) of the picked v
 * with 2^(shift-1) added: shift <= 62 leaves room for all of them. The data-movement ops (SLICE,
 * TRANSPOSE, COPY, GATHER) are ops_move.c's on 2-byte elements.
 */
#include "ops.h"
#include "qvec.h"

#ifndef RNE_NO_GRAPH_OPS

/* the q slots of a BINARY node */
typedef struct rne__qbin {
    unsigned kind;
    int32_t ma, mb;
    unsigned shift;
    int32_t m1, k0;         /* LOGHYPOT only */
    int64_t e;
} rne__qbin;

/* DIV: b != 0: sat16(rshr(rdiv(a m, b), shift)), rdiv(p, q) = p / q rounded half up with the
 * sign of q moved onto p: floor((2p + q) / 2q) for q > 0 (|a m| <= 2^46, so |2p + q| < 2^48 and
 * the quotient <= 2^46 + 1); b == 0: 32767 if a > 0, -32768 if a < 0, 0 if a == 0 (as +-inf and
 * 0 / 0 -> 0 quantize) */
static inline int16_t rne__qdiv(int64_t a, int64_t b, int32_t m, unsigned shift)
{
    int64_t num = a * m, q2, d2, q;
    if (b == 0)
        return a > 0 ? INT16_MAX : a < 0 ? INT16_MIN : 0;
    if (b < 0) {
        num = -num;
        b = -b;
    }
    q2 = 2 * num + b;
    d2 = 2 * b;
    q = q2 / d2 - (q2 % d2 != 0 && q2 < 0 ? 1 : 0);    /* floor: C's `/` truncates */
    return rne__sat16(rne__rshr(q, shift));
}

/* HYPOT: sqrt(a^2 + b^2) at the output scale, rounded half up, from root = isqrt(4 (a^2 m_a +
 * b^2 m_b)) (the squares exact in int64) */
static inline int16_t rne__qhypot(uint64_t root, unsigned shift)
{
    return rne__sat16(rne__rshr((int64_t)root, shift / 2 + 1));
}

/* LOGHYPOT: ln(alpha sqrt(a^2 + b^2) + beta) at the output scale, from the same root: the Log of
 * the root of the exact sum plus e, as the integer Log activation takes an int16
 * (fixedpoint.binary_q) */
static inline int16_t rne__qloghypot(uint64_t root, const rne__qbin *p)
{
    const int64_t r = (rne__rshr((int64_t)root, 1) << 16) + p->e;
    if (r <= 0)
        return (int16_t)(r == 0 ? -INT16_MAX : 0);
    return rne__sat16((int64_t)rne__rq32(rne__log2_q15(r), p->m1, p->shift) + p->k0);
}

/* HYPOT and LOGHYPOT of y[i] = a[i * sa], b[i * sb] for i < n: 4 (a^2 m_a + b^2 m_b) < 2^63 of a
 * run of up to RNE__HYPOT_RUN elements, their roots by rne__isqrt64_rows (SIMD), then each
 * output; the integers of rne__isqrt64 per element. */
#define RNE__HYPOT_RUN 32
static void rne__qhypot_strided(const rne__qbin *p, int16_t *y, const int16_t *a, size_t sa,
                                const int16_t *b, size_t sb, size_t n)
{
    const int64_t ma = p->ma, mb = p->mb;
    uint64_t v[RNE__HYPOT_RUN];
    size_t i, j, c;
    for (i = 0; i < n; i += c) {
        c = n - i < RNE__HYPOT_RUN ? n - i : RNE__HYPOT_RUN;
        for (j = 0; j < c; j++) {
            const int64_t x0 = a[(i + j) * sa], x1 = b[(i + j) * sb];
            v[j] = (uint64_t)(x0 * x0 * ma + x1 * x1 * mb) << 2;
        }
        rne__isqrt64_rows(v, c);
        if (p->kind == RNE_BIN_HYPOT)
            for (j = 0; j < c; j++)
                y[i + j] = rne__qhypot(v[j], p->shift);
        else
            for (j = 0; j < c; j++)
                y[i + j] = rne__qloghypot(v[j], p);
    }
}

/* y[i] = a[i * sa] (kind) b[i * sb] for i < n (sa, sb 0 or 1) */
static void rne__qbin_strided(const rne__qbin *p, int16_t *y, const int16_t *a, size_t sa,
                              const int16_t *b, size_t sb, size_t n)
{
    const int64_t ma = p->ma, mb = p->mb;
    const unsigned s = p->shift;
    size_t i;
#define RNE__QBIN_LOOP(expr)                                                                   \
    for (i = 0; i < n; i++) {                                                                  \
        const int64_t x0 = a[i * sa], x1 = b[i * sb];                                          \
        y[i] = (expr);                                                                         \
    }                                                                                          \
    break
    switch (p->kind) {
    case RNE_BIN_ADD: RNE__QBIN_LOOP(rne__sat16(rne__rshr(x0 * ma + x1 * mb, s)));
    case RNE_BIN_SUB: RNE__QBIN_LOOP(rne__sat16(rne__rshr(x0 * ma - x1 * mb, s)));
    case RNE_BIN_MUL: RNE__QBIN_LOOP(rne__sat16(rne__rshr(x0 * x1 * ma, s)));
    case RNE_BIN_DIV: RNE__QBIN_LOOP(rne__qdiv(x0, x1, p->ma, s));
    case RNE_BIN_HYPOT:
    case RNE_BIN_LOGHYPOT: rne__qhypot_strided(p, y, a, sa, b, sb, n); break;
    case RNE_BIN_MIN: {
        RNE__QBIN_LOOP(rne__sat16(rne__rshr(x0 * ma, s) < rne__rshr(x1 * mb, s)
                                      ? rne__rshr(x0 * ma, s) : rne__rshr(x1 * mb, s)));
    }
    default: {                                  /* RNE_BIN_MAX (POW is refused at load) */
        RNE__QBIN_LOOP(rne__sat16(rne__rshr(x0 * ma, s) > rne__rshr(x1 * mb, s)
                                      ? rne__rshr(x0 * ma, s) : rne__rshr(x1 * mb, s)));
    }
    }
#undef RNE__QBIN_LOOP
}

static void rne__binary_int(const rne__opcall *k)
{
    const size_t fy = rne__op_count(k->out_shape, k->out_ndim);
    rne__binop o;
    const int16_t *a, *b;
    int16_t *y = (int16_t *)k->out;
    rne__qbin p;
    size_t da[4], db[4], dy[4], sa[4], sb[4], r, i0, i1, i2;
    int j;
    rne__binop_of(k, &o);
    a = (const int16_t *)o.a;
    b = (const int16_t *)o.b;
    p.kind = (unsigned)k->param[0];
    p.ma = k->node->q[0];
    p.mb = k->node->q[1];
    p.shift = (unsigned)k->node->q[2];
    p.m1 = k->node->q[3];
    p.e = (int64_t)k->node->q[4] * ((int64_t)1 << 31) + k->node->q[5];  /* |e| <= 2^46 */
    p.k0 = k->node->q[6];
    if (o.ra == fy && o.rb == fy) {             /* equal shapes: all rows in one pass */
        if (p.kind == RNE_BIN_ADD || p.kind == RNE_BIN_MUL)
            rne__bin_s16(y, a, b, k->rows * fy, p.kind == RNE_BIN_MUL, p.ma, p.mb, p.shift);
        else
            rne__qbin_strided(&p, y, a, 1, b, 1, k->rows * fy);
        return;
    }
    if (o.fa == fy && o.fb == fy) {             /* equal shapes, one side a constant row */
        for (r = 0; r < k->rows; r++) {
            int16_t *yr = y + r * fy;
            const int16_t *ar = a + r * o.ra, *br = b + r * o.rb;
            if (p.kind == RNE_BIN_ADD || p.kind == RNE_BIN_MUL)
                rne__bin_s16(yr, ar, br, fy, p.kind == RNE_BIN_MUL, p.ma, p.mb, p.shift);
            else
                rne__qbin_strided(&p, yr, ar, 1, br, 1, fy);
        }
        return;
    }
    if (o.fa == 1 || o.fb == 1) {               /* one side a single element per row */
        for (r = 0; r < k->rows; r++)
            rne__qbin_strided(&p, y + r * fy, a + r * o.ra, o.fa == 1 ? 0u : 1u, b + r * o.rb,
                              o.fb == 1 ? 0u : 1u, fy);
        return;
    }
    rne__op_dims(o.sa, o.na, da);
    rne__op_dims(o.sb, o.nb, db);
    rne__op_dims(k->out_shape, k->out_ndim, dy);
    sa[3] = sb[3] = 1;
    for (j = 3; j > 0; j--) {
        sa[j - 1] = sa[j] * da[j];
        sb[j - 1] = sb[j] * db[j];
    }
    for (j = 0; j < 4; j++) {                   /* a broadcast axis does not advance */
        sa[j] = da[j] == 1 ? 0u : sa[j];
        sb[j] = db[j] == 1 ? 0u : sb[j];
    }
    for (r = 0; r < k->rows; r++) {
        const int16_t *ar = a + r * o.ra, *br = b + r * o.rb;
        int16_t *yr = y + r * fy;
        for (i0 = 0; i0 < dy[0]; i0++)
            for (i1 = 0; i1 < dy[1]; i1++)
                for (i2 = 0; i2 < dy[2]; i2++) {
                    const int16_t *ai = ar + i0 * sa[0] + i1 * sa[1] + i2 * sa[2];
                    const int16_t *bi = br + i0 * sb[0] + i1 * sb[1] + i2 * sb[2];
                    if (sa[3] == 1 && sb[3] == 1 &&
                        (p.kind == RNE_BIN_ADD || p.kind == RNE_BIN_MUL))       /* two runs */
                        rne__bin_s16(yr, ai, bi, dy[3], p.kind == RNE_BIN_MUL, p.ma, p.mb,
                                     p.shift);
                    else
                        rne__qbin_strided(&p, yr, ai, sa[3], bi, sb[3], dy[3]);
                    yr += dy[3];
                }
    }
}

/* REDUCE: x's 4 dims aligned right, each kept (the outer walk, over y's elements in order) or
 * reduced (the inner walk); the sum in int64 (exact: its order does not matter), or the pick. */
static void rne__reduce_int(const rne__opcall *k)
{
    const unsigned kind = (unsigned)k->param[0], mask = (unsigned)k->param[1];
    const uint32_t nd = k->in_ndim[0];
    const size_t fx = rne__op_count(k->in_shape[0], nd), fy = rne__op_count(k->out_shape,
                                                                             k->out_ndim);
    const int64_t m = k->node->q[0];
    const unsigned shift = (unsigned)k->node->q[1];
    size_t d[4], st[4], ko[4], ki[4], r;
    uint32_t a;
    rne__op_dims(k->in_shape[0], nd, d);
    st[3] = 1;
    for (a = 3; a > 0; a--)
        st[a - 1] = st[a] * d[a];
    for (a = 0; a < 4; a++) {
        const int red = a >= 4u - nd && ((mask >> (a - (4u - nd))) & 1u);
        ko[a] = red ? 1u : d[a];
        ki[a] = red ? d[a] : 1u;
    }
    for (r = 0; r < k->rows; r++) {
        const int16_t *x = (const int16_t *)k->in[0] + r * fx;
        int16_t *y = (int16_t *)k->out + r * fy;
        size_t o0, o1, o2, o3, i0, i1, i2, i3;
        for (o0 = 0; o0 < ko[0]; o0++)
            for (o1 = 0; o1 < ko[1]; o1++)
                for (o2 = 0; o2 < ko[2]; o2++)
                    for (o3 = 0; o3 < ko[3]; o3++) {
                        const int16_t *xo = x + o0 * st[0] + o1 * st[1] + o2 * st[2] + o3 * st[3];
                        int64_t acc = kind == RNE_RED_SUM || kind == RNE_RED_MEAN ? 0 : xo[0];
                        for (i0 = 0; i0 < ki[0]; i0++)
                            for (i1 = 0; i1 < ki[1]; i1++)
                                for (i2 = 0; i2 < ki[2]; i2++)
                                    for (i3 = 0; i3 < ki[3]; i3++) {
                                        const int64_t v = xo[i0 * st[0] + i1 * st[1] +
                                                             i2 * st[2] + i3 * st[3]];
                                        if (kind == RNE_RED_SUM || kind == RNE_RED_MEAN)
                                            acc += v;
                                        else if (kind == RNE_RED_MAX)
                                            acc = v > acc ? v : acc;
                                        else
                                            acc = v < acc ? v : acc;
                                    }
                        *y++ = rne__sat16(rne__rshr(acc * m, shift));
                    }
    }
}

/* CONCAT: per row, per index before the axis, each input's block requantized by its slots
 * (2k: m_k, 2k + 1: shift_k). */
static void rne__concat_int(const rne__opcall *k)
{
    const uint32_t nd = k->out_ndim, axis = (uint32_t)k->param[0];
    const size_t fout = rne__op_count(k->out_shape, nd);
    size_t outer = 1, inner = 1, block[4] = {0, 0, 0, 0}, fin[4] = {0, 0, 0, 0}, r, o, i;
    uint32_t a, j;
    for (a = 0; a < axis; a++)
        outer *= k->out_shape[a];
    for (a = axis + 1; a < nd; a++)
        inner *= k->out_shape[a];
    for (j = 0; j < 4 && k->in[j] != NULL; j++) {
        block[j] = (size_t)k->in_shape[j][axis] * inner;
        fin[j] = block[j] * outer;
    }
    for (r = 0; r < k->rows; r++) {
        int16_t *y = (int16_t *)k->out + r * fout;
        for (o = 0; o < outer; o++)
            for (j = 0; j < 4 && k->in[j] != NULL; j++) {
                const int16_t *x = (const int16_t *)k->in[j] + r * fin[j] + o * block[j];
                const int64_t m = k->node->q[2 * j];
                const unsigned s = (unsigned)k->node->q[2 * j + 1];
                for (i = 0; i < block[j]; i++)
                    y[i] = rne__sat16(rne__rshr(x[i] * m, s));
                y += block[j];
            }
    }
}

void rne__op_int(const rne__opcall *k)
{
    switch (k->node->op) {
    case RNE_OP_BINARY: rne__binary_int(k); break;
    case RNE_OP_REDUCE: rne__reduce_int(k); break;
    case RNE_OP_CONCAT: rne__concat_int(k); break;
    default: rne__op_move(k, 2); break;         /* SLICE, TRANSPOSE, COPY, GATHER */
    }
}

#else

void rne__op_int(const rne__opcall *k)
{
    (void)k;
}

#endif /* RNE_NO_GRAPH_OPS */
