/*
 * vec.h - the float32 vector primitives every f32 kernel is built from (scalar C99, vec.c).
 *
 * A SIMD variant (vec_neon.c, vec_avx2.c, ...) defines the same names with the same contract and
 * replaces vec.c's definition of a name under one #if; the kernels never change.
 *
 * Contract shared by all of them:
 * - Deterministic: a result depends only on the operands, never on where an element sits in a
 *   vector, on how many rows one call covers, or on the batch size. rne_step (T = 1) and rne_run
 *   (T steps) therefore give the same bits, and so do batch B and B single streams.
 * - Sums run in the order written (no reassociation, no -ffast-math); scalar tails compute each
 *   element with exactly the operations of the blocked body.
 * - libm is used only for ELU (expm1f), SOFTPLUS (expf, log1pf), softmax / log-softmax (expf,
 *   logf) and, outside this file, LayerNorm (sqrtf). Sigmoid and tanh, which dominate the cells,
 *   are our own branch-free approximations (vec.c documents them): max abs error under 1e-7 over
 *   all floats against the exact function (the bound tested is 2e-7), saturating to exactly
 *   0/1 and -1/1, NaN in -> NaN out, tanh(-0) = -0.
 */
#ifndef RNE_VEC_H
#define RNE_VEC_H

#include <stddef.h>

/* c[i][j] += sum over p = 0..k-1, in that order, of x[i][p] * wt[p][j], for i < m, j < n.
 * Row strides (in floats): c ldc, x ldx, wt ldw. wt is a transposed weight matrix: row p holds
 * the weights of input p for every output j. c must not overlap x or wt. */
void rne__f32_gemm_acc(float *c, size_t ldc, const float *x, size_t ldx,
                       const float *wt, size_t ldw, size_t m, size_t n, size_t k);

/* x[i] = 1 / (1 + e^-x[i]), in place. */
void rne__f32_sigmoid(float *x, size_t n);

/* x[i] = tanh x[i], in place. */
void rne__f32_tanh(float *x, size_t n);

/* One element of the two functions above (same bits as the vector versions). */
float rne__f32_sigmoid1(float x);
float rne__f32_tanh1(float x);

/* x[i] = min(lim, max(-lim, x[i])), in place (NaN stays NaN). */
void rne__f32_clip(float *x, size_t n, float lim);

/* Apply an elementwise activation (RNE_ACT_IDENTITY .. RNE_ACT_CLIP) in place. alpha and beta as
 * in docs/format.md. Kinds outside that range are ignored (the loader refuses them). */
void rne__f32_act(float *x, size_t n, unsigned kind, float alpha, float beta);

/* Softmax / log-softmax of one feature vector, in place (max subtracted first; libm expf/logf). */
void rne__f32_softmax(float *x, size_t n);
void rne__f32_logsoftmax(float *x, size_t n);

#endif /* RNE_VEC_H */
