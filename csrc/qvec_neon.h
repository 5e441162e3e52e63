/*
 * qvec_neon.h - the NEON variant of qvec.c's integer product and gate rows (little-endian aarch64,
 * and ARMv7 with -mfpu=neon*). Included by qvec.c only, which picks it (RNE__Q_NEON) and
 * defines RNE__Q_INLINE and RNE__Q_NOINLINE first; it defines the static rne__mac_simd,
 * rne__rq_simd, rne__pre_simd and rne__act_simd that qvec.c's functions call before their
 * scalar code.
 *
 * NEON (little-endian aarch64, and ARMv7 with -mfpu=neon*; unless RNE_NO_SIMD): weights widened
 * to int16 (sxtl), smlal by one lane of x (int16 x int16 -> int32, 4 columns an instruction).
 *   acc32: 32 columns in 8 int32 registers over all of k (ARMv7 has 16 registers).
 *   acc64: 16 columns; rows in pairs, each pair's two products summed in int32 (smull + smlal:
 *   < 2^31: qvec.c), then widened into int64 (saddw).
 *   Requantization 4 columns at a time (acc32): smull to int64, srshl (a rounding right shift:
 *   exactly rshr, whose sum cannot overflow by qvec.h's contract), sqxtn (saturating narrow:
 *   sat32). Gate pre-activations 4 at a time; sigmoid and tanh with one table read per lane (no
 *   gather) and the interpolation on 4 lanes. The graph op BINARY ADD / MUL of equal shapes
 *   (rne__bin_simd) 4 elements at a time: smull / smlal to int64, srshl, sqxtn twice (sat16).
 *   A CONV's int32 sums to int16 (rne__rq16_simd) 4 at a time the same way; integer square roots
 *   (rne__isqrt_simd, aarch64 only: its 64-bit compare) 4 lanes at a time, digit by digit.
 */
#ifndef RNE_QVEC_NEON_H
#define RNE_QVEC_NEON_H

#include <arm_neon.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "qvec.h"

/* ---- column sums ----------------------------------------------------------------------------- */

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

/* ---- requantization and gate pre-activations ------------------------------------------------- */

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

/* ---- sigmoid and tanh ------------------------------------------------------------------------ */

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

/* ---- the graph op BINARY ADD / MUL of equal shapes ------------------------------------------- */

/* int64 lanes v (|v| <= 2^61) -> sat16(rshr(v, shift)): srshl by -shift is rshr exactly; the two
 * saturating narrows give sat16(sat32(.)) = sat16(.) */
static RNE__Q_INLINE int16x4_t rne__neon_bin_narrow(int64x2_t lo, int64x2_t hi, int64x2_t sh)
{
    return vqmovn_s32(vcombine_s32(vqmovn_s64(vrshlq_s64(lo, sh)), vqmovn_s64(vrshlq_s64(hi, sh))));
}

/* y[j] for j < n - n % 4, as rne__bin_s16_ref: ADD a ma + b mb by smull / smlal of the widened
 * values (exact in int64), MUL (a b exact in int32 by smull of int16) times m by smull. */
static size_t rne__bin_simd(int16_t *y, const int16_t *a, const int16_t *b, size_t n, int mul,
                            int32_t ma, int32_t mb, unsigned shift)
{
    const int64x2_t sh = vdupq_n_s64(-(int64_t)shift);
    const int32x2_t vma = vdup_n_s32(ma), vmb = vdup_n_s32(mb);
    size_t j;
    for (j = 0; j + 4 <= n; j += 4) {
        const int16x4_t xa = vld1_s16(a + j), xb = vld1_s16(b + j);
        int64x2_t lo, hi;
        if (mul) {
            const int32x4_t ab = vmull_s16(xa, xb);
            lo = vmull_s32(vget_low_s32(ab), vma);
            hi = vmull_s32(vget_high_s32(ab), vma);
        } else {
            const int32x4_t wa = vmovl_s16(xa), wb = vmovl_s16(xb);
            lo = vmlal_s32(vmull_s32(vget_low_s32(wa), vma), vget_low_s32(wb), vmb);
            hi = vmlal_s32(vmull_s32(vget_high_s32(wa), vma), vget_high_s32(wb), vmb);
        }
        vst1_s16(y + j, rne__neon_bin_narrow(lo, hi, sh));
    }
    return j;
}
#define RNE__Q_BIN_SIMD 1

/* y[j] = sat16(rq32(acc[j], m[j sm], shift) + b[j sm]) for j < n - n % 4 (rne__rq_s16): smull
 * by m (exact int64), srshl by -shift (rshr exactly), sqxtn (sat32), saddl of b (int64), sqxtn
 * twice (sat16). */
static size_t rne__rq16_simd(int16_t *y, const int32_t *acc, size_t n, const int32_t *m,
                             const int32_t *b, size_t sm, unsigned shift)
{
    const int64x2_t sh = vdupq_n_s64(-(int64_t)shift);
    int32x4_t m1, b1;
    size_t j;
    if (n < 4)          /* m[0], b[0] read only for a run */
        return 0;
    m1 = vdupq_n_s32(m[0]);
    b1 = vdupq_n_s32(b != NULL ? b[0] : 0);
    for (j = 0; j + 4 <= n; j += 4) {
        const int32x4_t a = vld1q_s32(acc + j), vm = sm ? vld1q_s32(m + j) : m1;
        const int32x4_t vb = !sm || b == NULL ? b1 : vld1q_s32(b + j);
        const int32x2_t l = vqmovn_s64(vrshlq_s64(vmull_s32(vget_low_s32(a), vget_low_s32(vm)), sh));
        const int32x2_t h =
            vqmovn_s64(vrshlq_s64(vmull_s32(vget_high_s32(a), vget_high_s32(vm)), sh));
        vst1_s16(y + j, vqmovn_s32(vcombine_s32(vqmovn_s64(vaddl_s32(l, vget_low_s32(vb))),
                                                vqmovn_s64(vaddl_s32(h, vget_high_s32(vb))))));
    }
    return j;
}
#define RNE__Q_RQ16_SIMD 1

#if defined(__aarch64__)
/* v[j] = floor(sqrt(v[j])) for j < n - n % 4 (rne__isqrt64_rows): rne__isqrt64's digit-by-digit
 * method in 4 uint64 lanes (two registers; aarch64: the 64-bit compare cmhs), from the largest
 * power of 4 at most the OR of the 4 values (a digit above a lane's own top is 0 there). */
static size_t rne__isqrt_simd(uint64_t *v, size_t n)
{
    size_t j;
    for (j = 0; j + 4 <= n; j += 4) {
        uint64x2_t a0 = vld1q_u64(v + j), a1 = vld1q_u64(v + j + 2);
        uint64x2_t r0 = vdupq_n_u64(0), r1 = r0;
        const uint64_t o = v[j] | v[j + 1] | v[j + 2] | v[j + 3];
        uint64_t bit = (uint64_t)1 << 62;
        while (bit > o)
            bit >>= 2;
        for (; bit != 0; bit >>= 2) {
            const uint64x2_t b = vdupq_n_u64(bit);
            const uint64x2_t t0 = vaddq_u64(r0, b), t1 = vaddq_u64(r1, b);
            const uint64x2_t k0 = vcgeq_u64(a0, t0), k1 = vcgeq_u64(a1, t1);
            a0 = vsubq_u64(a0, vandq_u64(k0, t0));
            a1 = vsubq_u64(a1, vandq_u64(k1, t1));
            r0 = vaddq_u64(vshrq_n_u64(r0, 1), vandq_u64(k0, b));
            r1 = vaddq_u64(vshrq_n_u64(r1, 1), vandq_u64(k1, b));
        }
        vst1q_u64(v + j, r0);
        vst1q_u64(v + j + 2, r1);
    }
    return j;
}
#define RNE__Q_ISQRT_SIMD 1
#endif

#endif /* RNE_QVEC_NEON_H */
