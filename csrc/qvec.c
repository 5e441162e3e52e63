/*
 * qvec.c - the integer matrix-vector product (contract in qvec.h).
 *
 * Scalar (the reference, always compiled): W_t is walked row by row (input p), each row adding
 * x[p] * W_t[p][j] to every column's accumulator: contiguous loads of weights and accumulators,
 * which compilers vectorize; four inputs per pass cut the accumulator traffic. Every partial sum
 * is a sum of a subset of the terms, so it is bounded by the column's sum of |x| |w| and fits
 * wherever the whole sum fits. The int64 path adds each product (|x w| <= 2^30) as an int64.
 *
 * AVX2 (when the compiler targets it, unless RNE_NO_SIMD): 16 columns at a time, inputs in pairs
 * through vpmaddwd, which forms x[p] w[p][j] + x[p+1] w[p+1][j] as one int32. That pair fits:
 * |x| <= 32768 and |w| <= 32767 (int16 weights never hold -32768, proved at load), so the pair
 * is at most 2 * 32768 * 32767 < 2^31. The sums are exact either way, so both paths give the
 * same integers (the tests run both: make ARCH_FLAGS=-DRNE_NO_SIMD run_test_int).
 */
#include "qvec.h"

#if defined(__AVX2__) && !defined(RNE_NO_SIMD)
#define RNE__Q_AVX2 1
#include <immintrin.h>
#endif

/* acc[j] = sum_p x[p] w[p][j]: one variant per (weight type, accumulator type). */
#define RNE__MAC_BODY(ACC, W)                                                                     \
    size_t p = 0, j;                                                                              \
    for (j = 0; j < n; j++)                                                                       \
        acc[j] = 0;                                                                               \
    for (; p + 4 <= k; p += 4) {                                                                  \
        const int32_t x0 = x[p], x1 = x[p + 1], x2 = x[p + 2], x3 = x[p + 3];                      \
        const W *w0 = w + p * ldw, *w1 = w0 + ldw, *w2 = w1 + ldw, *w3 = w2 + ldw;                 \
        for (j = 0; j < n; j++)                                                                   \
            acc[j] = acc[j] + (ACC)(x0 * w0[j]) + (ACC)(x1 * w1[j]) + (ACC)(x2 * w2[j]) +          \
                     (ACC)(x3 * w3[j]);                                                           \
    }                                                                                             \
    for (; p < k; p++) {                                                                          \
        const int32_t x0 = x[p];                                                                  \
        const W *w0 = w + p * ldw;                                                                \
        for (j = 0; j < n; j++)                                                                   \
            acc[j] = acc[j] + (ACC)(x0 * w0[j]);                                                  \
    }

static void rne__mac_s8_i32(int32_t *restrict acc, const int16_t *restrict x, size_t k,
                            const int8_t *restrict w, size_t ldw, size_t n)
{
    RNE__MAC_BODY(int32_t, int8_t)
}

static void rne__mac_s16_i32(int32_t *restrict acc, const int16_t *restrict x, size_t k,
                             const int16_t *restrict w, size_t ldw, size_t n)
{
    RNE__MAC_BODY(int32_t, int16_t)
}

static void rne__mac_s8_i64(int64_t *restrict acc, const int16_t *restrict x, size_t k,
                            const int8_t *restrict w, size_t ldw, size_t n)
{
    RNE__MAC_BODY(int64_t, int8_t)
}

static void rne__mac_s16_i64(int64_t *restrict acc, const int16_t *restrict x, size_t k,
                             const int16_t *restrict w, size_t ldw, size_t n)
{
    RNE__MAC_BODY(int64_t, int16_t)
}

#undef RNE__MAC_BODY

#ifdef RNE__Q_AVX2
/* 16 weights of a row from element `at` on, as int16 */
static __m256i rne__w16(const void *w, int s8, size_t at)
{
    if (s8)
        return _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)(const void *)
                                                     ((const int8_t *)w + at)));
    return _mm256_loadu_si256((const __m256i *)(const void *)((const int16_t *)w + at));
}

/* s + the four int32 of v, widened */
static __m256i rne__add_wide(__m256i s, __m128i v)
{
    return _mm256_add_epi64(s, _mm256_cvtepi32_epi64(v));
}

/* Columns j..j+31: rows in pairs (a zero row pads an odd k). vpunpck{l,h}wd interleave rows p and
 * p+1 within each 128-bit lane, so of each 16 columns the lo sums hold columns 0-3 and 8-11, the
 * hi sums 4-7 and 12-15; the stores put them back in order. s8 and acc64 are constants of a call
 * (the compiler hoists their tests out of the loop). */
static void rne__avx2_block(void *acc, int acc64, const int16_t *x, size_t k, const void *w,
                            int s8, size_t ldw, size_t j)
{
    __m256i s[8];
    size_t p, h, i;
    for (i = 0; i < 8; i++)
        s[i] = _mm256_setzero_si256();
    for (p = 0; p < k; p += 2) {
        const int two = p + 1 < k;
        const __m256i xx = _mm256_unpacklo_epi16(_mm256_set1_epi16(x[p]),
                                                 _mm256_set1_epi16(two ? x[p + 1] : 0));
        for (h = 0; h < 2; h++) {
            const __m256i r0 = rne__w16(w, s8, p * ldw + j + 16 * h);
            const __m256i r1 = two ? rne__w16(w, s8, (p + 1) * ldw + j + 16 * h)
                                   : _mm256_setzero_si256();
            const __m256i lo = _mm256_madd_epi16(_mm256_unpacklo_epi16(r0, r1), xx);
            const __m256i hi = _mm256_madd_epi16(_mm256_unpackhi_epi16(r0, r1), xx);
            if (!acc64) {
                s[2 * h] = _mm256_add_epi32(s[2 * h], lo);
                s[2 * h + 1] = _mm256_add_epi32(s[2 * h + 1], hi);
            } else {
                s[4 * h] = rne__add_wide(s[4 * h], _mm256_castsi256_si128(lo));
                s[4 * h + 1] = rne__add_wide(s[4 * h + 1], _mm256_castsi256_si128(hi));
                s[4 * h + 2] = rne__add_wide(s[4 * h + 2], _mm256_extracti128_si256(lo, 1));
                s[4 * h + 3] = rne__add_wide(s[4 * h + 3], _mm256_extracti128_si256(hi, 1));
            }
        }
    }
    for (h = 0; h < 2; h++) {
        if (!acc64) {
            __m256i *o = (__m256i *)(void *)((int32_t *)acc + j + 16 * h);
            _mm256_storeu_si256(o, _mm256_permute2x128_si256(s[2 * h], s[2 * h + 1], 0x20));
            _mm256_storeu_si256(o + 1, _mm256_permute2x128_si256(s[2 * h], s[2 * h + 1], 0x31));
        } else {
            __m256i *o = (__m256i *)(void *)((int64_t *)acc + j + 16 * h);
            for (i = 0; i < 4; i++)
                _mm256_storeu_si256(o + i, s[4 * h + i]);
        }
    }
}

/* acc[j] = sum_p x[p] w[p][j] for the columns j < n - n % 32; returns how many were done. */
static size_t rne__mac_avx2(void *acc, int acc64, const int16_t *x, size_t k, const void *w,
                            int s8, size_t ldw, size_t n)
{
    const size_t nb = n - n % 32u;
    size_t j;
    for (j = 0; j < nb; j += 32)
        rne__avx2_block(acc, acc64, x, k, w, s8, ldw, j);
    return nb;
}
#endif

void rne__q_matvec(int32_t *out, const int16_t *x, size_t k, const rne__qmat *w, size_t c0,
                   size_t n, const int32_t *m, unsigned shift, void *acc)
{
    const size_t esize = w->s8 ? sizeof(int8_t) : sizeof(int16_t);
    const uint8_t *wt = (const uint8_t *)w->w + c0 * esize;
    size_t j, done = 0;
#ifdef RNE__Q_AVX2
    done = rne__mac_avx2(acc, !w->acc32, x, k, wt, w->s8, w->ldw, n);
#endif
    if (w->acc32) {
        int32_t *a = (int32_t *)acc;
        if (w->s8)
            rne__mac_s8_i32(a + done, x, k, (const int8_t *)(const void *)wt + done, w->ldw,
                            n - done);
        else
            rne__mac_s16_i32(a + done, x, k, (const int16_t *)(const void *)wt + done, w->ldw,
                             n - done);
        for (j = 0; j < n; j++)
            out[j] = rne__rq32(a[j], m[j], shift);
    } else {
        int64_t *a = (int64_t *)acc;
        if (w->s8)
            rne__mac_s8_i64(a + done, x, k, (const int8_t *)(const void *)wt + done, w->ldw,
                            n - done);
        else
            rne__mac_s16_i64(a + done, x, k, (const int16_t *)(const void *)wt + done, w->ldw,
                             n - done);
        for (j = 0; j < n; j++)
            out[j] = rne__rq32(a[j], m[j], shift);
    }
}
