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
 * SIMD variants, one header each, chosen below when the compiler targets them (unless
 * RNE_NO_SIMD): qvec_avx2.h (AVX2, with AVX-512F requantization; with AVX-512BW its column sums
 * of 32 columns and more come from qvec_avx512.h, with vpdpwssd where the compiler targets
 * AVX512-VNNI), qvec_neon.h (NEON) and qvec_dsp.h (ARM DSP); each header states its own method
 * and why its integers are exact.
 * Each defines rne__mac_simd (the column sums of the columns its blocks cover); AVX2 and NEON
 * also rne__rq_simd, rne__pre_simd and rne__act_simd (requantization, gate pre-activations,
 * sigmoid and tanh of the lanes they cover), rne__bin_simd (BINARY ADD / MUL) and, where the
 * header's instructions allow, rne__rq16_simd (rne__rq_s16: AVX-512F, NEON) and rne__isqrt_simd
 * (rne__isqrt64_rows: AVX2, aarch64 NEON); each returns how many elements it did. AVX2 also
 * rne__tail_simd (rne__sigmoid_tail_q31).
 *
 * Columns a SIMD block does not cover, and the rest of each row, take the scalar code. The tests
 * run the SIMD variant against rne__q_matvec_ref and the scalar activations
 * (csrc/tests/test_qvec.c), and every integer model against the numpy reference with each
 * variant (csrc/tests/test_int.c, on every target of tools/cross_test.sh).
 */
#include "qvec.h"

/* A block kernel is one function instantiated per (weight type, accumulator type, width): the
 * compiler must inline it so that those are constants and the registers hold the accumulators. */
#if defined(__GNUC__)
#define RNE__Q_INLINE __attribute__((always_inline)) inline
#define RNE__Q_NOINLINE __attribute__((noinline))
#else
#define RNE__Q_INLINE inline
#define RNE__Q_NOINLINE
#endif

/* (the SIMD variants only: the scalar build includes no header beyond qvec.h's, for
 * freestanding targets such as a Cortex-M0) */
#if !defined(RNE_NO_SIMD) && defined(__AVX2__)
#define RNE__Q_AVX2 1
#if defined(__AVX512BW__) && defined(__AVX512VNNI__)
#define RNE__Q_AVX512BW 1
#define RNE__Q_SIMD_NAME "avx512bw+vnni"
#elif defined(__AVX512BW__)
#define RNE__Q_AVX512BW 1
#define RNE__Q_SIMD_NAME "avx512bw"
#elif defined(__AVX512F__)
#define RNE__Q_SIMD_NAME "avx2+avx512f"
#else
#define RNE__Q_SIMD_NAME "avx2"
#endif
#include "qvec_avx2.h"
#elif !defined(RNE_NO_SIMD) && (defined(__ARM_NEON) || defined(__ARM_NEON__)) &&              \
    !defined(__ARM_BIG_ENDIAN)
#define RNE__Q_NEON 1
#if defined(__aarch64__)
#define RNE__Q_SIMD_NAME "neon-aarch64"
#else
#define RNE__Q_SIMD_NAME "neon-armv7"
#endif
#include "qvec_neon.h"
#elif !defined(RNE_NO_SIMD) && defined(__ARM_FEATURE_DSP) && defined(__ARM_FEATURE_SIMD32) &&  \
    !defined(__ARM_BIG_ENDIAN) && defined(__GNUC__)
#define RNE__Q_DSP 1
#define RNE__Q_SIMD_NAME "arm-dsp"
#include "qvec_dsp.h"
#else
#define RNE__Q_SIMD_NAME "scalar"
#endif

const char *rne__q_simd(void)
{
    return RNE__Q_SIMD_NAME;
}

/* ---- scalar reference ------------------------------------------------------------------------ */

/* acc[j] = sum_p x[p] w[p][j]: one variant per (weight type, accumulator type). Signed sums,
 * where no weight value can make them overflow: int64 (k < 2^31 terms of at most 2^30), and
 * int32 over int8 weights for k < 512 (each term at most 32768 * 128 = 2^22 in magnitude). */
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

/* The int32 sums that weights changed in the blob after load could overflow (int16 weights, or
 * int8 with k >= 512): formed in uint32_t, the same bits wherever they fit (what the load
 * proved), a wrap instead of undefined behaviour where they do not. (Not the form above for
 * every case: gcc -Os on a Cortex-M3 gives it one more instruction per four products.) */
#define RNE__MAC_BODY_WRAP(W)                                                                     \
    size_t p = 0, j;                                                                              \
    for (j = 0; j < n; j++)                                                                       \
        acc[j] = 0;                                                                               \
    for (; p + 4 <= k; p += 4) {                                                                  \
        const int32_t x0 = x[p], x1 = x[p + 1], x2 = x[p + 2], x3 = x[p + 3];                      \
        const W *w0 = w + p * ldw, *w1 = w0 + ldw, *w2 = w1 + ldw, *w3 = w2 + ldw;                 \
        for (j = 0; j < n; j++) {                                                                 \
            uint32_t a = (uint32_t)acc[j];                                                        \
            a += (uint32_t)(x0 * w0[j]);                                                          \
            a += (uint32_t)(x1 * w1[j]);                                                          \
            a += (uint32_t)(x2 * w2[j]);                                                          \
            a += (uint32_t)(x3 * w3[j]);                                                          \
            acc[j] = (int32_t)a;                                                                  \
        }                                                                                         \
    }                                                                                             \
    for (; p < k; p++) {                                                                          \
        const int32_t x0 = x[p];                                                                  \
        const W *w0 = w + p * ldw;                                                                \
        for (j = 0; j < n; j++)                                                                   \
            acc[j] = (int32_t)((uint32_t)acc[j] + (uint32_t)(x0 * w0[j]));                        \
    }

/* int8 weights, int32 sums: below this many rows no weight value can overflow them, and the
 * signed form serves them; except on Thumb-1 (Cortex-M0), where the unsigned form is the
 * shorter code (instructions per LSTM-32 int8 step under qemu, gcc -Os: 121,175 signed,
 * 109,637 unsigned; on the Cortex-M3 the other way round: 55,999 signed, 60,599 unsigned) */
#define RNE__S8_I32_SAFE_ROWS 512u
#if defined(__thumb__) && !defined(__thumb2__)
#define RNE__S8_I32_SIGNED 0
#else
#define RNE__S8_I32_SIGNED 1
#endif

static void rne__mac_s8_i32(int32_t *restrict acc, const int16_t *restrict x, size_t k,
                            const int8_t *restrict w, size_t ldw, size_t n)
{
    RNE__MAC_BODY(int32_t, int8_t)
}

static void rne__mac_s8_i32_wrap(int32_t *restrict acc, const int16_t *restrict x, size_t k,
                                 const int8_t *restrict w, size_t ldw, size_t n)
{
    RNE__MAC_BODY_WRAP(int8_t)
}

static void rne__mac_s16_i32(int32_t *restrict acc, const int16_t *restrict x, size_t k,
                             const int16_t *restrict w, size_t ldw, size_t n)
{
    RNE__MAC_BODY_WRAP(int16_t)
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
#undef RNE__MAC_BODY_WRAP

/* acc[j] = the column sums of columns [j0, n) of wt (the columns a SIMD block did not do) */
static void rne__mac_ref(void *acc, const int16_t *x, size_t k, const void *wt, int s8,
                         int acc32, size_t ldw, size_t j0, size_t n)
{
#ifdef RNE_NO_S16
    s8 = 1;     /* s16 weights compiled out: the loader refuses them (rne_internal.h) */
#endif
    if (j0 >= n)
        return;
    if (RNE__S8_I32_SIGNED && acc32 && s8 && k < RNE__S8_I32_SAFE_ROWS)
        rne__mac_s8_i32((int32_t *)acc + j0, x, k, (const int8_t *)wt + j0, ldw, n - j0);
    else if (acc32 && s8)
        rne__mac_s8_i32_wrap((int32_t *)acc + j0, x, k, (const int8_t *)wt + j0, ldw, n - j0);
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

void rne__q_tail_rows(int32_t *v, size_t n)
{
    size_t j = 0;
#if defined(RNE__Q_AVX2)
    j = rne__tail_simd(v, n);
#endif
    for (; j < n; j++)
        v[j] = rne__sigmoid_tail_q31(v[j]);
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


/* ---- the graph op BINARY ADD / MUL of equal shapes ------------------------------------------- */

static void rne__bin_s16_tail(int16_t *y, const int16_t *a, const int16_t *b, size_t j, size_t n,
                              int mul, int32_t ma, int32_t mb, unsigned shift)
{
    if (mul)
        for (; j < n; j++)
            y[j] = rne__sat16(rne__rshr((int64_t)a[j] * b[j] * ma, shift));
    else
        for (; j < n; j++)
            y[j] = rne__sat16(rne__rshr((int64_t)a[j] * ma + (int64_t)b[j] * mb, shift));
}

void rne__bin_s16_ref(int16_t *y, const int16_t *a, const int16_t *b, size_t n, int mul,
                      int32_t ma, int32_t mb, unsigned shift)
{
    rne__bin_s16_tail(y, a, b, 0, n, mul, ma, mb, shift);
}

void rne__bin_s16(int16_t *y, const int16_t *a, const int16_t *b, size_t n, int mul, int32_t ma,
                  int32_t mb, unsigned shift)
{
    size_t j = 0;
#if defined(RNE__Q_BIN_SIMD)
    j = rne__bin_simd(y, a, b, n, mul, ma, mb, shift);
#endif
    rne__bin_s16_tail(y, a, b, j, n, mul, ma, mb, shift);
}

/* ---- requantization of a run to int16 ------------------------------------------------------- */

static void rne__rq_s16_tail(int16_t *y, const int32_t *acc, size_t j, size_t n, const int32_t *m,
                             const int32_t *b, size_t sm, unsigned shift)
{
    for (; j < n; j++)
        y[j] = rne__sat16((int64_t)rne__rq32(acc[j], m[j * sm], shift) + (b != NULL ? b[j * sm] : 0));
}

void rne__rq_s16_ref(int16_t *y, const int32_t *acc, size_t n, const int32_t *m, const int32_t *b,
                     size_t sm, unsigned shift)
{
    rne__rq_s16_tail(y, acc, 0, n, m, b, sm, shift);
}

void rne__rq_s16(int16_t *y, const int32_t *acc, size_t n, const int32_t *m, const int32_t *b,
                 size_t sm, unsigned shift)
{
    size_t j = 0;
#if defined(RNE__Q_RQ16_SIMD)
    j = rne__rq16_simd(y, acc, n, m, b, sm, shift);
#endif
    rne__rq_s16_tail(y, acc, j, n, m, b, sm, shift);
}

/* ---- integer square roots of a run ---------------------------------------------------------- */

void rne__isqrt64_rows_ref(uint64_t *v, size_t n)
{
    size_t i;
    for (i = 0; i < n; i++)
        v[i] = rne__isqrt64(v[i]);
}

void rne__isqrt64_rows(uint64_t *v, size_t n)
{
    size_t j = 0;
#if defined(RNE__Q_ISQRT_SIMD)
    j = rne__isqrt_simd(v, n);
#endif
    rne__isqrt64_rows_ref(v + j, n - j);
}
