/*
 * qvec_avx2.h - the AVX2 variant of qvec.c's integer product and gate rows (x86-64, -mavx2), with
 * AVX-512F requantization and gate pre-activations where the compiler also targets it
 * (-mavx512f). Included by qvec.c only, which picks it (RNE__Q_AVX2) and defines RNE__Q_INLINE
 * and RNE__Q_NOINLINE first; it defines the static rne__mac_simd, rne__rq_simd, rne__pre_simd
 * and rne__act_simd that qvec.c's functions call before their scalar code.
 *
 * AVX2 (when the compiler targets it, unless RNE_NO_SIMD): inputs in pairs through vpmaddwd,
 * which forms x[p] w[p][j] + x[p+1] w[p+1][j] as one int32 (< 2^31: qvec.c), the two rows'
 * weights interleaved by vpunpck{l,h}wd (int8 widened by vpmovsxbw first).
 *   acc32: 64 columns in 8 registers over all of k, the pairs added in int32 (the last columns
 *   of a layer 32, 16, then 8 at a time: a small cell's 24 or 16 columns are no scalar code).
 *   acc64: 32 columns over chunks of 256 rows, each chunk's sums in int32, then added into int64:
 *   int8 weights directly (a pair is at most 2 * 32768 * 128 = 2^23, 128 pairs 2^30); int16
 *   weights through x = 256 xh + xl (rne__avx2_split_s16: two int32 sums, no int64 widening per
 *   pair).
 *   Requantization 8 columns at a time (acc32; with AVX-512F also acc64, in int64 lanes), the gate
 *   pre-activations 8 at a time (int64 lanes; AVX2 clamps with vpcmpgtq, AVX-512F vpminsq),
 *   sigmoid and tanh 8 at a time through a gather from the table.
 *   The graph op BINARY ADD / MUL of equal shapes (rne__bin_simd) 8 elements at a time; a CONV's
 *   int32 sums to int16 (rne__rq16_simd, AVX-512F) 8 at a time; integer square roots
 *   (rne__isqrt_simd, BINARY HYPOT / LOGHYPOT) 8 lanes at a time, digit by digit.
 */
#ifndef RNE_QVEC_AVX2_H
#define RNE_QVEC_AVX2_H

#include <immintrin.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "qvec.h"

/* ---- column sums ----------------------------------------------------------------------------- */

/* 16 weights of a row from byte address `at` on, as int16 */
static RNE__Q_INLINE __m256i rne__w16(const uint8_t *at, int s8)
{
    if (s8)
        return _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)(const void *)at));
    return _mm256_loadu_si256((const __m256i *)(const void *)at);
}

/* Rows p and p + 1 (R1 bytes after wp; R1 = 0: row p twice) at the 16 columns from byte OFF on,
 * as int16 pairs (w[p][c], w[p+1][c]) ready for vpmaddwd with (x[p], x[p+1]): vpunpck{l,h}wd
 * interleave the rows within each 128-bit lane, so LO holds columns 0-3 | 8-11 (low | high
 * lane), HI 4-7 | 12-15. */
#define RNE__AVX2_PAIRS(OFF, R1, LO, HI)                                                          \
    do {                                                                                          \
        const __m256i r0_ = rne__w16(wp + (OFF), s8), r1_ = rne__w16(wp + (R1) + (OFF), s8);      \
        LO = _mm256_unpacklo_epi16(r0_, r1_);                                                     \
        HI = _mm256_unpackhi_epi16(r0_, r1_);                                                     \
    } while (0)

/* o[0 .. 16) = the int32 sums LO, HI of RNE__AVX2_PAIRS's columns, in column order */
static RNE__Q_INLINE void rne__avx2_store16(int32_t *o, __m256i lo, __m256i hi)
{
    _mm256_storeu_si256((__m256i *)(void *)o, _mm256_permute2x128_si256(lo, hi, 0x20));
    _mm256_storeu_si256((__m256i *)(void *)(o + 8), _mm256_permute2x128_si256(lo, hi, 0x31));
}

/* out[0 .. 16 g) = the int32 column sums of columns j .. j + 16 g (g <= 4: 8 accumulators, x and
 * the weights within AVX2's 16 registers) over rows 0 .. k-1, the pair sums added in int32: the
 * caller guarantees that every partial sum fits (acc32, or a chunk of rows, below). s8, g:
 * constants of an instantiation. */
static RNE__Q_INLINE void rne__avx2_sum32(int32_t *out, const int16_t *x, size_t k,
                                          const uint8_t *w, size_t ldw, size_t j, int s8,
                                          size_t g)
{
    const size_t es = s8 ? 1u : 2u, row = ldw * es;
    const uint8_t *wp = w + j * es;
    const __m256i z = _mm256_setzero_si256();
    __m256i s0 = z, s1 = z, s2 = z, s3 = z, s4 = z, s5 = z, s6 = z, s7 = z, lo, hi;
    size_t p;
#define RNE__AVX2_ADD(G, A, B, R1, XX)                                                            \
    if (g > (G)) {                                                                                \
        RNE__AVX2_PAIRS(16 * (G) * es, R1, lo, hi);                                               \
        A = _mm256_add_epi32(A, _mm256_madd_epi16(lo, XX));                                       \
        B = _mm256_add_epi32(B, _mm256_madd_epi16(hi, XX));                                       \
    }
#define RNE__AVX2_STEP(R1, XX)                                                                    \
    RNE__AVX2_ADD(0, s0, s1, R1, XX)                                                              \
    RNE__AVX2_ADD(1, s2, s3, R1, XX)                                                              \
    RNE__AVX2_ADD(2, s4, s5, R1, XX)                                                              \
    RNE__AVX2_ADD(3, s6, s7, R1, XX)
    if (k % 2 != 0) {                               /* the last row of an odd k first */
        const __m256i xx = _mm256_set1_epi32((int32_t)(uint16_t)x[k - 1]);     /* (x, 0) */
        wp += (k - 1) * row;
        RNE__AVX2_STEP(0, xx)
        wp = w + j * es;
    }
    for (p = 0; p + 2 <= k; p += 2, wp += 2 * row) {
        int32_t pair;
        memcpy(&pair, x + p, sizeof pair);          /* x[p] in the low half (little-endian) */
        {
            const __m256i xx = _mm256_set1_epi32(pair);
            RNE__AVX2_STEP(row, xx)
        }
    }
#undef RNE__AVX2_STEP
#undef RNE__AVX2_ADD
    rne__avx2_store16(out, s0, s1);
    if (g > 1)
        rne__avx2_store16(out + 16, s2, s3);
    if (g > 2)
        rne__avx2_store16(out + 32, s4, s5);
    if (g > 3)
        rne__avx2_store16(out + 48, s6, s7);
}

/* the rows of one acc64 chunk (below) */
#define RNE__Q_CHUNK 256

#if !defined(RNE__Q_AVX512BW)      /* (AVX-512BW: qvec_avx512.h's rne__avx512_split_s16) */
/* o[0 .. 16) = 256 H + L (add: o + 256 H + L) in int64, from the int32 sums H0, L0 (columns 0-3
 * | 8-11) and H1, L1 (4-7 | 12-15) of RNE__AVX2_PAIRS's columns */
static RNE__Q_INLINE __m256i rne__avx2_wide(__m128i h, __m128i l)
{
    return _mm256_add_epi64(_mm256_slli_epi64(_mm256_cvtepi32_epi64(h), 8),
                            _mm256_cvtepi32_epi64(l));
}

static RNE__Q_INLINE void rne__avx2_put64(int64_t *o, int add, __m256i h0, __m256i l0, __m256i h1,
                                          __m256i l1)
{
    __m256i v[4];
    size_t i;
    v[0] = rne__avx2_wide(_mm256_castsi256_si128(h0), _mm256_castsi256_si128(l0));
    v[1] = rne__avx2_wide(_mm256_castsi256_si128(h1), _mm256_castsi256_si128(l1));
    v[2] = rne__avx2_wide(_mm256_extracti128_si256(h0, 1), _mm256_extracti128_si256(l0, 1));
    v[3] = rne__avx2_wide(_mm256_extracti128_si256(h1, 1), _mm256_extracti128_si256(l1, 1));
    for (i = 0; i < 4; i++) {
        __m256i *d = (__m256i *)(void *)(o + 4 * i);
        _mm256_storeu_si256(d, add ? _mm256_add_epi64(_mm256_loadu_si256(d), v[i]) : v[i]);
    }
}

/* acc64 for int16 weights, columns j .. j + 31 over rows 0 .. k-1, k <= RNE__Q_CHUNK: x = 256 xh
 * + xl with xh = x >> 8 in [-128, 127] and xl = x & 255 in [0, 255], so that
 * sum x w = 256 sum xh w + sum xl w. A pair sum x[p] w[p][c] + x[p+1] w[p+1][c] with xh or xl for
 * x is then at most 2 * 255 * 32767 < 2^24 in magnitude, and 128 of them (256 rows) less than
 * 2^31: both sums fit int32 over a chunk, without widening each pair to int64. Then
 * acc[j + c] (add: +)= 256 hi + lo in int64, for the 32 columns c. */
static void rne__avx2_split_s16(int64_t *acc, int add, const int16_t *x, size_t k,
                                const uint8_t *w, size_t ldw, size_t j)
{
    const int s8 = 0;
    const size_t es = 2, row = ldw * es;
    const uint8_t *wp = w + j * es;
    const __m256i z = _mm256_setzero_si256(), low = _mm256_set1_epi16(255);
    __m256i h0 = z, h1 = z, h2 = z, h3 = z, l0 = z, l1 = z, l2 = z, l3 = z, a, b;
    size_t p;
#define RNE__AVX2_SPLIT(R1, XX)                                                                   \
    do {                                                                                          \
        const __m256i xh_ = _mm256_srai_epi16(XX, 8), xl_ = _mm256_and_si256(XX, low);            \
        RNE__AVX2_PAIRS(0, R1, a, b);                                                             \
        h0 = _mm256_add_epi32(h0, _mm256_madd_epi16(a, xh_));                                     \
        l0 = _mm256_add_epi32(l0, _mm256_madd_epi16(a, xl_));                                     \
        h1 = _mm256_add_epi32(h1, _mm256_madd_epi16(b, xh_));                                     \
        l1 = _mm256_add_epi32(l1, _mm256_madd_epi16(b, xl_));                                     \
        RNE__AVX2_PAIRS(32, R1, a, b);                                                            \
        h2 = _mm256_add_epi32(h2, _mm256_madd_epi16(a, xh_));                                     \
        l2 = _mm256_add_epi32(l2, _mm256_madd_epi16(a, xl_));                                     \
        h3 = _mm256_add_epi32(h3, _mm256_madd_epi16(b, xh_));                                     \
        l3 = _mm256_add_epi32(l3, _mm256_madd_epi16(b, xl_));                                     \
    } while (0)
    if (k % 2 != 0) {
        const __m256i xx = _mm256_set1_epi32((int32_t)(uint16_t)x[k - 1]);
        wp += (k - 1) * row;
        RNE__AVX2_SPLIT(0, xx);
        wp = w + j * es;
    }
    for (p = 0; p + 2 <= k; p += 2, wp += 2 * row) {
        int32_t pair;
        memcpy(&pair, x + p, sizeof pair);
        {
            const __m256i xx = _mm256_set1_epi32(pair);
            RNE__AVX2_SPLIT(row, xx);
        }
    }
#undef RNE__AVX2_SPLIT
    rne__avx2_put64(acc + j, add, h0, l0, h1, l1);
    rne__avx2_put64(acc + j + 16, add, h2, l2, h3, l3);
}
#endif
#undef RNE__AVX2_PAIRS

#define RNE__AVX2_SUM(NAME, S8, G)                                                                \
    static void NAME(int32_t *o, const int16_t *x, size_t k, const uint8_t *w, size_t ldw,        \
                     size_t j)                                                                    \
    {                                                                                             \
        rne__avx2_sum32(o, x, k, w, ldw, j, S8, G);                                               \
    }
#if !defined(RNE__Q_AVX512BW)                  /* (AVX-512BW: qvec_avx512.h's, 32 and wider) */
RNE__AVX2_SUM(rne__avx2_s8_64, 1, 4)
RNE__AVX2_SUM(rne__avx2_s8_32, 1, 2)
RNE__AVX2_SUM(rne__avx2_s16_64, 0, 4)
RNE__AVX2_SUM(rne__avx2_s16_32, 0, 2)
#endif
RNE__AVX2_SUM(rne__avx2_s8_16, 1, 1)
RNE__AVX2_SUM(rne__avx2_s16_16, 0, 1)
#undef RNE__AVX2_SUM

/* out[0 .. 8) = the int32 column sums of columns j .. j + 7 over rows 0 .. k-1, as
 * rne__avx2_sum32 with 128-bit registers: the 8 weights of rows p and p + 1 (int8 widened by
 * vpmovsxbw) interleaved by vpunpck{l,h}wd into columns 0-3 and 4-7, one vpmaddwd each. For the
 * last 8 columns of a small layer (an 8-wide GRU's 24 and 16), which must not read past them. */
static void rne__avx2_sum8(int32_t *out, const int16_t *x, size_t k, const uint8_t *w,
                           size_t ldw, size_t j, int s8)
{
    const size_t es = s8 ? 1u : 2u, row = ldw * es;
    const uint8_t *wp = w + j * es;
    __m128i s0 = _mm_setzero_si128(), s1 = _mm_setzero_si128();
    size_t p;
#define RNE__AVX2_W8(AT)                                                                          \
    (s8 ? _mm_cvtepi8_epi16(_mm_loadl_epi64((const __m128i *)(const void *)(AT)))                 \
        : _mm_loadu_si128((const __m128i *)(const void *)(AT)))
#define RNE__AVX2_STEP8(R1, XX)                                                                   \
    do {                                                                                          \
        const __m128i r0_ = RNE__AVX2_W8(wp), r1_ = RNE__AVX2_W8(wp + (R1));                      \
        s0 = _mm_add_epi32(s0, _mm_madd_epi16(_mm_unpacklo_epi16(r0_, r1_), XX));                 \
        s1 = _mm_add_epi32(s1, _mm_madd_epi16(_mm_unpackhi_epi16(r0_, r1_), XX));                 \
    } while (0)
    if (k % 2 != 0) {                               /* the last row of an odd k first */
        const __m128i xx = _mm_set1_epi32((int32_t)(uint16_t)x[k - 1]);        /* (x, 0) */
        wp += (k - 1) * row;
        RNE__AVX2_STEP8(0, xx);
        wp = w + j * es;
    }
    for (p = 0; p + 2 <= k; p += 2, wp += 2 * row) {
        int32_t pair;
        memcpy(&pair, x + p, sizeof pair);          /* x[p] in the low half (little-endian) */
        {
            const __m128i xx = _mm_set1_epi32(pair);
            RNE__AVX2_STEP8(row, xx);
        }
    }
#undef RNE__AVX2_STEP8
#undef RNE__AVX2_W8
    _mm_storeu_si128((__m128i *)(void *)out, s0);
    _mm_storeu_si128((__m128i *)(void *)(out + 4), s1);
}

#if defined(RNE__Q_AVX512BW)
#include "qvec_avx512.h"
#endif

/* The column sums of the columns j < n - n % 32 (acc32: all n columns from n = 8 on, none below);
 * returns how many were done.
 *   acc32: all of k in int32 (the load proved every column's sum fits), 64, 32, then 16 and 8
 *   columns at a time (with AVX-512BW, qvec_avx512.h: 128, 64, 32, then AVX2's 16 and 8; int8
 *   weights with VNNI: vpdpbusd's 128 and 64 first); the last n % 8 as the 8 columns ending at
 *   n, kept from the first not yet done (a small dense such as 12 classes: no scalar columns).
 *   acc64: chunks of RNE__Q_CHUNK rows, each chunk's sums in int32 and then added in int64. s8:
 *   a pair sum is at most 2 * 32768 * 128 = 2^23, 128 pairs 2^30. s16: through the split of x.
 *   (AVX-512BW: 64 columns at a time, then 32; int8 with VNNI: vpdpbusd's 64.) */
static size_t rne__mac_simd(void *acc, const int16_t *x, size_t k, const uint8_t *w, int s8,
                            int acc32, size_t ldw, size_t n)
{
    const size_t row = ldw * (s8 ? 1u : 2u);
    size_t j = 0, p, c;
    if (acc32) {
        int32_t *a = (int32_t *)acc;
#if defined(RNE__Q_AVX512BW)
#if defined(__AVX512VNNI__)
        for (; s8 && j + 128 <= n; j += 128)
            rne__avx512_bus_128(a + j, x, k, w, ldw, j);
        if (s8 && j + 64 <= n) {
            rne__avx512_bus_64(a + j, x, k, w, ldw, j);
            j += 64;
        }
#endif
        for (; j + 128 <= n; j += 128)
            (s8 ? rne__avx512_s8_128 : rne__avx512_s16_128)(a + j, x, k, w, ldw, j);
        if (j + 64 <= n) {
            (s8 ? rne__avx512_s8_64 : rne__avx512_s16_64)(a + j, x, k, w, ldw, j);
            j += 64;
        }
        if (j + 32 <= n) {
            (s8 ? rne__avx512_s8_32 : rne__avx512_s16_32)(a + j, x, k, w, ldw, j);
            j += 32;
        }
#else
        for (; j + 64 <= n; j += 64)
            (s8 ? rne__avx2_s8_64 : rne__avx2_s16_64)(a + j, x, k, w, ldw, j);
        for (; j + 32 <= n; j += 32)
            (s8 ? rne__avx2_s8_32 : rne__avx2_s16_32)(a + j, x, k, w, ldw, j);
#endif
        if (j + 16 <= n) {
            (s8 ? rne__avx2_s8_16 : rne__avx2_s16_16)(a + j, x, k, w, ldw, j);
            j += 16;
        }
        if (j + 8 <= n) {
            rne__avx2_sum8(a + j, x, k, w, ldw, j, s8);
            j += 8;
        }
        if (j < n && n >= 8) {  /* the last n % 8: the 8 columns ending at n, kept from j on */
            int32_t last[8];
            rne__avx2_sum8(last, x, k, w, ldw, n - 8, s8);
            for (c = j; c < n; c++)
                a[c] = last[c - (n - 8)];
            j = n;
        }
        return j;
    }
#if defined(RNE__Q_AVX512BW)
    for (; j + 64 <= n; j += 64) {
        int64_t *a = (int64_t *)acc + j;
        int32_t part[64];
        for (p = 0; p == 0 || p < k; p += RNE__Q_CHUNK) {      /* k = 0: one chunk of 0 rows */
            const size_t kk = k - p < RNE__Q_CHUNK ? k - p : RNE__Q_CHUNK;
            if (s8) {
#if defined(__AVX512VNNI__)
                rne__avx512_bus_64(part, x + p, kk, w + p * row, ldw, j);
#else
                rne__avx512_s8_64(part, x + p, kk, w + p * row, ldw, j);
#endif
                for (c = 0; c < 64; c++)
                    a[c] = (p == 0 ? 0 : a[c]) + part[c];
            } else {
                rne__avx512_split_64((int64_t *)acc, p != 0, x + p, kk, w + p * row, ldw, j);
            }
        }
    }
#endif
    for (; j + 32 <= n; j += 32) {
        int64_t *a = (int64_t *)acc + j;
        int32_t part[32];
        for (p = 0; p == 0 || p < k; p += RNE__Q_CHUNK) {      /* k = 0: one chunk of 0 rows */
            const size_t kk = k - p < RNE__Q_CHUNK ? k - p : RNE__Q_CHUNK;
            if (s8) {
#if defined(RNE__Q_AVX512BW)
                rne__avx512_s8_32(part, x + p, kk, w + p * row, ldw, j);
#else
                rne__avx2_s8_32(part, x + p, kk, w + p * row, ldw, j);
#endif
                for (c = 0; c < 32; c++)
                    a[c] = (p == 0 ? 0 : a[c]) + part[c];
            } else {
#if defined(RNE__Q_AVX512BW)
                rne__avx512_split_32((int64_t *)acc, p != 0, x + p, kk, w + p * row, ldw, j);
#else
                rne__avx2_split_s16((int64_t *)acc, p != 0, x + p, kk, w + p * row, ldw, j);
#endif
            }
        }
    }
    return j;
}

/* ---- requantization and gate pre-activations ------------------------------------------------- */

#if defined(__AVX512F__)
/* With AVX-512F, int64 lanes shift arithmetically (vpsraq) and narrow with saturation (vpmovsqd,
 * sat32), 8 columns at a time.
 * out[j] = rq32(acc[j], m[j], shift): acc32: vpmuldq of the sign-extended acc and m. acc64: the
 * product acc m (which fits int64, by the load-time proof) modulo 2^64 from 32-bit halves: with
 * acc = ah 2^32 + al (al unsigned) and m = mu - 2^32 [m < 0] (mu unsigned),
 * acc m = ah m 2^32 + al mu - al 2^32 [m < 0], where al 2^32 = acc << 32 (mod 2^64).
 * Returns the columns done (n - n % 8). */
static size_t rne__rq_simd(int32_t *out, const void *acc, int acc32, const int32_t *m,
                           unsigned shift, size_t n)
{
    const __m512i half = _mm512_set1_epi64((long long)((int64_t)1 << (shift - 1u)));
    const __m128i c = _mm_cvtsi32_si128((int)shift);
    size_t j;
    for (j = 0; j + 8 <= n; j += 8) {
        const __m512i mm = _mm512_cvtepi32_epi64(
            _mm256_loadu_si256((const __m256i *)(const void *)(m + j)));
        __m512i v;
        if (acc32) {
            v = _mm512_mul_epi32(_mm512_cvtepi32_epi64(_mm256_loadu_si256(
                                     (const __m256i *)(const void *)((const int32_t *)acc + j))),
                                 mm);
        } else {
            const __m512i a = _mm512_loadu_si512((const void *)((const int64_t *)acc + j));
            v = _mm512_add_epi64(_mm512_mul_epu32(a, mm),
                                 _mm512_slli_epi64(_mm512_mul_epi32(_mm512_srli_epi64(a, 32), mm),
                                                   32));
            v = _mm512_mask_sub_epi64(v, _mm512_cmplt_epi64_mask(mm, _mm512_setzero_si512()), v,
                                      _mm512_slli_epi64(a, 32));
        }
        v = _mm512_sra_epi64(_mm512_add_epi64(v, half), c);
        _mm256_storeu_si256((__m256i *)(void *)(out + j), _mm512_cvtsepi64_epi32(v));
    }
    return j;
}

/* rne__q_pre 8 at a time: the sum in int64 lanes, clamped by vpminsq / vpmaxsq */
static size_t rne__pre_simd(int32_t *z, const int32_t *a, const int32_t *b, const int32_t *c,
                            int32_t lim, size_t n)
{
    const __m512i hi = _mm512_set1_epi64(lim), lo = _mm512_set1_epi64(-(long long)lim);
    size_t j;
    for (j = 0; j + 8 <= n; j += 8) {
        const __m512i s = _mm512_add_epi64(
            _mm512_add_epi64(
                _mm512_cvtepi32_epi64(_mm256_loadu_si256((const __m256i *)(const void *)(a + j))),
                _mm512_cvtepi32_epi64(_mm256_loadu_si256((const __m256i *)(const void *)(b + j)))),
            _mm512_cvtepi32_epi64(_mm256_loadu_si256((const __m256i *)(const void *)(c + j))));
        _mm256_storeu_si256((__m256i *)(void *)(z + j),
                            _mm512_cvtepi64_epi32(_mm512_max_epi64(_mm512_min_epi64(s, hi), lo)));
    }
    return j;
}
#else
/* v >> c of each int64 lane, arithmetic (AVX2 shifts int64 logically only): floor(v / 2^c) is
 * ~floor(~v / 2^c) for v < 0, where ~v >= 0 */
static __m256i rne__avx2_sra64(__m256i v, __m128i c)
{
    const __m256i neg = _mm256_cmpgt_epi64(_mm256_setzero_si256(), v);
    return _mm256_xor_si256(_mm256_srl_epi64(_mm256_xor_si256(v, neg), c), neg);
}

/* sat32(rshr(v, shift)) of each int64 lane v = a * m, |v| + 2^(shift-1) <= INT64_MAX */
static __m256i rne__avx2_rq_lanes(__m256i v, __m256i half, __m128i c)
{
    const __m256i hi = _mm256_set1_epi64x(INT32_MAX), lo = _mm256_set1_epi64x(INT32_MIN);
    v = rne__avx2_sra64(_mm256_add_epi64(v, half), c);
    v = _mm256_blendv_epi8(v, hi, _mm256_cmpgt_epi64(v, hi));
    return _mm256_blendv_epi8(v, lo, _mm256_cmpgt_epi64(lo, v));
}

/* out[j] = rq32(acc[j], m[j], shift), acc int32, 8 columns at a time: vpmuldq multiplies the
 * even int32 lanes into int64 (the odd ones shifted down first); each result is in int32's range,
 * so its low half is the value. Returns the columns done (n - n % 8; 0 for acc64, left to the
 * scalar code). */
static size_t rne__rq_simd(int32_t *out, const void *acc, int acc32, const int32_t *m,
                           unsigned shift, size_t n)
{
    const __m256i half = _mm256_set1_epi64x((long long)((int64_t)1 << (shift - 1u)));
    const __m128i c = _mm_cvtsi32_si128((int)shift);
    size_t j;
    if (!acc32)
        return 0;
    for (j = 0; j + 8 <= n; j += 8) {
        const __m256i a =
            _mm256_loadu_si256((const __m256i *)(const void *)((const int32_t *)acc + j));
        const __m256i mm = _mm256_loadu_si256((const __m256i *)(const void *)(m + j));
        const __m256i even = rne__avx2_rq_lanes(_mm256_mul_epi32(a, mm), half, c);
        const __m256i odd = rne__avx2_rq_lanes(
            _mm256_mul_epi32(_mm256_srli_epi64(a, 32), _mm256_srli_epi64(mm, 32)), half, c);
        _mm256_storeu_si256((__m256i *)(void *)(out + j),
                            _mm256_blend_epi32(even, _mm256_slli_epi64(odd, 32), 0xAA));
    }
    return j;
}

/* the sum of a, b, c at 4 columns from j on, in int64 lanes (|sum| < 3 2^31), clamped to
 * [-lim, lim], then the low int32 of each lane (the clamped value) in the low 128 bits */
static __m128i rne__avx2_pre4(const int32_t *a, const int32_t *b, const int32_t *c, __m256i hi,
                              __m256i lo)
{
    const __m256i s = _mm256_add_epi64(
        _mm256_add_epi64(_mm256_cvtepi32_epi64(_mm_loadu_si128((const __m128i *)(const void *)a)),
                         _mm256_cvtepi32_epi64(_mm_loadu_si128((const __m128i *)(const void *)b))),
        _mm256_cvtepi32_epi64(_mm_loadu_si128((const __m128i *)(const void *)c)));
    __m256i v = _mm256_blendv_epi8(s, hi, _mm256_cmpgt_epi64(s, hi));
    v = _mm256_blendv_epi8(v, lo, _mm256_cmpgt_epi64(lo, v));
    return _mm256_castsi256_si128(
        _mm256_permutevar8x32_epi32(v, _mm256_setr_epi32(0, 2, 4, 6, 0, 2, 4, 6)));
}

/* rne__q_pre 8 at a time: the sum in int64 lanes, clamped by vpcmpgtq / vpblendvb */
static size_t rne__pre_simd(int32_t *z, const int32_t *a, const int32_t *b, const int32_t *c,
                            int32_t lim, size_t n)
{
    const __m256i hi = _mm256_set1_epi64x(lim), lo = _mm256_set1_epi64x(-(long long)lim);
    size_t j;
    for (j = 0; j + 8 <= n; j += 8) {
        const __m128i r0 = rne__avx2_pre4(a + j, b + j, c + j, hi, lo);
        const __m128i r1 = rne__avx2_pre4(a + j + 4, b + j + 4, c + j + 4, hi, lo);
        _mm_storeu_si128((__m128i *)(void *)(z + j), r0);       /* in place: read before */
        _mm_storeu_si128((__m128i *)(void *)(z + j + 4), r1);
    }
    return j;
}
#endif /* __AVX512F__ */

/* ---- sigmoid and tanh ------------------------------------------------------------------------ */

/* The sigmoid table interpolated at a (0..RNE__SIG_LIMIT) as rne__sig_interp(a, s), 8 lanes. One
 * vpgatherdd reads T[i] and T[i + 1] as one little-endian dword at byte 2 i (i <= 255: the last
 * read ends at byte 513 of the 514-byte table). vpmaddwd forms the interpolation from the int16
 * pairs (T[i] - 32768, T[i + 1] - 32768) (the xor of bit 15) and (512 - f, f):
 * T[i] (512 - f) + T[i + 1] f - 32768 * 512, within +-2^24; adding 2^24 back gives the sum. */
static __m256i rne__avx2_sig_interp(__m256i a, int s)
{
    const __m256i i = _mm256_srli_epi32(a, 9), f = _mm256_and_si256(a, _mm256_set1_epi32(511));
    const __m256i t = _mm256_i32gather_epi32((const int *)(const void *)rne__q_sigmoid, i, 2);
    const __m256i wf = _mm256_or_si256(_mm256_sub_epi32(_mm256_set1_epi32(512), f),
                                       _mm256_slli_epi32(f, 16));
    const __m256i v = _mm256_add_epi32(
        _mm256_madd_epi16(_mm256_xor_si256(t, _mm256_set1_epi32((int)0x80008000u)), wf),
        _mm256_set1_epi32((1 << 24) + (1 << (8 + s))));
    return _mm256_srli_epi32(v, 9 + s);
}

/* sigmoid (tanh = 0) or tanh (1) of v[j], j < n - n % 8, as rne__sigmoid_q15 / rne__tanh_q15 */
static size_t rne__act_simd(int32_t *v, size_t n, int tanh)
{
    const __m256i lim = _mm256_set1_epi32(RNE__SIG_LIMIT), one = _mm256_set1_epi32(RNE__Q15_ONE);
    size_t j;
    for (j = 0; j + 8 <= n; j += 8) {
        const __m256i z = _mm256_loadu_si256((const __m256i *)(const void *)(v + j));
        const __m256i neg = _mm256_cmpgt_epi32(_mm256_setzero_si256(), z);
        __m256i mag = _mm256_abs_epi32(z), r;
        if (!tanh) {
            const __m256i sg = rne__avx2_sig_interp(_mm256_min_epi32(mag, lim), 1);
            r = _mm256_blendv_epi8(_mm256_min_epi32(sg, _mm256_set1_epi32(INT16_MAX)),
                                   _mm256_sub_epi32(one, sg), neg);
        } else {
            const __m256i t = _mm256_sub_epi32(
                rne__avx2_sig_interp(_mm256_min_epi32(_mm256_add_epi32(mag, mag), lim), 0), one);
            r = _mm256_blendv_epi8(t, _mm256_sub_epi32(_mm256_setzero_si256(), t), neg);
        }
        _mm256_storeu_si256((__m256i *)(void *)(v + j), r);
    }
    return j;
}

/* rne__sigmoid_tail_q31 of v[j], j < n - n % 8, in place, op for op: s = sigmoid(|x|) by
 * rne__avx2_sig_interp; t = rshr(|z| L2E_M, 24) from two vpmuludq (|z| L2E_M < 2^47, t < 2^23);
 * e from the exp2 table (one vpgatherdd of the uint16 pair at byte 2 i, split into its halves:
 * e reaches 32768, no int16) interpolated in int32 (< 2^23); s e < 2^31; rshr(s e, k) as the
 * unsigned (s e + ((1 << k) >> 1)) >> k by vpsllvd / vpsrlvd, which give 0 for k = 32 (as
 * rshr: s e < 2^31). z <= 0: s << 15. */
static size_t rne__tail_simd(int32_t *v, size_t n)
{
    const __m256i lim = _mm256_set1_epi32(RNE__SIG_LIMIT), l2e = _mm256_set1_epi64x(RNE__L2E_M);
    const __m256i half24 = _mm256_set1_epi64x((long long)1 << 23), one = _mm256_set1_epi32(1);
    const __m256i b8 = _mm256_set1_epi32(255), b16 = _mm256_set1_epi32(65535);
    size_t j;
    for (j = 0; j + 8 <= n; j += 8) {
        const __m256i z = _mm256_loadu_si256((const __m256i *)(const void *)(v + j));
        const __m256i a = _mm256_abs_epi32(z);
        const __m256i s = rne__avx2_sig_interp(_mm256_min_epi32(a, lim), 0);
        const __m256i te = _mm256_srli_epi64(_mm256_add_epi64(_mm256_mul_epu32(a, l2e), half24), 24);
        const __m256i to = _mm256_srli_epi64(
            _mm256_add_epi64(_mm256_mul_epu32(_mm256_srli_epi64(a, 32), l2e), half24), 24);
        const __m256i t = _mm256_blend_epi32(te, _mm256_slli_epi64(to, 32), 0xAA);
        const __m256i f = _mm256_and_si256(t, b8);
        const __m256i g = _mm256_i32gather_epi32(
            (const int *)(const void *)rne__q_exp2,
            _mm256_srli_epi32(_mm256_and_si256(t, b16), 8), 2);
        const __m256i e = _mm256_srli_epi32(
            _mm256_add_epi32(
                _mm256_add_epi32(
                    _mm256_mullo_epi32(_mm256_and_si256(g, b16),
                                       _mm256_sub_epi32(_mm256_set1_epi32(256), f)),
                    _mm256_mullo_epi32(_mm256_srli_epi32(g, 16), f)),
                _mm256_set1_epi32(128)),
            8);
        const __m256i k = _mm256_min_epu32(_mm256_srli_epi32(t, 16), _mm256_set1_epi32(32));
        const __m256i r = _mm256_srlv_epi32(
            _mm256_add_epi32(_mm256_mullo_epi32(s, e), _mm256_srli_epi32(_mm256_sllv_epi32(one, k), 1)),
            k);
        _mm256_storeu_si256((__m256i *)(void *)(v + j),
                            _mm256_blendv_epi8(r, _mm256_slli_epi32(s, 15),
                                               _mm256_cmpgt_epi32(one, z)));
    }
    return j;
}

/* ---- the graph op BINARY ADD / MUL of equal shapes ------------------------------------------- */

/* sat16(rshr(v, shift)) of each int64 lane (|v| <= 2^61, so v + 2^(shift-1) fits): the rounding
 * term, an arithmetic shift (AVX2 shifts int64 logically only: floor(v / 2^c) is
 * ~floor(~v / 2^c) for v < 0, where ~v >= 0), the clamp to int16 */
static __m256i rne__avx2_bin_lanes(__m256i v, __m256i half, __m128i c)
{
    const __m256i hi = _mm256_set1_epi64x(INT16_MAX), lo = _mm256_set1_epi64x(INT16_MIN);
    __m256i neg;
    v = _mm256_add_epi64(v, half);
    neg = _mm256_cmpgt_epi64(_mm256_setzero_si256(), v);
    v = _mm256_xor_si256(_mm256_srl_epi64(_mm256_xor_si256(v, neg), c), neg);
    v = _mm256_blendv_epi8(v, hi, _mm256_cmpgt_epi64(v, hi));
    return _mm256_blendv_epi8(v, lo, _mm256_cmpgt_epi64(lo, v));
}

/* y[j] for j < n - n % 8, as rne__bin_s16_ref: the 8 elements widened to int32 lanes; vpmuldq
 * multiplies the even lanes by m into int64 (the odd ones shifted down first), exactly; MUL forms
 * a b in int32 first (|a b| <= 2^30). The two halves' results (int16 values in int64 lanes) are
 * interleaved back into int32 lanes and packed to int16 (vpackssdw, in range already). */
static size_t rne__bin_simd(int16_t *y, const int16_t *a, const int16_t *b, size_t n, int mul,
                            int32_t ma, int32_t mb, unsigned shift)
{
    const __m256i half = _mm256_set1_epi64x((long long)((int64_t)1 << (shift - 1u)));
    const __m128i c = _mm_cvtsi32_si128((int)shift);
    const __m256i vma = _mm256_set1_epi32(ma), vmb = _mm256_set1_epi32(mb);
    size_t j;
    for (j = 0; j + 8 <= n; j += 8) {
        const __m256i xa =
            _mm256_cvtepi16_epi32(_mm_loadu_si128((const __m128i *)(const void *)(a + j)));
        const __m256i xb =
            _mm256_cvtepi16_epi32(_mm_loadu_si128((const __m128i *)(const void *)(b + j)));
        __m256i even, odd, r;
        if (mul) {
            const __m256i ab = _mm256_mullo_epi32(xa, xb);
            even = _mm256_mul_epi32(ab, vma);
            odd = _mm256_mul_epi32(_mm256_srli_epi64(ab, 32), vma);
        } else {
            even = _mm256_add_epi64(_mm256_mul_epi32(xa, vma), _mm256_mul_epi32(xb, vmb));
            odd = _mm256_add_epi64(_mm256_mul_epi32(_mm256_srli_epi64(xa, 32), vma),
                                   _mm256_mul_epi32(_mm256_srli_epi64(xb, 32), vmb));
        }
        even = rne__avx2_bin_lanes(even, half, c);
        odd = rne__avx2_bin_lanes(odd, half, c);
        r = _mm256_blend_epi32(even, _mm256_slli_epi64(odd, 32), 0xAA);
        r = _mm256_permute4x64_epi64(_mm256_packs_epi32(r, r), 0x08);
        _mm_storeu_si128((__m128i *)(void *)(y + j), _mm256_castsi256_si128(r));
    }
    return j;
}
#define RNE__Q_BIN_SIMD 1

#if defined(__AVX512F__)
/* The 8 int32 from p on, sign-extended to int64 lanes */
static RNE__Q_INLINE __m512i rne__avx512_wide8(const int32_t *p)
{
    return _mm512_cvtepi32_epi64(_mm256_loadu_si256((const __m256i *)(const void *)p));
}

/* y[j] = sat16(rq32(acc[j], m[j sm], shift) + b[j sm]) for j < n - n % 8 (rne__rq_s16):
 * vpmuldq of the sign-extended sums by m (exact int64), + 2^(shift-1), vpsraq (rshr), sat32 by
 * vpmaxsq / vpminsq, + b, and vpmovsqw's saturating narrow (sat16). */
static size_t rne__rq16_simd(int16_t *y, const int32_t *acc, size_t n, const int32_t *m,
                             const int32_t *b, size_t sm, unsigned shift)
{
    const __m512i half = _mm512_set1_epi64((long long)((int64_t)1 << (shift - 1u)));
    const __m512i lo = _mm512_set1_epi64(INT32_MIN), hi = _mm512_set1_epi64(INT32_MAX);
    const __m128i c = _mm_cvtsi32_si128((int)shift);
    __m512i m1, b1;
    size_t j;
    if (n < 8)          /* m[0], b[0] read only for a run */
        return 0;
    m1 = _mm512_set1_epi64(m[0]);
    b1 = _mm512_set1_epi64(b != NULL ? b[0] : 0);
    for (j = 0; j + 8 <= n; j += 8) {
        const __m512i mm = sm ? rne__avx512_wide8(m + j) : m1;
        const __m512i bb = !sm || b == NULL ? b1 : rne__avx512_wide8(b + j);
        __m512i v = rne__avx512_wide8(acc + j);
        v = _mm512_sra_epi64(_mm512_add_epi64(_mm512_mul_epi32(v, mm), half), c);
        v = _mm512_add_epi64(_mm512_min_epi64(_mm512_max_epi64(v, lo), hi), bb);
        _mm_storeu_si128((__m128i *)(void *)(y + j), _mm512_cvtsepi64_epi16(v));
    }
    return j;
}
#define RNE__Q_RQ16_SIMD 1
#endif

/* v[j] = floor(sqrt(v[j])) for j < n - n % 8, each v[j] < 2^63 (rne__isqrt64_rows): rne__isqrt64's
 * digit-by-digit method in 8 int64 lanes (two registers), from the largest power of 4 at most
 * the OR of the 8 values (a digit above a lane's own top is 0 there: t = r + bit > v, r stays 0).
 * t = r + bit < 2^32 + 2^62 and v < 2^63 are non-negative as int64, so the signed vpcmpgtq
 * orders them as unsigned: take = !(t > v) = (v >= t), as the scalar loop. */
static size_t rne__isqrt_simd(uint64_t *v, size_t n)
{
    size_t j;
    for (j = 0; j + 8 <= n; j += 8) {
        __m256i a0 = _mm256_loadu_si256((const __m256i *)(const void *)(v + j));
        __m256i a1 = _mm256_loadu_si256((const __m256i *)(const void *)(v + j + 4));
        __m256i r0 = _mm256_setzero_si256(), r1 = r0;
        const uint64_t o = v[j] | v[j + 1] | v[j + 2] | v[j + 3] | v[j + 4] | v[j + 5] |
                           v[j + 6] | v[j + 7];
        uint64_t bit = (uint64_t)1 << 62;
        while (bit > o)
            bit >>= 2;
        for (; bit != 0; bit >>= 2) {
            const __m256i b = _mm256_set1_epi64x((long long)bit);
            const __m256i t0 = _mm256_add_epi64(r0, b), t1 = _mm256_add_epi64(r1, b);
            const __m256i k0 = _mm256_cmpgt_epi64(t0, a0), k1 = _mm256_cmpgt_epi64(t1, a1);
            a0 = _mm256_sub_epi64(a0, _mm256_andnot_si256(k0, t0));
            a1 = _mm256_sub_epi64(a1, _mm256_andnot_si256(k1, t1));
            r0 = _mm256_add_epi64(_mm256_srli_epi64(r0, 1), _mm256_andnot_si256(k0, b));
            r1 = _mm256_add_epi64(_mm256_srli_epi64(r1, 1), _mm256_andnot_si256(k1, b));
        }
        _mm256_storeu_si256((__m256i *)(void *)(v + j), r0);
        _mm256_storeu_si256((__m256i *)(void *)(v + j + 4), r1);
    }
    return j;
}
#define RNE__Q_ISQRT_SIMD 1

#endif /* RNE_QVEC_AVX2_H */
