/*
 * test_vec.c - the SIMD variant compiled into the library (vec.h) against the scalar reference,
 * on the same operands. Built and run with every variant: AVX-512, AVX2, NEON (aarch64, ARMv7
 * with and without fused multiply-add) and scalar, where the comparisons are trivial but the
 * oracles not.
 *
 *   test_vec            one line per test ("ok   name" / "FAIL name: why"), then
 *                       "N passed, M failed"; exits non-zero if anything failed
 *   test_vec --bench    also times the variant against the reference (not a test)
 *
 * Matrix product (rne__f32_gemm_acc), on shapes that reach every path of every variant: one to
 * nine rows (row kernel, 4-row tiles, remainders), widths below, at and across a vector, a tile
 * and a column panel, depths 0 .. 300, row strides wider than the rows:
 * - bit for bit equal to a plain loop with the variant's own rounding: fmaf() for the fused
 *   variants, a multiply then an add otherwise (so neither blocking, nor tails, nor the number
 *   of rows may change a bit);
 * - within vec.h's bound of the scalar reference:
 *   |simd - scalar| <= 2 (k + 1) 2^-24 (|c| + sum_p |x[p] w[p]|) + (k + 1) FLT_MIN;
 * - the scalar reference bit for bit equal to the multiply-then-add loop;
 * - nothing written outside the m x n block of c (guards around and between rows), nothing read
 *   from x past column k - 1 (NaN there would show).
 * The one-row step kernels (rne__f32_gemv2_acc, rne__f32_lstm_cell):
 * - gemv2_acc bit for bit equal to two rows of rne__f32_gemm_acc (over x, then h's first nh
 *   columns), on rows that stay in registers (every block size of AVX2 and AVX-512), that do not
 *   (too long, not whole vectors) and on weights off a 64-byte boundary; nothing written outside c;
 * - lstm_cell bit for bit equal to the variant's sigmoid / tanh with plain loops (written out
 *   here), its _scalar form to the reference's; within (|c| + 2) 1.3e-7 + 4e-7 |c| (c) and 2.6e-7
 *   more (h) of the scalar form, which is the activations' 1.2e-7 carried through; every H from
 *   1 to 128 across the vector widths; nothing written outside c and h. gru_cell likewise
 *   (h within 1.3e-7 (2 + 2 |t| + |h|) + 2.4e-7 of the scalar form; nothing written outside h).
 * Sigmoid and tanh (rne__f32_sigmoid / rne__f32_tanh):
 * - against the reference on 2^20 points of [-100, 100], every power of two and its neighbours
 *   and the special values: |simd - scalar| <= 1.2e-7 (exact division; measured over all 2^32
 *   floats on AVX2: 1.19e-7) or 2e-7 (ARMv7's refined reciprocal), NaN exactly where the
 *   reference has NaN, saturated values (0, 1, -1, +-0) exactly equal;
 * - against double-precision libm on the same points: max abs error <= 2e-7;
 * - every length 0 .. 40 at offsets 0 .. 3: each element equal to the one-element version
 *   (rne__f32_sigmoid1, rne__f32_tanh1), and nothing outside [0, n) written.
 */
#define _POSIX_C_SOURCE 200809L

#include <float.h>
#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "testutil.h"
#include "vec.h"

#ifdef __clang__
#pragma STDC FP_CONTRACT OFF    /* the loops below are the unfused oracle: a * b, then + */
#endif

#define GUARD 8                         /* guard floats around every buffer */
#define SENTINEL -12345.678f

/* 64-byte aligned, like the tensors of a blob written with the default alignment */
static float *xmalloc_aligned(size_t n)
{
    void *p = NULL;
    if (posix_memalign(&p, 64, n == 0 ? 64 : n) != 0)
        out_of_memory();
    return p;
}

static int same_bits(float a, float b)
{
    return memcmp(&a, &b, sizeof a) == 0;
}

/* The variants whose gemm fuses each multiply-add (vec.h). */
static int variant_fused(void)
{
    const char *v = rne__f32_simd();
    return strcmp(v, "avx512+fma") == 0 || strcmp(v, "avx2+fma") == 0 ||
           strcmp(v, "neon-aarch64") == 0 || strcmp(v, "neon-armv7+fma") == 0;
}

/* ---- matrix product -------------------------------------------------------------------------- */

/* m x n += (m x k)(k x n); woff > 0: every row of wt starts woff floats past a 64-byte boundary
 * (ldw a multiple of 16), the case in which a variant computes the columns up to the boundary
 * apart; else ldw = n + 7 and rows start wherever that puts them */
typedef struct gemm_case {
    size_t m, n, k, woff;
} gemm_case;

static const gemm_case gemm_cases[] = {
    { 1, 1, 1, 0 }, { 1, 3, 5, 0 }, { 1, 4, 8, 0 }, { 1, 7, 9, 0 }, { 1, 8, 3, 0 },
    { 1, 9, 4, 0 }, { 1, 17, 12, 0 }, { 1, 128, 32, 0 }, { 1, 512, 40, 0 }, { 1, 300, 17, 0 },
    { 1, 1030, 11, 0 }, { 1, 64, 300, 0 }, { 2, 33, 7, 0 }, { 3, 17, 5, 0 }, { 4, 16, 16, 0 },
    { 4, 15, 9, 0 }, { 4, 24, 8, 0 }, { 5, 33, 4, 0 }, { 7, 16, 16, 0 }, { 8, 257, 6, 0 },
    { 9, 520, 13, 0 }, { 6, 5, 40, 0 }, { 4, 3, 2, 0 }, { 12, 600, 33, 0 },
    { 1, 128, 32, 4 }, { 1, 100, 9, 12 }, { 1, 5, 8, 3 }, { 2, 64, 17, 1 }, { 1, 40, 16, 9 },
    { 2, 5, 0, 0 }, { 5, 40, 0, 0 }, { 0, 7, 3, 0 }, { 1, 0, 4, 0 },
};

/* the same c in four copies (SIMD, scalar, the variant's loop, the multiply-then-add loop), with
 * guards around them; the rows of x padded with NaN */
#define NCOPY 4

typedef struct gemm_bufs {
    size_t m, n, k, ldc, ldx, ldw;
    float *c[NCOPY], *x, *w, *w_base;
} gemm_bufs;

static void gemm_setup(gemm_bufs *g, const gemm_case *t, uint32_t *seed)
{
    const size_t len = t->m * (t->n + 5) + 2 * GUARD;
    size_t i, j, v;
    g->m = t->m, g->n = t->n, g->k = t->k;
    g->ldc = t->n + 5, g->ldx = t->k + 3, g->ldw = t->woff > 0 ? (t->n + 15) / 16 * 16 : t->n + 7;
    for (v = 0; v < NCOPY; v++) {
        g->c[v] = (float *)xmalloc(len * sizeof(float)) + GUARD;
        for (i = 0; i < len; i++)
            g->c[v][(ptrdiff_t)i - GUARD] = SENTINEL;
    }
    for (i = 0; i < t->m; i++)
        for (j = 0; j < t->n; j++) {
            const float c = lcg_float(seed);
            for (v = 0; v < NCOPY; v++)
                g->c[v][i * g->ldc + j] = c;
        }
    g->x = xmalloc((t->m * g->ldx + 1) * sizeof(float));
    g->w_base = xmalloc_aligned((t->k * g->ldw + 16) * sizeof(float));
    g->w = g->w_base + t->woff;
    for (i = 0; i < t->m * g->ldx; i++)
        g->x[i] = i % g->ldx < t->k ? lcg_float(seed) : NAN;
    for (i = 0; i < t->k * g->ldw; i++)
        g->w[i] = lcg_float(seed);
}

static void gemm_free(gemm_bufs *g)
{
    size_t v;
    for (v = 0; v < NCOPY; v++)
        free(g->c[v] - GUARD);
    free(g->x);
    free(g->w_base);
}

/* c[v] += x wt by the plain loop; fused: fmaf, else a multiply then an add */
static void gemm_loop(gemm_bufs *g, size_t v, int fused)
{
    size_t i, j, p;
    for (i = 0; i < g->m; i++)
        for (j = 0; j < g->n; j++) {
            float a = g->c[v][i * g->ldc + j];
            for (p = 0; p < g->k; p++) {
                const float xv = g->x[i * g->ldx + p], wv = g->w[p * g->ldw + j];
                a = fused ? fmaf(xv, wv, a) : a + xv * wv;
            }
            g->c[v][i * g->ldc + j] = a;
        }
}

/* vec.h's bound on |simd - scalar| for element (i, j), from the operands before the call */
static double gemm_bound(const gemm_bufs *g, size_t i, size_t j)
{
    double s = fabs((double)g->c[3][i * g->ldc + j]);
    size_t p;
    for (p = 0; p < g->k; p++)
        s += fabs((double)g->x[i * g->ldx + p] * (double)g->w[p * g->ldw + j]);
    return 2.0 * (double)(g->k + 1) * ldexp(1.0, -24) * s + (double)(g->k + 1) * (double)FLT_MIN;
}

/* 1 if every float of c[v] outside the m x n block still holds the sentinel */
static int gemm_guards_ok(const gemm_bufs *g, size_t v)
{
    const size_t len = g->m * g->ldc + 2 * GUARD;
    size_t i;
    for (i = 0; i < len; i++) {
        const int inside = i >= GUARD && (i - GUARD) / g->ldc < g->m && (i - GUARD) % g->ldc < g->n;
        if (!inside && g->c[v][(ptrdiff_t)i - GUARD] != SENTINEL)
            return 0;
    }
    return 1;
}

static void test_gemm(void)
{
    const int fused = variant_fused();
    uint32_t seed = 2024u;
    int ok[4] = { 1, 1, 1, 1 };     /* loop, bound, reference, guards */
    char why[4][200] = { "", "", "", "" };
    double worst = 0.0;             /* largest |simd - scalar| as a fraction of the bound */
    size_t t, i, j;
    for (t = 0; t < sizeof gemm_cases / sizeof gemm_cases[0]; t++) {
        gemm_bufs g;
        gemm_setup(&g, &gemm_cases[t], &seed);
        rne__f32_gemm_acc(g.c[0], g.ldc, g.x, g.ldx, g.w, g.ldw, g.m, g.n, g.k);
        rne__f32_gemm_acc_scalar(g.c[1], g.ldc, g.x, g.ldx, g.w, g.ldw, g.m, g.n, g.k);
        for (i = 0; i < g.m; i++)
            for (j = 0; j < g.n; j++) {
                const double b = gemm_bound(&g, i, j);   /* reads c[3] before the loop runs */
                const float s = g.c[0][i * g.ldc + j], r = g.c[1][i * g.ldc + j];
                const double d = fabs((double)s - (double)r);
                if (ok[1] && !(d <= b)) {
                    ok[1] = 0;
                    snprintf(why[1], sizeof why[1], "m %zu n %zu k %zu: c[%zu][%zu] = %.9g, "
                             "scalar %.9g, bound %.3g", g.m, g.n, g.k, i, j, (double)s,
                             (double)r, b);
                }
                worst = d / b > worst ? d / b : worst;
            }
        gemm_loop(&g, 2, fused);
        gemm_loop(&g, 3, 0);
        for (i = 0; i < g.m; i++)
            for (j = 0; j < g.n; j++) {
                const size_t at = i * g.ldc + j;
                if (ok[0] && !same_bits(g.c[0][at], g.c[2][at])) {
                    ok[0] = 0;
                    snprintf(why[0], sizeof why[0], "m %zu n %zu k %zu: c[%zu][%zu] = %.9g, "
                             "loop %.9g", g.m, g.n, g.k, i, j, (double)g.c[0][at],
                             (double)g.c[2][at]);
                }
                if (ok[2] && !same_bits(g.c[1][at], g.c[3][at])) {
                    ok[2] = 0;
                    snprintf(why[2], sizeof why[2], "m %zu n %zu k %zu: c[%zu][%zu] = %.9g, "
                             "loop %.9g", g.m, g.n, g.k, i, j, (double)g.c[1][at],
                             (double)g.c[3][at]);
                }
            }
        if (ok[3] && !(gemm_guards_ok(&g, 0) && gemm_guards_ok(&g, 1))) {
            ok[3] = 0;
            snprintf(why[3], sizeof why[3], "m %zu n %zu k %zu: a float outside the block changed",
                     g.m, g.n, g.k);
        }
        gemm_free(&g);
    }
    check(ok[0], fused ? "gemm_equals_fused_loop" : "gemm_equals_mul_add_loop", "%s", why[0]);
    check(ok[1], "gemm_within_bound_of_scalar", "%s", why[1]);
    check(ok[2], "gemm_scalar_equals_mul_add_loop", "%s", why[2]);
    check(ok[3], "gemm_writes_only_the_block", "%s", why[3]);
    printf("note gemm (%s): largest |simd - scalar| is %.3g of the bound\n",
           fused ? "fused" : "unfused", worst);
}

/* ---- the one-row step kernels (gemv2_acc, lstm_cell) ---------------------------------------- */

/* c[n] += x wx (kx rows), then the first nh columns += h wh (kh rows); ldw = n + pad, wx and wh
 * starting woff floats past a 64-byte boundary */
typedef struct gemv2_case {
    size_t n, nh, kx, kh, pad, woff;
} gemv2_case;

static const gemv2_case gemv2_cases[] = {
    { 32, 32, 40, 8, 0, 0 }, { 24, 16, 40, 8, 0, 0 }, { 64, 64, 40, 16, 0, 0 },
    { 128, 128, 40, 32, 0, 0 }, { 96, 64, 40, 32, 0, 0 }, { 256, 256, 40, 64, 0, 0 },
    { 256, 128, 7, 64, 0, 0 }, { 72, 72, 3, 9, 0, 0 }, { 48, 48, 40, 12, 0, 0 },
    { 120, 80, 5, 40, 0, 0 }, { 512, 512, 40, 128, 0, 0 }, { 40, 40, 5, 3, 0, 0 },
    { 12, 8, 4, 4, 0, 0 }, { 8, 0, 3, 5, 0, 0 }, { 16, 16, 0, 0, 0, 0 }, { 32, 32, 40, 8, 8, 0 },
    { 32, 32, 40, 8, 0, 4 }, { 128, 128, 17, 32, 16, 12 }, { 3, 3, 2, 1, 0, 0 },
};

static void test_gemv2(void)
{
    uint32_t seed = 77u;
    int ok[2] = { 1, 1 };           /* equal to two gemm rows, guards */
    char why[2][200] = { "", "" };
    size_t t, j;
    for (t = 0; t < sizeof gemv2_cases / sizeof gemv2_cases[0]; t++) {
        const gemv2_case *q = &gemv2_cases[t];
        const size_t ldw = q->n + q->pad, len = q->n + 2 * GUARD;
        float *c0 = xmalloc(len * sizeof(float)), *c1 = xmalloc(len * sizeof(float));
        float *x = xmalloc((q->kx + 1) * sizeof(float)), *h = xmalloc((q->kh + 1) * sizeof(float));
        float *wx = xmalloc_aligned((q->kx * ldw + 16) * sizeof(float));
        float *wh = xmalloc_aligned((q->kh * ldw + 16) * sizeof(float));
        for (j = 0; j < len; j++)
            c0[j] = c1[j] = j < GUARD || j >= GUARD + q->n ? SENTINEL : lcg_float(&seed);
        for (j = 0; j <= q->kx; j++)
            x[j] = j < q->kx ? lcg_float(&seed) : NAN;     /* nothing read past kx - 1 */
        for (j = 0; j <= q->kh; j++)
            h[j] = j < q->kh ? lcg_float(&seed) : NAN;
        for (j = 0; j < q->kx * ldw + 16; j++)
            wx[j] = lcg_float(&seed);
        for (j = 0; j < q->kh * ldw + 16; j++)
            wh[j] = lcg_float(&seed);
        rne__f32_gemv2_acc(c0 + GUARD, x, q->kx, wx + q->woff, h, q->kh, wh + q->woff, ldw, q->n,
                           q->nh);
        rne__f32_gemm_acc(c1 + GUARD, q->n, x, q->kx, wx + q->woff, ldw, 1, q->n, q->kx);
        rne__f32_gemm_acc(c1 + GUARD, q->nh, h, q->kh, wh + q->woff, ldw, 1, q->nh, q->kh);
        for (j = 0; j < len; j++) {
            const int inside = j >= GUARD && j < GUARD + q->n;
            if (ok[0] && inside && !same_bits(c0[j], c1[j])) {
                ok[0] = 0;
                snprintf(why[0], sizeof why[0], "n %zu nh %zu kx %zu kh %zu: c[%zu] = %.9g, two "
                         "rows %.9g", q->n, q->nh, q->kx, q->kh, j - GUARD, (double)c0[j],
                         (double)c1[j]);
            }
            if (ok[1] && !inside && !same_bits(c0[j], SENTINEL)) {
                ok[1] = 0;
                snprintf(why[1], sizeof why[1], "n %zu nh %zu: a float outside c changed", q->n,
                         q->nh);
            }
        }
        free(c0), free(c1), free(x), free(h), free(wx), free(wh);
    }
    check(ok[0], "gemv2_equals_two_gemm_rows", "%s", why[0]);
    check(ok[1], "gemv2_writes_only_c", "%s", why[1]);
}

/* The LSTM row of the composition vec.h describes, written out: sig / th on each gate slice,
 * c = f c + i t, h = o tanh(c) (plain C: a product, a product, a sum). */
static void lstm_cell_oracle(float *g, float *c, float *h, size_t hs,
                             void (*sig)(float *, size_t), void (*th)(float *, size_t))
{
    size_t j;
    sig(g, 3 * hs);
    th(g + 3 * hs, hs);
    for (j = 0; j < hs; j++) {
        const float fc = g[2 * hs + j] * c[j], it = g[j] * g[3 * hs + j];
        c[j] = fc + it;
        g[3 * hs + j] = c[j];
    }
    th(g + 3 * hs, hs);
    for (j = 0; j < hs; j++)
        h[j] = g[hs + j] * g[3 * hs + j];
}

static void test_lstm_cell(void)
{
    static const size_t sizes[] = { 1, 3, 4, 5, 7, 8, 9, 12, 16, 17, 31, 32, 33, 64, 128 };
    uint32_t seed = 99u;
    int ok[4] = { 1, 1, 1, 1 };     /* variant = oracle, scalar = oracle, bound, guards */
    char why[4][200] = { "", "", "", "" };
    double worst = 0.0;
    size_t t, j, rep;
    for (t = 0; t < sizeof sizes / sizeof sizes[0]; t++)
        for (rep = 0; rep < 20; rep++) {
            const size_t hs = sizes[t], len = hs + 2 * GUARD;
            float *g[4], *c[4], *h[4];
            size_t v;
            for (v = 0; v < 4; v++) {
                g[v] = xmalloc(4 * hs * sizeof(float));
                c[v] = xmalloc(len * sizeof(float));
                h[v] = xmalloc(len * sizeof(float));
            }
            for (j = 0; j < 4 * hs; j++) {       /* pre-activations over [-12, 12], some huge */
                const float a = 12.0f * lcg_float(&seed);
                g[0][j] = rep == 19 && j % 5 == 0 ? 100.0f * a : a;
                for (v = 1; v < 4; v++)
                    g[v][j] = g[0][j];
            }
            for (j = 0; j < len; j++) {
                const int inside = j >= GUARD && j < GUARD + hs;
                const float c0 = inside ? 4.0f * lcg_float(&seed) : SENTINEL;
                for (v = 0; v < 4; v++)
                    c[v][j] = c0, h[v][j] = inside ? 0.0f : SENTINEL;
            }
            rne__f32_lstm_cell(g[0], c[0] + GUARD, h[0] + GUARD, hs);
            lstm_cell_oracle(g[1], c[1] + GUARD, h[1] + GUARD, hs, rne__f32_sigmoid, rne__f32_tanh);
            rne__f32_lstm_cell_scalar(g[2], c[2] + GUARD, h[2] + GUARD, hs);
            lstm_cell_oracle(g[3], c[3] + GUARD, h[3] + GUARD, hs, rne__f32_sigmoid_scalar,
                             rne__f32_tanh_scalar);
            for (j = GUARD; j < GUARD + hs; j++) {
                /* each activation within 1.2e-7 of the reference's: c within (|c| + 2) of
                 * that (the products' roundings aside), h within 2.4e-7 more */
                const double dc = fabs((double)c[0][j] - (double)c[2][j]);
                const double dh = fabs((double)h[0][j] - (double)h[2][j]);
                const double bc = 1.3e-7 * (fabs((double)c[2][j]) + 2.0) + 4e-7 * fabs((double)c[2][j]);
                const double bh = 2.6e-7 + bc;
                if (ok[0] && !(same_bits(c[0][j], c[1][j]) && same_bits(h[0][j], h[1][j]))) {
                    ok[0] = 0;
                    snprintf(why[0], sizeof why[0], "H %zu, column %zu: c %.9g h %.9g, oracle "
                             "c %.9g h %.9g", hs, j - GUARD, (double)c[0][j], (double)h[0][j],
                             (double)c[1][j], (double)h[1][j]);
                }
                if (ok[1] && !(same_bits(c[2][j], c[3][j]) && same_bits(h[2][j], h[3][j]))) {
                    ok[1] = 0;
                    snprintf(why[1], sizeof why[1], "H %zu, column %zu: scalar c %.9g h %.9g, "
                             "oracle c %.9g h %.9g", hs, j - GUARD, (double)c[2][j],
                             (double)h[2][j], (double)c[3][j], (double)h[3][j]);
                }
                if (ok[2] && !(dc <= bc && dh <= bh)) {
                    ok[2] = 0;
                    snprintf(why[2], sizeof why[2], "H %zu, column %zu: |dc| %.3g (bound %.3g), "
                             "|dh| %.3g (bound %.3g)", hs, j - GUARD, dc, bc, dh, bh);
                }
                worst = dh > worst ? dh : worst;
            }
            for (j = 0; j < len; j++)
                if (ok[3] && (j < GUARD || j >= GUARD + hs) &&
                    !(same_bits(c[0][j], SENTINEL) && same_bits(h[0][j], SENTINEL))) {
                    ok[3] = 0;
                    snprintf(why[3], sizeof why[3], "H %zu: a float outside c or h changed", hs);
                }
            for (v = 0; v < 4; v++)
                free(g[v]), free(c[v]), free(h[v]);
        }
    check(ok[0], "lstm_cell_equals_its_primitives", "%s", why[0]);
    check(ok[1], "lstm_cell_scalar_equals_the_reference_primitives", "%s", why[1]);
    check(ok[2], "lstm_cell_within_bound_of_scalar", "%s", why[2]);
    check(ok[3], "lstm_cell_writes_only_c_and_h", "%s", why[3]);
    printf("note lstm_cell (%s): largest |h - scalar h| %.3g\n", rne__f32_simd(), worst);
}

/* The GRU row of vec.h's gru_cell, written out: sig on z and r, gh + r t, th, then
 * (1 - z) n + z h. */
static void gru_cell_oracle(float *g, const float *t, float *h, size_t hs,
                            void (*sig)(float *, size_t), void (*th)(float *, size_t))
{
    size_t j;
    sig(g, 2 * hs);
    for (j = 0; j < hs; j++) {
        const float rt = g[hs + j] * t[j];
        g[2 * hs + j] = g[2 * hs + j] + rt;
    }
    th(g + 2 * hs, hs);
    for (j = 0; j < hs; j++) {
        const float a = (1.0f - g[j]) * g[2 * hs + j], b = g[j] * h[j];
        h[j] = a + b;
    }
}

static void test_gru_cell(void)
{
    static const size_t sizes[] = { 1, 3, 4, 5, 7, 8, 9, 12, 16, 17, 31, 32, 33, 64, 128 };
    uint32_t seed = 7u;
    int ok[4] = { 1, 1, 1, 1 };     /* variant = oracle, scalar = oracle, bound, guards */
    char why[4][200] = { "", "", "", "" };
    double worst = 0.0;
    size_t t, j, rep;
    for (t = 0; t < sizeof sizes / sizeof sizes[0]; t++)
        for (rep = 0; rep < 20; rep++) {
            const size_t hs = sizes[t], len = hs + 2 * GUARD;
            float *g[4], *h[4], *tt = xmalloc(hs * sizeof(float));
            size_t v;
            for (v = 0; v < 4; v++) {
                g[v] = xmalloc(3 * hs * sizeof(float));
                h[v] = xmalloc(len * sizeof(float));
            }
            for (j = 0; j < 3 * hs; j++) {
                const float a = 12.0f * lcg_float(&seed);
                g[0][j] = rep == 19 && j % 5 == 0 ? 100.0f * a : a;
                for (v = 1; v < 4; v++)
                    g[v][j] = g[0][j];
            }
            for (j = 0; j < hs; j++)
                tt[j] = 3.0f * lcg_float(&seed);
            for (j = 0; j < len; j++) {
                const int inside = j >= GUARD && j < GUARD + hs;
                const float h0 = inside ? lcg_float(&seed) : SENTINEL;
                for (v = 0; v < 4; v++)
                    h[v][j] = h0;
            }
            rne__f32_gru_cell(g[0], tt, h[0] + GUARD, hs);
            gru_cell_oracle(g[1], tt, h[1] + GUARD, hs, rne__f32_sigmoid, rne__f32_tanh);
            rne__f32_gru_cell_scalar(g[2], tt, h[2] + GUARD, hs);
            gru_cell_oracle(g[3], tt, h[3] + GUARD, hs, rne__f32_sigmoid_scalar,
                            rne__f32_tanh_scalar);
            for (j = GUARD; j < GUARD + hs; j++) {
                /* z, r, n each within 1.2e-7 of the reference's; r's carried through t */
                const double dh = fabs((double)h[0][j] - (double)h[2][j]);
                const double bh = 1.3e-7 * (2.0 + 2.0 * fabs((double)tt[j - GUARD]) +
                                            fabs((double)h[2][j])) + 2.4e-7;
                if (ok[0] && !same_bits(h[0][j], h[1][j])) {
                    ok[0] = 0;
                    snprintf(why[0], sizeof why[0], "H %zu, column %zu: h %.9g, oracle %.9g", hs,
                             j - GUARD, (double)h[0][j], (double)h[1][j]);
                }
                if (ok[1] && !same_bits(h[2][j], h[3][j])) {
                    ok[1] = 0;
                    snprintf(why[1], sizeof why[1], "H %zu, column %zu: scalar h %.9g, oracle "
                             "%.9g", hs, j - GUARD, (double)h[2][j], (double)h[3][j]);
                }
                if (ok[2] && !(dh <= bh)) {
                    ok[2] = 0;
                    snprintf(why[2], sizeof why[2], "H %zu, column %zu: |dh| %.3g (bound %.3g)",
                             hs, j - GUARD, dh, bh);
                }
                worst = dh > worst ? dh : worst;
            }
            for (j = 0; j < len; j++)
                if (ok[3] && (j < GUARD || j >= GUARD + hs) && !same_bits(h[0][j], SENTINEL)) {
                    ok[3] = 0;
                    snprintf(why[3], sizeof why[3], "H %zu: a float outside h changed", hs);
                }
            for (v = 0; v < 4; v++)
                free(g[v]), free(h[v]);
            free(tt);
        }
    check(ok[0], "gru_cell_equals_its_primitives", "%s", why[0]);
    check(ok[1], "gru_cell_scalar_equals_the_reference_primitives", "%s", why[1]);
    check(ok[2], "gru_cell_within_bound_of_scalar", "%s", why[2]);
    check(ok[3], "gru_cell_writes_only_h", "%s", why[3]);
    printf("note gru_cell (%s): largest |h - scalar h| %.3g\n", rne__f32_simd(), worst);
}

/* ---- sigmoid and tanh ------------------------------------------------------------------------ */

typedef struct act_fn {
    const char *name;
    void (*simd)(float *, size_t);
    void (*scalar)(float *, size_t);
    float (*one)(float);
    double (*exact)(double);
} act_fn;

static double sigmoid_exact(double x)
{
    return 1.0 / (1.0 + exp(-x));
}

/* the points: a dense grid, the powers of two and their neighbours, the special values */
static size_t act_points(float *xs, size_t cap)
{
    static const float special[] = { 0.0f, -0.0f, INFINITY, -INFINITY, NAN, -NAN, FLT_MAX,
                                     -FLT_MAX, FLT_MIN, -FLT_MIN, 87.0f, -87.0f, 43.5f, -43.5f,
                                     0.55f, -0.55f, 88.0f, -88.0f, 1e-30f, -1e-30f };
    size_t n = 0, i;
    int e;
    for (i = 0; i <= (1u << 20) && n < cap; i++)
        xs[n++] = -100.0f + 200.0f * (float)i / (float)(1u << 20);
    for (e = -149; e <= 127 && n + 4 <= cap; e++) {
        const float p = ldexpf(1.0f, e);
        xs[n++] = p;
        xs[n++] = -p;
        xs[n++] = nextafterf(p, 0.0f);
        xs[n++] = -nextafterf(p, INFINITY);
    }
    for (i = 0; i < sizeof special / sizeof special[0] && n < cap; i++)
        xs[n++] = special[i];
    return n;
}

/* saturated or signed-zero reference values must come out exactly */
static int act_exact_value(float r)
{
    return r == 0.0f || r == 1.0f || r == -1.0f;
}

static void test_act(const act_fn *f, double tol)
{
    const size_t cap = (1u << 20) + 2000;
    float *xs = xmalloc(cap * sizeof(float)), *a = xmalloc(cap * sizeof(float));
    float *b = xmalloc(cap * sizeof(float));
    const size_t n = act_points(xs, cap);
    double worst_ref = 0.0, worst_exact = 0.0;
    float at_ref = 0.0f, at_exact = 0.0f;
    int ok_nan = 1, ok_exact_values = 1, ok_one = 1, ok_guard = 1;
    char label[80];
    size_t i, len, off;
    memcpy(a, xs, n * sizeof(float));
    memcpy(b, xs, n * sizeof(float));
    f->simd(a, n);
    f->scalar(b, n);
    for (i = 0; i < n; i++) {
        if (isnan(a[i]) || isnan(b[i])) {
            ok_nan = ok_nan && isnan(a[i]) && isnan(b[i]);
            continue;
        }
        if (act_exact_value(b[i]) && !same_bits(a[i], b[i]))
            ok_exact_values = 0;
        if (fabs((double)a[i] - (double)b[i]) > worst_ref) {
            worst_ref = fabs((double)a[i] - (double)b[i]);
            at_ref = xs[i];
        }
        if (fabs((double)a[i] - f->exact((double)xs[i])) > worst_exact) {
            worst_exact = fabs((double)a[i] - f->exact((double)xs[i]));
            at_exact = xs[i];
        }
    }
    snprintf(label, sizeof label, "%s_within_%.2g_of_scalar", f->name, tol);
    check(worst_ref <= tol, label, "|simd - scalar| = %.3g at x = %.9g", worst_ref, (double)at_ref);
    snprintf(label, sizeof label, "%s_max_abs_error", f->name);
    check(worst_exact <= 2e-7, label, "max abs error %.3g at x = %.9g", worst_exact,
          (double)at_exact);
    snprintf(label, sizeof label, "%s_nan_and_saturation", f->name);
    check(ok_nan && ok_exact_values, label, "NaN where the reference has none (or not where it "
          "has), or a saturated value (0, +-1, -0) differs");
    /* every length and offset: lane independence, and nothing written outside [0, len) */
    for (len = 0; len <= 40; len++)
        for (off = 0; off < 4; off++) {
            float in[40], guarded[40 + 4 + 2 * GUARD];
            float *v = guarded + GUARD + off;
            for (i = 0; i < sizeof guarded / sizeof guarded[0]; i++)
                guarded[i] = SENTINEL;
            for (i = 0; i < len; i++)
                v[i] = in[i] = xs[(len * 7919u + i * 104729u) % n];   /* scattered points */
            f->simd(v, len);
            for (i = 0; i < len; i++) {
                const float y = f->one(in[i]);
                if (!same_bits(v[i], y) && !(isnan(v[i]) && isnan(y)))
                    ok_one = 0;
            }
            for (i = 0; i < sizeof guarded / sizeof guarded[0]; i++)
                if ((i < GUARD + off || i >= GUARD + off + len) && guarded[i] != SENTINEL)
                    ok_guard = 0;
        }
    snprintf(label, sizeof label, "%s_each_lane_equals_one_element", f->name);
    check(ok_one, label, "an element's result depends on its position or the length");
    snprintf(label, sizeof label, "%s_writes_only_n", f->name);
    check(ok_guard, label, "a float outside [0, n) changed");
    printf("note %s (%s): largest |simd - scalar| %.3g at %.9g, |simd - exact| %.3g at %.9g\n",
           f->name, rne__f32_simd(), worst_ref, (double)at_ref, worst_exact, (double)at_exact);
    free(xs);
    free(a);
    free(b);
}

/* ---- timing (--bench) ------------------------------------------------------------------------ */

typedef void (*gemm_fn)(float *, size_t, const float *, size_t, const float *, size_t, size_t,
                        size_t, size_t);

/* best of 15 blocks of repeated calls, in microseconds per call */
static double time_gemm(gemm_fn fn, size_t m, size_t n, size_t k)
{
    float *c = xmalloc_aligned(m * n * sizeof(float)), *x = xmalloc_aligned(m * k * sizeof(float));
    float *w = xmalloc_aligned(k * n * sizeof(float));
    const long reps = (long)(2e7 / (double)(m * n * k + 1)) + 1;
    double best = 1e300;
    uint32_t seed = 1u;
    size_t i;
    long r;
    int b;
    for (i = 0; i < m * n; i++)
        c[i] = 0.0f;
    for (i = 0; i < m * k; i++)
        x[i] = lcg_float(&seed) * 1e-3f;
    for (i = 0; i < k * n; i++)
        w[i] = lcg_float(&seed);
    for (b = 0; b < 15; b++) {
        const double t0 = now_ns();
        for (r = 0; r < reps; r++)
            fn(c, n, x, k, w, n, m, n, k);
        best = (now_ns() - t0) / (double)reps < best ? (now_ns() - t0) / (double)reps : best;
    }
    free(c);
    free(x);
    free(w);
    return best / 1e3;
}

static double time_act(void (*fn)(float *, size_t))
{
    float x[512];
    double best = 1e300;
    int b, r;
    size_t i;
    for (b = 0; b < 15; b++) {
        double t0;
        for (i = 0; i < 512; i++)
            x[i] = (float)i * 0.01f - 2.56f;
        t0 = now_ns();
        for (r = 0; r < 1000; r++)
            fn(x, 512);
        best = (now_ns() - t0) / 512e3 < best ? (now_ns() - t0) / 512e3 : best;
    }
    return best;
}

static void bench(void)
{
    static const size_t shapes[][3] = {
        { 1, 128, 32 }, { 1, 256, 64 }, { 1, 512, 128 }, { 1, 1024, 256 }, { 1, 512, 40 },
        { 1000, 512, 40 }, { 8, 512, 128 },
    };
    size_t s;
    printf("bench %s against scalar (best of 15; not a test)\n", rne__f32_simd());
    for (s = 0; s < sizeof shapes / sizeof shapes[0]; s++) {
        const size_t m = shapes[s][0], n = shapes[s][1], k = shapes[s][2];
        const double a = time_gemm(rne__f32_gemm_acc, m, n, k);
        const double b = time_gemm(rne__f32_gemm_acc_scalar, m, n, k);
        printf("bench gemm m %4zu n %4zu k %3zu: %9.3f us (%5.1f GMAC/s), scalar %9.3f us: x%.2f\n",
               m, n, k, a, (double)(m * n * k) / a / 1e3, b, b / a);
    }
    printf("bench sigmoid %.3f ns/element, scalar %.3f\n", time_act(rne__f32_sigmoid),
           time_act(rne__f32_sigmoid_scalar));
    printf("bench tanh    %.3f ns/element, scalar %.3f\n", time_act(rne__f32_tanh),
           time_act(rne__f32_tanh_scalar));
}

int main(int argc, char **argv)
{
    const char *v = rne__f32_simd();
    /* exact division (AVX2, aarch64; the scalar reference elsewhere) or ARMv7's refined
     * reciprocal, which may round the quotient once the other way */
    const double tol = strcmp(v, "neon-armv7+fma") == 0 ? 2e-7 : 1.2e-7;
    const act_fn sigmoid = { "sigmoid", rne__f32_sigmoid, rne__f32_sigmoid_scalar,
                             rne__f32_sigmoid1, sigmoid_exact };
    const act_fn tanh_fn = { "tanh", rne__f32_tanh, rne__f32_tanh_scalar, rne__f32_tanh1, tanh };
    printf("note variant: %s\n", v);
    test_gemm();
    test_gemv2();
    test_lstm_cell();
    test_gru_cell();
    test_act(&sigmoid, tol);
    test_act(&tanh_fn, tol);
    if (argc > 1 && strcmp(argv[1], "--bench") == 0)
        bench();
    return test_summary();
}
