/*
 * qvec.h - the integer primitives of the fixed-point formats (docs/quantization.md §2-§3): the
 * one rounding rule, requantization, saturation, the table activations, and the matrix-vector
 * product every integer kernel (*_int.c) is built from.
 *
 * Integer-only: no float type appears here or in the integer kernels (`make intonly` compiles them
 * with every float register disabled, and for a Cortex-M0 without an FPU). Each function states the
 * ranges its operands must be in; rne_model_load has proved the blob's share of them (shifts in
 * 1..62, |accumulator| * |m| + 2^(shift-1) <= INT64_MAX for every row, acc32 only where every
 * column sum fits int32), and the kernels clamp the rest before the call. With those, no
 * expression below can overflow. The shifts, clamps and the acc32 choice come from the copies
 * rne_model_load made (rne_model_layer.q, .qshift), so they stay proved whatever happens to the
 * blob; what a step still reads from the blob (weights, multipliers, biases, tables) can change
 * after load, and then the products and sums wrap in unsigned arithmetic (rne__rq32, rne__rshr,
 * the scalar int32 column sums): other numbers, never undefined behaviour.
 */
#ifndef RNE_QVEC_H
#define RNE_QVEC_H

#include <stddef.h>
#include <stdint.h>

#include "rne_internal.h"

/* The rounding rule needs `>>` of a negative value to be an arithmetic (flooring) shift, which
 * C99 leaves implementation-defined: refuse to compile where it is not. */
extern char rne__arithmetic_shift_required[((-3 >> 1) == -2 && ((int64_t)-3 >> 1) == -2) ? 1 : -1];

#define RNE__Q_TABLE 257          /* entries of each constant table */
#define RNE__Q15_ONE 32768        /* 1.0 in Q0.15: an int32 transient only */
#define RNE__ZMAX 1048576         /* |gate pre-activation| <= 2^20 (units of 1/12288) */
#define RNE__RELU_FRAC 8          /* a ReLU RNN's pre-activation: units of s_h / 2^8 ... */
#define RNE__RELU_ZMAX 8388608    /*   ... clamped to |z| <= 2^23 (32768 units of s_h) */
#define RNE__SIG_LIMIT 131071     /* last sigmoid-table position: index 255, fraction 511 */
#define RNE__Q_SLOTS 24           /* leading int32 scalars of a layer's q tensor */

/* The constant tables (qtables.c, generated from rnnedge/fixedpoint.py): uint16[257] each. */
extern const uint16_t rne__q_sigmoid[RNE__Q_TABLE];  /* 65536 sigmoid(i/24), centred */
extern const uint16_t rne__q_exp2[RNE__Q_TABLE];     /* 32768 * 2^(-j/256) */
extern const uint16_t rne__q_log2[RNE__Q_TABLE];     /* 32768 * log2(1 + j/256) */

/* ---- scalars --------------------------------------------------------------------------------- */

/* rshr(v, n) = floor((v + 2^(n-1)) / 2^n), n in 1..62: round half up. v + 2^(n-1) must fit;
 * where it does not (weights changed after load, outside what rne_model_load proved), the sum
 * wraps (computed in uint64_t: other numbers, never undefined behaviour). */
static inline int64_t rne__rshr(int64_t v, unsigned n)
{
    return (int64_t)((uint64_t)v + ((uint64_t)1 << (n - 1u))) >> n;
}

/* log2(v) in Q15 for 1 <= v < 2^47 (fixedpoint.log2_q15): p = bit length - 1, the mantissa's
 * fraction fr = ((v - 2^p) << 16) >> p in Q16 (0..65535; the shifted difference < 2^62), p 32768
 * + the log2 table interpolated at fr (the integer Log, LogSoftmax, BINARY LOGHYPOT). At most
 * 46 * 32768 + 32768 < 2^21. */
static inline int32_t rne__log2_q15(int64_t v)
{
    int32_t p = 0, fr, i;
    while (p < 46 && (v >> (p + 1)) != 0)
        p++;
    fr = (int32_t)(((v - ((int64_t)1 << p)) << 16) >> p);
    i = fr >> 8;
    return p * 32768 + (((int32_t)rne__q_log2[i] * (256 - (fr & 255)) +
                         (int32_t)rne__q_log2[i + 1] * (fr & 255) + 128) >> 8);
}

/* floor(sqrt(v)), exact for every uint64 v: one result bit per step (the digit-by-digit method
 * in base 4), integers only (LayerNorm's 1 / sqrt, BINARY HYPOT and LOGHYPOT). */
static inline uint64_t rne__isqrt64(uint64_t v)
{
    uint64_t r = 0, bit = (uint64_t)1 << 62;
    if (v == 0)
        return 0;
#if defined(__GNUC__) && (defined(__x86_64__) || defined(__aarch64__))
    bit = (uint64_t)1 << ((unsigned)(63 - __builtin_clzll(v)) & ~1u);  /* the largest 4^k <= v */
#else
    while (bit > v)
        bit >>= 2;
#endif
    while (bit != 0) {              /* one digit a turn, without a branch (the test is random) */
        const uint64_t t = r + bit, take = (uint64_t)0 - (uint64_t)(v >= t);
        v -= t & take;
        r = (r >> 1) + (bit & take);
        bit >>= 2;
    }
    return r;
}

static inline int64_t rne__sat(int64_t v, int64_t lo, int64_t hi)
{
    return v < lo ? lo : v > hi ? hi : v;
}

static inline int32_t rne__sat32(int64_t v)
{
    return (int32_t)rne__sat(v, INT32_MIN, INT32_MAX);
}

static inline int16_t rne__sat16(int64_t v)
{
    return (int16_t)rne__sat(v, INT16_MIN, INT16_MAX);
}

/* rq32(v, m, shift) = sat32(rshr(v * m, shift)): v requantized by the real multiplier
 * m * 2^-shift. Needs shift in 1..62 and |v * m| + 2^(shift-1) <= INT64_MAX (proved at load for
 * the blob's multipliers; the product is formed in uint64_t, so that multipliers or weights
 * changed in the blob after load wrap instead of overflowing). */
static inline int32_t rne__rq32(int64_t v, int32_t m, unsigned shift)
{
    return rne__sat32(rne__rshr((int64_t)((uint64_t)v * (uint64_t)(int64_t)m), shift));
}

/* Linear interpolation in the sigmoid table at position a in 0..RNE__SIG_LIMIT (9 fraction bits),
 * one rounding: (T[i] (512 - f) + T[i+1] f + 2^(8+s)) >> (9 + s). At most 65535 * 512 < 2^25. */
static inline int32_t rne__sig_interp(int32_t a, unsigned s)
{
    const int32_t i = a >> 9, f = a & 511;
    const int32_t v = (int32_t)rne__q_sigmoid[i] * (512 - f) + (int32_t)rne__q_sigmoid[i + 1] * f;
    return (v + ((int32_t)1 << (8u + s))) >> (9u + s);
}

/* sigmoid of z (units of 1/12288, |z| <= 2^20) in Q0.15: 0..32767. */
static inline int32_t rne__sigmoid_q15(int32_t z)
{
    const int32_t mag = z < 0 ? -z : z;
    const int32_t s = rne__sig_interp(mag < RNE__SIG_LIMIT ? mag : RNE__SIG_LIMIT, 1);
    return z >= 0 ? (s < INT16_MAX ? s : INT16_MAX) : RNE__Q15_ONE - s;
}

/* 1 - sigmoid(x) = sigmoid(-x) of z (units of 1/12288, |z| <= 2^20) in Q0.31, 0..2^31 - 1:
 * s = sigmoid(|x|) in Q0.16 (32768..65535); z <= 0: s 2^15; z > 0: 2^(-|x| log2 e) s, with
 * t = rshr(|z| L2E_M, 24) (|x| log2 e in Q16), e = the exp2 table at t's fraction (Q0.15,
 * 16384..32768), rshr(s e, min(t >> 16, 32)) (s e < 2^31). A GRU's update gate near 1. */
#define RNE__L2E_M 129090167  /* round(log2(e) 2^16 / 12288 2^24) < 2^27: |z| m < 2^47 */
static inline int32_t rne__sigmoid_tail_q31(int32_t z)
{
    const int32_t a = z < 0 ? -z : z;
    const int64_t s = rne__sig_interp(a < RNE__SIG_LIMIT ? a : RNE__SIG_LIMIT, 0);
    int64_t t, e;
    unsigned k;
    int32_t i, f;
    if (z <= 0)
        return (int32_t)(s << 15);
    t = rne__rshr((int64_t)a * RNE__L2E_M, 24);
    i = (int32_t)((t & 65535) >> 8);
    f = (int32_t)(t & 255);
    e = ((int32_t)rne__q_exp2[i] * (256 - f) + (int32_t)rne__q_exp2[i + 1] * f + 128) >> 8;
    k = (t >> 16) < 32 ? (unsigned)(t >> 16) : 32u;
    return (int32_t)(k == 0 ? s * e : rne__rshr(s * e, k));
}

/* tanh of z (units of 1/12288, |z| <= 2^20) in Q0.15: -32767..32767. tanh x = 2 sigmoid(2x) - 1. */
static inline int32_t rne__tanh_q15(int32_t z)
{
    const int32_t mag = 2 * (z < 0 ? -z : z);
    const int32_t t =
        rne__sig_interp(mag < RNE__SIG_LIMIT ? mag : RNE__SIG_LIMIT, 0) - RNE__Q15_ONE;
    return z >= 0 ? t : -t;
}

/* ONNX HardSigmoid in Q0.15: sat(rq32(z, m, shift) + beta, 0, 32767). |z| < 2^31 (so
 * |z * m| <= 2^62), shift in 1..62. */
static inline int32_t rne__hardsigmoid_q15(int32_t z, int32_t m, unsigned shift, int32_t beta)
{
    return (int32_t)rne__sat((int64_t)rne__rq32(z, m, shift) + beta, 0, INT16_MAX);
}

/* A gate's (or a bounded hidden state's) activation, with its parameters from the q tensor. */
typedef struct rne__qgate {
    unsigned kind;      /* RNE_ACT_SIGMOID, _TANH, _HARDSIGMOID, or _RELU (RNN only) */
    int32_t m;          /* HARDSIGMOID: multiplier alpha * s_z * 2^15 ... */
    unsigned shift;     /*   ... its shift (1..62) ... */
    int32_t beta;       /*   ... and beta in Q0.15 */
} rne__qgate;

/* act(z) of a pre-activation already clamped to [-zlim, zlim] (|z| <= 2^20) -> Q0.15, or, for a
 * ReLU RNN (|z| <= 2^23, units of s_h / 256), the hidden state in its own units:
 * sat(rshr(z, 8), 0, 32767). */
static inline int32_t rne__qgate_apply(const rne__qgate *g, int32_t z)
{
    switch (g->kind) {
    case RNE_ACT_SIGMOID: return rne__sigmoid_q15(z);
    case RNE_ACT_TANH: return rne__tanh_q15(z);
    case RNE_ACT_HARDSIGMOID: return rne__hardsigmoid_q15(z, g->m, g->shift, g->beta);
    default:                                                        /* RELU, the only other kind */
        return (int32_t)rne__sat(rne__rshr(z, RNE__RELU_FRAC), 0, INT16_MAX);
    }
}

/* ---- whole rows of gates (qvec.c) ------------------------------------------------------------ */

/* z[j] = sat(a[j] + b[j] + c[j], -lim, lim) for j < n, the sum in int64: a gate's pre-activation
 * from its requantized terms and bias. z may be a, b or c (in place). */
void rne__q_pre(int32_t *z, const int32_t *a, const int32_t *b, const int32_t *c, int32_t lim,
                size_t n);

/* v[j] = rne__qgate_apply(g, v[j]) for j < n (each |v[j]| <= 2^20), in place: the same integers,
 * with one dispatch per row instead of per element (and sigmoid and tanh 8 at a time with AVX2,
 * 4 with NEON). */
void rne__q_act_rows(const rne__qgate *g, int32_t *v, size_t n);

/* v[j] = rne__sigmoid_tail_q31(v[j]) for j < n (each |v[j]| <= 2^20), in place (a GRU's update
 * gate; 8 at a time with AVX2). */
void rne__q_tail_rows(int32_t *v, size_t n);

/* ---- the matrix-vector product --------------------------------------------------------------- */

/* A weight matrix as the blob stores it, transposed: row p of W_t holds the weights of input p for
 * every output column. */
typedef struct rne__qmat {
    const void *w;      /* W_t[k][ldw]: int8_t (s8) or int16_t (s16) */
    size_t ldw;         /* row stride, in elements */
    int s8;             /* 1: int8 elements, 0: int16 */
    int acc32;          /* 1: every column's sum of |w| * 32768 fits int32 (proved at load) */
} rne__qmat;

/* out[j] = rq32(sum_{p < k} x[p] * W_t[p][c0 + j], m[j], shift) for j < n: the requantized
 * column sums. The sum is exact (int32 when w->acc32, else int64), so its order does not matter.
 * |x[p]| <= 32768; the load-time proof covers |sum| * |m[j]|. acc: scratch of n int64. */
void rne__q_matvec(int32_t *out, const int16_t *x, size_t k, const rne__qmat *w, size_t c0,
                   size_t n, const int32_t *m, unsigned shift, void *acc);

/* The same with the scalar reference code, whatever the build: the oracle of the SIMD variant
 * (csrc/tests/test_qvec.c); the two give the same integers. */
void rne__q_matvec_ref(int32_t *out, const int16_t *x, size_t k, const rne__qmat *w, size_t c0,
                       size_t n, const int32_t *m, unsigned shift, void *acc);

/* The variant qvec.c compiled in: "avx2", "avx2+avx512f" (AVX2 products, AVX-512F
 * requantization), "avx512bw" (the products 16 int32 lanes wide, qvec_avx512.h), "avx512bw+vnni"
 * (the same with vpdpwssd), "neon-aarch64", "neon-armv7", "arm-dsp" (the products with the DSP
 * extension's 16 x 16 multiply-accumulates: Cortex-M4/M7/M33, ARMv6) or "scalar". */
const char *rne__q_simd(void);

/* ---- the graph op BINARY ADD / MUL of equal shapes (ops_int.c) ----------------------------- */

/* y[i] = sat16(rshr(a[i] ma + b[i] mb, shift)) (mul 0: ADD) or sat16(rshr(a[i] b[i] ma, shift))
 * (mul 1: MUL) for i < n, in int64 (|.| <= 2^47 and 2^61: shift in 1..62 leaves room for the
 * rounding term). rne__bin_s16 is the SIMD variant qvec.c compiled in (AVX2, NEON), or the
 * reference; the two give the same integers (csrc/tests/test_ops.c). */
void rne__bin_s16(int16_t *y, const int16_t *a, const int16_t *b, size_t n, int mul, int32_t ma,
                  int32_t mb, unsigned shift);
void rne__bin_s16_ref(int16_t *y, const int16_t *a, const int16_t *b, size_t n, int mul,
                      int32_t ma, int32_t mb, unsigned shift);

/* ---- requantization of a run to int16 (CONV outputs) ----------------------------------------- */

/* y[i] = sat16(rq32(acc[i], m[i sm], shift) + b[i sm]) for i < n, sm 0 or 1: int32 sums
 * requantized with one multiplier and bias (sm 0: one output channel along W) or one per element
 * (sm 1: a channel each); b NULL: no bias. shift in 1..62; |acc m| <= 2^62, so nothing overflows.
 * rne__rq_s16 is the SIMD variant qvec.c compiled in (AVX-512F: 8 at a time, NEON: 4), or the
 * reference; the two give the same integers (csrc/tests/test_qvec.c). */
void rne__rq_s16(int16_t *y, const int32_t *acc, size_t n, const int32_t *m, const int32_t *b,
                 size_t sm, unsigned shift);
void rne__rq_s16_ref(int16_t *y, const int32_t *acc, size_t n, const int32_t *m, const int32_t *b,
                     size_t sm, unsigned shift);

/* ---- integer square roots of a run (BINARY HYPOT, LOGHYPOT) --------------------------------- */

/* v[i] = rne__isqrt64(v[i]) for i < n, each v[i] < 2^63, in place. rne__isqrt64_rows is the SIMD
 * variant qvec.c compiled in (AVX2: 8 values, aarch64 NEON: 4 values, the digit-by-digit method
 * in parallel lanes), or the reference; the two give the same integers (csrc/tests/test_qvec.c). */
void rne__isqrt64_rows(uint64_t *v, size_t n);
void rne__isqrt64_rows_ref(uint64_t *v, size_t n);

/* ---- layer plumbing (layers_int.c) ----------------------------------------------------------- */

/* One direction of an integer LSTM / GRU / RNN: pointers into its tensors and its q row; the
 * shifts, zlim and acc32 from the copies rne_model_load made (rne_model_layer.q, .qshift). */
typedef struct rne__cell_int {
    rne__qmat w, r;             /* W_t [I][G*H] and R_t [H][G*H] of this direction */
    const int32_t *bias;        /* [G*H]; a GRU with linear_before_reset: [4H], Rbh last */
    const int32_t *mw, *mr;     /* row multipliers of W x and of R h, [G*H] each */
    unsigned shift_w, shift_r;  /* their shifts, 1..62 */
    int32_t zlim;               /* gate pre-activations are clamped to [-zlim, zlim], <= 2^20 */
    const int16_t *peep;        /* LSTM peepholes [3][H] (i, o, f), or NULL */
    int32_t pm[3];              /* the peepholes' multipliers (i, o, f) ... */
    unsigned pshift;            /*   ... and shift */
    rne__qgate act[3];          /* LSTM f, g, h; GRU f, g; RNN f */
} rne__cell_int;

/* Fill *c for direction d of recurrent layer l (tensors as rne_model_load proved them). */
void rne__cell_int_fill(const rne_model_layer *l, size_t d, rne__cell_int *c);

/* The scratch of an integer layer (rne__call.work), each block 16-byte aligned; n = G*H for a
 * cell, out_features for DENSE, 0 otherwise:
 *   wx    int32 [rows][n]  cells: rq32(W x) of every step and batch row, one direction at a time
 *   acc   int64 [n]        the accumulators of one matrix-vector product
 *   rq    int32 [n]        its requantized column sums
 *   gate  int32 [2H]       GRU only: z and r of one row
 *   tmp   int16 [H]        GRU only: r . h of one row */
typedef struct rne__work_int {
    int32_t *wx;
    void *acc;
    int32_t *rq;
    int32_t *gate;
    int16_t *tmp;
} rne__work_int;

/* Carve `work` (rne__work_int_bytes(l, rows) bytes, rne_internal.h; 16-byte aligned) into
 * blocks. */
void rne__work_int_carve(void *work, const rne_model_layer *l, size_t rows, rne__work_int *w);

/* ---- the recurrent layers: one sequence loop (seq_int.c), a step per cell -------------------- */

/* One direction of an integer cell over a batch at one time: what a step needs beside the input
 * terms. rne__seq_int fills it once per direction. */
typedef struct rne__dir_int {
    rne__cell_int p;            /* this direction's weights, multipliers, activations */
    const rne__work_int *w;     /* the layer's scratch: acc, rq (and GRU's gate, tmp) */
    uint32_t flags;             /* the layer's RNE_LF_* (input_forget, linear_before_reset) */
    size_t hidden, batch;
    int16_t *h;                 /* [batch][H] Q0.15 (ReLU RNN: s_h units); in Ht-1, out Ht */
    int32_t *c;                 /* LSTM: [batch][H] Q11.20; NULL for GRU and RNN */
} rne__dir_int;

/* A cell's step at one time over the whole batch: wx [batch][G*H] holds rq32(W x) of each row
 * (no bias); the step adds R h and the bias, applies the gates and updates h (and c) in place.
 * Called once per time step and direction, never per row. */
typedef void (*rne__step_int)(const rne__dir_int *dir, const int32_t *wx);

/* The direction x time x batch loop of a recurrent layer (seq_int.c): per direction, the input
 * terms of every step in one pass, then `step` per time (backward for the reverse direction), each
 * row of h copied to y. w carved from k->work by rne__layer_int. */
void rne__seq_int(const rne__call *k, const rne__work_int *w, rne__step_int step);

/* A recurrent node over a per-step axis (RNE_LF_INNER): rne__inner_f32's rows, each sequence of
 * L rows run by rne__seq_int from a zero state; w->wx holds L rows of input terms, then the state
 * (h int16 at wx + L*G*H, c int32 rne__inner_state(l) words further; layers_int.c sizes it). */
void rne__inner_int(const rne__call *k, const rne__work_int *w, rne__step_int step);

/* The steps (lstm_int.c, gru_int.c, rnn_int.c); rne__layer_int passes one to rne__seq_int. */
void rne__lstm_int_step(const rne__dir_int *dir, const int32_t *wx);
void rne__gru_int_step(const rne__dir_int *dir, const int32_t *wx);
void rne__rnn_int_step(const rne__dir_int *dir, const int32_t *wx);

#endif /* RNE_QVEC_H */
