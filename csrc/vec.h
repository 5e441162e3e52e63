/*
 * vec.h - the float32 vector primitives every f32 kernel is built from.
 *
 * vec.c holds the scalar C99 reference (the *_scalar names below, always compiled) and defines
 * the names the kernels call from one of these variants, chosen at compile time by one #if:
 *   vec_avx512.h  x86-64 with AVX-512F and FMA (-mavx512f -mfma)
 *   vec_avx2.h    x86-64 with AVX2 and FMA     (-mavx2 -mfma)
 *   vec_neon.h    ARM with Advanced SIMD       (every aarch64; ARMv7 with -mfpu=neon-vfpv4 / neon)
 *   scalar        anything else, or when built with -DRNE_NO_SIMD
 * rne__f32_simd() names the variant compiled in; csrc/Makefile and rnnedge/_build.py pick the
 * flags for the machine they build on. The kernels never change with the variant.
 *
 * Contract shared by all variants:
 * - Deterministic: a result depends only on the operands, never on where an element sits in a
 *   vector, on how many rows or columns one call covers, or on the batch size. rne_step (T = 1)
 *   and rne_run (T steps) therefore give the same bits, and so do batch B and B single streams.
 * - Sums run in the order written (no reassociation, no -ffast-math): each element of a product
 *   is c, then + x[0] w[0], + x[1] w[1], ... in that order, in every variant.
 * - How a SIMD variant may differ from the reference (csrc/tests/test_vec.c checks each on the
 *   same operands, and each against a plain loop with its own rounding, bit for bit):
 *     gemm_acc  AVX-512, AVX2, aarch64 and ARMv7+FMA fuse each multiply-add (one rounding, not
 *               two) and so agree with each other bit for bit; ARMv7 without FMA multiplies and
 *               adds like the reference but flushes subnormals to zero (AArch32 NEON always
 *               does). |simd - scalar| <= 2 (k + 1) 2^-24 (|c| + sum_p |x[p] w[p]|), the
 *               rounding-error bound of either sum, twice.
 *     sigmoid,  the reference's method and constants evaluated with fused multiply-adds:
 *     tanh      within 1.2e-7 of the reference (over all 2^32 floats on AVX2: 1.19e-7; the same
 *               bits on AVX2, AVX-512 and aarch64), 2e-7 on ARMv7+FMA, whose vector divide is a
 *               refined reciprocal; as accurate as the reference against the exact function.
 *               ARMv7 without FMA uses the reference. The one-element versions go through the
 *               same lanes as the vector ones, so the two always agree bit for bit.
 * - libm is used only for ELU (expm1f), SOFTPLUS (expf, log1pf), softmax / log-softmax (expf,
 *   logf), the version-2 kinds SQRT, EXP, LOG, ERF, POW (sqrtf, expf, logf, erff, powf) and,
 *   outside this file, LayerNorm (sqrtf) and the graph op BINARY POW (powf). Sigmoid and tanh, which dominate the cells,
 *   are our own branch-free approximations (vec.c documents them): max abs error under 1e-7 over
 *   all floats against the exact function (the bound tested is 2e-7), saturating to exactly
 *   0/1 and -1/1, NaN in -> NaN out, tanh(-0) = -0.
 */
#ifndef RNE_VEC_H
#define RNE_VEC_H

#include <stddef.h>

/* c[i][j] += sum over p = 0..k-1, in that order, of x[i][p] * wt[p][j], for i < m, j < n.
 * Row strides (in floats): c ldc, x ldx, wt ldw. wt is a transposed weight matrix: row p holds
 * the weights of input p for every output j. c must not overlap x or wt. No alignment needed. */
void rne__f32_gemm_acc(float *c, size_t ldc, const float *x, size_t ldx,
                       const float *wt, size_t ldw, size_t m, size_t n, size_t k);

/* The one-row step kernels of a recurrent cell (issue 17: a step of a small cell is as much
 * overhead as arithmetic). Each gives the bits of the primitives it replaces, in every variant:
 *   gemv2_acc  c[j] += sum_p x[p] wx[p][j] (p < kx) for j < n, then += sum_q h[q] wh[q][j]
 *              (q < kh) for j < nh <= n: one row of rne__f32_gemm_acc over x, then one over h,
 *              the same fused or separate multiply-adds in the same order; a variant keeps the
 *              row in registers across both products when it is short (AVX2: n, nh multiples of
 *              8, n up to 128, in blocks of 64; AVX-512: of 16 up to 256, in blocks of 128, else
 *              AVX2's), else calls the two products.
 *              Rows of wx and wh are ldw floats apart. c overlaps none of the others.
 *   lstm_cell  an LSTM row with the default activations and neither peepholes, clip nor
 *              input_forget: g [4H] holds the pre-activations of i, o, f, c (overwritten); then
 *              c = sigmoid(f) c + sigmoid(i) tanh(gc) and h = sigmoid(o) tanh(c), c and h [H]
 *              updated in place: rne__f32_sigmoid and rne__f32_tanh of the variant and two plain
 *              products and a sum, one vector of H at a time (AVX2 and AVX-512 8 lanes, aarch64 4;
 *              the columns after the last whole vector, and the variants without
 *              vector sigmoid, take the same functions one gate slice at a time).
 *   gru_cell   a GRU row with linear_before_reset, the default activations (sigmoid, tanh) and
 *              no clip: g [3H] holds the pre-activations of z, r and the h gate's W x + Wbh
 *              (overwritten), t [H] its Rh h + Rbh; then n = tanh(gh + sigmoid(r) t) and
 *              h = (1 - sigmoid(z)) n + sigmoid(z) h, h [H] updated in place: as lstm_cell, the
 *              variant's sigmoid and tanh with plain products and sums, a vector at a time.
 * The cells' _scalar forms are the reference's (the scalar sigmoid and tanh; gemv2_acc's is two
 * rne__f32_gemm_acc_scalar rows): csrc/tests/test_vec.c checks each variant against the
 * composition of its own primitives bit for bit, and the cells against the reference within the
 * activations' bounds. */
void rne__f32_gemv2_acc(float *c, const float *x, size_t kx, const float *wx, const float *h,
                        size_t kh, const float *wh, size_t ldw, size_t n, size_t nh);
void rne__f32_lstm_cell(float *g, float *c, float *h, size_t hs);
void rne__f32_lstm_cell_scalar(float *g, float *c, float *h, size_t hs);
void rne__f32_gru_cell(float *g, const float *t, float *h, size_t hs);
void rne__f32_gru_cell_scalar(float *g, const float *t, float *h, size_t hs);

/* x[i] = 1 / (1 + e^-x[i]), in place. */
void rne__f32_sigmoid(float *x, size_t n);

/* x[i] = tanh x[i], in place. */
void rne__f32_tanh(float *x, size_t n);

/* One element of the two functions above (same bits as the vector versions). */
float rne__f32_sigmoid1(float x);
float rne__f32_tanh1(float x);

/* The scalar reference of the three primitives a SIMD variant replaces: always compiled, so that
 * a test can run both on the same operands. Each multiply-add is a multiply, then an add. */
void rne__f32_gemm_acc_scalar(float *c, size_t ldc, const float *x, size_t ldx,
                              const float *wt, size_t ldw, size_t m, size_t n, size_t k);
void rne__f32_sigmoid_scalar(float *x, size_t n);
void rne__f32_tanh_scalar(float *x, size_t n);

/* The variant compiled in: "avx512+fma", "avx2+fma", "neon-aarch64", "neon-armv7+fma",
 * "neon-armv7" or "scalar". */
const char *rne__f32_simd(void);

/* x[i] = min(lim, max(-lim, x[i])), in place (NaN stays NaN). */
void rne__f32_clip(float *x, size_t n, float lim);

/* Apply an elementwise activation (RNE_ACT_IDENTITY .. RNE_ACT_CLIP, and RNE_ACT_ABS ..
 * RNE_ACT_POW of format version 2, POW's exponent in alpha, unless built with
 * -DRNE_NO_GRAPH_OPS) in place. alpha and beta as in docs/format.md. Kinds outside those ranges
 * are ignored (the loader refuses them). */
void rne__f32_act(float *x, size_t n, unsigned kind, float alpha, float beta);

/* Softmax / log-softmax of one feature vector, in place (max subtracted first; libm expf/logf). */
void rne__f32_softmax(float *x, size_t n);
void rne__f32_logsoftmax(float *x, size_t n);

/* The graph op BINARY ADD / MUL of equal shapes (ops_f32.c): y[i] = a[i] + b[i] (mul 0) or
 * a[i] * b[i] (mul 1), i < n: one IEEE operation each, so the SIMD variant and the reference give
 * the same bits. y may be a or b. */
void rne__bin_f32(float *y, const float *a, const float *b, size_t n, int mul);
void rne__bin_f32_ref(float *y, const float *a, const float *b, size_t n, int mul);

#endif /* RNE_VEC_H */
