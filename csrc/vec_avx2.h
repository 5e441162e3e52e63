/*
 * vec_avx2.h - the AVX2 + FMA variant of vec.h's primitives (x86-64, -mavx2 -mfma). Included by
 * vec.c only; it defines static functions and the RNE__SIMD_* names vec.c picks up.
 *
 * gemm_acc: every element is c, then fused multiply-adds with x[0] w[0], x[1] w[1], ... in that
 *   order, whatever block it falls in, so results do not depend on m, n or the element's
 *   position. The fused multiply-add is the only difference from the scalar reference.
 *   - one row (a streaming step, batch 1): sweeps over c adding 8 rows of wt at a time;
 *   - several rows (the input projection of a whole sequence, a batch): tiles of 4 rows x 16
 *     columns (8 accumulators) over a panel of wt that stays in cache while every row uses it.
 * sigmoid, tanh: vec.c's method and constants, evaluated with fused multiply-adds (below).
 */
#ifndef RNE_VEC_AVX2_H
#define RNE_VEC_AVX2_H

#include <immintrin.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#define RNE__SIMD_NAME "avx2+fma"
#define RNE__SIMD_GEMM rne__avx2_gemm_acc
#define RNE__SIMD_SIGMOID rne__avx2_sigmoid
#define RNE__SIMD_TANH rne__avx2_tanh
#define RNE__SIMD_BIN rne__avx2_bin

/* kept out of line where inlining would run out of general registers (gcc spills in the loop) */
#if defined(__GNUC__)
#define RNE__AVX2_NOINLINE __attribute__((noinline))
#else
#define RNE__AVX2_NOINLINE
#endif

/* columns per panel of wt in a product of several rows: 1 KB of each row of wt, so a panel of an
 * input projection (k = 40) stays in L1 and a batched recurrent one (k = H) in L2 */
#define RNE__AVX2_PANEL 256

/* lanes 0 .. r-1 all ones, for a tail of r < 8 columns */
static inline __m256i rne__avx2_tail(size_t r)
{
    return _mm256_cmpgt_epi32(_mm256_set1_epi32((int)r),
                              _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
}

/* ---- one row: c[j] += sum_p x[p] wt[p][j] -----------------------------------------------------
 * Sweeps over c, each adding 8 (then 4, then 1) rows of wt: the rows stream in order, which the
 * hardware prefetchers follow, and c, short enough for L1, is loaded and stored once per sweep.
 * Measured on this project's Xeon (Sapphire Rapids, 2 MB L2) for an LSTM's 4H x H recurrent
 * weights: 180 GB/s from L1 (H = 32), 138 GB/s from L2 (H = 64 .. 256), against 150 GB/s for a
 * plain read of a buffer that size. Column strips with their accumulators held in registers over
 * all k rows measured slower from H = 128 on (rows 4H floats apart defeat the prefetchers; 4 KB
 * apart, at H = 256, they also collide in L1). */

/* The columns before wt's first `align`-byte boundary, when every row of wt starts equally aligned
 * (ldw a multiple of align bytes): computed apart, so that the wide loads of the others never
 * split a cache line (a blob may align its tensors to 16 bytes only; split loads of the weights
 * measured 1.4x slower with AVX2 and 1.75x with AVX-512). 0 when there is nothing to gain. */
static inline size_t rne__avx2_head(const float *wt, size_t ldw, size_t n, size_t align)
{
    const size_t lanes = align / sizeof(float);
    const size_t mis = (size_t)((uintptr_t)wt % align) / sizeof(float);
    if (mis == 0 || ldw % lanes != 0)
        return 0;
    return lanes - mis < n ? lanes - mis : n;
}

/* r < 8 columns under a mask (wt is never read past column r - 1) */
static inline void rne__avx2_row_tail(float *c, const float *x, const float *w, size_t ldw,
                                      size_t k, size_t r)
{
    const __m256i mask = rne__avx2_tail(r);
    __m256 a = _mm256_maskload_ps(c, mask);
    size_t p;
    for (p = 0; p < k; p++, w += ldw)
        a = _mm256_fmadd_ps(_mm256_broadcast_ss(x + p), _mm256_maskload_ps(w, mask), a);
    _mm256_maskstore_ps(c, mask, a);
}

/* c[j] += x[0] w[0][j] + ... + x[7] w[7][j] (in that order) for j < n8, a multiple of 8. A
 * function of its own, so that its eight row pointers stay in registers. */
static RNE__AVX2_NOINLINE void rne__avx2_pass8(float *c, const float *x, const float *w0,
                                               size_t ldw, size_t n8)
{
    const float *w1 = w0 + ldw, *w2 = w1 + ldw, *w3 = w2 + ldw;
    const float *w4 = w3 + ldw, *w5 = w4 + ldw, *w6 = w5 + ldw, *w7 = w6 + ldw;
    const __m256 x0 = _mm256_broadcast_ss(x), x1 = _mm256_broadcast_ss(x + 1);
    const __m256 x2 = _mm256_broadcast_ss(x + 2), x3 = _mm256_broadcast_ss(x + 3);
    const __m256 x4 = _mm256_broadcast_ss(x + 4), x5 = _mm256_broadcast_ss(x + 5);
    const __m256 x6 = _mm256_broadcast_ss(x + 6), x7 = _mm256_broadcast_ss(x + 7);
    size_t j = 0;
    for (; j + 16 <= n8; j += 16) {           /* two independent sums per iteration */
        __m256 a = _mm256_loadu_ps(c + j), b = _mm256_loadu_ps(c + j + 8);
        a = _mm256_fmadd_ps(x0, _mm256_loadu_ps(w0 + j), a);
        b = _mm256_fmadd_ps(x0, _mm256_loadu_ps(w0 + j + 8), b);
        a = _mm256_fmadd_ps(x1, _mm256_loadu_ps(w1 + j), a);
        b = _mm256_fmadd_ps(x1, _mm256_loadu_ps(w1 + j + 8), b);
        a = _mm256_fmadd_ps(x2, _mm256_loadu_ps(w2 + j), a);
        b = _mm256_fmadd_ps(x2, _mm256_loadu_ps(w2 + j + 8), b);
        a = _mm256_fmadd_ps(x3, _mm256_loadu_ps(w3 + j), a);
        b = _mm256_fmadd_ps(x3, _mm256_loadu_ps(w3 + j + 8), b);
        a = _mm256_fmadd_ps(x4, _mm256_loadu_ps(w4 + j), a);
        b = _mm256_fmadd_ps(x4, _mm256_loadu_ps(w4 + j + 8), b);
        a = _mm256_fmadd_ps(x5, _mm256_loadu_ps(w5 + j), a);
        b = _mm256_fmadd_ps(x5, _mm256_loadu_ps(w5 + j + 8), b);
        a = _mm256_fmadd_ps(x6, _mm256_loadu_ps(w6 + j), a);
        b = _mm256_fmadd_ps(x6, _mm256_loadu_ps(w6 + j + 8), b);
        a = _mm256_fmadd_ps(x7, _mm256_loadu_ps(w7 + j), a);
        b = _mm256_fmadd_ps(x7, _mm256_loadu_ps(w7 + j + 8), b);
        _mm256_storeu_ps(c + j, a);
        _mm256_storeu_ps(c + j + 8, b);
    }
    if (j < n8) {
        __m256 a = _mm256_loadu_ps(c + j);
        a = _mm256_fmadd_ps(x0, _mm256_loadu_ps(w0 + j), a);
        a = _mm256_fmadd_ps(x1, _mm256_loadu_ps(w1 + j), a);
        a = _mm256_fmadd_ps(x2, _mm256_loadu_ps(w2 + j), a);
        a = _mm256_fmadd_ps(x3, _mm256_loadu_ps(w3 + j), a);
        a = _mm256_fmadd_ps(x4, _mm256_loadu_ps(w4 + j), a);
        a = _mm256_fmadd_ps(x5, _mm256_loadu_ps(w5 + j), a);
        a = _mm256_fmadd_ps(x6, _mm256_loadu_ps(w6 + j), a);
        a = _mm256_fmadd_ps(x7, _mm256_loadu_ps(w7 + j), a);
        _mm256_storeu_ps(c + j, a);
    }
}

/* the same with 4 rows of wt */
static void rne__avx2_pass4(float *c, const float *x, const float *w0, size_t ldw, size_t n8)
{
    const float *w1 = w0 + ldw, *w2 = w1 + ldw, *w3 = w2 + ldw;
    const __m256 x0 = _mm256_broadcast_ss(x), x1 = _mm256_broadcast_ss(x + 1);
    const __m256 x2 = _mm256_broadcast_ss(x + 2), x3 = _mm256_broadcast_ss(x + 3);
    size_t j;
    for (j = 0; j < n8; j += 8) {
        __m256 a = _mm256_loadu_ps(c + j);
        a = _mm256_fmadd_ps(x0, _mm256_loadu_ps(w0 + j), a);
        a = _mm256_fmadd_ps(x1, _mm256_loadu_ps(w1 + j), a);
        a = _mm256_fmadd_ps(x2, _mm256_loadu_ps(w2 + j), a);
        a = _mm256_fmadd_ps(x3, _mm256_loadu_ps(w3 + j), a);
        _mm256_storeu_ps(c + j, a);
    }
}

static void rne__avx2_row(float *c, const float *x, const float *wt, size_t ldw, size_t n,
                          size_t k)
{
    const size_t head = rne__avx2_head(wt, ldw, n, 32);
    size_t n8, p = 0, j;
    if (head > 0) {
        rne__avx2_row_tail(c, x, wt, ldw, k, head);
        c += head, wt += head, n -= head;
    }
    n8 = n - n % 8;
    for (; p + 8 <= k; p += 8)
        rne__avx2_pass8(c, x + p, wt + p * ldw, ldw, n8);
    for (; p + 4 <= k; p += 4)
        rne__avx2_pass4(c, x + p, wt + p * ldw, ldw, n8);
    for (; p < k; p++) {
        const float *w0 = wt + p * ldw;
        const __m256 x0 = _mm256_broadcast_ss(x + p);
        for (j = 0; j < n8; j += 8)
            _mm256_storeu_ps(c + j, _mm256_fmadd_ps(x0, _mm256_loadu_ps(w0 + j),
                                                    _mm256_loadu_ps(c + j)));
    }
    if (n8 < n)
        rne__avx2_row_tail(c + n8, x, wt + n8, ldw, k, n - n8);
}

/* ---- several rows: 4 x 16 tiles -------------------------------------------------------------- */
#ifndef RNE__AVX2_NO_GEMM     /* vec_avx512.h brings its own */

/* rows 0 .. 3 of c (ldc apart; x's rows ldx apart), 16 columns */
static RNE__AVX2_NOINLINE void rne__avx2_tile4(float *c, size_t ldc, const float *x, size_t ldx,
                                               const float *w, size_t ldw, size_t k)
{
    float *c1 = c + ldc, *c2 = c1 + ldc, *c3 = c2 + ldc;
    const float *x1 = x + ldx, *x2 = x1 + ldx, *x3 = x2 + ldx;
    __m256 a00 = _mm256_loadu_ps(c), a01 = _mm256_loadu_ps(c + 8);
    __m256 a10 = _mm256_loadu_ps(c1), a11 = _mm256_loadu_ps(c1 + 8);
    __m256 a20 = _mm256_loadu_ps(c2), a21 = _mm256_loadu_ps(c2 + 8);
    __m256 a30 = _mm256_loadu_ps(c3), a31 = _mm256_loadu_ps(c3 + 8);
    size_t p;
    for (p = 0; p < k; p++, w += ldw) {
        const __m256 w0 = _mm256_loadu_ps(w), w1 = _mm256_loadu_ps(w + 8);
        __m256 xp = _mm256_broadcast_ss(x + p);
        a00 = _mm256_fmadd_ps(xp, w0, a00);
        a01 = _mm256_fmadd_ps(xp, w1, a01);
        xp = _mm256_broadcast_ss(x1 + p);
        a10 = _mm256_fmadd_ps(xp, w0, a10);
        a11 = _mm256_fmadd_ps(xp, w1, a11);
        xp = _mm256_broadcast_ss(x2 + p);
        a20 = _mm256_fmadd_ps(xp, w0, a20);
        a21 = _mm256_fmadd_ps(xp, w1, a21);
        xp = _mm256_broadcast_ss(x3 + p);
        a30 = _mm256_fmadd_ps(xp, w0, a30);
        a31 = _mm256_fmadd_ps(xp, w1, a31);
    }
    _mm256_storeu_ps(c, a00), _mm256_storeu_ps(c + 8, a01);
    _mm256_storeu_ps(c1, a10), _mm256_storeu_ps(c1 + 8, a11);
    _mm256_storeu_ps(c2, a20), _mm256_storeu_ps(c2 + 8, a21);
    _mm256_storeu_ps(c3, a30), _mm256_storeu_ps(c3 + 8, a31);
}

static void rne__avx2_gemm_acc(float *c, size_t ldc, const float *x, size_t ldx, const float *wt,
                               size_t ldw, size_t m, size_t n, size_t k)
{
    const size_t m4 = m - m % 4, n16 = n - n % 16;
    size_t i, j, j0;
    /* column panels of wt, each reused from cache by every block of 4 rows; within a panel the
     * rows are the outer loop, so that c is written in order */
    for (j0 = 0; j0 < n16 && m4 > 0; j0 += RNE__AVX2_PANEL) {
        const size_t j1 = n16 - j0 < RNE__AVX2_PANEL ? n16 : j0 + RNE__AVX2_PANEL;
        for (i = 0; i < m4; i += 4)
            for (j = j0; j < j1; j += 16)
                rne__avx2_tile4(c + i * ldc + j, ldc, x + i * ldx, ldx, wt + j, ldw, k);
    }
    /* the columns the tiles left (fewer than 16), and the rows they left (fewer than 4) */
    for (i = 0; i < m; i++) {
        if (i >= m4)
            rne__avx2_row(c + i * ldc, x + i * ldx, wt, ldw, n, k);
        else if (n16 < n)
            rne__avx2_row(c + i * ldc + n16, x + i * ldx, wt + n16, ldw, n - n16, k);
    }
}
#endif /* RNE__AVX2_NO_GEMM */

/* ---- sigmoid and tanh -------------------------------------------------------------------------
 * vec.c's method (rne__exp_neg, rne__sigmoid, rne__tanh) with the same constants, evaluated with
 * fused multiply-adds and float min / blend instead of integer masks: about 23 and 28 operations
 * per 8 lanes instead of 40 and 45, 0.36 and 0.44 ns per element here against 0.53 and 0.67.
 * Over all 2^32 floats: max abs error 8.9e-8 (sigmoid) and 9.0e-8 (tanh) against the exact
 * function, as the reference's, and at most 1.19e-7 (one ulp near 1) from the reference's value.
 * NaN passes through every step (_mm256_min_ps(lim, NaN) is NaN): NaN in gives NaN out. */

static inline __m256 rne__avx2_f(float v)
{
    return _mm256_set1_ps(v);
}

/* e^-c for 0 <= c <= 87, NaN for NaN */
static inline __m256 rne__avx2_exp_neg(__m256 c)
{
    const __m256 magic = rne__avx2_f(12582912.0f);                         /* 1.5 * 2^23 */
    const __m256 t = _mm256_fmadd_ps(c, rne__avx2_f(-1.44269502f), magic);
    const __m256 n = _mm256_sub_ps(t, magic);
    /* n * head is exact, so the first fused step rounds like the reference's two */
    const __m256 r = _mm256_fnmadd_ps(n, rne__avx2_f(1.42860677e-6f),
                                      _mm256_fmsub_ps(n, rne__avx2_f(-0.693145751953125f), c));
    __m256 q = _mm256_fmadd_ps(r, rne__avx2_f(0.00138146116f), rne__avx2_f(0.00836871006f));
    __m256 p;
    __m256i scale;
    q = _mm256_fmadd_ps(r, q, rne__avx2_f(0.0416683890f));
    q = _mm256_fmadd_ps(r, q, rne__avx2_f(0.166665211f));
    q = _mm256_fmadd_ps(r, q, rne__avx2_f(0.499999940f));
    p = _mm256_add_ps(rne__avx2_f(1.0f), _mm256_fmadd_ps(_mm256_mul_ps(r, r), q, r));
    /* t's bits are 0x4B400000 + n; 2^n has the biased exponent n + 127 */
    scale = _mm256_slli_epi32(_mm256_add_epi32(_mm256_castps_si256(t),
                                               _mm256_set1_epi32(127 - 0x4B400000)), 23);
    return _mm256_mul_ps(p, _mm256_castsi256_ps(scale));
}

static inline __m256 rne__avx2_sigmoid8(__m256 x)
{
    const __m256 lim = rne__avx2_f(87.0f);
    const __m256 a = _mm256_andnot_ps(rne__avx2_f(-0.0f), x);
    const __m256 e = rne__avx2_exp_neg(_mm256_min_ps(lim, a));
    const __m256 pos = _mm256_div_ps(rne__avx2_f(1.0f), _mm256_add_ps(rne__avx2_f(1.0f), e));
    /* sigmoid(-|x|), exactly 0 from |x| = 87 on, where it is below 1.7e-38 */
    const __m256 neg = _mm256_and_ps(_mm256_mul_ps(e, pos), _mm256_cmp_ps(a, lim, _CMP_NGE_UQ));
    return _mm256_blendv_ps(pos, neg, x);                       /* by the sign bit of x */
}

static inline __m256 rne__avx2_tanh8(__m256 x)
{
    const __m256 sign = rne__avx2_f(-0.0f);
    const __m256 a = _mm256_andnot_ps(sign, x);
    const __m256 a2 = _mm256_mul_ps(a, a);
    __m256 s = _mm256_fmadd_ps(a2, rne__avx2_f(-0.00627422938f), rne__avx2_f(0.0210716724f));
    __m256 e, big;
    s = _mm256_fmadd_ps(a2, s, rne__avx2_f(-0.0538523085f));
    s = _mm256_fmadd_ps(a2, s, rne__avx2_f(0.133325860f));
    s = _mm256_fmadd_ps(a2, s, rne__avx2_f(-0.333333164f));
    s = _mm256_fmadd_ps(_mm256_mul_ps(a, a2), s, a);                       /* |x| < 0.55 */
    e = rne__avx2_exp_neg(_mm256_mul_ps(rne__avx2_f(2.0f),
                                        _mm256_min_ps(rne__avx2_f(43.5f), a)));
    big = _mm256_div_ps(_mm256_sub_ps(rne__avx2_f(1.0f), e), _mm256_add_ps(rne__avx2_f(1.0f), e));
    s = _mm256_blendv_ps(big, s, _mm256_cmp_ps(a, rne__avx2_f(0.55f), _CMP_LT_OQ));
    return _mm256_or_ps(s, _mm256_and_ps(x, sign));
}

static void rne__avx2_sigmoid(float *x, size_t n)
{
    size_t i = 0;
    for (; i + 8 <= n; i += 8)
        _mm256_storeu_ps(x + i, rne__avx2_sigmoid8(_mm256_loadu_ps(x + i)));
    if (i < n) {
        float t[8] = { 0 };
        memcpy(t, x + i, (n - i) * sizeof(float));
        _mm256_storeu_ps(t, rne__avx2_sigmoid8(_mm256_loadu_ps(t)));
        memcpy(x + i, t, (n - i) * sizeof(float));
    }
}

static void rne__avx2_tanh(float *x, size_t n)
{
    size_t i = 0;
    for (; i + 8 <= n; i += 8)
        _mm256_storeu_ps(x + i, rne__avx2_tanh8(_mm256_loadu_ps(x + i)));
    if (i < n) {
        float t[8] = { 0 };
        memcpy(t, x + i, (n - i) * sizeof(float));
        _mm256_storeu_ps(t, rne__avx2_tanh8(_mm256_loadu_ps(t)));
        memcpy(x + i, t, (n - i) * sizeof(float));
    }
}

/* The graph op BINARY ADD / MUL of equal shapes: 8 lanes of one IEEE add or multiply each (the
 * reference's bits), the tail in scalar code. y may be a or b. */
static void rne__avx2_bin(float *y, const float *a, const float *b, size_t n, int mul)
{
    size_t i = 0;
    if (mul)
        for (; i + 8 <= n; i += 8)
            _mm256_storeu_ps(y + i, _mm256_mul_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i)));
    else
        for (; i + 8 <= n; i += 8)
            _mm256_storeu_ps(y + i, _mm256_add_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i)));
    for (; i < n; i++)
        y[i] = mul ? a[i] * b[i] : a[i] + b[i];
}

/* ---- the one-row step kernels (vec.h: gemv2_acc, lstm_cell) ----------------------------------
 * gemv2_acc: blocks of up to 64 columns held in nv <= 8 registers over every row of wx, then of
 * wh: one load and one store of c per step instead of one per eight inputs, and no call per eight
 * inputs; the same fused multiply-adds in the same order as two rne__avx2_row sweeps. Longer
 * rows (whose weights no longer sit in L1) keep the sweeps. */
#define RNE__SIMD_GEMV2 rne__avx2_gemv2
#define RNE__SIMD_LSTM_CELL rne__avx2_lstm_cell

#if defined(__GNUC__)
#define RNE__AVX2_INLINE inline __attribute__((always_inline))
#else
#define RNE__AVX2_INLINE inline
#endif

/* columns 0 .. 8 nv - 1 of c: + x wx (kx rows), then + h wh (kh rows; 0: none). Named
 * accumulators, each behind `nv > v` (a constant once inlined): gcc keeps an array of them on the
 * stack, storing it every row. */
#define RNE__AVX2_ACC8(OP)                                                                        \
    OP(0); OP(1); OP(2); OP(3); OP(4); OP(5); OP(6); OP(7)
static RNE__AVX2_INLINE void rne__avx2_strip(float *c, const float *x, size_t kx,
                                             const float *wx, const float *h, size_t kh,
                                             const float *wh, size_t ldw, size_t nv)
{
    __m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0, a4 = a0, a5 = a0, a6 = a0,
           a7 = a0, xp;
    size_t p;
#define RNE__LOAD(v) if (nv > v) a##v = _mm256_loadu_ps(c + 8 * v)
#define RNE__FMA(v) if (nv > v) a##v = _mm256_fmadd_ps(xp, _mm256_loadu_ps(w + 8 * v), a##v)
#define RNE__STORE(v) if (nv > v) _mm256_storeu_ps(c + 8 * v, a##v)
    RNE__AVX2_ACC8(RNE__LOAD);
    for (p = 0; p < kx; p++) {          /* two rows per turn: less loop per multiply-add */
        const float *w = wx + p * ldw;
        xp = _mm256_broadcast_ss(x + p);
        RNE__AVX2_ACC8(RNE__FMA);
        if (++p == kx)
            break;
        w += ldw;
        xp = _mm256_broadcast_ss(x + p);
        RNE__AVX2_ACC8(RNE__FMA);
    }
    for (p = 0; p < kh; p++) {
        const float *w = wh + p * ldw;
        xp = _mm256_broadcast_ss(h + p);
        RNE__AVX2_ACC8(RNE__FMA);
        if (++p == kh)
            break;
        w += ldw;
        xp = _mm256_broadcast_ss(h + p);
        RNE__AVX2_ACC8(RNE__FMA);
    }
    RNE__AVX2_ACC8(RNE__STORE);
#undef RNE__LOAD
#undef RNE__FMA
#undef RNE__STORE
}

/* one strip of nv (1 .. 8) registers: a constant per case, so that the accumulators unroll */
static void rne__avx2_strips(float *c, const float *x, size_t kx, const float *wx,
                             const float *h, size_t kh, const float *wh, size_t ldw, size_t nv)
{
    switch (nv) {
    case 1: rne__avx2_strip(c, x, kx, wx, h, kh, wh, ldw, 1); break;
    case 2: rne__avx2_strip(c, x, kx, wx, h, kh, wh, ldw, 2); break;
    case 3: rne__avx2_strip(c, x, kx, wx, h, kh, wh, ldw, 3); break;
    case 4: rne__avx2_strip(c, x, kx, wx, h, kh, wh, ldw, 4); break;
    case 5: rne__avx2_strip(c, x, kx, wx, h, kh, wh, ldw, 5); break;
    case 6: rne__avx2_strip(c, x, kx, wx, h, kh, wh, ldw, 6); break;
    case 7: rne__avx2_strip(c, x, kx, wx, h, kh, wh, ldw, 7); break;
    default: rne__avx2_strip(c, x, kx, wx, h, kh, wh, ldw, 8); break;
    }
}

/* columns 0 .. n - 1 (a multiple of 8) in blocks of 64, h's product over the first nh */
static void rne__avx2_blocks(float *c, const float *x, size_t kx, const float *wx,
                             const float *h, size_t kh, const float *wh, size_t ldw, size_t n,
                             size_t nh)
{
    size_t j, nv;
    for (j = 0; j < n; j += nv * 8) {
        nv = (n - j) / 8 < 8 ? (n - j) / 8 : 8;
        if (j < nh && nh - j < nv * 8)
            nv = (nh - j) / 8;          /* a block ends where h's product does */
        rne__avx2_strips(c + j, x, kx, wx + j, h, j < nh ? kh : 0, wh + j, ldw, nv);
    }
}

/* Rows this short stay in registers (128 columns: two blocks, an LSTM of H = 32); longer ones
 * keep the sweeps, whose weights stream from L2 in order. */
#define RNE__AVX2_GEMV2_MAX 128

/* 1 if done (n and nh multiples of 8, n <= RNE__AVX2_GEMV2_MAX), else 0 and nothing touched */
static int rne__avx2_gemv2(float *c, const float *x, size_t kx, const float *wx, const float *h,
                           size_t kh, const float *wh, size_t ldw, size_t n, size_t nh)
{
    if (n % 8 != 0 || nh % 8 != 0 || n > RNE__AVX2_GEMV2_MAX || nh > n)
        return 0;
    rne__avx2_blocks(c, x, kx, wx, h, kh, wh, ldw, n, nh);
    return 1;
}

/* lstm_cell over the whole vectors of H; returns the columns done (H rounded down to 8) */
static size_t rne__avx2_lstm_cell(float *g, float *c, float *h, size_t hs)
{
    size_t j = 0;
    for (; j + 8 <= hs; j += 8) {
        const __m256 i = rne__avx2_sigmoid8(_mm256_loadu_ps(g + j));
        const __m256 o = rne__avx2_sigmoid8(_mm256_loadu_ps(g + hs + j));
        const __m256 f = rne__avx2_sigmoid8(_mm256_loadu_ps(g + 2 * hs + j));
        const __m256 t = rne__avx2_tanh8(_mm256_loadu_ps(g + 3 * hs + j));
        const __m256 cn = _mm256_add_ps(_mm256_mul_ps(f, _mm256_loadu_ps(c + j)),
                                        _mm256_mul_ps(i, t));
        _mm256_storeu_ps(c + j, cn);
        _mm256_storeu_ps(h + j, _mm256_mul_ps(o, rne__avx2_tanh8(cn)));
    }
    return j;
}

/* gru_cell over the whole vectors of H; returns the columns done */
#define RNE__SIMD_GRU_CELL rne__avx2_gru_cell
static size_t rne__avx2_gru_cell(float *g, const float *t, float *h, size_t hs)
{
    const __m256 one = _mm256_set1_ps(1.0f);
    size_t j = 0;
    for (; j + 8 <= hs; j += 8) {
        const __m256 z = rne__avx2_sigmoid8(_mm256_loadu_ps(g + j));
        const __m256 r = rne__avx2_sigmoid8(_mm256_loadu_ps(g + hs + j));
        const __m256 n = rne__avx2_tanh8(_mm256_add_ps(_mm256_loadu_ps(g + 2 * hs + j),
                                                       _mm256_mul_ps(r, _mm256_loadu_ps(t + j))));
        _mm256_storeu_ps(h + j, _mm256_add_ps(_mm256_mul_ps(_mm256_sub_ps(one, z), n),
                                              _mm256_mul_ps(z, _mm256_loadu_ps(h + j))));
    }
    return j;
}

#endif /* RNE_VEC_AVX2_H */
