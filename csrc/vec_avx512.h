/*
 * vec_avx512.h - the AVX-512 variant of vec.h's primitives (x86-64 with AVX-512F: -mavx512f
 * -mfma). It is vec_avx2.h with the matrix product on 16-lane vectors; sigmoid and tanh stay
 * vec_avx2.h's. Included by vec.c only.
 *
 * Same operations in the same order as vec_avx2.h (c, then a fused multiply-add per input, in
 * order), so the same bits; 16-lane blocks hand the columns they leave (fewer than 16) to
 * vec_avx2.h's row kernel. Measured on this project's Xeon (Sapphire Rapids) against vec_avx2.h:
 * the one-row product of an LSTM's recurrent weights 1.44x (H = 32, L1) and 1.2x (H = 64 .. 256,
 * L2) faster, the input projection of a 1000-step sequence 1.55 - 1.7x faster; onnxruntime's
 * MLAS uses these registers on such a machine too.
 */
#ifndef RNE_VEC_AVX512_H
#define RNE_VEC_AVX512_H

#define RNE__AVX2_NO_GEMM        /* vec_avx2.h without its several-row product */
#include "vec_avx2.h"

#undef RNE__SIMD_NAME
#undef RNE__SIMD_GEMM
#define RNE__SIMD_NAME "avx512+fma"
#define RNE__SIMD_GEMM rne__avx512_gemm_acc

/* ---- one row: vec_avx2.h's sweeps over c, 16 lanes ------------------------------------------- */

/* c[j] += x[0] w[0][j] + ... + x[7] w[7][j] (in that order) for j < n16, a multiple of 16 */
static RNE__AVX2_NOINLINE void rne__avx512_pass8(float *c, const float *x, const float *w0,
                                                 size_t ldw, size_t n16)
{
    const float *w1 = w0 + ldw, *w2 = w1 + ldw, *w3 = w2 + ldw;
    const float *w4 = w3 + ldw, *w5 = w4 + ldw, *w6 = w5 + ldw, *w7 = w6 + ldw;
    const __m512 x0 = _mm512_set1_ps(x[0]), x1 = _mm512_set1_ps(x[1]);
    const __m512 x2 = _mm512_set1_ps(x[2]), x3 = _mm512_set1_ps(x[3]);
    const __m512 x4 = _mm512_set1_ps(x[4]), x5 = _mm512_set1_ps(x[5]);
    const __m512 x6 = _mm512_set1_ps(x[6]), x7 = _mm512_set1_ps(x[7]);
    size_t j;
    for (j = 0; j < n16; j += 16) {
        __m512 a = _mm512_loadu_ps(c + j);
        a = _mm512_fmadd_ps(x0, _mm512_loadu_ps(w0 + j), a);
        a = _mm512_fmadd_ps(x1, _mm512_loadu_ps(w1 + j), a);
        a = _mm512_fmadd_ps(x2, _mm512_loadu_ps(w2 + j), a);
        a = _mm512_fmadd_ps(x3, _mm512_loadu_ps(w3 + j), a);
        a = _mm512_fmadd_ps(x4, _mm512_loadu_ps(w4 + j), a);
        a = _mm512_fmadd_ps(x5, _mm512_loadu_ps(w5 + j), a);
        a = _mm512_fmadd_ps(x6, _mm512_loadu_ps(w6 + j), a);
        a = _mm512_fmadd_ps(x7, _mm512_loadu_ps(w7 + j), a);
        _mm512_storeu_ps(c + j, a);
    }
}

static void rne__avx512_row(float *c, const float *x, const float *wt, size_t ldw, size_t n,
                            size_t k)
{
    const size_t head = rne__avx2_head(wt, ldw, n, 64);
    size_t n16, p = 0, j;
    if (head > 0) {
        rne__avx2_row(c, x, wt, ldw, head, k);
        c += head, wt += head, n -= head;
    }
    n16 = n - n % 16;
    for (; p + 8 <= k; p += 8)
        rne__avx512_pass8(c, x + p, wt + p * ldw, ldw, n16);
    for (; p < k; p++) {
        const float *w0 = wt + p * ldw;
        const __m512 x0 = _mm512_set1_ps(x[p]);
        for (j = 0; j < n16; j += 16)
            _mm512_storeu_ps(c + j, _mm512_fmadd_ps(x0, _mm512_loadu_ps(w0 + j),
                                                    _mm512_loadu_ps(c + j)));
    }
    if (n16 < n)
        rne__avx2_row(c + n16, x, wt + n16, ldw, n - n16, k);
}

/* ---- several rows: 4 x 32 tiles -------------------------------------------------------------- */

/* rows 0 .. 3 of c (ldc apart; x's rows ldx apart), 32 columns */
static RNE__AVX2_NOINLINE void rne__avx512_tile4(float *c, size_t ldc, const float *x,
                                                 size_t ldx, const float *w, size_t ldw,
                                                 size_t k)
{
    float *c1 = c + ldc, *c2 = c1 + ldc, *c3 = c2 + ldc;
    const float *x1 = x + ldx, *x2 = x1 + ldx, *x3 = x2 + ldx;
    __m512 a00 = _mm512_loadu_ps(c), a01 = _mm512_loadu_ps(c + 16);
    __m512 a10 = _mm512_loadu_ps(c1), a11 = _mm512_loadu_ps(c1 + 16);
    __m512 a20 = _mm512_loadu_ps(c2), a21 = _mm512_loadu_ps(c2 + 16);
    __m512 a30 = _mm512_loadu_ps(c3), a31 = _mm512_loadu_ps(c3 + 16);
    size_t p;
    for (p = 0; p < k; p++, w += ldw) {
        const __m512 w0 = _mm512_loadu_ps(w), w1 = _mm512_loadu_ps(w + 16);
        __m512 xp = _mm512_set1_ps(x[p]);
        a00 = _mm512_fmadd_ps(xp, w0, a00);
        a01 = _mm512_fmadd_ps(xp, w1, a01);
        xp = _mm512_set1_ps(x1[p]);
        a10 = _mm512_fmadd_ps(xp, w0, a10);
        a11 = _mm512_fmadd_ps(xp, w1, a11);
        xp = _mm512_set1_ps(x2[p]);
        a20 = _mm512_fmadd_ps(xp, w0, a20);
        a21 = _mm512_fmadd_ps(xp, w1, a21);
        xp = _mm512_set1_ps(x3[p]);
        a30 = _mm512_fmadd_ps(xp, w0, a30);
        a31 = _mm512_fmadd_ps(xp, w1, a31);
    }
    _mm512_storeu_ps(c, a00), _mm512_storeu_ps(c + 16, a01);
    _mm512_storeu_ps(c1, a10), _mm512_storeu_ps(c1 + 16, a11);
    _mm512_storeu_ps(c2, a20), _mm512_storeu_ps(c2 + 16, a21);
    _mm512_storeu_ps(c3, a30), _mm512_storeu_ps(c3 + 16, a31);
}

static void rne__avx512_gemm_acc(float *c, size_t ldc, const float *x, size_t ldx,
                                 const float *wt, size_t ldw, size_t m, size_t n, size_t k)
{
    const size_t m4 = m - m % 4, n32 = n - n % 32;
    size_t i, j, j0;
    for (j0 = 0; j0 < n32 && m4 > 0; j0 += RNE__AVX2_PANEL) {
        const size_t j1 = n32 - j0 < RNE__AVX2_PANEL ? n32 : j0 + RNE__AVX2_PANEL;
        for (i = 0; i < m4; i += 4)
            for (j = j0; j < j1; j += 32)
                rne__avx512_tile4(c + i * ldc + j, ldc, x + i * ldx, ldx, wt + j, ldw, k);
    }
    for (i = 0; i < m; i++) {
        if (i >= m4)
            rne__avx512_row(c + i * ldc, x + i * ldx, wt, ldw, n, k);
        else if (n32 < n)
            rne__avx512_row(c + i * ldc + n32, x + i * ldx, wt + n32, ldw, n - n32, k);
    }
}

/* ---- gemv2_acc: vec_avx2.h's register-held row, 16 lanes -------------------------------------- */
#undef RNE__SIMD_GEMV2
#define RNE__SIMD_GEMV2 rne__avx512_gemv2

static RNE__AVX2_INLINE void rne__avx512_strip(float *c, const float *x, size_t kx,
                                               const float *wx, const float *h, size_t kh,
                                               const float *wh, size_t ldw, size_t nv)
{
    __m512 a0 = _mm512_setzero_ps(), a1 = a0, a2 = a0, a3 = a0, a4 = a0, a5 = a0, a6 = a0,
           a7 = a0, xp;
    size_t p;
#define RNE__LOAD(v) if (nv > v) a##v = _mm512_loadu_ps(c + 16 * v)
#define RNE__FMA(v) if (nv > v) a##v = _mm512_fmadd_ps(xp, _mm512_loadu_ps(w + 16 * v), a##v)
#define RNE__STORE(v) if (nv > v) _mm512_storeu_ps(c + 16 * v, a##v)
    RNE__AVX2_ACC8(RNE__LOAD);
    for (p = 0; p < kx; p++) {          /* two rows per turn: less loop per multiply-add */
        const float *w = wx + p * ldw;
        xp = _mm512_set1_ps(x[p]);
        RNE__AVX2_ACC8(RNE__FMA);
        if (++p == kx)
            break;
        w += ldw;
        xp = _mm512_set1_ps(x[p]);
        RNE__AVX2_ACC8(RNE__FMA);
    }
    for (p = 0; p < kh; p++) {
        const float *w = wh + p * ldw;
        xp = _mm512_set1_ps(h[p]);
        RNE__AVX2_ACC8(RNE__FMA);
        if (++p == kh)
            break;
        w += ldw;
        xp = _mm512_set1_ps(h[p]);
        RNE__AVX2_ACC8(RNE__FMA);
    }
    RNE__AVX2_ACC8(RNE__STORE);
#undef RNE__LOAD
#undef RNE__FMA
#undef RNE__STORE
}

static void rne__avx512_strips(float *c, const float *x, size_t kx, const float *wx,
                               const float *h, size_t kh, const float *wh, size_t ldw, size_t nv)
{
    switch (nv) {
    case 1: rne__avx512_strip(c, x, kx, wx, h, kh, wh, ldw, 1); break;
    case 2: rne__avx512_strip(c, x, kx, wx, h, kh, wh, ldw, 2); break;
    case 3: rne__avx512_strip(c, x, kx, wx, h, kh, wh, ldw, 3); break;
    case 4: rne__avx512_strip(c, x, kx, wx, h, kh, wh, ldw, 4); break;
    case 5: rne__avx512_strip(c, x, kx, wx, h, kh, wh, ldw, 5); break;
    case 6: rne__avx512_strip(c, x, kx, wx, h, kh, wh, ldw, 6); break;
    case 7: rne__avx512_strip(c, x, kx, wx, h, kh, wh, ldw, 7); break;
    default: rne__avx512_strip(c, x, kx, wx, h, kh, wh, ldw, 8); break;
    }
}

#define RNE__AVX512_GEMV2_MAX 256

/* n and nh multiples of 16 up to RNE__AVX512_GEMV2_MAX here (blocks of 128 columns), else
 * vec_avx2.h's (multiples of 8), else 0 */
static int rne__avx512_gemv2(float *c, const float *x, size_t kx, const float *wx,
                             const float *h, size_t kh, const float *wh, size_t ldw, size_t n,
                             size_t nh)
{
    size_t j, nv;
    if (n % 16 != 0 || nh % 16 != 0 || n > RNE__AVX512_GEMV2_MAX || nh > n)
        return rne__avx2_gemv2(c, x, kx, wx, h, kh, wh, ldw, n, nh);
    for (j = 0; j < n; j += nv * 16) {
        nv = (n - j) / 16 < 8 ? (n - j) / 16 : 8;
        if (j < nh && nh - j < nv * 16)
            nv = (nh - j) / 16;
        rne__avx512_strips(c + j, x, kx, wx + j, h, j < nh ? kh : 0, wh + j, ldw, nv);
    }
    return 1;
}

#endif /* RNE_VEC_AVX512_H */
