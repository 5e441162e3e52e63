/*
 * vec.c - float32 primitives (contract in vec.h): the scalar C99 reference, and the names the
 * kernels call, taken from the SIMD variant compiled in (vec_avx512.h, vec_avx2.h, vec_neon.h)
 * or from the reference.
 *
 * The reference vectorizes without -O3 or intrinsics: gcc -O2 only vectorizes loops whose trip
 * count is a known multiple of the vector width, so every hot loop runs over fixed blocks of
 * RNE__BLK elements plus a scalar tail. A vector instruction rounds exactly like its scalar form,
 * so an element's bits do not depend on whether it fell in a block or in the tail. Contraction
 * of a * b + c into a fused multiply-add would change the reference's bits: gcc never contracts
 * in ISO C mode (-std=c99); clang would by default, hence the pragma.
 */
#include "vec.h"

#include <math.h>
#include <stdint.h>
#include <string.h>

#include "rnnedge.h"

#ifdef __clang__
#pragma STDC FP_CONTRACT OFF
#endif

#if defined(RNE_NO_SIMD)
#define RNE__SIMD_NAME "scalar"
#elif defined(__AVX512F__) && defined(__FMA__)
#include "vec_avx512.h"
#elif defined(__AVX2__) && defined(__FMA__)
#include "vec_avx2.h"
#elif defined(__ARM_NEON)
#include "vec_neon.h"
#else
#define RNE__SIMD_NAME "scalar"
#endif

#define RNE__BLK 16     /* elements per fixed block: a 64-byte cache line of floats */
#define RNE__COLS 512   /* gemm column panel: keeps a panel of wt in L1/L2 across the rows */

/* ---- matrix multiply-accumulate -------------------------------------------------------------- */

/* One row: c[j] += sum_p x[p] * wt[p][j], j < n. Four inputs per pass over c (one load and one
 * store of c per four multiply-adds); the sum for each element is still taken in order
 * p = 0, 1, ... because C evaluates a + b + c + d + e left to right. */
static void rne__gemm_row(float *restrict c, const float *restrict x, const float *restrict wt,
                          size_t ldw, size_t n, size_t k)
{
    const size_t nb = n - n % RNE__BLK;
    size_t p = 0;
    for (; p + 4 <= k; p += 4) {
        const float x0 = x[p], x1 = x[p + 1], x2 = x[p + 2], x3 = x[p + 3];
        const float *restrict w0 = wt + p * ldw;
        const float *restrict w1 = w0 + ldw;
        const float *restrict w2 = w1 + ldw;
        const float *restrict w3 = w2 + ldw;
        size_t j = 0;
        for (; j < nb; j += RNE__BLK) {
            float *restrict cb = c + j;
            const float *restrict b0 = w0 + j, *restrict b1 = w1 + j;
            const float *restrict b2 = w2 + j, *restrict b3 = w3 + j;
            size_t u;
            for (u = 0; u < RNE__BLK; u++)
                cb[u] = cb[u] + x0 * b0[u] + x1 * b1[u] + x2 * b2[u] + x3 * b3[u];
        }
        for (; j < n; j++)
            c[j] = c[j] + x0 * w0[j] + x1 * w1[j] + x2 * w2[j] + x3 * w3[j];
    }
    for (; p < k; p++) {
        const float x0 = x[p];
        const float *restrict w0 = wt + p * ldw;
        size_t j = 0;
        for (; j < nb; j += RNE__BLK) {
            float *restrict cb = c + j;
            const float *restrict b0 = w0 + j;
            size_t u;
            for (u = 0; u < RNE__BLK; u++)
                cb[u] = cb[u] + x0 * b0[u];
        }
        for (; j < n; j++)
            c[j] = c[j] + x0 * w0[j];
    }
}

void rne__f32_gemm_acc_scalar(float *c, size_t ldc, const float *x, size_t ldx,
                              const float *wt, size_t ldw, size_t m, size_t n, size_t k)
{
    /* Column panels: a panel of wt (k x RNE__COLS) stays in cache while every row uses it, so the
     * whole of wt is streamed from memory once per call, not once per row. With few rows there is
     * nothing to reuse, and whole rows of wt stream faster. */
    const size_t cols = m >= 4 ? RNE__COLS : n;
    size_t j0, i;
    for (j0 = 0; j0 < n; j0 += cols) {
        const size_t nn = n - j0 < cols ? n - j0 : cols;
        for (i = 0; i < m; i++)
            rne__gemm_row(c + i * ldc + j0, x + i * ldx, wt + j0, ldw, nn, k);
    }
}

/* ---- sigmoid and tanh -------------------------------------------------------------------------
 * e^-c for c in [0, 87]: -c = n ln2 + r with n = round(-c / ln2), |r| <= ln2/2 (Cody-Waite: ln2
 * split in a head with trailing zero bits, so n * head is exact, and a tail); e^r = 1 + r +
 * r^2 Q(r), Q of degree 4 fitted by us (least squares iterated towards minimax: relative error
 * 3e-9 before float rounding); 2^n (n >= -126, a normal float) written into the exponent bits. The
 * rounding uses the 1.5 * 2^23 trick: no float-to-int conversion, which is undefined for NaN.
 * sigmoid(x) = 1 / (1 + e^-|x|) for x >= 0, e^-|x| / (1 + e^-|x|) for x < 0 (no cancellation).
 * tanh(x)    = sign(x) (|x| + |x|^3 P(x^2)) for |x| < 0.55 (P of degree 4, fitted the same way:
 *              relative error 1e-9), else sign(x) (1 - e) / (1 + e) with e = e^-2|x|.
 * |x| is clamped to 87 (sigmoid) or 43.5 (tanh), where the result is exactly 0, 1 or +-1. Every
 * choice is made with integer masks on the bit patterns, never with a branch or a float compare,
 * so that gcc -O2 vectorizes the loops without -fno-trapping-math. NaN in gives NaN out.
 * Measured against double-precision libm over all 2^32 floats: max abs error 8.9e-8 (sigmoid) and
 * 9.1e-8 (tanh); csrc/tests/test_rnnedge.c checks a dense grid and the special values every run.
 */
/* Bit casts. Under -ffreestanding gcc and clang turn a plain memcpy into a real call (1.1-1.6x
 * the instructions of an f32 step on Cortex-M, docs/embedded.md): name the builtin there. */
#if defined(__GNUC__)
#define RNE__COPY __builtin_memcpy
#else
#define RNE__COPY memcpy
#endif

static inline uint32_t rne__bits(float f)
{
    uint32_t u;
    RNE__COPY(&u, &f, sizeof u);
    return u;
}

static inline float rne__float(uint32_t u)
{
    float f;
    RNE__COPY(&f, &u, sizeof f);
    return f;
}

/* all ones if c, else 0 */
static inline uint32_t rne__mask(int c)
{
    return 0u - (uint32_t)c;
}

/* e^-c for 0 <= c <= 87 */
static inline float rne__exp_neg(float c)
{
    const float magic = 12582912.0f;                  /* 1.5 * 2^23 */
    const float t = c * -1.44269502f + magic;         /* magic + round(-c / ln2) */
    const float n = t - magic;
    const float r = (n * -0.693145751953125f - c) - n * 1.42860677e-6f;
    const float q = 0.499999940f + r * (0.166665211f + r * (0.0416683890f +
                    r * (0.00836871006f + r * 0.00138146116f)));
    const float p = 1.0f + (r + (r * r) * q);
    /* t's bit pattern is 0x4B400000 + n; 2^n has the biased exponent n + 127 */
    const uint32_t scale = (rne__bits(t) - 0x4B400000u + 127u) << 23;
    return p * rne__float(scale);
}

/* |x| as bits clamped to lim_bits (a positive float's bits order like the float; NaN -> lim) */
static inline float rne__abs_clamped(uint32_t xb, uint32_t lim_bits)
{
    const uint32_t ab = xb & 0x7FFFFFFFu;
    return rne__float(ab < lim_bits ? ab : lim_bits);
}

/* NaN in x -> x (quiet), else r */
static inline float rne__keep_nan(uint32_t xb, float r)
{
    const uint32_t nan = rne__mask((xb & 0x7FFFFFFFu) > 0x7F800000u);
    return rne__float((rne__bits(r) & ~nan) | ((xb | 0x00400000u) & nan));
}

static inline float rne__sigmoid(float x)
{
    const uint32_t xb = rne__bits(x);
    const float e = rne__exp_neg(rne__abs_clamped(xb, 0x42AE0000u));    /* 87.0f */
    const float pos = 1.0f / (1.0f + e);                                /* sigmoid(|x|) */
    /* sigmoid(-|x|); 0 from |x| = 87 on, where the exact value is below 1.7e-38 */
    const uint32_t neg = rne__bits(e * pos) & ~rne__mask((xb & 0x7FFFFFFFu) >= 0x42AE0000u);
    const uint32_t m = rne__mask((int)(xb >> 31));
    return rne__keep_nan(xb, rne__float((rne__bits(pos) & ~m) | (neg & m)));
}

static inline float rne__tanh(float x)
{
    const uint32_t xb = rne__bits(x);
    const float a = rne__float(xb & 0x7FFFFFFFu);
    const float a2 = a * a;
    const float small = a + (a * a2) * (-0.333333164f + a2 * (0.133325860f + a2 * (-0.0538523085f +
                        a2 * (0.0210716724f + a2 * -0.00627422938f))));
    const float e = rne__exp_neg(2.0f * rne__abs_clamped(xb, 0x422E0000u));  /* 43.5f */
    const float big = (1.0f - e) / (1.0f + e);
    const uint32_t m = rne__mask((xb & 0x7FFFFFFFu) < 0x3F0CCCCDu);          /* |x| < 0.55f */
    const uint32_t mag = (rne__bits(small) & m) | (rne__bits(big) & ~m);
    return rne__keep_nan(xb, rne__float(mag | (xb & 0x80000000u)));
}

void rne__f32_sigmoid_scalar(float *x, size_t n)
{
    size_t i = 0, u;
    for (; i + RNE__BLK <= n; i += RNE__BLK) {
        float *b = x + i;
        for (u = 0; u < RNE__BLK; u++)
            b[u] = rne__sigmoid(b[u]);
    }
    for (; i < n; i++)
        x[i] = rne__sigmoid(x[i]);
}

void rne__f32_tanh_scalar(float *x, size_t n)
{
    size_t i = 0, u;
    for (; i + RNE__BLK <= n; i += RNE__BLK) {
        float *b = x + i;
        for (u = 0; u < RNE__BLK; u++)
            b[u] = rne__tanh(b[u]);
    }
    for (; i < n; i++)
        x[i] = rne__tanh(x[i]);
}

/* ---- the names the kernels call: the SIMD variant's, or the reference's ---------------------- */

const char *rne__f32_simd(void)
{
    return RNE__SIMD_NAME;
}

#ifdef RNE__SIMD_GEMM
void rne__f32_gemm_acc(float *c, size_t ldc, const float *x, size_t ldx,
                       const float *wt, size_t ldw, size_t m, size_t n, size_t k)
{
    RNE__SIMD_GEMM(c, ldc, x, ldx, wt, ldw, m, n, k);
}
#else
void rne__f32_gemm_acc(float *c, size_t ldc, const float *x, size_t ldx,
                       const float *wt, size_t ldw, size_t m, size_t n, size_t k)
{
    rne__f32_gemm_acc_scalar(c, ldc, x, ldx, wt, ldw, m, n, k);
}
#endif

#ifdef RNE__SIMD_SIGMOID
void rne__f32_sigmoid(float *x, size_t n)
{
    RNE__SIMD_SIGMOID(x, n);
}

void rne__f32_tanh(float *x, size_t n)
{
    RNE__SIMD_TANH(x, n);
}

/* One element through the same lanes as the vector version. */
float rne__f32_sigmoid1(float x)
{
    RNE__SIMD_SIGMOID(&x, 1);
    return x;
}

float rne__f32_tanh1(float x)
{
    RNE__SIMD_TANH(&x, 1);
    return x;
}
#else
void rne__f32_sigmoid(float *x, size_t n)
{
    rne__f32_sigmoid_scalar(x, n);
}

void rne__f32_tanh(float *x, size_t n)
{
    rne__f32_tanh_scalar(x, n);
}

float rne__f32_sigmoid1(float x)
{
    return rne__sigmoid(x);
}

float rne__f32_tanh1(float x)
{
    return rne__tanh(x);
}
#endif

/* ---- the one-row step kernels (vec.h) --------------------------------------------------------- */

void rne__f32_gemv2_acc(float *c, const float *x, size_t kx, const float *wx, const float *h,
                        size_t kh, const float *wh, size_t ldw, size_t n, size_t nh)
{
#ifdef RNE__SIMD_GEMV2
    if (RNE__SIMD_GEMV2(c, x, kx, wx, h, kh, wh, ldw, n, nh))
        return;                         /* the row stayed in registers */
#endif
    rne__f32_gemm_acc(c, n, x, kx, wx, ldw, 1, n, kx);
    rne__f32_gemm_acc(c, nh, h, kh, wh, ldw, 1, nh, kh);
}

/* Columns j0 .. H - 1 of an LSTM row (vec.h, lstm_cell) through the given sigmoid and tanh, one
 * gate slice at a time. */
static void rne__lstm_cols(float *g, float *c, float *h, size_t hs, size_t j0,
                           void (*sig)(float *, size_t), void (*th)(float *, size_t))
{
    const size_t r = hs - j0;
    float *gi = g + j0, *go = gi + hs, *gf = go + hs, *gc = gf + hs;
    size_t j;
    sig(gi, r);
    sig(go, r);
    sig(gf, r);
    th(gc, r);
    for (j = 0; j < r; j++)
        c[j0 + j] = gf[j] * c[j0 + j] + gi[j] * gc[j];
    memcpy(gc, c + j0, r * sizeof(float));
    th(gc, r);
    for (j = 0; j < r; j++)
        h[j0 + j] = go[j] * gc[j];
}

void rne__f32_lstm_cell_scalar(float *g, float *c, float *h, size_t hs)
{
    rne__lstm_cols(g, c, h, hs, 0, rne__f32_sigmoid_scalar, rne__f32_tanh_scalar);
}

void rne__f32_lstm_cell(float *g, float *c, float *h, size_t hs)
{
    size_t j0 = 0;
#ifdef RNE__SIMD_LSTM_CELL
    j0 = RNE__SIMD_LSTM_CELL(g, c, h, hs);   /* the whole vectors: columns 0 .. j0 - 1 */
#endif
    if (j0 < hs)
        rne__lstm_cols(g, c, h, hs, j0, rne__f32_sigmoid, rne__f32_tanh);
}

/* Columns j0 .. H - 1 of a GRU row (vec.h, gru_cell) through the given sigmoid and tanh. */
static void rne__gru_cols(float *g, const float *t, float *h, size_t hs, size_t j0,
                          void (*sig)(float *, size_t), void (*th)(float *, size_t))
{
    const size_t r = hs - j0;
    float *gz = g + j0, *gr = gz + hs, *gh = gr + hs;
    size_t j;
    sig(gz, r);
    sig(gr, r);
    for (j = 0; j < r; j++)
        gh[j] += gr[j] * t[j0 + j];
    th(gh, r);
    for (j = 0; j < r; j++)
        h[j0 + j] = (1.0f - gz[j]) * gh[j] + gz[j] * h[j0 + j];
}

void rne__f32_gru_cell_scalar(float *g, const float *t, float *h, size_t hs)
{
    rne__gru_cols(g, t, h, hs, 0, rne__f32_sigmoid_scalar, rne__f32_tanh_scalar);
}

void rne__f32_gru_cell(float *g, const float *t, float *h, size_t hs)
{
    size_t j0 = 0;
#ifdef RNE__SIMD_GRU_CELL
    j0 = RNE__SIMD_GRU_CELL(g, t, h, hs);
#endif
    if (j0 < hs)
        rne__gru_cols(g, t, h, hs, j0, rne__f32_sigmoid, rne__f32_tanh);
}

void rne__f32_clip(float *x, size_t n, float lim)
{
    size_t i;
    for (i = 0; i < n; i++) {
        const float v = x[i] > lim ? lim : x[i];
        x[i] = v < -lim ? -lim : v;
    }
}

/* ---- the other activations (plain loops; libm where noted in vec.h) -------------------------- */

void rne__f32_act(float *x, size_t n, unsigned kind, float alpha, float beta)
{
    size_t i;
    switch (kind) {
    case RNE_ACT_SIGMOID:
        rne__f32_sigmoid(x, n);
        break;
    case RNE_ACT_TANH:
        rne__f32_tanh(x, n);
        break;
    case RNE_ACT_RELU:
        for (i = 0; i < n; i++)
            x[i] = x[i] < 0.0f ? 0.0f : x[i];       /* NaN stays NaN */
        break;
    case RNE_ACT_LEAKYRELU:
        for (i = 0; i < n; i++)
            x[i] = x[i] >= 0.0f ? x[i] : alpha * x[i];
        break;
    case RNE_ACT_THRESHOLDEDRELU:
        for (i = 0; i < n; i++)
            x[i] = x[i] > alpha ? x[i] : 0.0f;
        break;
    case RNE_ACT_SCALEDTANH:
        for (i = 0; i < n; i++)
            x[i] = alpha * rne__tanh(beta * x[i]);
        break;
    case RNE_ACT_HARDSIGMOID:
        for (i = 0; i < n; i++) {
            const float v = alpha * x[i] + beta;
            x[i] = v > 1.0f ? 1.0f : (v < 0.0f ? 0.0f : v);
        }
        break;
    case RNE_ACT_ELU:
        for (i = 0; i < n; i++)
            x[i] = x[i] >= 0.0f ? x[i] : alpha * expm1f(x[i]);
        break;
    case RNE_ACT_SOFTSIGN:
        for (i = 0; i < n; i++)
            x[i] = x[i] / (1.0f + fabsf(x[i]));
        break;
    case RNE_ACT_SOFTPLUS:
        /* log(1 + e^x) = max(x, 0) + log1p(e^-|x|): no overflow for large x */
        for (i = 0; i < n; i++) {
            const float v = x[i];
            x[i] = (v > 0.0f ? v : 0.0f) + log1pf(expf(-fabsf(v)));
        }
        break;
    case RNE_ACT_AFFINE:
        for (i = 0; i < n; i++)
            x[i] = alpha * x[i] + beta;
        break;
    case RNE_ACT_CLIP:
        for (i = 0; i < n; i++) {
            const float v = x[i] < alpha ? alpha : x[i];
            x[i] = v > beta ? beta : v;
        }
        break;
#ifndef RNE_NO_GRAPH_OPS
    /* the kinds of format version 2 (docs/graph.md section 2): one IEEE operation (ABS, NEG,
     * SQRT, RECIPROCAL: the same bits as numpy float32) or libm's float function (EXP, LOG,
     * ERF, POW with the exponent alpha: within a few ulp of the exact function). Compiled out
     * with the graph ops (-DRNE_NO_GRAPH_OPS: the loader then refuses these kinds), which keeps
     * erff and powf (4.4 KB of newlib on a Cortex-M4) out of small firmware. */
    case RNE_ACT_ABS:
        for (i = 0; i < n; i++)
            x[i] = fabsf(x[i]);
        break;
    case RNE_ACT_NEG:
        for (i = 0; i < n; i++)
            x[i] = -x[i];
        break;
    case RNE_ACT_SQRT:
        for (i = 0; i < n; i++)
            x[i] = sqrtf(x[i]);
        break;
    case RNE_ACT_RECIPROCAL:
        for (i = 0; i < n; i++)
            x[i] = 1.0f / x[i];
        break;
    case RNE_ACT_EXP:
        for (i = 0; i < n; i++)
            x[i] = expf(x[i]);
        break;
    case RNE_ACT_LOG:
        for (i = 0; i < n; i++)
            x[i] = logf(x[i]);
        break;
    case RNE_ACT_ERF:
        for (i = 0; i < n; i++)
            x[i] = erff(x[i]);
        break;
    case RNE_ACT_POW:
        if (alpha == 2.0f) {        /* a square (Silero's magnitude): one rounding, as numpy's */
            for (i = 0; i < n; i++)  /* float32 power with 2, which squares; powf is 18% of */
                x[i] = x[i] * x[i];  /* Silero's f32 step otherwise */
        } else {
            for (i = 0; i < n; i++)
                x[i] = powf(x[i], alpha);
        }
        break;
#endif
    default: /* RNE_ACT_IDENTITY; vector kinds are handled by the ACT layer */
        break;
    }
}

void rne__f32_softmax(float *x, size_t n)
{
    float mx = x[0], sum = 0.0f;
    size_t i;
    for (i = 1; i < n; i++)
        mx = x[i] > mx ? x[i] : mx;
    for (i = 0; i < n; i++) {
        x[i] = expf(x[i] - mx);
        sum += x[i];
    }
    for (i = 0; i < n; i++)
        x[i] = x[i] / sum;
}

void rne__f32_logsoftmax(float *x, size_t n)
{
    float mx = x[0], sum = 0.0f, lse;
    size_t i;
    for (i = 1; i < n; i++)
        mx = x[i] > mx ? x[i] : mx;
    for (i = 0; i < n; i++)
        sum += expf(x[i] - mx);
    lse = logf(sum);
    for (i = 0; i < n; i++)
        x[i] = (x[i] - mx) - lse;
}

/* ---- the graph op BINARY ADD / MUL of equal shapes ------------------------------------------- */

void rne__bin_f32_ref(float *y, const float *a, const float *b, size_t n, int mul)
{
    size_t i;
    if (mul)
        for (i = 0; i < n; i++)
            y[i] = a[i] * b[i];
    else
        for (i = 0; i < n; i++)
            y[i] = a[i] + b[i];
}

#ifdef RNE__SIMD_BIN
void rne__bin_f32(float *y, const float *a, const float *b, size_t n, int mul)
{
    RNE__SIMD_BIN(y, a, b, n, mul);
}
#else
void rne__bin_f32(float *y, const float *a, const float *b, size_t n, int mul)
{
    rne__bin_f32_ref(y, a, b, n, mul);
}
#endif
