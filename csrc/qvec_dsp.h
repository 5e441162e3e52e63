/*
 * qvec_dsp.h - the ARM DSP variant of qvec.c's integer product (SMLAxy: Cortex-M4/M7/M33, ARMv6 and
 * ARMv7-A without NEON). Included by qvec.c only, which picks it (RNE__Q_DSP) and defines
 * RNE__Q_INLINE and RNE__Q_NOINLINE first; it defines the static rne__mac_simd that
 * rne__q_matvec calls before its scalar code.
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
 *   acc32: each instruction's result is acc + one product, a partial sum of the column (qvec.c):
 *   it fits int32, so the instruction's 32-bit addition (which wraps, setting only the sticky Q
 *   flag) gives it exactly. The odd last row's C additions are partial sums too.
 *   acc64, int8 weights: the same int32 sums over chunks of 256 rows, each chunk's partial sums at
 *   most 256 * 32768 * 128 = 2^30 < 2^31, then added into int64.
 *   acc64, int16 weights: SMLAL<x><y> (16 x 16 + 64), 2 columns at a time (4 int64 sums would
 *   need 8 registers); the int64 partial sums fit, rne_model_load proved it.
 *   Requantization, gate pre-activations and activations: the scalar code.
 */
#ifndef RNE_QVEC_DSP_H
#define RNE_QVEC_DSP_H

#include <arm_acle.h>
#include <stddef.h>
#include <stdint.h>

#include "qvec.h"

/* ---- column sums (SMLAxy) -------------------------------------------------------------------- */

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
    if (k % 2 != 0) {     /* in uint32_t: wraps as the instructions do, never C overflow */
        const int32_t x0 = *x;
        s0 = (int32_t)((uint32_t)s0 + (uint32_t)(x0 * rne__dsp_w(wp, 0, s8)));
        s1 = (int32_t)((uint32_t)s1 + (uint32_t)(x0 * rne__dsp_w(wp, 1, s8)));
        s2 = (int32_t)((uint32_t)s2 + (uint32_t)(x0 * rne__dsp_w(wp, 2, s8)));
        s3 = (int32_t)((uint32_t)s3 + (uint32_t)(x0 * rne__dsp_w(wp, 3, s8)));
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
    size_t es, row, j;
#ifdef RNE_NO_S16
    s8 = 1;     /* s16 weights compiled out: the loader refuses them (rne_internal.h) */
#endif
    es = s8 ? 1u : 2u;
    row = ldw * es;
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

#endif /* RNE_QVEC_DSP_H */
