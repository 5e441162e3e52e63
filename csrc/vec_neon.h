/*
 * vec_neon.h - the Advanced SIMD (NEON) variant of vec.h's primitives: every aarch64 target, and
 * 32-bit ARMv7 built with -mfpu=neon-vfpv4 (Cortex-A7, A53 in 32-bit mode: fused multiply-add)
 * or -mfpu=neon (Cortex-A8, A9: no fused multiply-add). Included by vec.c only; it defines
 * static functions and the RNE__SIMD_* names vec.c picks up. The structure is vec_avx2.h's with
 * 4 lanes instead of 8.
 *
 * gemm_acc: every element is c, then multiply-adds with x[0] w[0], x[1] w[1], ... in that
 *   order, fused where the target has a fused multiply-add (then its bits are those of the AVX2
 *   variant), else a multiply and an add like the reference. AArch32 NEON flushes subnormal
 *   operands and results to zero (its scalar column tail, on VFP, does not).
 *   - one row: sweeps over c adding 8 (aarch64; 4 on ARMv7, which has half the registers) rows
 *     of wt at a time, the rows streamed in order;
 *   - several rows: tiles of 4 rows x 8 columns (8 accumulators) over a panel of wt.
 * sigmoid, tanh: vec_avx2.h's evaluation (vec.c's method and constants, fused multiply-adds,
 *   float min and bit selects), on targets with a fused multiply-add. aarch64 divides exactly and
 *   gives the AVX2 variant's bits; ARMv7 has no vector divide and refines a reciprocal estimate
 *   (rne__neon_div). ARMv7 without fused multiply-add keeps the scalar reference's.
 */
#ifndef RNE_VEC_NEON_H
#define RNE_VEC_NEON_H

#include <arm_neon.h>
#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#if defined(__aarch64__)
#define RNE__NEON_FUSED 1
#define RNE__SIMD_NAME "neon-aarch64"
#elif defined(__ARM_FEATURE_FMA)
#define RNE__NEON_FUSED 1
#define RNE__SIMD_NAME "neon-armv7+fma"
#else
#define RNE__NEON_FUSED 0
#define RNE__SIMD_NAME "neon-armv7"
#endif
#define RNE__SIMD_GEMM rne__neon_gemm_acc
#if defined(__aarch64__)
#define RNE__SIMD_BIN rne__neon_bin   /* not on ARMv7: its NEON flushes subnormals to zero */
#endif
#if RNE__NEON_FUSED
#define RNE__SIMD_SIGMOID rne__neon_sigmoid
#define RNE__SIMD_TANH rne__neon_tanh
#endif

/* columns per panel of wt in a product of several rows (vec_avx2.h) */
#define RNE__NEON_PANEL 256

#if defined(__GNUC__)
#define RNE__NEON_NOINLINE __attribute__((noinline))
#else
#define RNE__NEON_NOINLINE
#endif

/* a + b * c and a - b * c: fused where the target has it */
#if RNE__NEON_FUSED
#define RNE__MLA(a, b, c) vfmaq_f32(a, b, c)
#define RNE__MLS(a, b, c) vfmsq_f32(a, b, c)
#define RNE__MLA1(a, b, c) fmaf(b, c, a)
#else
#define RNE__MLA(a, b, c) vmlaq_f32(a, b, c)
#define RNE__MLS(a, b, c) vmlsq_f32(a, b, c)
#define RNE__MLA1(a, b, c) ((a) + (b) * (c))
#endif

/* ---- one row: c[j] += sum_p x[p] wt[p][j] ---------------------------------------------------- */

/* columns [j0, n) one at a time (fewer than 4 of them) */
static void rne__neon_cols(float *c, const float *x, const float *wt, size_t ldw, size_t j0,
                           size_t n, size_t k)
{
    size_t j, p;
    for (j = j0; j < n; j++) {
        float a = c[j];
        for (p = 0; p < k; p++)
            a = RNE__MLA1(a, x[p], wt[p * ldw + j]);
        c[j] = a;
    }
}

/* Four independent sums per iteration (16 columns): the in-order cores of the Pi 2 and 3
 * (Cortex-A7, A53) would otherwise wait out the multiply-add latency at every step of one sum.
 * c[j .. j+15] += xr * w[j .. j+15] into the accumulators a0 .. a3: */
#define RNE__NEON_ROW16(xr, w)                                                                   \
    (a0 = RNE__MLA(a0, xr, vld1q_f32(w)), a1 = RNE__MLA(a1, xr, vld1q_f32((w) + 4)),              \
     a2 = RNE__MLA(a2, xr, vld1q_f32((w) + 8)), a3 = RNE__MLA(a3, xr, vld1q_f32((w) + 12)))

#if defined(__aarch64__)
/* c[j] += x[0] w[0][j] + ... + x[7] w[7][j] (in that order) for j < n4, a multiple of 4 */
static RNE__NEON_NOINLINE void rne__neon_pass8(float *c, const float *x, const float *w0,
                                               size_t ldw, size_t n4)
{
    const float *w1 = w0 + ldw, *w2 = w1 + ldw, *w3 = w2 + ldw;
    const float *w4 = w3 + ldw, *w5 = w4 + ldw, *w6 = w5 + ldw, *w7 = w6 + ldw;
    const float32x4_t x0 = vdupq_n_f32(x[0]), x1 = vdupq_n_f32(x[1]);
    const float32x4_t x2 = vdupq_n_f32(x[2]), x3 = vdupq_n_f32(x[3]);
    const float32x4_t x4 = vdupq_n_f32(x[4]), x5 = vdupq_n_f32(x[5]);
    const float32x4_t x6 = vdupq_n_f32(x[6]), x7 = vdupq_n_f32(x[7]);
    size_t j = 0;
    for (; j + 16 <= n4; j += 16) {
        float32x4_t a0 = vld1q_f32(c + j), a1 = vld1q_f32(c + j + 4);
        float32x4_t a2 = vld1q_f32(c + j + 8), a3 = vld1q_f32(c + j + 12);
        RNE__NEON_ROW16(x0, w0 + j);
        RNE__NEON_ROW16(x1, w1 + j);
        RNE__NEON_ROW16(x2, w2 + j);
        RNE__NEON_ROW16(x3, w3 + j);
        RNE__NEON_ROW16(x4, w4 + j);
        RNE__NEON_ROW16(x5, w5 + j);
        RNE__NEON_ROW16(x6, w6 + j);
        RNE__NEON_ROW16(x7, w7 + j);
        vst1q_f32(c + j, a0), vst1q_f32(c + j + 4, a1);
        vst1q_f32(c + j + 8, a2), vst1q_f32(c + j + 12, a3);
    }
    for (; j < n4; j += 4) {
        float32x4_t a = vld1q_f32(c + j);
        a = RNE__MLA(a, x0, vld1q_f32(w0 + j));
        a = RNE__MLA(a, x1, vld1q_f32(w1 + j));
        a = RNE__MLA(a, x2, vld1q_f32(w2 + j));
        a = RNE__MLA(a, x3, vld1q_f32(w3 + j));
        a = RNE__MLA(a, x4, vld1q_f32(w4 + j));
        a = RNE__MLA(a, x5, vld1q_f32(w5 + j));
        a = RNE__MLA(a, x6, vld1q_f32(w6 + j));
        a = RNE__MLA(a, x7, vld1q_f32(w7 + j));
        vst1q_f32(c + j, a);
    }
}
#endif

/* the same with 4 rows of wt */
static RNE__NEON_NOINLINE void rne__neon_pass4(float *c, const float *x, const float *w0,
                                               size_t ldw, size_t n4)
{
    const float *w1 = w0 + ldw, *w2 = w1 + ldw, *w3 = w2 + ldw;
    const float32x4_t x0 = vdupq_n_f32(x[0]), x1 = vdupq_n_f32(x[1]);
    const float32x4_t x2 = vdupq_n_f32(x[2]), x3 = vdupq_n_f32(x[3]);
    size_t j = 0;
    for (; j + 16 <= n4; j += 16) {
        float32x4_t a0 = vld1q_f32(c + j), a1 = vld1q_f32(c + j + 4);
        float32x4_t a2 = vld1q_f32(c + j + 8), a3 = vld1q_f32(c + j + 12);
        RNE__NEON_ROW16(x0, w0 + j);
        RNE__NEON_ROW16(x1, w1 + j);
        RNE__NEON_ROW16(x2, w2 + j);
        RNE__NEON_ROW16(x3, w3 + j);
        vst1q_f32(c + j, a0), vst1q_f32(c + j + 4, a1);
        vst1q_f32(c + j + 8, a2), vst1q_f32(c + j + 12, a3);
    }
    for (; j < n4; j += 4) {
        float32x4_t a = vld1q_f32(c + j);
        a = RNE__MLA(a, x0, vld1q_f32(w0 + j));
        a = RNE__MLA(a, x1, vld1q_f32(w1 + j));
        a = RNE__MLA(a, x2, vld1q_f32(w2 + j));
        a = RNE__MLA(a, x3, vld1q_f32(w3 + j));
        vst1q_f32(c + j, a);
    }
}

static void rne__neon_row(float *c, const float *x, const float *wt, size_t ldw, size_t n,
                          size_t k)
{
    const size_t n4 = n - n % 4;
    size_t p = 0, j;
#if defined(__aarch64__)
    for (; p + 8 <= k; p += 8)
        rne__neon_pass8(c, x + p, wt + p * ldw, ldw, n4);
#endif
    for (; p + 4 <= k; p += 4)
        rne__neon_pass4(c, x + p, wt + p * ldw, ldw, n4);
    for (; p < k; p++) {
        const float *w0 = wt + p * ldw;
        const float32x4_t x0 = vdupq_n_f32(x[p]);
        for (j = 0; j < n4; j += 4)
            vst1q_f32(c + j, RNE__MLA(vld1q_f32(c + j), x0, vld1q_f32(w0 + j)));
    }
    rne__neon_cols(c, x, wt, ldw, n4, n, k);
}

/* ---- several rows: 4 x 8 tiles --------------------------------------------------------------- */

static RNE__NEON_NOINLINE void rne__neon_tile4(float *c, size_t ldc, const float *x, size_t ldx,
                                               const float *w, size_t ldw, size_t k)
{
    float *c1 = c + ldc, *c2 = c1 + ldc, *c3 = c2 + ldc;
    const float *x1 = x + ldx, *x2 = x1 + ldx, *x3 = x2 + ldx;
    float32x4_t a00 = vld1q_f32(c), a01 = vld1q_f32(c + 4);
    float32x4_t a10 = vld1q_f32(c1), a11 = vld1q_f32(c1 + 4);
    float32x4_t a20 = vld1q_f32(c2), a21 = vld1q_f32(c2 + 4);
    float32x4_t a30 = vld1q_f32(c3), a31 = vld1q_f32(c3 + 4);
    size_t p;
    for (p = 0; p < k; p++, w += ldw) {
        const float32x4_t w0 = vld1q_f32(w), w1 = vld1q_f32(w + 4);
        float32x4_t xp = vdupq_n_f32(x[p]);
        a00 = RNE__MLA(a00, xp, w0);
        a01 = RNE__MLA(a01, xp, w1);
        xp = vdupq_n_f32(x1[p]);
        a10 = RNE__MLA(a10, xp, w0);
        a11 = RNE__MLA(a11, xp, w1);
        xp = vdupq_n_f32(x2[p]);
        a20 = RNE__MLA(a20, xp, w0);
        a21 = RNE__MLA(a21, xp, w1);
        xp = vdupq_n_f32(x3[p]);
        a30 = RNE__MLA(a30, xp, w0);
        a31 = RNE__MLA(a31, xp, w1);
    }
    vst1q_f32(c, a00), vst1q_f32(c + 4, a01);
    vst1q_f32(c1, a10), vst1q_f32(c1 + 4, a11);
    vst1q_f32(c2, a20), vst1q_f32(c2 + 4, a21);
    vst1q_f32(c3, a30), vst1q_f32(c3 + 4, a31);
}

static void rne__neon_gemm_acc(float *c, size_t ldc, const float *x, size_t ldx, const float *wt,
                               size_t ldw, size_t m, size_t n, size_t k)
{
    const size_t m4 = m - m % 4, n8 = n - n % 8;
    size_t i, j, j0;
    /* column panels of wt, reused from cache by every block of 4 rows */
    for (j0 = 0; j0 < n8 && m4 > 0; j0 += RNE__NEON_PANEL) {
        const size_t j1 = n8 - j0 < RNE__NEON_PANEL ? n8 : j0 + RNE__NEON_PANEL;
        for (i = 0; i < m4; i += 4)
            for (j = j0; j < j1; j += 8)
                rne__neon_tile4(c + i * ldc + j, ldc, x + i * ldx, ldx, wt + j, ldw, k);
    }
    for (i = 0; i < m; i++) {
        if (i < m4) {       /* the columns the tiles left: fewer than 8 */
            if (n8 < n)
                rne__neon_row(c + i * ldc + n8, x + i * ldx, wt + n8, ldw, n - n8, k);
        } else {
            rne__neon_row(c + i * ldc, x + i * ldx, wt, ldw, n, k);
        }
    }
}

/* ---- sigmoid and tanh: vec_avx2.h's evaluation, 4 lanes (fused multiply-add targets only) ---- */

#if RNE__NEON_FUSED
static inline float32x4_t rne__neon_f(float v)
{
    return vdupq_n_f32(v);
}

/* a / b for b in [1, 2]. ARMv7 has no vector divide: a reciprocal estimate, two Newton steps, then
 * one fused correction with the exact residual a - q b; without a fused multiply-add the
 * quotient would stay ~2 ulp off, so that variant keeps the scalar sigmoid and tanh. */
static inline float32x4_t rne__neon_div(float32x4_t a, float32x4_t b)
{
#if defined(__aarch64__)
    return vdivq_f32(a, b);
#else
    float32x4_t y = vrecpeq_f32(b), q;
    y = vmulq_f32(y, vrecpsq_f32(b, y));
    y = vmulq_f32(y, vrecpsq_f32(b, y));
    q = vmulq_f32(a, y);
    return vfmaq_f32(q, vfmsq_f32(a, q, b), y);
#endif
}

/* e^-c for 0 <= c <= 87, NaN for NaN */
static inline float32x4_t rne__neon_exp_neg(float32x4_t c)
{
    const float32x4_t magic = rne__neon_f(12582912.0f);                   /* 1.5 * 2^23 */
    const float32x4_t t = RNE__MLA(magic, c, rne__neon_f(-1.44269502f));
    const float32x4_t n = vsubq_f32(t, magic);
    const float32x4_t r = RNE__MLS(RNE__MLA(vnegq_f32(c), n, rne__neon_f(-0.693145751953125f)),
                                   n, rne__neon_f(1.42860677e-6f));
    float32x4_t q = RNE__MLA(rne__neon_f(0.00836871006f), r, rne__neon_f(0.00138146116f));
    float32x4_t p;
    int32x4_t scale;
    q = RNE__MLA(rne__neon_f(0.0416683890f), r, q);
    q = RNE__MLA(rne__neon_f(0.166665211f), r, q);
    q = RNE__MLA(rne__neon_f(0.499999940f), r, q);
    p = vaddq_f32(rne__neon_f(1.0f), RNE__MLA(r, vmulq_f32(r, r), q));
    /* t's bits are 0x4B400000 + n; 2^n has the biased exponent n + 127 */
    scale = vshlq_n_s32(vaddq_s32(vreinterpretq_s32_f32(t), vdupq_n_s32(127 - 0x4B400000)), 23);
    return vmulq_f32(p, vreinterpretq_f32_s32(scale));
}

static inline float32x4_t rne__neon_sigmoid4(float32x4_t x)
{
    const float32x4_t lim = rne__neon_f(87.0f), one = rne__neon_f(1.0f);
    const float32x4_t a = vabsq_f32(x);
    const float32x4_t e = rne__neon_exp_neg(vminq_f32(lim, a));
    const float32x4_t pos = rne__neon_div(one, vaddq_f32(one, e));
    /* sigmoid(-|x|), exactly 0 from |x| = 87 on, where it is below 1.7e-38 */
    const uint32x4_t neg = vbicq_u32(vreinterpretq_u32_f32(vmulq_f32(e, pos)), vcgeq_f32(a, lim));
    const uint32x4_t minus = vcltq_s32(vreinterpretq_s32_f32(x), vdupq_n_s32(0));
    return vbslq_f32(minus, vreinterpretq_f32_u32(neg), pos);
}

static inline float32x4_t rne__neon_tanh4(float32x4_t x)
{
    const float32x4_t one = rne__neon_f(1.0f);
    const float32x4_t a = vabsq_f32(x);
    const float32x4_t a2 = vmulq_f32(a, a);
    float32x4_t s = RNE__MLA(rne__neon_f(0.0210716724f), a2, rne__neon_f(-0.00627422938f));
    float32x4_t e, big;
    s = RNE__MLA(rne__neon_f(-0.0538523085f), a2, s);
    s = RNE__MLA(rne__neon_f(0.133325860f), a2, s);
    s = RNE__MLA(rne__neon_f(-0.333333164f), a2, s);
    s = RNE__MLA(a, vmulq_f32(a, a2), s);                                    /* |x| < 0.55 */
    e = rne__neon_exp_neg(vmulq_f32(rne__neon_f(2.0f), vminq_f32(rne__neon_f(43.5f), a)));
    big = rne__neon_div(vsubq_f32(one, e), vaddq_f32(one, e));
    s = vbslq_f32(vcltq_f32(a, rne__neon_f(0.55f)), s, big);
    return vreinterpretq_f32_u32(vorrq_u32(vreinterpretq_u32_f32(s),
                                           vandq_u32(vreinterpretq_u32_f32(x),
                                                     vdupq_n_u32(0x80000000u))));
}

static void rne__neon_sigmoid(float *x, size_t n)
{
    size_t i = 0;
    for (; i + 4 <= n; i += 4)
        vst1q_f32(x + i, rne__neon_sigmoid4(vld1q_f32(x + i)));
    if (i < n) {
        float t[4] = { 0 };
        memcpy(t, x + i, (n - i) * sizeof(float));
        vst1q_f32(t, rne__neon_sigmoid4(vld1q_f32(t)));
        memcpy(x + i, t, (n - i) * sizeof(float));
    }
}

static void rne__neon_tanh(float *x, size_t n)
{
    size_t i = 0;
    for (; i + 4 <= n; i += 4)
        vst1q_f32(x + i, rne__neon_tanh4(vld1q_f32(x + i)));
    if (i < n) {
        float t[4] = { 0 };
        memcpy(t, x + i, (n - i) * sizeof(float));
        vst1q_f32(t, rne__neon_tanh4(vld1q_f32(t)));
        memcpy(x + i, t, (n - i) * sizeof(float));
    }
}

#if defined(__aarch64__)   /* not on ARMv7: its vector products flush subnormals to zero */
/* vec.h's lstm_cell over the whole vectors of H (4 lanes); returns the columns done */
#define RNE__SIMD_LSTM_CELL rne__neon_lstm_cell
static size_t rne__neon_lstm_cell(float *g, float *c, float *h, size_t hs)
{
    size_t j = 0;
    for (; j + 4 <= hs; j += 4) {
        const float32x4_t i = rne__neon_sigmoid4(vld1q_f32(g + j));
        const float32x4_t o = rne__neon_sigmoid4(vld1q_f32(g + hs + j));
        const float32x4_t f = rne__neon_sigmoid4(vld1q_f32(g + 2 * hs + j));
        const float32x4_t t = rne__neon_tanh4(vld1q_f32(g + 3 * hs + j));
        const float32x4_t cn = vaddq_f32(vmulq_f32(f, vld1q_f32(c + j)), vmulq_f32(i, t));
        vst1q_f32(c + j, cn);
        vst1q_f32(h + j, vmulq_f32(o, rne__neon_tanh4(cn)));
    }
    return j;
}

/* vec.h's gru_cell over the whole vectors of H (4 lanes); returns the columns done */
#define RNE__SIMD_GRU_CELL rne__neon_gru_cell
static size_t rne__neon_gru_cell(float *g, const float *t, float *h, size_t hs)
{
    const float32x4_t one = vdupq_n_f32(1.0f);
    size_t j = 0;
    for (; j + 4 <= hs; j += 4) {
        const float32x4_t z = rne__neon_sigmoid4(vld1q_f32(g + j));
        const float32x4_t r = rne__neon_sigmoid4(vld1q_f32(g + hs + j));
        const float32x4_t n = rne__neon_tanh4(vaddq_f32(vld1q_f32(g + 2 * hs + j),
                                                        vmulq_f32(r, vld1q_f32(t + j))));
        vst1q_f32(h + j, vaddq_f32(vmulq_f32(vsubq_f32(one, z), n),
                                   vmulq_f32(z, vld1q_f32(h + j))));
    }
    return j;
}
#endif
#endif /* RNE__NEON_FUSED */

#if defined(__aarch64__)
/* The graph op BINARY ADD / MUL of equal shapes: 4 lanes of one IEEE add or multiply each (the
 * reference's bits on aarch64, whose NEON keeps subnormals), the tail in scalar code. */
static void rne__neon_bin(float *y, const float *a, const float *b, size_t n, int mul)
{
    size_t i = 0;
    if (mul)
        for (; i + 4 <= n; i += 4)
            vst1q_f32(y + i, vmulq_f32(vld1q_f32(a + i), vld1q_f32(b + i)));
    else
        for (; i + 4 <= n; i += 4)
            vst1q_f32(y + i, vaddq_f32(vld1q_f32(a + i), vld1q_f32(b + i)));
    for (; i < n; i++)
        y[i] = mul ? a[i] * b[i] : a[i] + b[i];
}
#endif

#endif /* RNE_VEC_NEON_H */
