/*
 * ops_f32.c - the graph ops on f32 values (docs/graph.md section 2; contract in ops.h).
 *
 * BINARY: numpy broadcasting over up to 4 dims, each element one IEEE float operation (a + b,
 * a - b, a * b, a / b, powf(a, b); MIN / MAX give NaN if either side is NaN and b of two equal
 * values, +0 and -0 too, as numpy.minimum / maximum), so that the result equals numpy float32's
 * bit for bit (POW: libm's powf, which numpy
 * float32 power also calls). Fast paths: equal shapes (one pass over all rows: ADD and MUL through
 * the SIMD variant, vec.h's rne__bin_f32), one side a single element, and the general walk whose
 * innermost axis is contiguous or broadcast (ADD and MUL of two contiguous runs, e.g. a bias row
 * over [.., F], through rne__bin_f32 too).
 * REDUCE: for each output element, the reduced elements in x's row-major order, summed left to
 * right in float with Neumaier's compensation (the rounding error of every addition is kept in a
 * second float and added once at the end: SUM), that sum divided by the count (MEAN), or the
 * largest / smallest (MAX, MIN; NaN if any is NaN). The compensated sum is within
 * 2^-23 |exact| + n 2^-46 sum |x| of the exact one (n reduced elements; docs/quantization.md
 * section 11), i.e. an ulp or so unless the sum cancels, in float arithmetic only: no double,
 * which FPU-less and single-precision cores would emulate (2.1 KB of libgcc on a Cortex-M4F). A
 * sum that is not finite (an inf or NaN element, or overflow) is the plain float sum.
 * The data-movement ops are ops_move.c's on 4-byte elements.
 */
#include <math.h>

#include "ops.h"
#include "vec.h"

/* the compensated sum needs every a + b and a - b rounded on its own (gcc never contracts in ISO
 * C mode; clang would) */
#ifdef __clang__
#pragma STDC FP_CONTRACT OFF
#endif

#ifndef RNE_NO_GRAPH_OPS

static inline float rne__min1(float a, float b)
{
    return (a < b || a != a) ? a : b;
}

static inline float rne__max1(float a, float b)
{
    return (a > b || a != a) ? a : b;
}

/* y[i] = a[i * sa] (kind) b[i * sb] for i < n (sa, sb 0 or 1) */
static void rne__bin_strided(unsigned kind, float *y, const float *a, size_t sa, const float *b,
                             size_t sb, size_t n)
{
    size_t i;
#define RNE__BIN_LOOP(expr)                                                                    \
    for (i = 0; i < n; i++) {                                                                  \
        const float x0 = a[i * sa], x1 = b[i * sb];                                            \
        y[i] = (expr);                                                                         \
    }                                                                                          \
    break
    switch (kind) {
    case RNE_BIN_ADD: RNE__BIN_LOOP(x0 + x1);
    case RNE_BIN_SUB: RNE__BIN_LOOP(x0 - x1);
    case RNE_BIN_MUL: RNE__BIN_LOOP(x0 * x1);
    case RNE_BIN_DIV: RNE__BIN_LOOP(x0 / x1);
    case RNE_BIN_MIN: RNE__BIN_LOOP(rne__min1(x0, x1));
    case RNE_BIN_MAX: RNE__BIN_LOOP(rne__max1(x0, x1));
    default: RNE__BIN_LOOP(powf(x0, x1));        /* RNE_BIN_POW */
    }
#undef RNE__BIN_LOOP
}

static void rne__binary_f32(const rne__opcall *k)
{
    const unsigned kind = (unsigned)k->param[0];
    const size_t fy = rne__op_count(k->out_shape, k->out_ndim);
    rne__binop o;
    const float *a, *b;
    float *y = (float *)k->out;
    size_t da[4], db[4], dy[4], sa[4], sb[4], r, i0, i1, i2;
    int j;
    rne__binop_of(k, &o);
    a = (const float *)o.a;
    b = (const float *)o.b;
    if (o.ra == fy && o.rb == fy) {             /* equal shapes: all rows in one pass */
        if (kind == RNE_BIN_ADD || kind == RNE_BIN_MUL)
            rne__bin_f32(y, a, b, k->rows * fy, kind == RNE_BIN_MUL);
        else
            rne__bin_strided(kind, y, a, 1, b, 1, k->rows * fy);
        return;
    }
    if (o.fa == fy && o.fb == fy) {             /* equal shapes, one side a constant row */
        for (r = 0; r < k->rows; r++) {
            float *yr = y + r * fy;
            const float *ar = a + r * o.ra, *br = b + r * o.rb;
            if (kind == RNE_BIN_ADD || kind == RNE_BIN_MUL)
                rne__bin_f32(yr, ar, br, fy, kind == RNE_BIN_MUL);
            else
                rne__bin_strided(kind, yr, ar, 1, br, 1, fy);
        }
        return;
    }
    if (o.fa == 1 || o.fb == 1) {               /* one side a single element per row */
        for (r = 0; r < k->rows; r++)
            rne__bin_strided(kind, y + r * fy, a + r * o.ra, o.fa == 1 ? 0u : 1u, b + r * o.rb,
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
        const float *ar = a + r * o.ra, *br = b + r * o.rb;
        float *yr = y + r * fy;
        for (i0 = 0; i0 < dy[0]; i0++)
            for (i1 = 0; i1 < dy[1]; i1++)
                for (i2 = 0; i2 < dy[2]; i2++) {
                    const float *ai = ar + i0 * sa[0] + i1 * sa[1] + i2 * sa[2];
                    const float *bi = br + i0 * sb[0] + i1 * sb[1] + i2 * sb[2];
                    if (sa[3] == 1 && sb[3] == 1 && (kind == RNE_BIN_ADD || kind == RNE_BIN_MUL))
                        rne__bin_f32(yr, ai, bi, dy[3], kind == RNE_BIN_MUL);  /* a row of each */
                    else
                        rne__bin_strided(kind, yr, ai, sa[3], bi, sb[3], dy[3]);
                    yr += dy[3];
                }
    }
}

/* The reduction's walk (shared with ops_int.c's through the same split): x's 4 dims aligned
 * right, each either kept (the outer walk, over y's elements in order) or reduced (the inner walk,
 * in x's row-major order). */
static void rne__reduce_f32(const rne__opcall *k)
{
    const unsigned kind = (unsigned)k->param[0], mask = (unsigned)k->param[1];
    const uint32_t nd = k->in_ndim[0];
    const size_t fx = rne__op_count(k->in_shape[0], nd), fy = rne__op_count(k->out_shape,
                                                                             k->out_ndim);
    size_t d[4], st[4], ko[4], ki[4], r, n = 1;
    uint32_t a;
    rne__op_dims(k->in_shape[0], nd, d);
    st[3] = 1;
    for (a = 3; a > 0; a--)
        st[a - 1] = st[a] * d[a];
    for (a = 0; a < 4; a++) {
        const int red = a >= 4u - nd && ((mask >> (a - (4u - nd))) & 1u);
        ko[a] = red ? 1u : d[a];
        ki[a] = red ? d[a] : 1u;
        n *= ki[a];
    }
    for (r = 0; r < k->rows; r++) {
        const float *x = (const float *)k->in[0] + r * fx;
        float *y = (float *)k->out + r * fy;
        size_t o0, o1, o2, o3, i0, i1, i2, i3;
        for (o0 = 0; o0 < ko[0]; o0++)
            for (o1 = 0; o1 < ko[1]; o1++)
                for (o2 = 0; o2 < ko[2]; o2++)
                    for (o3 = 0; o3 < ko[3]; o3++) {
                        const float *xo = x + o0 * st[0] + o1 * st[1] + o2 * st[2] + o3 * st[3];
                        float sum = 0.0f, comp = 0.0f, pick = xo[0];
                        for (i0 = 0; i0 < ki[0]; i0++)
                            for (i1 = 0; i1 < ki[1]; i1++)
                                for (i2 = 0; i2 < ki[2]; i2++)
                                    for (i3 = 0; i3 < ki[3]; i3++) {
                                        const float v = xo[i0 * st[0] + i1 * st[1] +
                                                           i2 * st[2] + i3 * st[3]];
                                        if (kind == RNE_RED_SUM || kind == RNE_RED_MEAN) {
                                            const float t = sum + v;    /* Neumaier */
                                            comp += fabsf(sum) >= fabsf(v) ? (sum - t) + v
                                                                           : (v - t) + sum;
                                            sum = t;
                                        } else if (kind == RNE_RED_MAX)
                                            pick = rne__max1(pick, v);
                                        else
                                            pick = rne__min1(pick, v);
                                    }
                        if (kind == RNE_RED_SUM || kind == RNE_RED_MEAN) {
                            const float total = sum - sum == 0.0f ? sum + comp : sum;  /* finite */
                            *y++ = kind == RNE_RED_SUM ? total : total / (float)n;
                        } else {
                            *y++ = pick;
                        }
                    }
    }
}

void rne__op_f32(const rne__opcall *k)
{
    switch (k->node->op) {
    case RNE_OP_BINARY: rne__binary_f32(k); break;
    case RNE_OP_REDUCE: rne__reduce_f32(k); break;
    default: rne__op_move(k, 4); break;         /* SLICE, CONCAT, TRANSPOSE, COPY, GATHER */
    }
}

#else

void rne__op_f32(const rne__opcall *k)
{
    (void)k;
}

#endif /* RNE_NO_GRAPH_OPS */
