/*
 * test_qvec.c - the integer primitives of qvec.c as compiled into the library (AVX2, AVX-512BW with
 * or without VNNI, NEON or the scalar reference, rne__q_simd()) against the scalar reference and an
 * oracle written here, bit for bit. Built and run with every variant (csrc/Makefile `test`,
 * `test-avx512bw` and `asan`; tools/cross_test.sh); with the scalar one the SIMD comparisons are
 * trivial, the oracle ones are not.
 *
 *   test_qvec            one line per test ("ok   name" / "FAIL name: why"), then
 *                        "N passed, M failed"; exits non-zero if anything failed
 *   test_qvec --bench    also times rne__q_matvec against rne__q_matvec_ref (not a test)
 *
 * rne__q_matvec (rne__q_matvec_ref, the oracle: sum_p (int64) x[p] w[p][c0 + j], then rq32):
 * - shapes that reach every block, tail and chunk of every variant: k = 0 .. 700 (odd and even;
 *   across the 256-row chunks of the AVX2 and AVX-512BW acc64 paths; k % 4 = 0 .. 3 for the
 *   VNNI int8 path's four rows a step), n = 0 .. 300 and 2048 (below, at and across 8, 16, 24,
 *   32, 64, 128 columns), column offsets c0 and row strides wider than c0 + n; int8 and int16
 *   weights; acc32 and acc64;
 * - extreme operands: x all -32768 or 32767 or alternating, weights all at the largest magnitude
 *   the format and the accumulator allow (int8 -128 / 127 and 127 x 516 rows at acc32; int16
 *   +-32767, never -32768, which the loader refuses), so that the pair sums reach
 *   2 * 32768 * 32767 and the column sums the acc32 limit 2^31 - 1;
 * - multipliers anywhere in int32 (INT32_MIN included) and shifts 1 .. 62 within the load-time
 *   proof (|sum| * |m| + 2^(shift-1) <= INT64_MAX for the column's bound 32768 sum |w|), so that
 *   the requantization rounds both ways and saturates at both ends;
 * - nothing written past out[n - 1] or past the n int64 of the scratch (guards), and nothing read
 *   outside x[0 .. k) and the k rows (the buffers are allocated to size: `make asan` checks).
 * rne__q_act_rows against rne__qgate_apply on every z in [-2^20, 2^20] for Sigmoid, Tanh,
 * HardSigmoid (two parameter sets) and Relu, and on every length 0 .. 40 at offsets 0 .. 3
 * (nothing outside [0, n) written); rne__q_tail_rows against rne__sigmoid_tail_q31 the same way.
 * rne__q_pre against the int64 formula on random and extreme
 * terms (INT32_MIN / INT32_MAX, limits 0, 1, 2^20), in place and not. rne__isqrt64 against
 * its definition (test_isqrt); rne__isqrt64_rows (SIMD) and its reference against it on runs of
 * every length and offset (test_isqrt_rows). rne__rq_s16 (SIMD) and its reference against the
 * formula (test_rq_s16).
 */
#define _POSIX_C_SOURCE 200809L

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "qvec.h"
#include "testutil.h"

#define GUARD 8
#define SENTINEL32 ((int32_t)0x5A5A5A5A)

/* uniform in [lo, hi] (hi - lo < 2^32) */
static int64_t rnd(uint32_t *s, int64_t lo, int64_t hi)
{
    const uint64_t span = (uint64_t)(hi - lo) + 1u;
    const uint64_t a = lcg(s), b = lcg(s), c = lcg(s); /* sequenced, unlike three calls in one expression */
    const uint64_t r = (a << 24 | b) << 16 | (c & 0xFFFFu);
    return lo + (int64_t)(r % span);
}

/* ---- the matrix-vector product --------------------------------------------------------------- */

enum { FILL_RANDOM, FILL_MAX, FILL_MIN, FILL_ALTERNATE };

typedef struct mv_case {
    size_t k, n, c0, pad;       /* ldw = c0 + n + pad */
    int s8, acc32, fill;
} mv_case;

static const mv_case mv_cases[] = {
    /* the benchmark shapes: LSTM / GRU with 40 inputs, hidden 32 and 128 */
    { 40, 128, 0, 0, 1, 1, FILL_RANDOM }, { 32, 128, 0, 0, 1, 1, FILL_RANDOM },
    { 128, 512, 0, 0, 1, 1, FILL_RANDOM }, { 128, 512, 0, 0, 0, 0, FILL_RANDOM },
    { 40, 512, 0, 0, 0, 0, FILL_RANDOM }, { 128, 256, 0, 128, 1, 1, FILL_RANDOM },
    { 128, 128, 256, 0, 0, 0, FILL_RANDOM },
    /* tails: columns and rows around the block widths, odd k */
    { 1, 1, 0, 0, 1, 1, FILL_RANDOM }, { 3, 7, 1, 2, 0, 1, FILL_RANDOM },
    { 5, 15, 0, 1, 1, 0, FILL_RANDOM }, { 2, 16, 0, 0, 0, 0, FILL_RANDOM },
    { 7, 17, 3, 0, 1, 1, FILL_RANDOM }, { 9, 31, 0, 5, 0, 0, FILL_RANDOM },
    { 4, 33, 1, 0, 1, 0, FILL_RANDOM }, { 11, 63, 0, 0, 0, 1, FILL_RANDOM },
    { 6, 65, 2, 3, 1, 1, FILL_RANDOM }, { 13, 95, 0, 0, 0, 0, FILL_RANDOM },
    { 17, 97, 5, 0, 1, 0, FILL_RANDOM }, { 33, 129, 0, 7, 0, 0, FILL_RANDOM },
    { 0, 40, 0, 0, 1, 1, FILL_RANDOM }, { 0, 40, 0, 0, 0, 0, FILL_RANDOM },
    { 5, 0, 3, 1, 1, 1, FILL_RANDOM },
    /* the last 16 and 8 columns of the AVX2 acc32 path (a GRU of hidden 8: 24, 16 and 8) */
    { 40, 24, 0, 0, 1, 1, FILL_RANDOM }, { 8, 16, 0, 0, 1, 1, FILL_RANDOM },
    { 8, 8, 16, 8, 1, 1, FILL_RANDOM }, { 41, 24, 0, 3, 0, 1, FILL_RANDOM },
    { 7, 8, 0, 0, 0, 1, FILL_RANDOM }, { 9, 56, 2, 0, 1, 1, FILL_RANDOM },
    { 1, 8, 0, 0, 1, 1, FILL_RANDOM }, { 516, 24, 0, 0, 1, 1, FILL_MAX },
    { 516, 8, 0, 0, 1, 1, FILL_MIN }, { 515, 40, 0, 0, 1, 1, FILL_ALTERNATE },
    { 2, 24, 0, 0, 0, 1, FILL_MAX }, { 3, 8, 0, 0, 0, 1, FILL_MIN },
    /* chunks of the int16 acc64 path: 256 rows */
    { 255, 64, 0, 0, 0, 0, FILL_RANDOM }, { 256, 64, 0, 0, 0, 0, FILL_RANDOM },
    { 257, 64, 0, 0, 0, 0, FILL_RANDOM }, { 513, 40, 8, 8, 0, 0, FILL_RANDOM },
    { 700, 96, 0, 0, 1, 0, FILL_RANDOM }, { 511, 33, 0, 0, 1, 0, FILL_RANDOM },
    /* extremes: the largest pair and column sums each accumulator allows */
    { 516, 64, 0, 0, 1, 1, FILL_MAX }, { 516, 64, 0, 0, 1, 1, FILL_MIN },
    { 515, 80, 4, 0, 1, 1, FILL_ALTERNATE }, { 2, 64, 0, 0, 0, 1, FILL_MAX },
    { 2, 64, 0, 0, 0, 1, FILL_MIN }, { 3, 48, 0, 0, 0, 1, FILL_ALTERNATE },
    { 300, 64, 0, 0, 0, 0, FILL_MAX }, { 301, 64, 0, 0, 0, 0, FILL_MIN },
    { 700, 72, 0, 0, 0, 0, FILL_ALTERNATE }, { 700, 64, 0, 0, 1, 0, FILL_MAX },
    { 600, 64, 0, 0, 1, 0, FILL_MIN }, { 129, 128, 0, 0, 0, 0, FILL_ALTERNATE },
    /* the AVX-512BW blocks (qvec_avx512.h): acc32 128, 64, 32 columns then AVX2's 16 and 8 and
     * the scalar rest; acc64 64 then 32 columns, across the 256-row chunks; at the extremes */
    { 257, 255, 3, 5, 1, 1, FILL_RANDOM }, { 130, 255, 1, 0, 0, 1, FILL_RANDOM },
    { 516, 248, 0, 0, 1, 1, FILL_MAX }, { 516, 192, 0, 0, 1, 1, FILL_MIN },
    { 515, 160, 2, 0, 1, 1, FILL_ALTERNATE }, { 2, 224, 0, 0, 0, 1, FILL_MAX },
    { 3, 128, 0, 0, 0, 1, FILL_MIN }, { 5, 256, 0, 9, 0, 1, FILL_ALTERNATE },
    { 513, 103, 0, 2, 0, 0, FILL_MAX }, { 700, 96, 0, 0, 0, 0, FILL_MIN },
    { 257, 160, 1, 0, 0, 0, FILL_ALTERNATE }, { 600, 103, 0, 0, 1, 0, FILL_MAX },
    { 513, 96, 4, 0, 1, 0, FILL_MIN }, { 511, 2048, 0, 0, 1, 1, FILL_RANDOM },
    { 512, 2048, 0, 0, 0, 0, FILL_RANDOM }, { 130, 128, 0, 0, 1, 1, FILL_MIN },
    { 254, 64, 1, 0, 1, 0, FILL_MAX }, { 6, 200, 0, 3, 1, 1, FILL_ALTERNATE },
};

/* The largest |w| the case may use: the format's, and at acc32 a column sum of |w| within 65535
 * (32768 * sum |w| <= INT32_MAX, the load-time condition of acc32). */
static int32_t mv_wmax(const mv_case *t)
{
    int32_t wmax = t->s8 ? 127 : 32767;
    if (t->acc32 && t->k > 0 && (size_t)wmax * t->k > 65535u)
        wmax = (int32_t)(65535u / t->k);
    return wmax;
}

/* Operands of one case: x [k], W_t [k][ldw] (int8 or int16), m [n], shift; and the oracle. */
typedef struct mv_data {
    size_t ldw;
    int16_t *x;
    void *w;
    int32_t *m;
    unsigned shift;
    int32_t *want;
} mv_data;

static int32_t mv_w(const mv_case *t, const mv_data *d, size_t p, size_t c)
{
    return t->s8 ? ((const int8_t *)d->w)[p * d->ldw + c] : ((const int16_t *)d->w)[p * d->ldw + c];
}

static void mv_setup(const mv_case *t, mv_data *d, uint32_t *seed)
{
    const int32_t wmax = mv_wmax(t);
    const size_t es = t->s8 ? 1u : 2u;
    size_t p, c, j;
    d->ldw = t->c0 + t->n + t->pad;
    d->x = xmalloc(t->k * sizeof(int16_t));
    d->w = xmalloc(t->k * d->ldw * es);
    d->m = xmalloc(t->n * sizeof(int32_t));
    d->want = xmalloc(t->n * sizeof(int32_t));
    for (p = 0; p < t->k; p++) {
        int32_t xv;
        switch (t->fill) {
        case FILL_MAX: xv = INT16_MIN; break;
        case FILL_MIN: xv = INT16_MAX; break;
        case FILL_ALTERNATE: xv = p % 2 ? INT16_MAX : INT16_MIN; break;
        default: xv = (int32_t)rnd(seed, INT16_MIN, INT16_MAX); break;
        }
        d->x[p] = (int16_t)xv;
        for (c = 0; c < d->ldw; c++) {
            int32_t wv;
            switch (t->fill) {
            case FILL_MAX: wv = -wmax - (t->s8 && !t->acc32); break;    /* s8 acc64: -128 */
            case FILL_MIN: wv = wmax; break;
            case FILL_ALTERNATE: wv = (p + c) % 2 ? -wmax : wmax; break;
            default: wv = (int32_t)rnd(seed, -wmax, wmax); break;
            }
            if (t->s8)
                ((int8_t *)d->w)[p * d->ldw + c] = (int8_t)wv;
            else
                ((int16_t *)d->w)[p * d->ldw + c] = (int16_t)wv;
        }
    }
    /* a shift, then per column the largest |m| that the load-time proof allows for the column's
     * bound, drawn near it half of the time (large products, saturation) */
    d->shift = (unsigned)rnd(seed, 1, 62);
    for (j = 0; j < t->n; j++) {
        uint64_t bound = 0, lim;
        int64_t mv;
        for (p = 0; p < t->k; p++) {
            const int32_t wv = mv_w(t, d, p, t->c0 + j);
            bound += (uint64_t)(wv < 0 ? -wv : wv);
        }
        bound *= 32768u;
        lim = bound == 0 ? (uint64_t)INT32_MAX + 1u
                         : ((uint64_t)INT64_MAX - ((uint64_t)1 << (d->shift - 1u))) / bound;
        if (lim > (uint64_t)INT32_MAX)
            lim = (uint64_t)INT32_MAX;
        mv = lcg(seed) % 2 ? rnd(seed, -(int64_t)lim, (int64_t)lim)
                           : (lcg(seed) % 2 ? (int64_t)lim : -(int64_t)lim);
        if (lim == (uint64_t)INT32_MAX && lcg(seed) % 4 == 0)
            mv = INT32_MIN;            /* allowed when even 2^31 |bound| fits */
        if (mv == INT32_MIN && bound > ((uint64_t)INT64_MAX - ((uint64_t)1 << (d->shift - 1u))) /
                                           ((uint64_t)INT32_MAX + 1u))
            mv = -(int64_t)lim;
        d->m[j] = (int32_t)mv;
    }
    /* the oracle: the exact sum in int64, then sat32(floor((v m + 2^(shift-1)) / 2^shift)) */
    for (j = 0; j < t->n; j++) {
        int64_t sum = 0, v;
        for (p = 0; p < t->k; p++)
            sum += (int64_t)d->x[p] * mv_w(t, d, p, t->c0 + j);
        v = (sum * d->m[j] + ((int64_t)1 << (d->shift - 1u))) >> d->shift;
        d->want[j] = v > INT32_MAX ? INT32_MAX : v < INT32_MIN ? INT32_MIN : (int32_t)v;
    }
}

static void mv_free(mv_data *d)
{
    free(d->x);
    free(d->w);
    free(d->m);
    free(d->want);
}

/* Run one variant into out (n + GUARD int32) with scratch acc (n int64 + GUARD); 1 if the guards
 * past both still hold the sentinel. */
typedef void (*mv_fn)(int32_t *, const int16_t *, size_t, const rne__qmat *, size_t, size_t,
                      const int32_t *, unsigned, void *);

static int mv_run(mv_fn f, const mv_case *t, const mv_data *d, int32_t *out, int64_t *acc)
{
    rne__qmat mat;
    size_t i;
    int ok = 1;
    for (i = 0; i < t->n + GUARD; i++)
        out[i] = SENTINEL32;
    for (i = 0; i < t->n + GUARD; i++)
        acc[i] = (int64_t)SENTINEL32;
    mat.w = d->w;
    mat.ldw = d->ldw;
    mat.s8 = t->s8;
    mat.acc32 = t->acc32;
    f(out, d->x, t->k, &mat, t->c0, t->n, d->m, d->shift, acc);
    for (i = t->n; i < t->n + GUARD; i++)
        ok = ok && out[i] == SENTINEL32 && acc[i] == (int64_t)SENTINEL32;
    return ok;
}

static void mv_test(const mv_case *t, uint32_t *seed, const char *label)
{
    static const char *fills[] = { "random", "max", "min", "alternate" };
    char name[160];
    mv_data d;
    int32_t *simd = xmalloc((t->n + GUARD) * sizeof(int32_t));
    int32_t *ref = xmalloc((t->n + GUARD) * sizeof(int32_t));
    int64_t *acc = xmalloc((t->n + GUARD) * sizeof(int64_t));
    size_t j, bad = t->n;
    int guards;
    mv_setup(t, &d, seed);
    snprintf(name, sizeof name, "%s k%zu n%zu c0 %zu ldw %zu %s %s %s shift %u", label, t->k, t->n,
             t->c0, d.ldw, t->s8 ? "s8" : "s16", t->acc32 ? "acc32" : "acc64", fills[t->fill],
             d.shift);
    guards = mv_run(rne__q_matvec, t, &d, simd, acc);
    guards = mv_run(rne__q_matvec_ref, t, &d, ref, acc) && guards;
    for (j = 0; j < t->n && bad == t->n; j++)
        if (simd[j] != d.want[j] || ref[j] != d.want[j])
            bad = j;
    if (bad < t->n)
        check(0, name, "column %zu: %s %ld, reference %ld, oracle %ld (m %ld)", bad,
              rne__q_simd(), (long)simd[bad], (long)ref[bad], (long)d.want[bad], (long)d.m[bad]);
    else
        check(guards, name, "wrote past column %zu of out or of the scratch", t->n);
    mv_free(&d);
    free(simd);
    free(ref);
    free(acc);
}

static void test_matvec(void)
{
    uint32_t seed = 12345u;
    size_t i;
    for (i = 0; i < sizeof mv_cases / sizeof mv_cases[0]; i++)
        mv_test(&mv_cases[i], &seed, "matvec");
    for (i = 0; i < 150; i++) {
        mv_case t;
        t.k = (size_t)rnd(&seed, 0, i % 10 == 0 ? 700 : 140);
        t.n = (size_t)rnd(&seed, 0, i % 3 == 0 ? 300 : 70);
        t.c0 = (size_t)rnd(&seed, 0, 40);
        t.pad = (size_t)rnd(&seed, 0, 20);
        t.s8 = (int)(lcg(&seed) % 2);
        t.acc32 = (int)(lcg(&seed) % 2);
        t.fill = i % 7 == 0 ? (int)(lcg(&seed) % 4) : FILL_RANDOM;
        mv_test(&t, &seed, "matvec random");
    }
}

/* ---- rows of gates --------------------------------------------------------------------------- */

static void test_act_rows(void)
{
    static const struct { unsigned kind; int32_t m; unsigned shift; int32_t beta; } acts[] = {
        { RNE_ACT_SIGMOID, 0, 0, 0 },
        { RNE_ACT_TANH, 0, 0, 0 },
        { RNE_ACT_HARDSIGMOID, 1610612736, 33, 16384 },    /* alpha 0.2 over 1/12288, beta 0.5 */
        { RNE_ACT_HARDSIGMOID, -2147483647 - 1, 40, -7 },
        { RNE_ACT_RELU, 0, 0, 0 },
    };
    const size_t span = 2u * RNE__ZMAX + 1u;
    int32_t *v = xmalloc((span + 2 * GUARD) * sizeof(int32_t));
    size_t a, i;
    for (a = 0; a < sizeof acts / sizeof acts[0]; a++) {
        rne__qgate g;
        char name[96];
        size_t bad = span, n, off;
        int guards = 1;
        g.kind = acts[a].kind;
        g.m = acts[a].m;
        g.shift = acts[a].shift;
        g.beta = acts[a].beta;
        for (i = 0; i < span; i++)
            v[i] = (int32_t)i - RNE__ZMAX;
        rne__q_act_rows(&g, v, span);
        for (i = 0; i < span && bad == span; i++)
            if (v[i] != rne__qgate_apply(&g, (int32_t)i - RNE__ZMAX))
                bad = i;
        snprintf(name, sizeof name, "act rows kind %u (m %ld, shift %u): every z in +-2^20",
                 g.kind, (long)g.m, g.shift);
        check(bad == span, name, "z = %ld: %ld, one at a time %ld", (long)bad - RNE__ZMAX,
              (long)(bad < span ? v[bad] : 0),
              (long)rne__qgate_apply(&g, (int32_t)bad - RNE__ZMAX));
        /* lengths and offsets: the tails, and nothing outside [0, n) written */
        for (n = 0; n <= 40; n++)
            for (off = 0; off < 4; off++) {
                int32_t *row = v + GUARD + off;
                for (i = 0; i < n + 2 * GUARD + 4; i++)
                    v[i] = SENTINEL32;
                for (i = 0; i < n; i++)
                    row[i] = (int32_t)(i * 40961u % span) - RNE__ZMAX;
                rne__q_act_rows(&g, row, n);
                for (i = 0; i < n + 2 * GUARD + 4; i++) {
                    const int in_row = i >= GUARD + off && i < GUARD + off + n;
                    const int32_t z = (int32_t)((i - GUARD - off) * 40961u % span) - RNE__ZMAX;
                    guards = guards && v[i] == (in_row ? rne__qgate_apply(&g, z) : SENTINEL32);
                }
            }
        snprintf(name, sizeof name, "act rows kind %u: lengths 0..40 at offsets 0..3", g.kind);
        check(guards, name, "an element differs or one outside the row was written");
    }
    free(v);
}

/* rne__q_tail_rows (the AVX2 variant, else the scalar code) against rne__sigmoid_tail_q31 one at
 * a time: every z in [-2^20, 2^20], then every length 0 .. 40 at offsets 0 .. 3 with nothing
 * outside [0, n) written */
static void test_tail_rows(void)
{
    const size_t span = 2u * RNE__ZMAX + 1u;
    int32_t *v = xmalloc((span + 2 * GUARD) * sizeof(int32_t));
    size_t bad = span, i, n, off;
    int guards = 1;
    for (i = 0; i < span; i++)
        v[i] = (int32_t)i - RNE__ZMAX;
    rne__q_tail_rows(v, span);
    for (i = 0; i < span && bad == span; i++)
        if (v[i] != rne__sigmoid_tail_q31((int32_t)i - RNE__ZMAX))
            bad = i;
    check(bad == span, "tail rows: every z in +-2^20", "z = %ld: %ld, one at a time %ld",
          (long)bad - RNE__ZMAX, (long)(bad < span ? v[bad] : 0),
          (long)rne__sigmoid_tail_q31((int32_t)bad - RNE__ZMAX));
    for (n = 0; n <= 40; n++)
        for (off = 0; off < 4; off++) {
            int32_t *row = v + GUARD + off;
            for (i = 0; i < n + 2 * GUARD + 4; i++)
                v[i] = SENTINEL32;
            for (i = 0; i < n; i++)
                row[i] = (int32_t)(i * 40961u % span) - RNE__ZMAX;
            rne__q_tail_rows(row, n);
            for (i = 0; i < n + 2 * GUARD + 4; i++) {
                const int in_row = i >= GUARD + off && i < GUARD + off + n;
                const int32_t z = (int32_t)((i - GUARD - off) * 40961u % span) - RNE__ZMAX;
                guards = guards && v[i] == (in_row ? rne__sigmoid_tail_q31(z) : SENTINEL32);
            }
        }
    check(guards, "tail rows: lengths 0 .. 40 at offsets 0 .. 3", "a value differs or a guard changed");
    free(v);
}

static void test_pre(void)
{
    static const int32_t lims[] = { 0, 1, 12288, RNE__ZMAX };
    enum { N = 67 };
    int32_t a[N], b[N], c[N], z[N + GUARD], inplace[N];
    uint32_t seed = 777u;
    size_t l, r, i;
    int ok = 1;
    for (l = 0; l < sizeof lims / sizeof lims[0]; l++)
        for (r = 0; r < 20; r++) {
            for (i = 0; i < N; i++) {
                const int32_t ext[4] = { INT32_MIN, INT32_MAX, 0, -1 };
                a[i] = (i + r) % 5 == 0 ? ext[lcg(&seed) % 4]
                                        : (int32_t)rnd(&seed, INT32_MIN, INT32_MAX);
                b[i] = (i + r) % 3 == 0 ? ext[lcg(&seed) % 4]
                                        : (int32_t)rnd(&seed, -3000000, 3000000);
                c[i] = (int32_t)rnd(&seed, INT32_MIN, INT32_MAX);
                inplace[i] = b[i];
            }
            for (i = 0; i < N + GUARD; i++)
                z[i] = SENTINEL32;
            rne__q_pre(z, a, b, c, lims[l], N);
            rne__q_pre(inplace, a, inplace, c, lims[l], N);
            for (i = 0; i < N; i++) {
                const int64_t s = (int64_t)a[i] + b[i] + c[i];
                const int32_t want = s < -lims[l] ? -lims[l] : s > lims[l] ? lims[l] : (int32_t)s;
                ok = ok && z[i] == want && inplace[i] == want;
            }
            for (i = N; i < N + GUARD; i++)
                ok = ok && z[i] == SENTINEL32;
        }
    check(ok, "pre: sat(a + b + c, +-lim) in int64, extremes, in place", "an element differs");
}

/* ---- timing (--bench) ------------------------------------------------------------------------ */

static double time_mv(mv_fn f, const mv_case *t, const mv_data *d, int32_t *out, int64_t *acc)
{
    double best = 1e300;
    int r, i;
    for (r = 0; r < 15; r++) {
        const double t0 = now_ns();
        for (i = 0; i < 50; i++)
            (void)mv_run(f, t, d, out, acc);
        if ((now_ns() - t0) / 50 < best)
            best = (now_ns() - t0) / 50;
    }
    return best / 1e3;
}

static void bench(void)
{
    static const mv_case shapes[] = {
        { 40, 512, 0, 0, 1, 1, FILL_RANDOM }, { 128, 512, 0, 0, 1, 1, FILL_RANDOM },
        { 256, 1024, 0, 0, 1, 1, FILL_RANDOM }, { 40, 512, 0, 0, 0, 0, FILL_RANDOM },
        { 128, 512, 0, 0, 0, 0, FILL_RANDOM }, { 256, 1024, 0, 0, 0, 0, FILL_RANDOM },
    };
    uint32_t seed = 99u;
    size_t i;
    printf("bench %s against scalar (best of 15; not a test)\n", rne__q_simd());
    for (i = 0; i < sizeof shapes / sizeof shapes[0]; i++) {
        const mv_case *t = &shapes[i];
        int32_t *out = xmalloc((t->n + GUARD) * sizeof(int32_t));
        int64_t *acc = xmalloc((t->n + GUARD) * sizeof(int64_t));
        mv_data d;
        double ts, tr;
        mv_setup(t, &d, &seed);
        ts = time_mv(rne__q_matvec, t, &d, out, acc);
        tr = time_mv(rne__q_matvec_ref, t, &d, out, acc);
        printf("bench matvec k %3zu n %4zu %s %s: %8.3f us (%5.1f GMAC/s), scalar %8.3f us: "
               "x%.2f\n", t->k, t->n, t->s8 ? "s8 " : "s16", t->acc32 ? "acc32" : "acc64", ts,
               (double)(t->k * t->n) / ts / 1e3, tr, tr / ts);
        mv_free(&d);
        free(out);
        free(acc);
    }
}

/* rne__isqrt64 (HYPOT, LOGHYPOT, LayerNorm) against its definition, r = floor(sqrt(v)) iff
 * r^2 <= v < (r + 1)^2 (the square in 128 bits: two 64-bit halves), on every v < 2^20, every
 * square +-1 up to 2^32 in steps of a prime, 2^k +-1, UINT64_MAX and 10^6 random values. */
static int isqrt_ok(uint64_t v, uint64_t r)
{
    /* (r + 1)^2 > v without overflow: r + 1 > v / (r + 1), as r + 1 <= 2^32 */
    return r <= 0xFFFFFFFFu && r * r <= v && (r + 1 > v / (r + 1));
}

static void test_isqrt(void)
{
    uint32_t seed = 11;
    uint64_t v, i, bad = 0, first = 0, n = 0;
    for (v = 0; v < (1u << 20); v++, n++)
        if (!isqrt_ok(v, rne__isqrt64(v)) && bad++ == 0)
            first = v;
    for (i = 1; i <= 0xFFFFFFFFu; i += 65521u, n += 3) {
        const uint64_t sq = i * i;
        for (v = sq - 1; v <= sq + 1; v++)
            if (!isqrt_ok(v, rne__isqrt64(v)) && bad++ == 0)
                first = v;
    }
    for (i = 0; i < 64; i++, n += 3) {
        const uint64_t p = (uint64_t)1 << i;
        const uint64_t vs[3] = {p - 1, p, p + 1};
        unsigned j;
        for (j = 0; j < 3; j++)
            if (!isqrt_ok(vs[j], rne__isqrt64(vs[j])) && bad++ == 0)
                first = vs[j];
    }
    n++;
    if (!isqrt_ok(UINT64_MAX, rne__isqrt64(UINT64_MAX)) && bad++ == 0)
        first = UINT64_MAX;
    for (i = 0; i < 1000000u; i++, n++) {
        const uint64_t hi = lcg(&seed), lo = lcg(&seed), k = lcg(&seed) % 64;
        v = ((hi << 40) ^ (lo << 16) ^ lcg(&seed)) >> k;   /* 24-bit draws: every bit reached */
        if (!isqrt_ok(v, rne__isqrt64(v)) && bad++ == 0)
            first = v;
    }
    check(bad == 0, "isqrt64_exact", "%llu of %llu values wrong, first %llu -> %llu",
          (unsigned long long)bad, (unsigned long long)n, (unsigned long long)first,
          (unsigned long long)rne__isqrt64(first));
}

/* rne__rq_s16 (the SIMD variant) and rne__rq_s16_ref against the formula written here,
 * sat16(sat32(floor((acc m + 2^(shift-1)) / 2^shift)) + b), on runs of every length 0 .. 40 at
 * offsets 0 .. 3 (guards around the run unchanged), one multiplier and bias for the run (sm 0) or
 * one per element (sm 1), with a bias and without (NULL); sums, multipliers and biases anywhere in
 * int32 (INT32_MIN / INT32_MAX among them) and every shift 1 .. 62, so that the rounding goes
 * both ways and each saturation (sat32 before the bias, sat16 after) is reached at both ends. */
static int16_t rq16_formula(int32_t acc, int32_t m, unsigned shift, int32_t b)
{
    int64_t v = ((int64_t)acc * m + ((int64_t)1 << (shift - 1u))) >> shift;
    v = v < INT32_MIN ? INT32_MIN : v > INT32_MAX ? INT32_MAX : v;
    v += b;
    return (int16_t)(v < INT16_MIN ? INT16_MIN : v > INT16_MAX ? INT16_MAX : v);
}

static int32_t rq16_draw(uint32_t *seed)
{
    const uint32_t k = lcg(seed) % 8, r = (lcg(seed) << 8) ^ lcg(seed);
    return k == 0 ? INT32_MIN : k == 1 ? INT32_MAX : k == 2 ? (int32_t)(r % 65536u) - 32768
         : k == 3 ? (int32_t)(r % 16u) - 8 : (int32_t)r;
}

static void test_rq_s16(void)
{
    enum { N = 40, PAD = 4 };
    uint32_t seed = 29;
    int32_t acc[N], m[N], b[N];
    int16_t run[N + 2 * PAD];
    size_t len, off, i, n = 0, bad = 0, sm;
    unsigned shift, ref, rep, nob;
    for (shift = 1; shift <= 62; shift++)
        for (rep = 0; rep < 20; rep++)
            for (len = 0; len <= N; len += rep == 0 ? 1u : 13u)
                for (off = 0; off < 4; off++) {
                    sm = (rep + off) % 2;
                    nob = (rep + off / 2) % 3 == 0;
                    for (i = 0; i < N; i++) {
                        acc[i] = rq16_draw(&seed);
                        m[i] = rq16_draw(&seed);
                        b[i] = rq16_draw(&seed);
                    }
                    for (ref = 0; ref < 2; ref++) {
                        for (i = 0; i < N + 2 * PAD; i++)
                            run[i] = 0x5A5A;
                        (ref ? rne__rq_s16_ref : rne__rq_s16)(run + PAD + off, acc, len, m,
                                                              nob ? NULL : b, sm, shift);
                        for (i = 0; i < N + 2 * PAD; i++) {
                            const size_t k = i - PAD - off;
                            const int in = i >= PAD + off && i < PAD + off + len;
                            const int16_t want =
                                in ? rq16_formula(acc[k], m[k * sm], shift, nob ? 0 : b[k * sm])
                                   : 0x5A5A;
                            if (run[i] != want && bad++ == 0)
                                printf("note rq_s16%s: sm %zu%s acc %ld m %ld shift %u -> %d, not "
                                       "%d\n", ref ? "_ref" : "", sm, nob ? " no bias" : "",
                                       in ? (long)acc[k] : 0L, in ? (long)m[k * sm] : 0L, shift,
                                       run[i], want);
                        }
                        n += len;
                    }
                }
    check(bad == 0, "rq_s16_exact", "%zu wrong of %zu (%s)", bad, n, rne__q_simd());
}

/* rne__isqrt64_rows (the SIMD variant) and rne__isqrt64_rows_ref against the definition, in
 * place, on runs of every length 0 .. 40 at offsets 0 .. 3 (the SIMD blocks of 4 and 8 and every
 * tail; guards around the run unchanged) and 2 x 10^5 values < 2^63: random at every bit length,
 * squares +-1, 2^k +-1, 0 and 2^63 - 1, mixed within a block so that its lanes start at different
 * digits. */
static void test_isqrt_rows(void)
{
    enum { N = 40, PAD = 4, M = 200000 };
    uint32_t seed = 23;
    uint64_t run[N + 2 * PAD], src[N], bad = 0, v;
    size_t len, off, i, n = 0, rep;
    for (rep = 0; rep < M / N; rep++)
        for (len = 0; len <= N; len += rep < 3 ? 1u : N) {
            for (off = 0; off < 4; off += rep < 3 ? 1u : 4u) {
                int ref;
                for (i = 0; i < len; i++) {
                    const uint64_t k = lcg(&seed) % 8, sh = lcg(&seed) % 64;
                    const uint64_t r = ((uint64_t)lcg(&seed) << 40) ^ ((uint64_t)lcg(&seed) << 16) ^
                                       lcg(&seed);
                    const uint64_t q = r >> 32;
                    v = k == 0 ? q * q - 1 : k == 1 ? q * q + 1 : k == 2 ? q * q
                        : k == 3 ? ((uint64_t)1 << (sh % 63)) + (r & 1) - (r >> 1 & 1)
                        : k == 4 ? (r & 1 ? 0 : ((uint64_t)1 << 63) - 1) : r >> sh;
                    src[i] = v & (((uint64_t)1 << 63) - 1);
                }
                for (ref = 0; ref < 2; ref++) {
                    for (i = 0; i < N + 2 * PAD; i++)
                        run[i] = 0x5A5A5A5A5A5A5A5Au;
                    memcpy(run + PAD + off, src, len * sizeof src[0]);
                    (ref ? rne__isqrt64_rows_ref : rne__isqrt64_rows)(run + PAD + off, len);
                    for (i = 0; i < N + 2 * PAD; i++) {
                        const int in = i >= PAD + off && i < PAD + off + len;
                        const int ok = in ? isqrt_ok(src[i - PAD - off], run[i])
                                          : run[i] == 0x5A5A5A5A5A5A5A5Au;
                        if (!ok && bad++ == 0)
                            printf("note isqrt64_rows%s: len %zu off %zu at %zu: %llu -> %llu\n",
                                   ref ? "_ref" : "", len, off, i,
                                   (unsigned long long)(in ? src[i - PAD - off] : 0),
                                   (unsigned long long)run[i]);
                    }
                    n += len;
                }
            }
        }
    check(bad == 0 && n >= M, "isqrt64_rows_exact", "%llu wrong of %zu (%s)",
          (unsigned long long)bad, n, rne__q_simd());
}

int main(int argc, char **argv)
{
    printf("note qvec variant: %s\n", rne__q_simd());
    test_matvec();
    test_act_rows();
    test_tail_rows();
    test_pre();
    test_isqrt();
    test_isqrt_rows();
    test_rq_s16();
    if (argc > 1 && strcmp(argv[1], "--bench") == 0)
        bench();
    return test_summary();
}
