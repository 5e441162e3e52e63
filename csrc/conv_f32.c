/*
 * conv_f32.c - CONV and CONV_T on f32 values (docs/graph.md section 6; contract in conv.h).
 *
 * CONV, for each row (step t, stream b), group g and output position wo: the patch
 *   P[(c kt + j) kw + i] = x_{t - (kt - 1 - j) dt}[g C_in/g + c][wo sw - pb + i dw]
 * (0 outside [0, W); frames before the chunk come from the cache, those before the stream's
 * start are the cache's zeros) times W_t, through vec.h's rne__f32_gemm_acc (the SIMD variant):
 *   y[co][wo] = b[co] + sum_p P[p] W_t[p][co], summed from the bias in p order (scalar build).
 * Fast paths, over [C] values (or [C, 1] with one output position and no pad before it): a
 * pointwise conv (kt = kw = 1, one group) is one matrix product over all the chunk's rows; a
 * depthwise conv (groups = C_in = C_out) multiplies and adds tap by tap over all channels at once
 * (the same sums in the same order as the general path, a loop the compiler vectorises).
 * Tap by tap along W (conv.h rne__conv_direct: stride 1, W_out >= 8): each input row of the
 * group padded once per row (zeros), then rne__conv_taps sums the same terms from the bias in p
 * order, the pads' zero terms included, 8 (AVX2) or 4 output channels x 8 positions at a time
 * (AVX2 or aarch64 NEON beside rne__conv_taps_ref, the same bits). The two paths differ in rounding only
 * (the patch's product fuses multiply-adds where vec.h does); which one runs depends on the
 * node's shape alone, so a step and a run give the same bits.
 * After the chunk the cache keeps its last (kt - 1) dt frames (of cache + chunk).
 * CONV_T: y[co][wi sw - pb + i dw] += x[ci][wi] W[ci][co - g C_out/g][i] for the ci of co's group,
 * from the bias (output positions no term reaches keep it). The kernel sums in ci, i, wi order,
 * along W for each output channel (rne__conv_axpy, vectorised by the compiler at stride 1);
 * rne__conv_t_f32_ref, the scalar reference beside it, in ci, wi, i order: the same terms, so the
 * two agree within rounding (csrc/tests/test_conv.c).
 */
#include <string.h>

#include "conv.h"
#include "vec.h"

/* The tap-by-tap path's SIMD variant (rne__conv_taps): AVX2 (also under AVX-512), or NEON on
 * aarch64 (AArch32 NEON flushes subnormals to zero, so it keeps the scalar loop); the same bits
 * as rne__conv_taps_ref either way */
#if !defined(RNE_NO_SIMD) && defined(__AVX2__)
#include <immintrin.h>
#define RNE__CONV_AVX2 1
#elif !defined(RNE_NO_SIMD) && defined(__ARM_NEON) && defined(__aarch64__)
#include <arm_neon.h>
#define RNE__CONV_NEON 1
#endif

#ifndef RNE_NO_CONV

size_t rne__conv_work_bytes(const rne_model_layer *node, uint32_t c_in, uint32_t w_in,
                            uint32_t c_out, uint32_t w_out)
{
    const size_t g = (size_t)node->param[2];
    const size_t kk = (size_t)(c_in / g) * (size_t)node->param[0] * (size_t)node->param[3];
    const size_t ng = c_out / g;
    /* the tap-by-tap path (conv.h rne__conv_direct): the padded input rows of one group */
    const int direct = rne__conv_direct(node->op, node->param, w_out);
    const size_t pad = direct ? (size_t)(c_in / g) * (size_t)node->param[0] *
                                    ((size_t)w_out + (size_t)(node->param[3] - 1) *
                                                         (size_t)node->param[7])
                              : 0u;
    (void)w_in;
    if (node->op == RNE_OP_CONV_T)
        return node->fmt == RNE_FMT_F32 ? 0u : (size_t)c_out * w_out * sizeof(int64_t);
    if (node->fmt == RNE_FMT_F32)
        return ((size_t)w_out * (kk + ng) + pad) * sizeof(float);
    /* integer: patch int16 [K], products int32 [ng], then int64 accumulators: [ng] for the
     * matrix product, [C_out] for a depthwise conv over [C], [C_out][W_out] tap by tap; and the
     * padded rows int16 (tap by tap) */
    return rne__round4(kk) * sizeof(int16_t) + ((ng + 1u) & ~(size_t)1) * sizeof(int32_t) +
           (direct ? (size_t)c_out * w_out : c_out) * sizeof(int64_t) + pad * sizeof(int16_t);
}

size_t rne__conv_cache_bytes(const rne_model_layer *node, uint32_t c_in, uint32_t w_in)
{
    if (node->op != RNE_OP_CONV)
        return 0;
    return (size_t)(node->param[0] - 1) * (size_t)node->param[1] * c_in * w_in *
           (node->fmt == RNE_FMT_F32 ? sizeof(float) : sizeof(int16_t));
}

/* y[i] += a * x[i], i < n: a multiply, then an add, as the scalar code writes them (the build's
 * -ffp-contract=off keeps them apart), so that the loop the compiler vectorises (AVX2, AVX-512,
 * NEON) gives the bits of the scalar loop */
static void rne__conv_axpy(float *restrict y, float a, const float *restrict x, size_t n)
{
    size_t i;
    for (i = 0; i < n; i++)
        y[i] += a * x[i];
}

/* y[i] += x[i] * w[i], i < n (the depthwise taps; vectorised like rne__conv_axpy) */
static void rne__conv_madd(float *restrict y, const float *restrict x, const float *restrict w,
                           size_t n)
{
    size_t i;
    for (i = 0; i < n; i++)
        y[i] += x[i] * w[i];
}

void rne__conv_taps_ref(float *y, size_t wout, size_t nc, const float *b, const float *pad,
                        size_t np, size_t nr, size_t kw, size_t dw, const float *w, size_t ldw)
{
    size_t q, wo, r, i;
    for (q = 0; q < nc; q++)
        for (wo = 0; wo < wout; wo++) {
            float s = b[q];
            for (r = 0; r < nr; r++)
                for (i = 0; i < kw; i++)
                    s += w[(r * kw + i) * ldw + q] * pad[r * np + wo + i * dw];
            y[q * wout + wo] = s;
        }
}

void rne__conv_taps(float *y, size_t wout, size_t nc, const float *b, const float *pad,
                    size_t np, size_t nr, size_t kw, size_t dw, const float *w, size_t ldw)
{
#if defined(RNE__CONV_AVX2) || defined(RNE__CONV_NEON)
    size_t wo = 0, r, i;
#if defined(RNE__CONV_AVX2)
    if (nc == 8 && wout >= 8)   /* 8 channels: 8 independent sums per input load */
        for (;;) {
            const float *wp = w;
            __m256 a[8];
            for (i = 0; i < 8; i++)
                a[i] = _mm256_set1_ps(b[i]);
            if (wo + 8 > wout)
                wo = wout - 8;
            for (r = 0; r < nr; r++) {
                const float *src = pad + r * np + wo;
                for (i = 0; i < kw; i++, wp += ldw, src += dw) {
                    const __m256 v = _mm256_loadu_ps(src);  /* a multiply, then an add */
                    a[0] = _mm256_add_ps(a[0], _mm256_mul_ps(_mm256_set1_ps(wp[0]), v));
                    a[1] = _mm256_add_ps(a[1], _mm256_mul_ps(_mm256_set1_ps(wp[1]), v));
                    a[2] = _mm256_add_ps(a[2], _mm256_mul_ps(_mm256_set1_ps(wp[2]), v));
                    a[3] = _mm256_add_ps(a[3], _mm256_mul_ps(_mm256_set1_ps(wp[3]), v));
                    a[4] = _mm256_add_ps(a[4], _mm256_mul_ps(_mm256_set1_ps(wp[4]), v));
                    a[5] = _mm256_add_ps(a[5], _mm256_mul_ps(_mm256_set1_ps(wp[5]), v));
                    a[6] = _mm256_add_ps(a[6], _mm256_mul_ps(_mm256_set1_ps(wp[6]), v));
                    a[7] = _mm256_add_ps(a[7], _mm256_mul_ps(_mm256_set1_ps(wp[7]), v));
                }
            }
            for (i = 0; i < 8; i++)
                _mm256_storeu_ps(y + i * wout + wo, a[i]);
            if (wo + 8 >= wout)
                return;
            wo += 8;
        }
#endif
    if (nc > 4 && wout >= 8) {  /* two blocks of 4 channels or fewer (NEON) */
        rne__conv_taps(y, wout, 4, b, pad, np, nr, kw, dw, w, ldw);
        rne__conv_taps(y + 4 * wout, wout, nc - 4, b + 4, pad, np, nr, kw, dw, w + 4, ldw);
        return;
    }
    if (nc == 4 && wout >= 8)
        for (;;) {
            const float *wp = w;
#if defined(RNE__CONV_AVX2)
            __m256 a0 = _mm256_set1_ps(b[0]), a1 = _mm256_set1_ps(b[1]);
            __m256 a2 = _mm256_set1_ps(b[2]), a3 = _mm256_set1_ps(b[3]);
#else
            float32x4_t a0 = vdupq_n_f32(b[0]), a1 = vdupq_n_f32(b[1]);
            float32x4_t a2 = vdupq_n_f32(b[2]), a3 = vdupq_n_f32(b[3]);
            float32x4_t h0 = a0, h1 = a1, h2 = a2, h3 = a3;
#endif
            if (wo + 8 > wout)
                wo = wout - 8;
            for (r = 0; r < nr; r++) {
                const float *src = pad + r * np + wo;
                for (i = 0; i < kw; i++, wp += ldw, src += dw) {
#if defined(RNE__CONV_AVX2)   /* a multiply, then an add: the reference's two roundings */
                    const __m256 v = _mm256_loadu_ps(src);
                    a0 = _mm256_add_ps(a0, _mm256_mul_ps(_mm256_set1_ps(wp[0]), v));
                    a1 = _mm256_add_ps(a1, _mm256_mul_ps(_mm256_set1_ps(wp[1]), v));
                    a2 = _mm256_add_ps(a2, _mm256_mul_ps(_mm256_set1_ps(wp[2]), v));
                    a3 = _mm256_add_ps(a3, _mm256_mul_ps(_mm256_set1_ps(wp[3]), v));
#else
                    const float32x4_t v = vld1q_f32(src), u = vld1q_f32(src + 4);
                    a0 = vaddq_f32(a0, vmulq_n_f32(v, wp[0]));
                    h0 = vaddq_f32(h0, vmulq_n_f32(u, wp[0]));
                    a1 = vaddq_f32(a1, vmulq_n_f32(v, wp[1]));
                    h1 = vaddq_f32(h1, vmulq_n_f32(u, wp[1]));
                    a2 = vaddq_f32(a2, vmulq_n_f32(v, wp[2]));
                    h2 = vaddq_f32(h2, vmulq_n_f32(u, wp[2]));
                    a3 = vaddq_f32(a3, vmulq_n_f32(v, wp[3]));
                    h3 = vaddq_f32(h3, vmulq_n_f32(u, wp[3]));
#endif
                }
            }
#if defined(RNE__CONV_AVX2)
            _mm256_storeu_ps(y + wo, a0);
            _mm256_storeu_ps(y + wout + wo, a1);
            _mm256_storeu_ps(y + 2 * wout + wo, a2);
            _mm256_storeu_ps(y + 3 * wout + wo, a3);
#else
            vst1q_f32(y + wo, a0);
            vst1q_f32(y + wo + 4, h0);
            vst1q_f32(y + wout + wo, a1);
            vst1q_f32(y + wout + wo + 4, h1);
            vst1q_f32(y + 2 * wout + wo, a2);
            vst1q_f32(y + 2 * wout + wo + 4, h2);
            vst1q_f32(y + 3 * wout + wo, a3);
            vst1q_f32(y + 3 * wout + wo + 4, h3);
#endif
            if (wo + 8 >= wout)
                return;
            wo += 8;
        }
#endif
    rne__conv_taps_ref(y, wout, nc, b, pad, np, nr, kw, dw, w, ldw);
}

/* p[q] = x[q - pb] for q < n (zeros outside x's w elements); esize-byte elements (f32, int16) */
void rne__conv_pad_row(void *p, const void *x, size_t w, int64_t pb, size_t n, size_t esize)
{
    const size_t before = pb > 0 ? ((size_t)pb < n ? (size_t)pb : n) : 0u;
    const size_t skip = pb < 0 ? (size_t)-pb : 0u;      /* x elements before p[0] */
    size_t copy = skip < w ? w - skip : 0u;
    if (copy > n - before)
        copy = n - before;
    memset(p, 0, before * esize);
    if (copy > 0)
        memcpy((uint8_t *)p + before * esize, (const uint8_t *)x + skip * esize, copy * esize);
    memset((uint8_t *)p + (before + copy) * esize, 0, (n - before - copy) * esize);
}

/* the frame of tap j for row (t, b): from the chunk, or from the cache before it */
static const float *rne__conv_frame(const rne__convcall *k, size_t t, size_t b, size_t j)
{
    const size_t kt = (size_t)k->param[0], dt = (size_t)k->param[1];
    const size_t fr = (size_t)k->c_in * k->w_in, back = (kt - 1 - j) * dt, f = (kt - 1) * dt;
    if (t >= back)
        return (const float *)k->x + ((t - back) * k->batch + b) * fr;
    return (const float *)k->cache + ((f + t - back) * k->batch + b) * fr;
}

/* The depthwise conv over [C] for one row: y[i] = b[i] (0 without a bias) + x_0[i] w_0[i] +
 * ... + x_{kt-1}[i] w_{kt-1}[i], summed from the bias in tap order, a multiply then an add per
 * term (the bits of rne__conv_madd tap by tap from the bias): the first three taps in one pass
 * over the channels, any further ones a pass each. x_j: rne__conv_frame(k, t, b, j); w_j: the
 * weights w + j n. */
static void rne__conv_dw(float *restrict y, const float *b, const rne__convcall *k, size_t t,
                         size_t bi, const float *w, size_t n)
{
    const size_t kt = (size_t)k->param[0];
    const float *restrict x0 = rne__conv_frame(k, t, bi, 0);
    size_t i, j = 1;
    if (kt >= 3) {
        const float *restrict x1 = rne__conv_frame(k, t, bi, 1);
        const float *restrict x2 = rne__conv_frame(k, t, bi, 2);
        const float *restrict w0 = w, *restrict w1 = w + n, *restrict w2 = w + 2 * n;
        j = 3;
        if (b != NULL)
            for (i = 0; i < n; i++)
                y[i] = ((b[i] + x0[i] * w0[i]) + x1[i] * w1[i]) + x2[i] * w2[i];
        else
            for (i = 0; i < n; i++)
                y[i] = ((0.0f + x0[i] * w0[i]) + x1[i] * w1[i]) + x2[i] * w2[i];
    } else {
        for (i = 0; i < n; i++)
            y[i] = (b != NULL ? b[i] : 0.0f) + x0[i] * w[i];
    }
    for (; j < kt; j++)
        rne__conv_madd(y, rne__conv_frame(k, t, bi, j), w + j * n, n);
}

void rne__conv_keep_tail(const rne__convcall *k, size_t esize)
{
    const size_t f = (size_t)(k->param[0] - 1) * (size_t)k->param[1];
    const size_t frame = k->batch * k->c_in * k->w_in * esize;
    uint8_t *c = (uint8_t *)k->cache;
    const uint8_t *x = (const uint8_t *)k->x;
    if (f == 0 || k->steps == 0)
        return;
    if (k->steps >= f) {
        memcpy(c, x + (k->steps - f) * frame, f * frame);
    } else {
        memmove(c, c + k->steps * frame, (f - k->steps) * frame);
        memcpy(c + (f - k->steps) * frame, x, k->steps * frame);
    }
}

static void rne__conv_fwd_f32(const rne__convcall *k)
{
    const int32_t *p = k->param;
    const size_t kt = (size_t)p[0], g = (size_t)p[2], kw = (size_t)p[3], sw = (size_t)p[4];
    const size_t dw = (size_t)p[7], cg = k->c_in / g, ng = k->c_out / g, kk = cg * kt * kw;
    const size_t win = k->w_in, wout = k->w_out, cout = k->c_out, rows = k->steps * k->batch;
    const int64_t pb = p[5];
    const float *wt = (const float *)k->node->data[RNE_T_W];
    const float *bias = (const float *)k->node->data[RNE_T_B];
    float *y = (float *)k->y, *patch = (float *)k->work, *prod = patch + wout * kk;
    float *pad = prod + wout * ng;
    size_t t, b, gi, wo, c, j, i, co;
    /* a [C] value (or [C, 1] whose one output position is the input: no pad before it, one
     * output) */
    const int single = win == 1 && wout == 1 && pb == 0;
    if (kt == 1 && kw == 1 && g == 1 && single) {           /* pointwise: one matrix product */
        for (t = 0; t < rows; t++)
            for (co = 0; co < cout; co++)
                y[t * cout + co] = bias != NULL ? bias[co] : 0.0f;
        rne__f32_gemm_acc(y, cout, (const float *)k->x, k->c_in, wt, cout, rows, cout, kk);
        return;
    }
    for (t = 0; t < k->steps; t++)
        for (b = 0; b < k->batch; b++) {
            float *yr = y + (t * k->batch + b) * cout * wout;
            if (single && g == k->c_in && g == cout) {      /* depthwise over [C] */
                rne__conv_dw(yr, bias, k, t, b, wt, cout);
                continue;
            }
            if (rne__conv_direct(RNE_OP_CONV, p, wout)) {   /* stride 1 over W: tap by tap */
                const size_t np = wout + (kw - 1) * dw;
                for (gi = 0; gi < g; gi++) {
                    /* the group's input rows with their pads: every tap spans all of W_out */
                    for (c = 0; c < cg; c++)
                        for (j = 0; j < kt; j++)
                            rne__conv_pad_row(pad + (c * kt + j) * np,
                                              rne__conv_frame(k, t, b, j) + (gi * cg + c) * win,
                                              win, pb, np, sizeof(float));
                    for (co = gi * ng; co < (gi + 1) * ng; co += 8) {
                        const size_t nc = (gi + 1) * ng - co < 8 ? (gi + 1) * ng - co : 8;
                        float b8[8] = {0.0f, 0.0f, 0.0f, 0.0f, 0.0f, 0.0f, 0.0f, 0.0f};
                        for (i = 0; i < nc && bias != NULL; i++)
                            b8[i] = bias[co + i];
                        rne__conv_taps(yr + co * wout, wout, nc, b8, pad, np, cg * kt, kw, dw,
                                       wt + co, cout);
                    }
                }
                continue;
            }
            for (gi = 0; gi < g; gi++) {
                for (wo = 0; wo < wout; wo++) {
                    float *pr = patch + wo * kk;
                    for (j = 0; j < kt; j++) {
                        const float *fr = rne__conv_frame(k, t, b, j) + gi * cg * win;
                        for (c = 0; c < cg; c++)
                            for (i = 0; i < kw; i++) {
                                const int64_t pos = (int64_t)(wo * sw + i * dw) - pb;
                                pr[(c * kt + j) * kw + i] =
                                    pos >= 0 && pos < (int64_t)win ? fr[c * win + (size_t)pos]
                                                                   : 0.0f;
                            }
                    }
                    for (co = 0; co < ng; co++)
                        prod[wo * ng + co] = bias != NULL ? bias[gi * ng + co] : 0.0f;
                }
                rne__f32_gemm_acc(prod, ng, patch, kk, wt + gi * ng, cout, wout, ng, kk);
                for (co = 0; co < ng; co++)
                    for (wo = 0; wo < wout; wo++)
                        yr[(gi * ng + co) * wout + wo] = prod[wo * ng + co];
            }
        }
    rne__conv_keep_tail(k, sizeof(float));
}

void rne__conv_t_f32_ref(const rne__convcall *k)
{
    const int32_t *p = k->param;
    const size_t g = (size_t)p[2], kw = (size_t)p[3], sw = (size_t)p[4], dw = (size_t)p[7];
    const size_t cg = k->c_in / g, ng = k->c_out / g, win = k->w_in, wout = k->w_out;
    const size_t rows = k->steps * k->batch;
    const int64_t pb = p[5];
    const float *wt = (const float *)k->node->data[RNE_T_W];
    const float *bias = (const float *)k->node->data[RNE_T_B];
    size_t r, ci, wi, i, co, wo;
    for (r = 0; r < rows; r++) {
        const float *xr = (const float *)k->x + r * k->c_in * win;
        float *yr = (float *)k->y + r * k->c_out * wout;
        for (co = 0; co < k->c_out; co++)
            for (wo = 0; wo < wout; wo++)
                yr[co * wout + wo] = bias != NULL ? bias[co] : 0.0f;
        for (ci = 0; ci < k->c_in; ci++) {
            const size_t gi = ci / cg;
            for (wi = 0; wi < win; wi++) {
                const float v = xr[ci * win + wi];
                for (i = 0; i < kw; i++) {
                    const int64_t pos = (int64_t)(wi * sw + i * dw) - pb;
                    if (pos < 0 || pos >= (int64_t)wout)
                        continue;
                    for (co = 0; co < ng; co++)
                        yr[(gi * ng + co) * wout + (size_t)pos] += v * wt[(ci * ng + co) * kw + i];
                }
            }
        }
    }
}

/* CONV_T along W: every output row from its bias, then for each input channel ci and tap i, for
 * each output channel co of ci's group, y[co][wi sw + i dw - pb] += W[ci][co][i] x[ci][wi] over
 * the wi it reaches: a vectorised multiply-add along W for stride 1 (rne__conv_axpy), a strided
 * loop otherwise. */
static void rne__conv_t_f32(const rne__convcall *k)
{
    const int32_t *p = k->param;
    const size_t g = (size_t)p[2], kw = (size_t)p[3], sw = (size_t)p[4], dw = (size_t)p[7];
    const size_t cg = k->c_in / g, ng = k->c_out / g, win = k->w_in, wout = k->w_out;
    const size_t rows = k->steps * k->batch;
    const int64_t pb = p[5];
    const float *wt = (const float *)k->node->data[RNE_T_W];
    const float *bias = (const float *)k->node->data[RNE_T_B];
    size_t r, c, i, co, wo, n;
    for (r = 0; r < rows; r++) {
        const float *xr = (const float *)k->x + r * k->c_in * win;
        float *yr = (float *)k->y + r * k->c_out * wout;
        for (co = 0; co < k->c_out; co++)
            for (wo = 0; wo < wout; wo++)
                yr[co * wout + wo] = bias != NULL ? bias[co] : 0.0f;
        for (c = 0; c < k->c_in; c++)
            for (i = 0; i < kw; i++) {
                const size_t gi = c / cg;
                const int64_t off = (int64_t)(i * dw) - pb;
                const float *xb = xr + c * win;
                size_t lo, hi;
                rne__conv_span(off, sw, wout, win, &lo, &hi);
                if (hi <= lo)
                    continue;
                xb += lo;
                for (co = gi * ng; co < (gi + 1) * ng; co++) {
                    const float w = wt[(c * ng + co - gi * ng) * kw + i];
                    float *yb = yr + co * wout + (size_t)((int64_t)(lo * sw) + off);
                    if (sw == 1)
                        rne__conv_axpy(yb, w, xb, hi - lo);
                    else
                        for (n = 0; n < hi - lo; n++)
                            yb[n * sw] += w * xb[n];
                }
            }
    }
}

void rne__conv_f32(const rne__convcall *k)
{
    if (k->node->op == RNE_OP_CONV_T)
        rne__conv_t_f32(k);
    else
        rne__conv_fwd_f32(k);
}

#else

size_t rne__conv_work_bytes(const rne_model_layer *node, uint32_t c_in, uint32_t w_in,
                            uint32_t c_out, uint32_t w_out)
{
    (void)node;
    (void)c_in;
    (void)w_in;
    (void)c_out;
    (void)w_out;
    return 0;
}

size_t rne__conv_cache_bytes(const rne_model_layer *node, uint32_t c_in, uint32_t w_in)
{
    (void)node;
    (void)c_in;
    (void)w_in;
    return 0;
}

void rne__conv_f32(const rne__convcall *k)
{
    (void)k;
}

void rne__conv_t_f32_ref(const rne__convcall *k)
{
    (void)k;
}

#endif /* RNE_NO_CONV */
