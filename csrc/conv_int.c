/*
 * conv_int.c - CONV and CONV_T on int16 values (docs/quantization.md "Convolutions" is the
 * specification, rnnedge/fixedpoint.py's conv_q its numpy oracle; contract in conv.h).
 * Integer-only, like every *_int.c file (`make intonly`, the Cortex-M0 check).
 *
 * DENSE's rule per output channel co (weights int8 or int16, q slots copied into node->q at load):
 *   acc[co] = sum_p P[p] W_t[p][co]                         exact: int32 under acc32, else int64
 *   y[co]   = sat16(rq32(acc[co], m[co], shift) + b[co])    m[co] = q element 24 + co
 * CONV: P is the patch of conv_f32.c (zeros outside the input and before the stream's start), and
 * the product goes through qvec.h's rne__q_matvec (the SIMD variant: AVX2, NEON, Cortex-M DSP),
 * whose sum is exact, so its order does not matter. conv_f32.c's other paths, in integers: a
 * depthwise conv over [C] all channels at once (a loop the compiler vectorises), and tap by tap
 * along W (conv.h rne__conv_direct: padded rows, then under acc32 rne__qconv_taps32, 8 (AVX2)
 * or 4 output channels x 8 positions in int32 registers, AVX2 / aarch64 NEON beside its scalar
 * loop; the AVX2 form interleaves the weights of up to 32 tap pairs once per call; int64
 * sums along W per tap); exact sums, so every path gives the bits of conv_q. CONV_T: acc[co][wo] = the sum over the (ci, wi, i) with
 * wi sw - pb + i dw = wo of x[ci][wi] W[ci][co - g C_out/g][i], int64, along W for each output
 * channel (vectorised at stride 1); rne__conv_t_int_ref, the scalar loop over (ci, wi, i), gives
 * the same bits (csrc/tests/test_conv.c).
 * rne__check_conv proved 32768 sum |w| |m[co]| + 2^(shift-1) <= INT64_MAX for every channel (and
 * the sum within int32 under acc32), so nothing here overflows.
 */
#include "conv.h"
#include "qvec.h"

/* rne__qconv_taps32's SIMD variant: AVX2, or NEON on aarch64 (integer sums: the same bits as
 * rne__qconv_taps32_ref on any core) */
#if !defined(RNE_NO_SIMD) && defined(__AVX2__)
#include <immintrin.h>
#include <string.h>     /* memcpy: an x86 build is hosted (the freestanding targets are ARM) */
#define RNE__QCONV_AVX2 1
#elif !defined(RNE_NO_SIMD) && defined(__ARM_NEON) && defined(__aarch64__)
#include <arm_neon.h>
#define RNE__QCONV_NEON 1
#endif

/* the output channels rne__qconv_direct hands rne__qconv_taps32 at once (its SIMD block's) */
#if defined(RNE__QCONV_AVX2)
#define RNE__QTAPS_NC 8u
#else
#define RNE__QTAPS_NC 4u
#endif

#ifndef RNE_NO_CONV

static const int16_t *rne__qconv_frame(const rne__convcall *k, size_t t, size_t b, size_t j)
{
    const size_t kt = (size_t)k->param[0], dt = (size_t)k->param[1];
    const size_t fr = (size_t)k->c_in * k->w_in, back = (kt - 1 - j) * dt, f = (kt - 1) * dt;
    if (t >= back)
        return (const int16_t *)k->x + ((t - back) * k->batch + b) * fr;
    return (const int16_t *)k->cache + ((f + t - back) * k->batch + b) * fr;
}

/* The element e of an integer weight tensor (int8 or int16) */
static int32_t rne__qconv_w(const rne_model_layer *l, size_t e)
{
    return l->fmt == RNE_FMT_S8 ? ((const int8_t *)l->data[RNE_T_W])[e]
                                : ((const int16_t *)l->data[RNE_T_W])[e];
}

/* acc[i] += x[i] w (axpy, int64 sums; madd: x[i] w[i], w int8 or int16), i < n: one product of an int16 and
 * a weight (|x w| <= 32768 * 32767 < 2^31, an int32; the load refuses int16 weights of -32768),
 * added in int32 (acc32: the load proved every partial sum of the channel fits) or int64. Plain loops the compiler vectorises (AVX2, AVX-512,
 * NEON); integer sums are exact in any order, so they give what the scalar loop gives. */
static void rne__qaxpy64(int64_t *restrict acc, int32_t w, const int16_t *restrict x, size_t n)
{
    size_t i;
    for (i = 0; i < n; i++)
        acc[i] += (int64_t)((int32_t)x[i] * w);
}

static void rne__qmadd32(int32_t *restrict acc, const int16_t *restrict x, const void *w, int s8,
                         size_t n)
{
    size_t i;
    if (s8)
        for (i = 0; i < n; i++)
            acc[i] += (int32_t)x[i] * ((const int8_t *)w)[i];
    else
        for (i = 0; i < n; i++)
            acc[i] += (int32_t)x[i] * ((const int16_t *)w)[i];
}

static void rne__qmadd64(int64_t *restrict acc, const int16_t *restrict x, const void *w, int s8,
                         size_t n)
{
    size_t i;
    if (s8)
        for (i = 0; i < n; i++)
            acc[i] += (int64_t)((int32_t)x[i] * ((const int8_t *)w)[i]);
    else
        for (i = 0; i < n; i++)
            acc[i] += (int64_t)((int32_t)x[i] * ((const int16_t *)w)[i]);
}

void rne__qconv_taps32_ref(int32_t *acc, size_t wout, size_t nc, const int16_t *pad, size_t np,
                           size_t nr, size_t kw, size_t dw, const void *w, int s8, size_t ldw)
{
    size_t q, wo, r, i;
    for (q = 0; q < nc; q++)
        for (wo = 0; wo < wout; wo++) {
            int32_t s = 0;
            for (r = 0; r < nr; r++)
                for (i = 0; i < kw; i++) {
                    const size_t e = (r * kw + i) * ldw + q;
                    const int32_t wv = s8 ? ((const int8_t *)w)[e] : ((const int16_t *)w)[e];
                    s += (int32_t)pad[r * np + wo + i * dw] * wv;
                }
            acc[q * wout + wo] = s;
        }
}

#if defined(RNE__QCONV_AVX2)
/* Tap pairs prepared at a time (x86 stack: 1.5 KiB) */
#define RNE__QTAPS_PAIRS 32u

/* The n (4 or 8) weights w[e .. e + n - 1] (int8 or int16) as int16 in an SSE register (its
 * upper half zero when n is 4); reads no element past them */
static __m128i rne__qconv_wrow(const void *w, int s8, size_t e, size_t n)
{
    if (s8) {
        if (n == 8)
            return _mm_cvtepi8_epi16(
                _mm_loadl_epi64((const __m128i *)(const void *)((const int8_t *)w + e)));
        {
            int32_t four;
            memcpy(&four, (const int8_t *)w + e, sizeof four);
            return _mm_cvtepi8_epi16(_mm_cvtsi32_si128(four));
        }
    }
    if (n == 8)
        return _mm_loadu_si128((const __m128i *)(const void *)((const int16_t *)w + e));
    return _mm_loadl_epi64((const __m128i *)(const void *)((const int16_t *)w + e));
}

/* 4 (g 1) or 8 (g 2) output channels x 8 positions into dst[q ld + 0 .. 7], starting from 0
 * (init NULL) or init[q ld + 0 .. 7]: over n prepared tap pairs, xo[2 p], xo[2 p + 1] the two
 * taps' offsets in pad from the block's first position, wq[8 p + q] channel q's two weights (w_t, w_t+1) as the
 * int16 halves of one int32 (an odd last tap: its own offset twice, weight 0 beside it). The 8
 * positions' inputs of the two taps interleaved (vpunpck{l,h}wd), then vpmaddwd with each
 * channel's broadcast pair, w_t x_t + w_t+1 x_t+1 in one int32 (|.| <= 2 * 32768 * 32767 < 2^31;
 * acc32: every partial sum fits, in any order). g: a constant of each call, so the second
 * group's registers go when it is 1. */
static inline void rne__qtaps_avx2(int32_t *dst, size_t ld, const int32_t *init,
                                   const int16_t *pad, const int32_t *wq, const size_t *xo,
                                   size_t n, int g)
{
    __m256i a[8];
    size_t p, q;
    for (q = 0; q < 4u * (size_t)g; q++)
        a[q] = init == NULL ? _mm256_setzero_si256()
                            : _mm256_loadu_si256((const __m256i *)(const void *)(init + q * ld));
    for (p = 0; p < n; p++) {
        const __m128i x0 = _mm_loadu_si128((const __m128i *)(const void *)(pad + xo[2 * p]));
        const __m128i x1 = _mm_loadu_si128((const __m128i *)(const void *)(pad + xo[2 * p + 1]));
        const __m256i xx = _mm256_inserti128_si256(
            _mm256_castsi128_si256(_mm_unpacklo_epi16(x0, x1)), _mm_unpackhi_epi16(x0, x1), 1);
        a[0] = _mm256_add_epi32(a[0], _mm256_madd_epi16(xx, _mm256_set1_epi32(wq[8 * p + 0])));
        a[1] = _mm256_add_epi32(a[1], _mm256_madd_epi16(xx, _mm256_set1_epi32(wq[8 * p + 1])));
        a[2] = _mm256_add_epi32(a[2], _mm256_madd_epi16(xx, _mm256_set1_epi32(wq[8 * p + 2])));
        a[3] = _mm256_add_epi32(a[3], _mm256_madd_epi16(xx, _mm256_set1_epi32(wq[8 * p + 3])));
        if (g == 2) {   /* channels 4 .. 7 */
            a[4] = _mm256_add_epi32(a[4], _mm256_madd_epi16(xx, _mm256_set1_epi32(wq[8 * p + 4])));
            a[5] = _mm256_add_epi32(a[5], _mm256_madd_epi16(xx, _mm256_set1_epi32(wq[8 * p + 5])));
            a[6] = _mm256_add_epi32(a[6], _mm256_madd_epi16(xx, _mm256_set1_epi32(wq[8 * p + 6])));
            a[7] = _mm256_add_epi32(a[7], _mm256_madd_epi16(xx, _mm256_set1_epi32(wq[8 * p + 7])));
        }
    }
    for (q = 0; q < 4u * (size_t)g; q++)
        _mm256_storeu_si256((__m256i *)(void *)(dst + q * ld), a[q]);
}
#endif

void rne__qconv_taps32(int32_t *acc, size_t wout, size_t nc, const int16_t *pad, size_t np,
                       size_t nr, size_t kw, size_t dw, const void *w, int s8, size_t ldw)
{
#if defined(RNE__QCONV_AVX2)
    if ((nc == 4 || nc == 8) && wout >= 8) {
        /* the weights and offsets of up to RNE__QTAPS_PAIRS tap pairs, prepared once for every
         * block of 8 positions; a W_out not a multiple of 8 ends with a block at W_out - 8 that
         * overlaps the one before: its sums are kept in `tail` until the last pair (the overlap's
         * positions then get the same exact sums again) */
        int32_t wq[RNE__QTAPS_PAIRS * 8], tail[8 * 8];
        size_t xo[RNE__QTAPS_PAIRS * 2];
        const size_t nt = nr * kw, full = wout - wout % 8;
        size_t t0, p, q, wo;
        for (t0 = 0; t0 < nt; t0 += 2 * RNE__QTAPS_PAIRS) {
            const size_t n = (nt - t0 + 1) / 2 < RNE__QTAPS_PAIRS ? (nt - t0 + 1) / 2
                                                                   : RNE__QTAPS_PAIRS;
            for (p = 0; p < n; p++) {
                const size_t t = t0 + 2 * p, u = t + 1 < nt ? t + 1 : t;
                xo[2 * p] = t / kw * np + t % kw * dw;
                xo[2 * p + 1] = u / kw * np + u % kw * dw;
                {   /* the nc weights of taps t and u as int16, interleaved into pairs */
                    const __m128i lo = rne__qconv_wrow(w, s8, t * ldw, nc);
                    const __m128i hi = u == t ? _mm_setzero_si128()
                                              : rne__qconv_wrow(w, s8, u * ldw, nc);
                    _mm_storeu_si128((__m128i *)(void *)(wq + 8 * p), _mm_unpacklo_epi16(lo, hi));
                    if (nc == 8)
                        _mm_storeu_si128((__m128i *)(void *)(wq + 8 * p + 4),
                                         _mm_unpackhi_epi16(lo, hi));
                }
            }
            for (wo = 0; wo <= full; wo += 8) {
                /* wo = full: the overlapping last block at W_out - 8 (if any) */
                const int in_tail = wo == full;
                int32_t *dst = in_tail ? tail : acc + wo;
                const size_t ld = in_tail ? 8u : wout, at = in_tail ? wout - 8 : wo;
                if (in_tail && full == wout)
                    break;
                if (nc == 8)
                    rne__qtaps_avx2(dst, ld, t0 == 0 ? NULL : dst, pad + at, wq, xo, n, 2);
                else
                    rne__qtaps_avx2(dst, ld, t0 == 0 ? NULL : dst, pad + at, wq, xo, n, 1);
            }
        }
        if (full != wout)
            for (q = 0; q < nc; q++)
                memcpy(acc + q * wout + wout - 8, tail + q * 8, 8 * sizeof(int32_t));
        return;
    }
#elif defined(RNE__QCONV_NEON)
    size_t wo = 0, r, i, e;
    if (nc == 4 && wout >= 8)
        for (;;) {
            int32x4_t a0 = vdupq_n_s32(0), a1 = a0, a2 = a0, a3 = a0;
            int32x4_t h0 = a0, h1 = a0, h2 = a0, h3 = a0;
            if (wo + 8 > wout)
                wo = wout - 8;
            for (r = 0, e = 0; r < nr; r++) {
                const int16_t *src = pad + r * np + wo;
                for (i = 0; i < kw; i++, e += ldw, src += dw) {
                    int32_t w0, w1, w2, w3;
                    if (s8) {
                        const int8_t *wp = (const int8_t *)w + e;
                        w0 = wp[0], w1 = wp[1], w2 = wp[2], w3 = wp[3];
                    } else {
                        const int16_t *wp = (const int16_t *)w + e;
                        w0 = wp[0], w1 = wp[1], w2 = wp[2], w3 = wp[3];
                    }
                    {
                        const int16x8_t x8 = vld1q_s16(src);
                        const int16x4_t lo = vget_low_s16(x8), hi = vget_high_s16(x8);
                        a0 = vmlal_n_s16(a0, lo, (int16_t)w0);
                        h0 = vmlal_n_s16(h0, hi, (int16_t)w0);
                        a1 = vmlal_n_s16(a1, lo, (int16_t)w1);
                        h1 = vmlal_n_s16(h1, hi, (int16_t)w1);
                        a2 = vmlal_n_s16(a2, lo, (int16_t)w2);
                        h2 = vmlal_n_s16(h2, hi, (int16_t)w2);
                        a3 = vmlal_n_s16(a3, lo, (int16_t)w3);
                        h3 = vmlal_n_s16(h3, hi, (int16_t)w3);
                    }
                }
            }
            vst1q_s32(acc + wo, a0);
            vst1q_s32(acc + wo + 4, h0);
            vst1q_s32(acc + wout + wo, a1);
            vst1q_s32(acc + wout + wo + 4, h1);
            vst1q_s32(acc + 2 * wout + wo, a2);
            vst1q_s32(acc + 2 * wout + wo + 4, h2);
            vst1q_s32(acc + 3 * wout + wo, a3);
            vst1q_s32(acc + 3 * wout + wo + 4, h3);
            if (wo + 8 >= wout)
                return;
            wo += 8;
        }
#endif
    rne__qconv_taps32_ref(acc, wout, nc, pad, np, nr, kw, dw, w, s8, ldw);
}

/* acc[i] = 0, i < n, int32 (acc32) or int64 (no string.h: the Cortex-M0 check is freestanding) */
static void rne__qzero(void *acc, size_t n, int acc32)
{
    size_t i;
    if (acc32)
        for (i = 0; i < n; i++)
            ((int32_t *)acc)[i] = 0;
    else
        for (i = 0; i < n; i++)
            ((int64_t *)acc)[i] = 0;
}

/* y[i * sy] = sat16(rq32(acc[i], m[i * sm], shift) + b[i * sm]) for i < n (acc int32 or int64;
 * int32 sums into a contiguous y: qvec.h's rne__rq_s16, SIMD) */
static void rne__qconv_out(int16_t *y, size_t sy, const void *acc, int acc32, size_t n,
                           const int32_t *m, const int32_t *bias, size_t sm, unsigned shift)
{
    size_t i;
    if (acc32 && sy == 1) {
        rne__rq_s16(y, (const int32_t *)acc, n, m, bias, sm, shift);
        return;
    }
    for (i = 0; i < n; i++) {
        const int64_t a = acc32 ? ((const int32_t *)acc)[i] : ((const int64_t *)acc)[i];
        y[i * sy] = rne__sat16((int64_t)rne__rq32(a, m[i * sm], shift) +
                               (bias != NULL ? bias[i * sm] : 0));
    }
}

/* The depthwise conv over [C] (groups = C_in = C_out, one position): acc[co] over the kt taps,
 * all channels at once; and a stride-1 conv over W wide enough (conv.h RNE__CONV_DIRECT_W), tap
 * by tap along W for every output channel of the tap's group. Both into `acc` (int32 under
 * acc32, else int64; [C_out] and [C_out][W_out]). */
static void rne__qconv_depthwise(const rne__convcall *k, size_t t, size_t b, void *acc,
                                 int16_t *yr)
{
    const rne_model_layer *l = k->node;
    const size_t kt = (size_t)k->param[0], cout = k->c_out, esize = l->fmt == RNE_FMT_S8 ? 1u : 2u;
    const int s8 = l->fmt == RNE_FMT_S8, acc32 = l->q[2];
    size_t j;
    rne__qzero(acc, cout, acc32);
    for (j = 0; j < kt; j++) {
        const void *w = (const uint8_t *)l->data[RNE_T_W] + j * cout * esize;
        if (acc32)
            rne__qmadd32((int32_t *)acc, rne__qconv_frame(k, t, b, j), w, s8, cout);
        else
            rne__qmadd64((int64_t *)acc, rne__qconv_frame(k, t, b, j), w, s8, cout);
    }
    rne__qconv_out(yr, 1, acc, acc32, cout, (const int32_t *)l->data[RNE_T_Q] + RNE__Q_SLOTS,
                   (const int32_t *)l->data[RNE_T_B], 1, (unsigned)l->q[0]);
}

static void rne__qconv_direct(const rne__convcall *k, size_t t, size_t b, void *acc, int16_t *yr)
{
    const int32_t *p = k->param;
    const rne_model_layer *l = k->node;
    const size_t kt = (size_t)p[0], g = (size_t)p[2], kw = (size_t)p[3], dw = (size_t)p[7];
    const size_t cg = k->c_in / g, ng = k->c_out / g, win = k->w_in, wout = k->w_out;
    const size_t cout = k->c_out;
    const int64_t pb = p[5];
    const int acc32 = l->q[2];
    const int32_t *m = (const int32_t *)l->data[RNE_T_Q] + RNE__Q_SLOTS;
    const int32_t *bias = (const int32_t *)l->data[RNE_T_B];
    const size_t esz = acc32 ? sizeof(int32_t) : sizeof(int64_t);
    size_t gi, co, c, j, i, nc;
    int16_t *pad = (int16_t *)(void *)((uint8_t *)acc + cout * wout * sizeof(int64_t));
    const size_t np = wout + (kw - 1) * dw;
    if (acc32) {   /* 8 (AVX2) or 4 output channels x 8 positions at a time over the group's
                    * padded rows */
        const size_t esize = l->fmt == RNE_FMT_S8 ? 1u : 2u;
        for (gi = 0; gi < g; gi++) {
            for (c = 0; c < cg; c++)
                for (j = 0; j < kt; j++)
                    rne__conv_pad_row(pad + (c * kt + j) * np,
                                      rne__qconv_frame(k, t, b, j) + (gi * cg + c) * win, win, pb,
                                      np, sizeof(int16_t));
            for (co = gi * ng; co < (gi + 1) * ng; co += nc) {
                nc = (gi + 1) * ng - co;
                nc = nc >= RNE__QTAPS_NC ? RNE__QTAPS_NC : nc > 4 ? 4 : nc;
                rne__qconv_taps32((int32_t *)acc + co * wout, wout, nc, pad, np, cg * kt, kw, dw,
                                  (const uint8_t *)l->data[RNE_T_W] + co * esize,
                                  l->fmt == RNE_FMT_S8, cout);
            }
        }
    } else {       /* int64 sums: along W, one padded row at a time */
        rne__qzero(acc, cout * wout, 0);
        for (gi = 0; gi < g; gi++)
            for (c = 0; c < cg; c++)
                for (j = 0; j < kt; j++) {
                    rne__conv_pad_row(pad, rne__qconv_frame(k, t, b, j) + (gi * cg + c) * win,
                                      win, pb, np, sizeof(int16_t));
                    for (i = 0; i < kw; i++) {
                        const size_t e = ((c * kt + j) * kw + i) * cout;
                        for (co = gi * ng; co < (gi + 1) * ng; co++)
                            rne__qaxpy64((int64_t *)acc + co * wout, rne__qconv_w(l, e + co),
                                         pad + i * dw, wout);
                    }
                }
    }
    for (co = 0; co < cout; co++)
        rne__qconv_out(yr + co * wout, 1, (const uint8_t *)acc + co * wout * esz, acc32, wout,
                       m + co, bias != NULL ? bias + co : NULL, 0, (unsigned)l->q[0]);
}

static void rne__qconv_fwd(const rne__convcall *k)
{
    const int32_t *p = k->param;
    const rne_model_layer *l = k->node;
    const size_t kt = (size_t)p[0], g = (size_t)p[2], kw = (size_t)p[3], sw = (size_t)p[4];
    const size_t dw = (size_t)p[7], cg = k->c_in / g, ng = k->c_out / g, kk = cg * kt * kw;
    const size_t win = k->w_in, wout = k->w_out, cout = k->c_out;
    const int64_t pb = p[5];
    const int32_t *m = (const int32_t *)l->data[RNE_T_Q] + RNE__Q_SLOTS;
    const int32_t *bias = (const int32_t *)l->data[RNE_T_B];
    const unsigned shift = (unsigned)l->q[0];
    int16_t *y = (int16_t *)k->y, *patch = (int16_t *)k->work;
    int32_t *rq = (int32_t *)(void *)(patch + rne__round4(kk));
    void *acc = rq + ((ng + 1u) & ~(size_t)1);
    rne__qmat mat;
    size_t t, b, gi, wo, c, j, i, co;
    mat.w = l->data[RNE_T_W];
    mat.ldw = cout;
    mat.s8 = l->fmt == RNE_FMT_S8;
    mat.acc32 = l->q[2];
    for (t = 0; t < k->steps; t++)
        for (b = 0; b < k->batch; b++) {
            int16_t *yr = y + (t * k->batch + b) * cout * wout;
            if (win == 1 && wout == 1 && pb == 0 && g == k->c_in && g == cout) {
                rne__qconv_depthwise(k, t, b, acc, yr);
                continue;
            }
            if (rne__conv_direct(RNE_OP_CONV, p, wout)) {
                rne__qconv_direct(k, t, b, acc, yr);
                continue;
            }
            for (gi = 0; gi < g; gi++)
                for (wo = 0; wo < wout; wo++) {
                    const int16_t *src = patch;
                    if (kt == 1 && kw == 1 && win == 1 && wout == 1 && pb == 0) {
                        /* pointwise over [C] (or [C, 1] without pads): the row is the patch */
                        src = (const int16_t *)k->x + (t * k->batch + b) * k->c_in + gi * cg;
                    } else {
                        for (j = 0; j < kt; j++) {
                            const int16_t *fr = rne__qconv_frame(k, t, b, j) + gi * cg * win;
                            for (c = 0; c < cg; c++)
                                for (i = 0; i < kw; i++) {
                                    const int64_t pos = (int64_t)(wo * sw + i * dw) - pb;
                                    patch[(c * kt + j) * kw + i] =
                                        pos >= 0 && pos < (int64_t)win
                                            ? fr[c * win + (size_t)pos] : (int16_t)0;
                                }
                        }
                    }
                    rne__q_matvec(rq, src, kk, &mat, gi * ng, ng, m + gi * ng, shift, acc);
                    for (co = 0; co < ng; co++)
                        yr[(gi * ng + co) * wout + wo] = rne__sat16(
                            (int64_t)rq[co] + (bias != NULL ? bias[gi * ng + co] : 0));
                }
        }
    rne__conv_keep_tail(k, sizeof(int16_t));
}

void rne__conv_t_int_ref(const rne__convcall *k)
{
    const int32_t *p = k->param;
    const rne_model_layer *l = k->node;
    const size_t g = (size_t)p[2], kw = (size_t)p[3], sw = (size_t)p[4], dw = (size_t)p[7];
    const size_t cg = k->c_in / g, ng = k->c_out / g, win = k->w_in, wout = k->w_out;
    const size_t rows = k->steps * k->batch, ny = (size_t)k->c_out * wout;
    const int64_t pb = p[5];
    const int32_t *m = (const int32_t *)l->data[RNE_T_Q] + RNE__Q_SLOTS;
    const int32_t *bias = (const int32_t *)l->data[RNE_T_B];
    const unsigned shift = (unsigned)l->q[0];
    const int s8 = l->fmt == RNE_FMT_S8;
    int64_t *acc = (int64_t *)k->work;
    size_t r, ci, wi, i, co, wo;
    for (r = 0; r < rows; r++) {
        const int16_t *xr = (const int16_t *)k->x + r * k->c_in * win;
        int16_t *yr = (int16_t *)k->y + r * ny;
        for (i = 0; i < ny; i++)
            acc[i] = 0;
        for (ci = 0; ci < k->c_in; ci++) {
            const size_t gi = ci / cg;
            for (wi = 0; wi < win; wi++) {
                const int64_t v = xr[ci * win + wi];
                for (i = 0; i < kw; i++) {
                    const int64_t pos = (int64_t)(wi * sw + i * dw) - pb;
                    if (pos < 0 || pos >= (int64_t)wout)
                        continue;
                    for (co = 0; co < ng; co++) {
                        const size_t e = (ci * ng + co) * kw + i;
                        const int64_t wv = s8 ? ((const int8_t *)l->data[RNE_T_W])[e]
                                              : ((const int16_t *)l->data[RNE_T_W])[e];
                        acc[(gi * ng + co) * wout + (size_t)pos] += v * wv;
                    }
                }
            }
        }
        for (co = 0; co < k->c_out; co++)
            for (wo = 0; wo < wout; wo++)
                yr[co * wout + wo] = rne__sat16((int64_t)rne__rq32(acc[co * wout + wo], m[co], shift) +
                                                (bias != NULL ? bias[co] : 0));
    }
}

/* CONV_T along W (conv_f32.c's loops; integer sums, so bit for bit the reference's): acc int64
 * [C_out][W_out] from 0, + W[ci][co][i] x[ci][wi] at wo = wi sw + i dw - pb for each input
 * channel ci, tap i and output channel co of ci's group (vectorised along W for stride 1,
 * strided otherwise), then requantized. */
static void rne__qconv_t(const rne__convcall *k)
{
    const int32_t *p = k->param;
    const rne_model_layer *l = k->node;
    const size_t g = (size_t)p[2], kw = (size_t)p[3], sw = (size_t)p[4], dw = (size_t)p[7];
    const size_t cg = k->c_in / g, ng = k->c_out / g, win = k->w_in, wout = k->w_out;
    const size_t rows = k->steps * k->batch;
    const int64_t pb = p[5];
    const int32_t *m = (const int32_t *)l->data[RNE_T_Q] + RNE__Q_SLOTS;
    const int32_t *bias = (const int32_t *)l->data[RNE_T_B];
    int64_t *acc = (int64_t *)k->work;
    size_t r, c, i, co, n;
    for (r = 0; r < rows; r++) {
        const int16_t *xr = (const int16_t *)k->x + r * k->c_in * win;
        int16_t *yr = (int16_t *)k->y + r * (size_t)k->c_out * wout;
        rne__qzero(acc, (size_t)k->c_out * wout, 0);
        for (c = 0; c < k->c_in; c++)
            for (i = 0; i < kw; i++) {
                const size_t gi = c / cg;
                const int64_t off = (int64_t)(i * dw) - pb;
                const int16_t *xb = xr + c * win;
                size_t lo, hi;
                rne__conv_span(off, sw, wout, win, &lo, &hi);
                if (hi <= lo)
                    continue;
                xb += lo;
                for (co = gi * ng; co < (gi + 1) * ng; co++) {
                    const int32_t w = rne__qconv_w(l, (c * ng + co - gi * ng) * kw + i);
                    int64_t *ab = acc + co * wout + (size_t)((int64_t)(lo * sw) + off);
                    if (sw == 1)
                        rne__qaxpy64(ab, w, xb, hi - lo);
                    else
                        for (n = 0; n < hi - lo; n++)
                            ab[n * sw] += (int64_t)((int32_t)xb[n] * w);
                }
            }
        for (co = 0; co < k->c_out; co++)
            rne__qconv_out(yr + co * wout, 1, acc + co * wout, 0, wout, m + co,
                           bias != NULL ? bias + co : NULL, 0, (unsigned)l->q[0]);
    }
}

void rne__conv_int(const rne__convcall *k)
{
    if (k->node->op == RNE_OP_CONV_T)
        rne__qconv_t(k);
    else
        rne__qconv_fwd(k);
}

#else

void rne__conv_int(const rne__convcall *k)
{
    (void)k;
}

void rne__conv_t_int_ref(const rne__convcall *k)
{
    (void)k;
}

#endif /* RNE_NO_CONV */
