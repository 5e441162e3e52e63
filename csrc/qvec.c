/*
 * qvec.c - the integer matrix-vector product (contract in qvec.h): the column sums of x W_t, then
 * their requantization rq32; and whole rows of gates (a pre-activation row, an activation row).
 *
 * Exactness. A column's sum is a sum of integers, so every order and grouping of the sum gives
 * the same integer as long as no partial sum overflows its type. Every partial sum below is the
 * sum of a subset of the column's terms x[p] w[p][j], hence bounded by sum_p |x[p]| |w[p][j]| <=
 * 32768 sum_p |w[p][j]|, the bound rne_model_load proved to fit int32 when acc32 is set (and
 * int64, with room for the requantization, always). Bounds used below: |x| <= 32768; |w| <= 128
 * (s8) or <= 32767 (s16: the load refuses -32768), so one product is less than 2^30 and the sum
 * of two products at most 2 * 32768 * 32767 = 2^31 - 2^16 < 2^31: a pair of products always fits
 * int32, whatever the layer. The requantization and the activations are qvec.h's op for op: the
 * SIMD forms compute the same integers with the same exact intermediate values.
 *
 * Scalar (the reference, always compiled as rne__q_matvec_ref): W_t is walked row by row (input
 * p), each row adding x[p] * W_t[p][j] to every column's accumulator: contiguous loads of weights
 * and accumulators, which compilers vectorize; four inputs per pass cut the accumulator traffic.
 * acc32 adds each product into int32, else into int64.
 *
 * AVX2 (when the compiler targets it, unless RNE_NO_SIMD): inputs in pairs through vpmaddwd,
 * which forms x[p] w[p][j] + x[p+1] w[p+1][j] as one int32 (< 2^31, above), the two rows'
 * weights interleaved by vpunpck{l,h}wd (int8 widened by vpmovsxbw first).
 *   acc32: 64 columns in 8 registers over all of k, the pairs added in int32.
 *   acc64: 32 columns over chunks of 256 rows, each chunk's sums in int32, then added into int64:
 *   int8 weights directly (a pair is at most 2 * 32768 * 128 = 2^23, 128 pairs 2^30); int16
 *   weights through x = 256 xh + xl (rne__avx2_split_s16: two int32 sums, no int64 widening per
 *   pair).
 *   Requantization 8 columns at a time (acc32; with AVX-512F also acc64, in int64 lanes), the gate
 *   pre-activations with AVX-512F, sigmoid and tanh 8 at a time through a gather from the table.
 *
 * NEON (little-endian aarch64, and ARMv7 with -mfpu=neon*; unless RNE_NO_SIMD): weights widened
 * to int16 (sxtl), smlal by one lane of x (int16 x int16 -> int32, 4 columns an instruction).
 *   acc32: 32 columns in 8 int32 registers over all of k (ARMv7 has 16 registers).
 *   acc64: 16 columns; rows in pairs, each pair's two products summed in int32 (smull + smlal:
 *   < 2^31, above), then widened into int64 (saddw).
 *   Requantization 4 columns at a time (acc32): smull to int64, srshl (a rounding right shift:
 *   exactly rshr, whose sum cannot overflow by qvec.h's contract), sqxtn (saturating narrow:
 *   sat32). Gate pre-activations 4 at a time; sigmoid and tanh with one table read per lane (no
 *   gather) and the interpolation on 4 lanes.
 *
 * ARM DSP (ARMv7E-M: Cortex-M4/M7; ARMv8-M Mainline with the DSP extension: M33; ARMv6 and
 * ARMv7-A without NEON; i.e. __ARM_FEATURE_DSP and __ARM_FEATURE_SIMD32, little-endian, GCC or
 * clang; unless RNE_NO_SIMD; NEON keeps priority where both exist): blocks of 4 columns, the 4
 * sums in registers over all of k (rne__dsp_sum4); rows in pairs, (x[p], x[p+1]) loaded as one
 * word, each weight word used as it is loaded (int8: SXTB16 gives columns 0 and 2 of a row as two
 * int16 halfwords, SXTB16 ROR #8 columns 1 and 3; int16: each word is 2 columns), and one
 * 16 x 16 + 32 multiply-accumulate per product with the halfwords selected in the instruction
 * (SMLABB, SMLABT, SMLATB, SMLATT). SMLAD (two products per instruction) needs the pair
 * (w[p][c], w[p+1][c]) in one word, which W_t's row-major layout spreads over two loads: one
 * PKHBT/PKHTB per SMLAD, no fewer instructions than two SMLAxy, and two more live registers; on
 * the M4F at -Os it ran 3.43 M instructions per LSTM-512 int8 step against 3.00 M with SMLAxy
 * (docs/embedded.md). The exact products: |x| <= 32768 and |w| <= 32767, so each is within
 * int16 x int16 (the instructions' own operands, 32-bit exact products) and below 2^30.
 *   acc32: each instruction's result is acc + one product, a partial sum of the column (above):
 *   it fits int32, so the instruction's 32-bit addition (which wraps, setting only the sticky Q
 *   flag) gives it exactly. The odd last row's C additions are partial sums too.
 *   acc64, int8 weights: the same int32 sums over chunks of 256 rows, each chunk's partial sums at
 *   most 256 * 32768 * 128 = 2^30 < 2^31, then added into int64.
 *   acc64, int16 weights: SMLAL<x><y> (16 x 16 + 64), 2 columns at a time (4 int64 sums would
 *   need 8 registers); the int64 partial sums fit, rne_model_load proved it.
 *   Requantization, gate pre-activations and activations: the scalar code.
 *
 * Columns a SIMD block does not cover, and the rest of each row, take the scalar code. The tests
 * run the SIMD variant against rne__q_matvec_ref and the scalar activations
 * (csrc/tests/test_qvec.c), and every integer model against the numpy reference with each
 * variant (csrc/tests/test_int.c, on every target of tools/cross_test.sh).
 */
#include "qvec.h"

/* (the SIMD paths only: the scalar build includes no header beyond qvec.h's, for freestanding
 * targets such as a Cortex-M0) */
#if !defined(RNE_NO_SIMD) && defined(__AVX2__)
#define RNE__Q_AVX2 1
#if defined(__AVX512F__)
#define RNE__Q_SIMD_NAME "avx2+avx512f"
#else
#define RNE__Q_SIMD_NAME "avx2"
#endif
#include <immintrin.h>
#include <string.h>
#elif !defined(RNE_NO_SIMD) && (defined(__ARM_NEON) || defined(__ARM_NEON__)) &&              \
    !defined(__ARM_BIG_ENDIAN)
#define RNE__Q_NEON 1
#if defined(__aarch64__)
#define RNE__Q_SIMD_NAME "neon-aarch64"
#else
#define RNE__Q_SIMD_NAME "neon-armv7"
#endif
#include <arm_neon.h>
#include <string.h>
#elif !defined(RNE_NO_SIMD) && defined(__ARM_FEATURE_DSP) && defined(__ARM_FEATURE_SIMD32) &&  \
    !defined(__ARM_BIG_ENDIAN) && defined(__GNUC__)
#define RNE__Q_DSP 1
#define RNE__Q_SIMD_NAME "arm-dsp"
#include <arm_acle.h>
#else
#define RNE__Q_SIMD_NAME "scalar"
#endif

/* A block kernel is one function instantiated per (weight type, accumulator type, width): the
 * compiler must inline it so that those are constants and the registers hold the accumulators. */
#if defined(__GNUC__)
#define RNE__Q_INLINE __attribute__((always_inline)) inline
#define RNE__Q_NOINLINE __attribute__((noinline))
#else
#define RNE__Q_INLINE inline
#define RNE__Q_NOINLINE
#endif

const char *rne__q_simd(void)
{
    return RNE__Q_SIMD_NAME;
}

/* ---- scalar reference ------------------------------------------------------------------------ */

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

/* acc[j] = the column sums of columns [j0, n) of wt (the columns a SIMD block did not do) */
static void rne__mac_ref(void *acc, const int16_t *x, size_t k, const void *wt, int s8,
                         int acc32, size_t ldw, size_t j0, size_t n)
{
    if (j0 >= n)
        return;
    if (acc32 && s8)
        rne__mac_s8_i32((int32_t *)acc + j0, x, k, (const int8_t *)wt + j0, ldw, n - j0);
    else if (acc32)
        rne__mac_s16_i32((int32_t *)acc + j0, x, k, (const int16_t *)wt + j0, ldw, n - j0);
    else if (s8)
        rne__mac_s8_i64((int64_t *)acc + j0, x, k, (const int8_t *)wt + j0, ldw, n - j0);
    else
        rne__mac_s16_i64((int64_t *)acc + j0, x, k, (const int16_t *)wt + j0, ldw, n - j0);
}

/* out[j] = rq32(acc[j], m[j], shift) for j in [j0, n) */
static void rne__rq_ref(int32_t *out, const void *acc, int acc32, const int32_t *m,
                        unsigned shift, size_t j0, size_t n)
{
    size_t j;
    if (acc32)
        for (j = j0; j < n; j++)
            out[j] = rne__rq32(((const int32_t *)acc)[j], m[j], shift);
    else
        for (j = j0; j < n; j++)
            out[j] = rne__rq32(((const int64_t *)acc)[j], m[j], shift);
}

void rne__q_matvec_ref(int32_t *out, const int16_t *x, size_t k, const rne__qmat *w, size_t c0,
                       size_t n, const int32_t *m, unsigned shift, void *acc)
{
    const size_t esize = w->s8 ? sizeof(int8_t) : sizeof(int16_t);
    rne__mac_ref(acc, x, k, (const uint8_t *)w->w + c0 * esize, w->s8, w->acc32, w->ldw, 0, n);
    rne__rq_ref(out, acc, w->acc32, m, shift, 0, n);
}

/* ---- AVX2 ------------------------------------------------------------------------------------ */
#ifdef RNE__Q_AVX2

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
#define RNE__Q_CHUNK 256
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
#undef RNE__AVX2_PAIRS

#define RNE__AVX2_SUM(NAME, S8, G)                                                                \
    static void NAME(int32_t *o, const int16_t *x, size_t k, const uint8_t *w, size_t ldw,        \
                     size_t j)                                                                    \
    {                                                                                             \
        rne__avx2_sum32(o, x, k, w, ldw, j, S8, G);                                               \
    }
RNE__AVX2_SUM(rne__avx2_s8_64, 1, 4)
RNE__AVX2_SUM(rne__avx2_s8_32, 1, 2)
RNE__AVX2_SUM(rne__avx2_s16_64, 0, 4)
RNE__AVX2_SUM(rne__avx2_s16_32, 0, 2)
#undef RNE__AVX2_SUM

/* The column sums of the columns j < n - n % 32; returns how many were done.
 *   acc32: all of k in int32 (the load proved every column's sum fits).
 *   acc64: chunks of RNE__Q_CHUNK rows, each chunk's sums in int32 and then added in int64. s8:
 *   a pair sum is at most 2 * 32768 * 128 = 2^23, 128 pairs 2^30. s16: through the split of x. */
static size_t rne__mac_simd(void *acc, const int16_t *x, size_t k, const uint8_t *w, int s8,
                            int acc32, size_t ldw, size_t n)
{
    const size_t row = ldw * (s8 ? 1u : 2u);
    size_t j = 0, p, c;
    if (acc32) {
        int32_t *a = (int32_t *)acc;
        for (; j + 64 <= n; j += 64)
            (s8 ? rne__avx2_s8_64 : rne__avx2_s16_64)(a + j, x, k, w, ldw, j);
        for (; j + 32 <= n; j += 32)
            (s8 ? rne__avx2_s8_32 : rne__avx2_s16_32)(a + j, x, k, w, ldw, j);
        return j;
    }
    for (; j + 32 <= n; j += 32) {
        int64_t *a = (int64_t *)acc + j;
        int32_t part[32];
        for (p = 0; p == 0 || p < k; p += RNE__Q_CHUNK) {      /* k = 0: one chunk of 0 rows */
            const size_t kk = k - p < RNE__Q_CHUNK ? k - p : RNE__Q_CHUNK;
            if (s8) {
                rne__avx2_s8_32(part, x + p, kk, w + p * row, ldw, j);
                for (c = 0; c < 32; c++)
                    a[c] = (p == 0 ? 0 : a[c]) + part[c];
            } else {
                rne__avx2_split_s16((int64_t *)acc, p != 0, x + p, kk, w + p * row, ldw, j);
            }
        }
    }
    return j;
}

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

static size_t rne__pre_simd(int32_t *z, const int32_t *a, const int32_t *b, const int32_t *c,
                            int32_t lim, size_t n)
{
    (void)z, (void)a, (void)b, (void)c, (void)lim, (void)n;
    return 0;
}
#endif /* __AVX512F__ */
#endif /* RNE__Q_AVX2 */

/* ---- NEON ------------------------------------------------------------------------------------ */
#ifdef RNE__Q_NEON

/* 8 weights of a row from byte address `at` on, as int16 */
static RNE__Q_INLINE int16x8_t rne__nw8(const uint8_t *at, int s8)
{
    if (s8)
        return vmovl_s8(vld1_s8((const int8_t *)(const void *)at));
    return vld1q_s16((const int16_t *)(const void *)at);
}

/* a + the high 4 of w8 times lane L of x4 (int32); the same as a plain product; a + the high two
 * of v (int32 -> int64) */
#if defined(__aarch64__)
#define RNE__MLAL_HI(a, w8, x4, L) vmlal_high_lane_s16(a, w8, x4, L)
#define RNE__MULL_HI(w8, x4, L) vmull_high_lane_s16(w8, x4, L)
#define RNE__ADDW_HI(a, v) vaddw_high_s32(a, v)
#else
#define RNE__MLAL_HI(a, w8, x4, L) vmlal_lane_s16(a, vget_high_s16(w8), x4, L)
#define RNE__MULL_HI(w8, x4, L) vmull_lane_s16(vget_high_s16(w8), x4, L)
#define RNE__ADDW_HI(a, v) vaddw_s32(a, vget_high_s32(v))
#endif
#define RNE__MLAL_LO(a, w8, x4, L) vmlal_lane_s16(a, vget_low_s16(w8), x4, L)
#define RNE__MULL_LO(w8, x4, L) vmull_lane_s16(vget_low_s16(w8), x4, L)

/* 16 weights of a row from byte address AT on, as int16: columns 0-7 into A, 8-15 into B (int8:
 * one 16-byte load, sxtl and sxtl2) */
#if defined(__aarch64__)
#define RNE__MOVL_HI(b) vmovl_high_s8(b)
#else
#define RNE__MOVL_HI(b) vmovl_s8(vget_high_s8(b))
#endif
#define RNE__NEON_W16(AT, A, B)                                                                   \
    do {                                                                                          \
        if (s8) {                                                                                 \
            const int8x16_t b_ = vld1q_s8((const int8_t *)(const void *)(AT));                   \
            A = vmovl_s8(vget_low_s8(b_));                                                        \
            B = RNE__MOVL_HI(b_);                                                                 \
        } else {                                                                                  \
            A = vld1q_s16((const int16_t *)(const void *)(AT));                                   \
            B = vld1q_s16((const int16_t *)(const void *)(AT) + 8);                               \
        }                                                                                         \
    } while (0)

/* acc32: acc[j .. j + 16 g) = the column sums, g <= 2 groups of 16 columns (8 accumulators,
 * which ARMv7's 16 registers also hold with x and the weights). Four rows a pass, each
 * multiplied by its lane of x; the last k % 4 rows by a broadcast x[p]. */
static RNE__Q_INLINE void rne__neon_cols32(int32_t *acc, const int16_t *x, size_t k,
                                           const uint8_t *w, size_t ldw, size_t j, int s8,
                                           size_t g)
{
    const size_t es = s8 ? 1u : 2u, row = ldw * es;
    const uint8_t *wp = w + j * es;
    int32x4_t s[8];
    int16x8_t a, b;
    size_t p, h;
    for (h = 0; h < 8; h++)
        s[h] = vdupq_n_s32(0);
#define RNE__NEON_ROW32(L)                                                                        \
    for (h = 0; h < g; h++) {                                                                     \
        RNE__NEON_W16(wp + (L) * row + 16 * h * es, a, b);                                        \
        s[4 * h] = RNE__MLAL_LO(s[4 * h], a, x4, L);                                              \
        s[4 * h + 1] = RNE__MLAL_HI(s[4 * h + 1], a, x4, L);                                      \
        s[4 * h + 2] = RNE__MLAL_LO(s[4 * h + 2], b, x4, L);                                      \
        s[4 * h + 3] = RNE__MLAL_HI(s[4 * h + 3], b, x4, L);                                      \
    }
    for (p = 0; p + 4 <= k; p += 4, wp += 4 * row) {
        const int16x4_t x4 = vld1_s16(x + p);
        RNE__NEON_ROW32(0)
        RNE__NEON_ROW32(1)
        RNE__NEON_ROW32(2)
        RNE__NEON_ROW32(3)
    }
    for (; p < k; p++, wp += row) {
        const int16x4_t x4 = vdup_n_s16(x[p]);
        RNE__NEON_ROW32(0)
    }
#undef RNE__NEON_ROW32
    for (h = 0; h < 4 * g; h++)
        vst1q_s32(acc + j + 4 * h, s[h]);
}

/* acc64: acc[j .. j + 8 g) = the column sums, g <= 2 groups of 8 columns (8 accumulators of two
 * int64). Rows in pairs: x[p] w[p][j] + x[p+1] w[p+1][j] in int32 (< 2^31), then widened and
 * added; an odd last row alone. */
static RNE__Q_INLINE void rne__neon_cols64(int64_t *acc, const int16_t *x, size_t k,
                                           const uint8_t *w, size_t ldw, size_t j, int s8,
                                           size_t g)
{
    const size_t es = s8 ? 1u : 2u, row = ldw * es;
    const uint8_t *wp = w + j * es;
    int64x2_t s[8];
    size_t p, h;
    for (h = 0; h < 8; h++)
        s[h] = vdupq_n_s64(0);
#define RNE__NEON_PAIR64(L0, L1)                                                                  \
    for (h = 0; h < g; h++) {                                                                     \
        const int16x8_t w0 = rne__nw8(wp + (L0) * row + 8 * h * es, s8);                          \
        const int16x8_t w1 = rne__nw8(wp + (L1) * row + 8 * h * es, s8);                          \
        const int32x4_t lo = RNE__MLAL_LO(RNE__MULL_LO(w0, x4, L0), w1, x4, L1);                  \
        const int32x4_t hi = RNE__MLAL_HI(RNE__MULL_HI(w0, x4, L0), w1, x4, L1);                  \
        s[4 * h] = vaddw_s32(s[4 * h], vget_low_s32(lo));                                         \
        s[4 * h + 1] = RNE__ADDW_HI(s[4 * h + 1], lo);                                            \
        s[4 * h + 2] = vaddw_s32(s[4 * h + 2], vget_low_s32(hi));                                 \
        s[4 * h + 3] = RNE__ADDW_HI(s[4 * h + 3], hi);                                            \
    }
    for (p = 0; p + 4 <= k; p += 4, wp += 4 * row) {
        const int16x4_t x4 = vld1_s16(x + p);
        RNE__NEON_PAIR64(0, 1)
        RNE__NEON_PAIR64(2, 3)
    }
    if (p + 2 <= k) {
        const int16x4_t x4 = vset_lane_s16(x[p + 1], vdup_n_s16(x[p]), 1);
        RNE__NEON_PAIR64(0, 1)
        p += 2;
        wp += 2 * row;
    }
#undef RNE__NEON_PAIR64
    if (p < k) {
        const int16x4_t x4 = vdup_n_s16(x[p]);
        for (h = 0; h < g; h++) {
            const int16x8_t w0 = rne__nw8(wp + 8 * h * es, s8);
            const int32x4_t lo = RNE__MULL_LO(w0, x4, 0), hi = RNE__MULL_HI(w0, x4, 0);
            s[4 * h] = vaddw_s32(s[4 * h], vget_low_s32(lo));
            s[4 * h + 1] = RNE__ADDW_HI(s[4 * h + 1], lo);
            s[4 * h + 2] = vaddw_s32(s[4 * h + 2], vget_low_s32(hi));
            s[4 * h + 3] = RNE__ADDW_HI(s[4 * h + 3], hi);
        }
    }
    for (h = 0; h < 4 * g; h++)
        vst1q_s64(acc + j + 2 * h, s[h]);
}

#define RNE__NEON_COLS(NAME, KERNEL, ACC, S8, G)                                                  \
    static void NAME(void *acc, const int16_t *x, size_t k, const uint8_t *w, size_t ldw,         \
                     size_t j)                                                                    \
    {                                                                                             \
        KERNEL((ACC *)acc, x, k, w, ldw, j, S8, G);                                               \
    }
RNE__NEON_COLS(rne__neon_s8_i32_32, rne__neon_cols32, int32_t, 1, 2)
RNE__NEON_COLS(rne__neon_s8_i32_16, rne__neon_cols32, int32_t, 1, 1)
RNE__NEON_COLS(rne__neon_s16_i32_32, rne__neon_cols32, int32_t, 0, 2)
RNE__NEON_COLS(rne__neon_s16_i32_16, rne__neon_cols32, int32_t, 0, 1)
RNE__NEON_COLS(rne__neon_s8_i64_16, rne__neon_cols64, int64_t, 1, 2)
RNE__NEON_COLS(rne__neon_s8_i64_8, rne__neon_cols64, int64_t, 1, 1)
RNE__NEON_COLS(rne__neon_s16_i64_16, rne__neon_cols64, int64_t, 0, 2)
RNE__NEON_COLS(rne__neon_s16_i64_8, rne__neon_cols64, int64_t, 0, 1)
#undef RNE__NEON_COLS

typedef void (*rne__q_cols_fn)(void *, const int16_t *, size_t, const uint8_t *, size_t, size_t);

/* The column sums of the columns j < n - n % 16 (acc32) or n - n % 8 (acc64); returns how many
 * were done. */
static size_t rne__mac_simd(void *acc, const int16_t *x, size_t k, const uint8_t *w, int s8,
                            int acc32, size_t ldw, size_t n)
{
    static const rne__q_cols_fn wide[4] = { rne__neon_s16_i64_16, rne__neon_s8_i64_16,
                                            rne__neon_s16_i32_32, rne__neon_s8_i32_32 };
    static const rne__q_cols_fn narrow[4] = { rne__neon_s16_i64_8, rne__neon_s8_i64_8,
                                              rne__neon_s16_i32_16, rne__neon_s8_i32_16 };
    const unsigned v = 2u * (acc32 != 0) + (s8 != 0);
    const size_t width = acc32 ? 32u : 16u, step = acc32 ? 16u : 8u;
    size_t j = 0;
    for (; j + width <= n; j += width)
        wide[v](acc, x, k, w, ldw, j);
    for (; j + step <= n; j += step)
        narrow[v](acc, x, k, w, ldw, j);
    return j;
}

/* out[j] = rq32(acc[j], m[j], shift), acc int32, 4 columns at a time; returns n - n % 4 (0 for
 * acc64, left to the scalar code). */
static size_t rne__rq_simd(int32_t *out, const void *acc, int acc32, const int32_t *m,
                           unsigned shift, size_t n)
{
    const int64x2_t right = vdupq_n_s64(-(int64_t)shift);     /* srshl by -shift: rshr */
    size_t j;
    if (!acc32)
        return 0;
    for (j = 0; j + 4 <= n; j += 4) {
        const int32x4_t a = vld1q_s32((const int32_t *)acc + j), mm = vld1q_s32(m + j);
        const int64x2_t lo = vrshlq_s64(vmull_s32(vget_low_s32(a), vget_low_s32(mm)), right);
        const int64x2_t hi = vrshlq_s64(vmull_s32(vget_high_s32(a), vget_high_s32(mm)), right);
        vst1q_s32(out + j, vcombine_s32(vqmovn_s64(lo), vqmovn_s64(hi)));
    }
    return j;
}

/* rne__q_pre 4 at a time: the sum widened to int64 (saddl, saddw), narrowed with saturation to
 * int32 (sqxtn), then clamped: lim < 2^31, so clamping sat32(s) is clamping s. */
static size_t rne__pre_simd(int32_t *z, const int32_t *a, const int32_t *b, const int32_t *c,
                            int32_t lim, size_t n)
{
    const int32x4_t hi = vdupq_n_s32(lim), lo = vdupq_n_s32(-lim);
    size_t j;
    for (j = 0; j + 4 <= n; j += 4) {
        const int32x4_t va = vld1q_s32(a + j), vb = vld1q_s32(b + j), vc = vld1q_s32(c + j);
        const int64x2_t s0 = vaddw_s32(vaddl_s32(vget_low_s32(va), vget_low_s32(vb)),
                                       vget_low_s32(vc));
        const int64x2_t s1 = vaddw_s32(vaddl_s32(vget_high_s32(va), vget_high_s32(vb)),
                                       vget_high_s32(vc));
        const int32x4_t s = vcombine_s32(vqmovn_s64(s0), vqmovn_s64(s1));
        vst1q_s32(z + j, vmaxq_s32(vminq_s32(s, hi), lo));
    }
    return j;
}
#endif /* RNE__Q_NEON */

/* ---- ARM DSP (SMLAxy) ------------------------------------------------------------------------ */
#ifdef RNE__Q_DSP

/* 4 bytes from `at` (any alignment: ARMv6 and later load a word unaligned, and GCC/clang expand
 * __builtin_memcpy to that load even under -ffreestanding), the first in bits 0-7 */
static RNE__Q_INLINE int32_t rne__dsp_ld(const uint8_t *at)
{
    int32_t v;
    __builtin_memcpy(&v, at, sizeof v);
    return v;
}

/* SXTB16 ROR #8: bytes 1 and 3 of a as two int16 halfwords (GCC 12's arm_acle.h has no __ror
 * to write it as __sxtb16(__ror(a, 8))) */
static RNE__Q_INLINE int32_t rne__dsp_sx13(int32_t a)
{
    int32_t r;
    __asm__("sxtb16 %0, %1, ror #8" : "=r"(r) : "r"(a));
    return r;
}

/* The weight w[0][c] of the row at `at`, c < 4 */
static RNE__Q_INLINE int32_t rne__dsp_w(const uint8_t *at, size_t c, int s8)
{
    int16_t v;
    if (s8)
        return (int8_t)at[c];
    __builtin_memcpy(&v, at + 2 * c, sizeof v);
    return v;
}

/* s[c] = sum_{p < k} x[p] w[p][c] for the 4 columns c from byte `wp` on (rows `row` bytes apart),
 * in int32: the caller guarantees that every partial sum fits (acc32, or a chunk of rows). Rows in
 * pairs: (x[p], x[p+1]) is one word xx; SMLA<y>B adds w * x[p], SMLA<y>T w * x[p+1], with w the
 * bottom (y = B) or top (T) halfword of a weight word. int8: SXTB16 widens bytes 0 and 2 of a
 * row's word to two halfwords (columns 0 and 2), SXTB16 ROR #8 bytes 1 and 3; int16: a row's two
 * words hold columns 0-1 and 2-3. An odd last row is added alone. */
static RNE__Q_INLINE void rne__dsp_sum4(int32_t *s, const int16_t *x, size_t k, const uint8_t *wp,
                                        size_t row, int s8)
{
    const int16_t *const end = x + (k & ~(size_t)1);
    int32_t s0 = 0, s1 = 0, s2 = 0, s3 = 0;
    while (x != end) {
        const int32_t xx = rne__dsp_ld((const uint8_t *)x);   /* x[p] in bits 0-15, x[p+1] 16-31 */
        const uint8_t *const wa = wp, *const wb = wp + row;
        x += 2;
        wp = wb + row;
        if (s8) {
            int32_t a = rne__dsp_ld(wa), u = __sxtb16(a), v = rne__dsp_sx13(a);
            s0 = __smlabb(u, xx, s0);
            s2 = __smlatb(u, xx, s2);
            s1 = __smlabb(v, xx, s1);
            s3 = __smlatb(v, xx, s3);
            a = rne__dsp_ld(wb);
            u = __sxtb16(a);
            v = rne__dsp_sx13(a);
            s0 = __smlabt(u, xx, s0);
            s2 = __smlatt(u, xx, s2);
            s1 = __smlabt(v, xx, s1);
            s3 = __smlatt(v, xx, s3);
        } else {
            int32_t u = rne__dsp_ld(wa), v = rne__dsp_ld(wa + 4);
            s0 = __smlabb(u, xx, s0);
            s1 = __smlatb(u, xx, s1);
            s2 = __smlabb(v, xx, s2);
            s3 = __smlatb(v, xx, s3);
            u = rne__dsp_ld(wb);
            v = rne__dsp_ld(wb + 4);
            s0 = __smlabt(u, xx, s0);
            s1 = __smlatt(u, xx, s1);
            s2 = __smlabt(v, xx, s2);
            s3 = __smlatt(v, xx, s3);
        }
    }
    if (k % 2 != 0) {
        const int32_t x0 = *x;
        s0 += x0 * rne__dsp_w(wp, 0, s8);
        s1 += x0 * rne__dsp_w(wp, 1, s8);
        s2 += x0 * rne__dsp_w(wp, 2, s8);
        s3 += x0 * rne__dsp_w(wp, 3, s8);
    }
    s[0] = s0;
    s[1] = s1;
    s[2] = s2;
    s[3] = s3;
}

/* acc += the product of the selected halves of a and b, in int64 (SMLALBB, SMLALBT, SMLALTB,
 * SMLALTT; not in arm_acle.h) */
#define RNE__DSP_SMLAL(XY, ACC, A, B)                                                             \
    __asm__("smlal" XY " %Q0, %R0, %1, %2" : "+r"(ACC) : "r"(A), "r"(B))

/* acc64, int16 weights: acc[0], acc[1] = the column sums of the 2 columns from byte `wp` on,
 * each product added into int64 (4 columns would need 8 registers of accumulators: spilled) */
static RNE__Q_INLINE void rne__dsp_s16_i64_2(int64_t *acc, const int16_t *x, size_t k,
                                             const uint8_t *wp, size_t row)
{
    const int16_t *const end = x + (k & ~(size_t)1);
    int64_t s0 = 0, s1 = 0;
    while (x != end) {
        const int32_t xx = rne__dsp_ld((const uint8_t *)x);
        const int32_t u = rne__dsp_ld(wp), v = rne__dsp_ld(wp + row);
        x += 2;
        wp += 2 * row;
        RNE__DSP_SMLAL("bb", s0, u, xx);
        RNE__DSP_SMLAL("tb", s1, u, xx);
        RNE__DSP_SMLAL("bt", s0, v, xx);
        RNE__DSP_SMLAL("tt", s1, v, xx);
    }
    if (k % 2 != 0) {
        s0 += *x * rne__dsp_w(wp, 0, 0);
        s1 += *x * rne__dsp_w(wp, 1, 0);
    }
    acc[0] = s0;
    acc[1] = s1;
}

static RNE__Q_NOINLINE void rne__dsp_s16_i64(int64_t *acc, const int16_t *x, size_t k,
                                             const uint8_t *wp, size_t row)
{
    rne__dsp_s16_i64_2(acc, x, k, wp, row);
    rne__dsp_s16_i64_2(acc + 2, x, k, wp + 4, row);
}

static RNE__Q_NOINLINE void rne__dsp_s8_i32(int32_t *acc, const int16_t *x, size_t k,
                                            const uint8_t *wp, size_t row)
{
    rne__dsp_sum4(acc, x, k, wp, row, 1);
}

static RNE__Q_NOINLINE void rne__dsp_s16_i32(int32_t *acc, const int16_t *x, size_t k,
                                             const uint8_t *wp, size_t row)
{
    rne__dsp_sum4(acc, x, k, wp, row, 0);
}

/* acc64, int8 weights: int32 sums over chunks of RNE__Q_DSP_CHUNK rows (each partial sum at most
 * 256 * 32768 * 128 = 2^30), each chunk's added into int64 */
#define RNE__Q_DSP_CHUNK 256
static RNE__Q_NOINLINE void rne__dsp_s8_i64(int64_t *acc, const int16_t *x, size_t k,
                                            const uint8_t *wp, size_t row)
{
    int32_t s[4];
    size_t p, c;
    for (c = 0; c < 4; c++)
        acc[c] = 0;
    for (p = 0; p < k; p += RNE__Q_DSP_CHUNK) {
        const size_t rows = k - p < RNE__Q_DSP_CHUNK ? k - p : RNE__Q_DSP_CHUNK;
        rne__dsp_sum4(s, x + p, rows, wp + p * row, row, 1);
        for (c = 0; c < 4; c++)
            acc[c] += s[c];
    }
}

/* The column sums of the columns j < n - n % 4; returns how many were done. */
static size_t rne__mac_simd(void *acc, const int16_t *x, size_t k, const uint8_t *w, int s8,
                            int acc32, size_t ldw, size_t n)
{
    const size_t es = s8 ? 1u : 2u, row = ldw * es;
    size_t j;
    for (j = 0; j + 4 <= n; j += 4) {
        if (acc32 && s8)
            rne__dsp_s8_i32((int32_t *)acc + j, x, k, w + j, row);
        else if (acc32)
            rne__dsp_s16_i32((int32_t *)acc + j, x, k, w + 2 * j, row);
        else if (s8)
            rne__dsp_s8_i64((int64_t *)acc + j, x, k, w + j, row);
        else
            rne__dsp_s16_i64((int64_t *)acc + j, x, k, w + 2 * j, row);
    }
    return j;
}
#endif /* RNE__Q_DSP */

/* ---- whole rows of gates --------------------------------------------------------------------- */

void rne__q_pre(int32_t *z, const int32_t *a, const int32_t *b, const int32_t *c, int32_t lim,
                size_t n)
{
    size_t j = 0;
#if defined(RNE__Q_AVX2) || defined(RNE__Q_NEON)
    j = rne__pre_simd(z, a, b, c, lim, n);
#endif
    for (; j < n; j++)
        z[j] = (int32_t)rne__sat((int64_t)a[j] + b[j] + c[j], -lim, lim);
}

#ifdef RNE__Q_AVX2
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
#endif

#ifdef RNE__Q_NEON
/* The sigmoid table interpolated at a (0..RNE__SIG_LIMIT) as rne__sig_interp(a, s), 4 lanes:
 * NEON has no gather, so each lane reads T[i] and T[i + 1] as one little-endian uint32 at byte
 * 2 i (i <= 255: the last read ends at byte 513 of the 514-byte table), and the interpolation
 * T[i] (512 - f) + T[i + 1] f (< 2^25) is done on the 4 lanes at once. */
static int32x4_t rne__neon_sig_interp(int32x4_t a, int s)
{
    const int32x4_t i = vshrq_n_s32(a, 9), f = vandq_s32(a, vdupq_n_s32(511));
    uint32x4_t tu = vdupq_n_u32(0);
    uint32_t t;
    int32x4_t tv, v;
    memcpy(&t, rne__q_sigmoid + vgetq_lane_s32(i, 0), sizeof t);
    tu = vsetq_lane_u32(t, tu, 0);
    memcpy(&t, rne__q_sigmoid + vgetq_lane_s32(i, 1), sizeof t);
    tu = vsetq_lane_u32(t, tu, 1);
    memcpy(&t, rne__q_sigmoid + vgetq_lane_s32(i, 2), sizeof t);
    tu = vsetq_lane_u32(t, tu, 2);
    memcpy(&t, rne__q_sigmoid + vgetq_lane_s32(i, 3), sizeof t);
    tu = vsetq_lane_u32(t, tu, 3);
    tv = vreinterpretq_s32_u32(tu);
    v = vmulq_s32(vandq_s32(tv, vdupq_n_s32(0xFFFF)), vsubq_s32(vdupq_n_s32(512), f));
    v = vmlaq_s32(v, vreinterpretq_s32_u32(vshrq_n_u32(vreinterpretq_u32_s32(tv), 16)), f);
    if (s)
        return vshrq_n_s32(vaddq_s32(v, vdupq_n_s32(1 << 9)), 10);
    return vshrq_n_s32(vaddq_s32(v, vdupq_n_s32(1 << 8)), 9);
}

/* sigmoid (tanh = 0) or tanh (1) of v[j], j < n - n % 4, as rne__sigmoid_q15 / rne__tanh_q15 */
static size_t rne__act_simd(int32_t *v, size_t n, int tanh)
{
    const int32x4_t lim = vdupq_n_s32(RNE__SIG_LIMIT), one = vdupq_n_s32(RNE__Q15_ONE);
    size_t j;
    for (j = 0; j + 4 <= n; j += 4) {
        const int32x4_t z = vld1q_s32(v + j);
        const uint32x4_t neg = vcltq_s32(z, vdupq_n_s32(0));
        const int32x4_t mag = vabsq_s32(z);
        int32x4_t r;
        if (!tanh) {
            const int32x4_t sg = rne__neon_sig_interp(vminq_s32(mag, lim), 1);
            r = vbslq_s32(neg, vsubq_s32(one, sg), vminq_s32(sg, vdupq_n_s32(INT16_MAX)));
        } else {
            const int32x4_t t =
                vsubq_s32(rne__neon_sig_interp(vminq_s32(vaddq_s32(mag, mag), lim), 0), one);
            r = vbslq_s32(neg, vnegq_s32(t), t);
        }
        vst1q_s32(v + j, r);
    }
    return j;
}
#endif

void rne__q_act_rows(const rne__qgate *g, int32_t *v, size_t n)
{
    size_t j = 0;
    switch (g->kind) {
    case RNE_ACT_SIGMOID:
#if defined(RNE__Q_AVX2) || defined(RNE__Q_NEON)
        j = rne__act_simd(v, n, 0);
#endif
        for (; j < n; j++)
            v[j] = rne__sigmoid_q15(v[j]);
        break;
    case RNE_ACT_TANH:
#if defined(RNE__Q_AVX2) || defined(RNE__Q_NEON)
        j = rne__act_simd(v, n, 1);
#endif
        for (; j < n; j++)
            v[j] = rne__tanh_q15(v[j]);
        break;
    default:
        for (; j < n; j++)
            v[j] = rne__qgate_apply(g, v[j]);
        break;
    }
}

/* ---- the product ----------------------------------------------------------------------------- */

void rne__q_matvec(int32_t *out, const int16_t *x, size_t k, const rne__qmat *w, size_t c0,
                   size_t n, const int32_t *m, unsigned shift, void *acc)
{
#if defined(RNE__Q_AVX2) || defined(RNE__Q_NEON) || defined(RNE__Q_DSP)
    const size_t esize = w->s8 ? sizeof(int8_t) : sizeof(int16_t);
    const uint8_t *wt = (const uint8_t *)w->w + c0 * esize;
    const size_t done = rne__mac_simd(acc, x, k, wt, w->s8, w->acc32, w->ldw, n);
    rne__mac_ref(acc, x, k, wt, w->s8, w->acc32, w->ldw, done, n);
#if defined(RNE__Q_DSP)
    rne__rq_ref(out, acc, w->acc32, m, shift, 0, n);
#else
    rne__rq_ref(out, acc, w->acc32, m, shift, rne__rq_simd(out, acc, w->acc32, m, shift, n), n);
#endif
#else
    rne__q_matvec_ref(out, x, k, w, c0, n, m, shift, acc);
#endif
}
