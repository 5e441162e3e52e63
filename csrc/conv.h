/*
 * conv.h - the convolution ops of format version 2 (docs/graph.md section 6): CONV (op 15, over
 * time with a causal frame cache and over one feature axis W) and CONV_T (op 16, ConvTranspose
 * over the feature axis W, time kernel 1), f32 (conv_f32.c) and integer (conv_int.c), and their
 * load-time checks (conv_check.c). A kernel trusts everything rne__check_conv proved.
 *
 * -DRNE_NO_CONV compiles them out (rne__check_conv then refuses a conv node with RNE_ELAYER,
 * field RNE_FF_OP, and the kernels are empty), so that firmware without convs does not grow.
 *
 * The record (docs/graph.md section 6): x [C_in] or [C_in, W] -> y [C_out] or [C_out, W_out]
 * (the same ndim). CONV params: 0 kt, 1 dt, 2 groups, 3 kw, 4 sw, 5 pad before, 6 pad after,
 * 7 dw. CONV_T params: the same with kt = dt = 1; its output_padding is not stored: y's W_out
 * gives it (0 .. max(sw, dw) - 1 more than the formula below).
 * Tensors: CONV W_t [(C_in / g) kt kw, C_out] (role 0: ONNX's W [C_out, C_in / g, kt, kw]
 * reshaped to [C_out, K] and transposed, so that row p = (c kt + j) kw + i holds the weights of
 * patch element p for every output channel: the layout of DENSE's W_t, which the matrix products
 * of vec.h / qvec.h take); CONV_T W [C_in, C_out / g, 1, kw] (ONNX's ConvTranspose); bias
 * [C_out] (role 2, optional). Integer: W s8 (fmt S8) or s16 (fmt S16), bias s32, q (role 6) s32
 * [24 + C_out]: slot 0 the shift, slot 2 acc32 (CONV only), slots 24 + co the multipliers.
 */
#ifndef RNE_CONV_H
#define RNE_CONV_H

#include "rne_internal.h"

/* One conv node applied to a chunk of `steps` steps of `batch` streams (rows = steps * batch,
 * row t * batch + b). x and y never overlap. */
typedef struct rne__convcall {
    const rne_model_layer *node;    /* op, fmt, data[role], q[8] */
    const int32_t *param;           /* the node's param[8] */
    const void *x;                  /* [rows][C_in][W] (f32 or int16) */
    void *y;                        /* [rows][C_out][W_out] */
    void *cache;                    /* CONV with kt > 1: the last F = (kt - 1) dt frames before
                                       the chunk, [F][batch][C_in W] oldest first (zeros at the
                                       stream's start); the kernel leaves the chunk's last F
                                       there. NULL when kt == 1 */
    void *work;                     /* rne__conv_work_bytes(...) bytes, 16-byte aligned */
    uint32_t c_in, w_in, c_out, w_out;  /* W = 1 for a [C] value */
    size_t steps, batch;
} rne__convcall;

/* Scratch bytes a conv node's kernel needs (independent of the rows): f32 CONV the patches and
 * products of one row [W_out][K + C_out / g], integer CONV one patch, its products and the
 * matrix product's accumulators, integer CONV_T int64 [C_out W_out]. */
size_t rne__conv_work_bytes(const rne_model_layer *node, uint32_t c_in, uint32_t w_in,
                            uint32_t c_out, uint32_t w_out);

/* Bytes of a CONV node's frame cache per stream: (kt - 1) dt C_in W elements (4 or 2 bytes). */
size_t rne__conv_cache_bytes(const rne_model_layer *node, uint32_t c_in, uint32_t w_in);

/* After a chunk: the cache keeps the last (kt - 1) dt frames of cache + chunk (elements of
 * `esize` bytes; conv_f32.c, integer-only code, shared by both kernels). */
void rne__conv_keep_tail(const rne__convcall *k, size_t esize);

/* p[q] = x[q - pb] for q < n, zeros where q - pb is outside [0, w) (elements of `esize` bytes;
 * conv_f32.c, integer-only code, shared by both kernels): an input row with its pads */
void rne__conv_pad_row(void *p, const void *x, size_t w, int64_t pb, size_t n, size_t esize);

void rne__conv_f32(const rne__convcall *k);
void rne__conv_int(const rne__convcall *k);

/* The tap-by-tap path of a stride-1 CONV over W (conv_f32.c), nc <= 8 output channels at once:
 *   y[q wout + wo] = b[q] + sum over r < nr, i < kw of w[(r kw + i) ldw + q] pad[r np + wo + i dw]
 * summed from b[q] in that order, a multiply then an add per term; pad holds nr padded input rows
 * of np >= wout + (kw - 1) dw elements, w the weights of channel q at w[p ldw + q]. rne__conv_taps
 * is the SIMD variant (AVX2: 8 or 4 channels, NEON: 4, each x 8 positions at a time; wout >= 8;
 * more than 4 channels elsewhere: blocks of 4), rne__conv_taps_ref the scalar loop: the same bits
 * (csrc/tests/test_conv.c). */
void rne__conv_taps(float *y, size_t wout, size_t nc, const float *b, const float *pad,
                    size_t np, size_t nr, size_t kw, size_t dw, const float *w, size_t ldw);
void rne__conv_taps_ref(float *y, size_t wout, size_t nc, const float *b, const float *pad,
                        size_t np, size_t nr, size_t kw, size_t dw, const float *w, size_t ldw);

/* Its integer form (conv_int.c, under acc32): acc[q wout + wo] = the int32 sum over r < nr,
 * i < kw of w[(r kw + i) ldw + q] pad[r np + wo + i dw] for q < nc, w int8 (s8) or int16; exact,
 * so the SIMD variant rne__qconv_taps32 (AVX2: nc 4 or 8, aarch64 NEON: nc 4; wout >= 8; other
 * shapes the scalar loop) and rne__qconv_taps32_ref agree bit for bit. */
void rne__qconv_taps32(int32_t *acc, size_t wout, size_t nc, const int16_t *pad, size_t np,
                       size_t nr, size_t kw, size_t dw, const void *w, int s8, size_t ldw);
void rne__qconv_taps32_ref(int32_t *acc, size_t wout, size_t nc, const int16_t *pad, size_t np,
                           size_t nr, size_t kw, size_t dw, const void *w, int s8, size_t ldw);

/* CONV_T's scalar references, always compiled (without RNE_NO_CONV), for the tests to run beside
 * the kernels above: f32 from the bias in ci, wi, i order (the kernel's vector path sums in ci, i,
 * wi order: the same terms, so within rounding), integer bit for bit what the kernel gives. */
void rne__conv_t_f32_ref(const rne__convcall *k);
void rne__conv_t_int_ref(const rne__convcall *k);

/* rne_model_load's checks of a conv node (conv_check.c lists them): params, the shapes of x
 * and y (C_in and C_out divisible by groups, W_out by the formula), the LAST flags, its tensors'
 * dtype / ndim / shape / zero point, and for an integer node every q slot and every output
 * channel's bound 32768 sum |w| times its multiplier (int32 under acc32). `vals` as for
 * rne__check_op (ops.h). RNE_OK, or RNE__AT(status, field) with w->tensor / role / index. */
int rne__check_conv(const rne__blobview *m, const rne_node *n, const rne_value *vals,
                    rne_fault *w);

/* A CONV over W with stride 1 and at least RNE__CONV_DIRECT_W output positions goes tap by tap
 * along W (conv_f32.c, conv_int.c: its input rows padded once, then every tap a multiply-add over
 * all output positions), a narrower or strided one through a patch per output position and a
 * matrix product. Its work (rne__conv_work_bytes) holds the padded rows of one group,
 * (C_in / g) kt (W_out + (kw - 1) dw) elements, and integer accumulators [C_out][W_out]; the
 * load check bounds both by 2^26 elements. */
#define RNE__CONV_DIRECT_W 8u

static inline int rne__conv_direct(unsigned op, const int32_t *param, uint64_t w_out)
{
    return op == RNE_OP_CONV && param[4] == 1 && w_out >= RNE__CONV_DIRECT_W;
}

/* The indices n in [lo, hi) of [0, count) whose position n s + off lies in [0, limit) (lo = hi
 * when none does; s >= 1). CONV: n an output position, the position an input one; CONV_T: n an
 * input position, the position an output one. */
static inline void rne__conv_span(int64_t off, uint64_t s, uint64_t limit, uint64_t count,
                                  size_t *lo, size_t *hi)
{
    const int64_t st = (int64_t)s, rest = (int64_t)limit - off;
    int64_t a = off >= 0 ? 0 : st == 1 ? -off : (-off + st - 1) / st;   /* no divide at stride 1 */
    int64_t z = rest <= 0 ? 0 : st == 1 ? rest : (rest + st - 1) / st;
    if (z > (int64_t)count)
        z = (int64_t)count;
    if (a > z)
        a = z;
    *lo = (size_t)a;
    *hi = (size_t)z;
}

/* W_out of CONV: floor((W + pb + pa - dw (kw - 1) - 1) / sw) + 1, or 0 if the padded input is
 * shorter than the dilated kernel; of CONV_T without output padding: (W - 1) sw - pb - pa +
 * dw (kw - 1) + 1, or 0 if that is < 1. In int64_t: nothing a checked param makes it wrap. */
static inline uint64_t rne__conv_w_out(int transpose, uint64_t w, const int32_t *p)
{
    const int64_t kw = p[3], sw = p[4], pb = p[5], pa = p[6], dw = p[7];
    int64_t span, v;
    if (!transpose) {
        span = (int64_t)w + pb + pa - dw * (kw - 1);
        return span < 1 ? 0u : (uint64_t)((span - 1) / sw + 1);
    }
    v = ((int64_t)w - 1) * sw - pb - pa + dw * (kw - 1) + 1;
    return v < 1 ? 0u : (uint64_t)v;
}

#endif /* RNE_CONV_H */
