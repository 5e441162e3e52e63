/*
 * test_rnnedge.c - the C library's test program.
 *
 *   test_rnnedge DATA_DIR        (DATA_DIR = tests/data/c, written by tests/make_c_vectors.py)
 *
 * Prints one line per test ("ok   name" or "FAIL name: why"), a "note" line with the largest
 * error against the expected outputs, and a last line "N passed, M failed"; exits non-zero if
 * anything failed.
 *
 * - primitives: CRC-32 known answer; sigmoid/tanh against double libm on a dense grid and on the
 *   special values (max abs error <= 2e-7); the matrix product against a naive loop (same bits).
 * - every DATA_DIR/<case>.rne: loads, runs <case>.x.npy (from <case>.state.npy if present, else
 *   from reset) and matches <case>.y.npy within |y - e| <= 1e-5 + 1e-5 |e| (onnxruntime's float
 *   arithmetic and ours differ in the last bits: 4.2e-7 at most so far); then, bit for bit: a
 *   second run after reset gives the same output; for streamable models, rne_step one step at a
 *   time gives run's output and final state, and two chunked runs give one run's; batch B equals
 *   B single streams.
 * - one test per kind of corruption, each expecting its own status code (the CRC recomputed where
 *   the fault sits behind the checksum), and the API's argument checks.
 *
 * This is a test program: it allocates (the library never does).
 */
#define _POSIX_C_SOURCE 200809L

#include <float.h>
#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rnnedge.h"
#include "rne_internal.h"
#include "testutil.h"
#include "vec.h"

#define ATOL 1e-5
#define RTOL 1e-5

static double worst_all;        /* largest |C - expected| over every case, and where */
static char worst_case[256];

/* ---- primitives ------------------------------------------------------------------------------- */

static void test_crc(void)
{
    const char *s = "123456789";
    const uint32_t crc = rne__crc32((const uint8_t *)s, 9);
    check(crc == 0xCBF43926u, "crc32_known_answer", "crc32(\"123456789\") = %08x", crc);
}

static void test_strerror(void)
{
    int code, ok = 1;
    for (code = 0; code <= RNE_EINPUT; code++) {
        const char *m = rne_strerror(code);
        int other;
        if (m == NULL || *m == '\0')
            ok = 0;
        for (other = 0; ok && other < code; other++)
            if (strcmp(m, rne_strerror(other)) == 0)
                ok = 0;
    }
    ok = ok && rne_strerror(-1) != NULL && rne_strerror(99) != NULL &&
         strcmp(rne_strerror(RNE_EINPUT + 1), rne_strerror(99)) == 0;
    check(ok, "strerror_every_code_distinct", "a status code has no or a duplicate message");
}

static double max_err_at(float (*f)(float), double (*ref)(double), float x, double *worst,
                         float *where)
{
    const double e = fabs((double)f(x) - ref((double)x));
    if (e > *worst) {
        *worst = e;
        *where = x;
    }
    return e;
}

static double sigmoid_ref(double x)
{
    return 1.0 / (1.0 + exp(-x));
}

static void test_activation(const char *name, float (*f)(float), double (*ref)(double),
                            void (*vec)(float *, size_t), int odd)
{
    double worst = 0.0;
    float where = 0.0f, xs[200];
    char label[64];
    int e, ok = 1;
    long i;
    /* dense grid: 2^21 points on [-45, 45], then every power of two and its neighbours */
    for (i = 0; i <= (1L << 21); i++)
        (void)max_err_at(f, ref, -45.0f + 90.0f * (float)i / (float)(1L << 21), &worst, &where);
    for (e = -149; e <= 127; e++) {
        const float p = ldexpf(1.0f, e);
        (void)max_err_at(f, ref, p, &worst, &where);
        (void)max_err_at(f, ref, -p, &worst, &where);
        (void)max_err_at(f, ref, nextafterf(p, 0.0f), &worst, &where);
        (void)max_err_at(f, ref, -nextafterf(p, INFINITY), &worst, &where);
    }
    snprintf(label, sizeof label, "%s_max_abs_error", name);
    check(worst <= 2e-7, label, "max abs error %.3g at x = %.9g", worst, (double)where);
    /* special values */
    ok = isnan(f(NAN)) && isnan(f(-NAN)) && f(FLT_MAX) == 1.0f && f(INFINITY) == 1.0f;
    if (odd)
        ok = ok && f(-INFINITY) == -1.0f && f(-FLT_MAX) == -1.0f && f(0.0f) == 0.0f &&
             signbit(f(-0.0f)) && f(-0.0f) == 0.0f && f(1e-30f) == 1e-30f;
    else
        ok = ok && f(-INFINITY) == 0.0f && f(-FLT_MAX) == 0.0f && f(0.0f) == 0.5f;
    for (i = 1; ok && i < 100000; i++) {      /* exact symmetry */
        const float x = (float)i * 1e-3f;
        ok = odd ? f(-x) == -f(x) : fabs((double)f(-x) + (double)f(x) - 1.0) <= 1.2e-7;
    }
    snprintf(label, sizeof label, "%s_special_values", name);
    check(ok, label, "NaN, +-inf, +-max, +-0 or symmetry wrong");
    /* the vector version gives the scalar version's bits, wherever the element sits */
    for (i = 0; i < 200; i++)
        xs[i] = (float)(i - 100) * 0.173f;
    xs[7] = NAN;
    xs[150] = -INFINITY;
    vec(xs + 3, 197);
    for (i = 3; ok && i < 200; i++) {
        const float x = i == 7 ? NAN : i == 150 ? -INFINITY : (float)(i - 100) * 0.173f;
        const float y = f(x);
        ok = memcmp(&xs[i], &y, sizeof y) == 0;
    }
    snprintf(label, sizeof label, "%s_vector_equals_scalar", name);
    check(ok, label, "vector and scalar results differ");
}

/* every elementwise kind at its edges (thresholds, saturation, overflow), and softmax */
static void test_act_kinds(void)
{
    static const struct {
        unsigned kind;
        float alpha, beta, x, y;
    } t[] = {
        { RNE_ACT_IDENTITY, 0, 0, -3.0f, -3.0f },
        { RNE_ACT_RELU, 0, 0, -1.0f, 0.0f }, { RNE_ACT_RELU, 0, 0, 2.5f, 2.5f },
        { RNE_ACT_LEAKYRELU, 0.1f, 0, -2.0f, -0.2f }, { RNE_ACT_LEAKYRELU, 0.1f, 0, 3.0f, 3.0f },
        { RNE_ACT_THRESHOLDEDRELU, 0.5f, 0, 0.5f, 0.0f },
        { RNE_ACT_THRESHOLDEDRELU, 0.5f, 0, 0.625f, 0.625f },
        { RNE_ACT_SCALEDTANH, 2.0f, 0.5f, 100.0f, 2.0f },
        { RNE_ACT_SCALEDTANH, 2.0f, 0.5f, 0.0f, 0.0f },
        { RNE_ACT_HARDSIGMOID, 0.2f, 0.5f, -10.0f, 0.0f },
        { RNE_ACT_HARDSIGMOID, 0.2f, 0.5f, 10.0f, 1.0f },
        { RNE_ACT_HARDSIGMOID, 0.2f, 0.5f, 1.0f, 0.7f },
        { RNE_ACT_ELU, 0.5f, 0, -INFINITY, -0.5f }, { RNE_ACT_ELU, 0.5f, 0, 2.0f, 2.0f },
        { RNE_ACT_ELU, 1.0f, 0, -1.0f, -0.632120559f },
        { RNE_ACT_SOFTSIGN, 0, 0, 1.0f, 0.5f }, { RNE_ACT_SOFTSIGN, 0, 0, -3.0f, -0.75f },
        { RNE_ACT_SOFTPLUS, 0, 0, 100.0f, 100.0f }, { RNE_ACT_SOFTPLUS, 0, 0, 0.0f, 0.693147181f },
        { RNE_ACT_SOFTPLUS, 0, 0, -20.0f, 2.06115369e-9f },
        { RNE_ACT_AFFINE, 2.0f, 1.0f, 3.0f, 7.0f },
        { RNE_ACT_CLIP, -1.0f, 2.0f, -5.0f, -1.0f }, { RNE_ACT_CLIP, -1.0f, 2.0f, 5.0f, 2.0f },
        { RNE_ACT_CLIP, -INFINITY, INFINITY, 5.0f, 5.0f },
    };
    float v[3];
    size_t i;
    int ok = 1;
    for (i = 0; ok && i < sizeof t / sizeof t[0]; i++) {
        float x = t[i].x;
        rne__f32_act(&x, 1, t[i].kind, t[i].alpha, t[i].beta);
        ok = fabs((double)x - (double)t[i].y) <= 1e-7 * (1.0 + fabs((double)t[i].y));
        if (!ok)
            check(0, "activation_kinds_at_edges", "kind %u at %g gives %.9g, expected %.9g",
                  t[i].kind, (double)t[i].x, (double)x, (double)t[i].y);
    }
    if (ok)
        check(1, "activation_kinds_at_edges", "");
    v[0] = 1000.0f, v[1] = 1000.0f, v[2] = -1000.0f;
    rne__f32_softmax(v, 3);
    ok = v[0] == 0.5f && v[1] == 0.5f && v[2] == 0.0f;
    v[0] = 1000.0f, v[1] = 0.0f, v[2] = 999.0f;
    rne__f32_logsoftmax(v, 3);
    ok = ok && fabs((double)v[0] + 0.313261687) < 1e-6 && fabs((double)v[1] + 1000.313261687) < 1e-4 &&
         fabs((double)v[2] + 1.313261687) < 1e-6;
    check(ok, "softmax_logsoftmax_large_values", "softmax or logsoftmax of large values is wrong");
}

static void test_gemm(void)
{
    static const size_t shapes[][3] = {
        { 1, 1, 1 }, { 3, 17, 5 }, { 2, 600, 7 }, { 5, 33, 4 }, { 1, 512, 3 }, { 4, 1030, 9 },
        { 7, 16, 16 }, { 2, 5, 0 }
    };
    size_t s;
    int ok = 1;
    uint32_t seed = 12345u;
    for (s = 0; ok && s < sizeof shapes / sizeof shapes[0]; s++) {
        const size_t m = shapes[s][0], n = shapes[s][1], k = shapes[s][2];
        const size_t ldc = n + 3, ldx = k + 2, ldw = n + 5;
        float *c = malloc(m * ldc * sizeof(float)), *c2 = malloc(m * ldc * sizeof(float));
        float *x = malloc((m * ldx + 1) * sizeof(float)), *w = malloc((k * ldw + 1) * sizeof(float));
        size_t i, j, p;
        for (i = 0; i < m * ldc; i++)
            c[i] = c2[i] = lcg_float(&seed);
        for (i = 0; i < m * ldx; i++)
            x[i] = lcg_float(&seed);
        for (i = 0; i < k * ldw; i++)
            w[i] = lcg_float(&seed);
        rne__f32_gemm_acc_scalar(c, ldc, x, ldx, w, ldw, m, n, k);
        for (i = 0; i < m; i++)
            for (j = 0; j < n; j++) {
                float a = c2[i * ldc + j];
                for (p = 0; p < k; p++)
                    a = a + x[i * ldx + p] * w[p * ldw + j];
                c2[i * ldc + j] = a;
            }
        ok = memcmp(c, c2, m * ldc * sizeof(float)) == 0;
        free(c);
        free(c2);
        free(x);
        free(w);
        if (!ok)
            check(0, "gemm_equals_naive_loop", "m %zu n %zu k %zu differs", m, n, k);
    }
    if (ok)
        check(1, "gemm_equals_naive_loop", "");
}

/* ---- running a case --------------------------------------------------------------------------- */

static void test_case(const char *dir, const char *name)
{
    char path[1024], label[256];
    buf blob;
    npy x, y, st;
    int have_state, rc;
    rne_model m;
    runner r;
    uint32_t steps, batch, t, b, out_steps;
    size_t in_row, out_row, ysize;
    const float *xd, *yd;
    float *out, *out2;
    double worst = 0.0;
    size_t i, bad;

    snprintf(path, sizeof path, "%s/%s.rne", dir, name);
    snprintf(label, sizeof label, "case_%s_load", name);
    if (!read_file(path, &blob, 0)) {
        check(0, label, "cannot read %s", path);
        return;
    }
    rc = rne_model_load(blob.p, blob.size, &m);
    check(rc == RNE_OK, label, "rne_model_load: %s", rne_strerror(rc));
    snprintf(path, sizeof path, "%s/%s.x.npy", dir, name);
    if (rc != RNE_OK || !npy_read(path, "<f4", 4, &x)) {
        buf_free(&blob);
        return;
    }
    snprintf(path, sizeof path, "%s/%s.y.npy", dir, name);
    if (!npy_read(path, "<f4", 4, &y)) {
        check(0, label, "cannot read %s", path);
        buf_free(&x.file);
        buf_free(&blob);
        return;
    }
    snprintf(path, sizeof path, "%s/%s.state.npy", dir, name);
    have_state = npy_read(path, "<f4", 4, &st);
    xd = x.data;
    yd = y.data;
    steps = (uint32_t)x.dims[0];
    batch = (uint32_t)x.dims[1];
    out_steps = m.many_to_one ? 1 : steps;
    in_row = batch * (size_t)m.in_features;
    out_row = batch * (size_t)m.out_features;
    ysize = out_steps * out_row;
    snprintf(label, sizeof label, "case_%s_shapes", name);
    if (x.ndim != 3 || x.dims[2] != m.in_features || y.ndim != 3 || y.dims[0] != out_steps ||
        y.dims[1] != batch || y.dims[2] != m.out_features ||
        (have_state && st.count * 4 != rne_state_size(&m, batch))) {
        check(0, label, "files do not fit the model");
        goto done_files;
    }
    out = malloc(ysize * sizeof(float));
    out2 = malloc(ysize * sizeof(float));
    if (!runner_init(&r, &m, batch, steps)) {
        check(0, label, "stream init failed");
        goto done_out;
    }
    if (have_state)
        memcpy(r.state.p, st.data, st.count * 4);
    /* 1. the output */
    snprintf(label, sizeof label, "case_%s_matches_expected", name);
    rc = runner_run(&r, xd, steps, out);
    for (i = 0, bad = 0; rc == RNE_OK && i < ysize; i++) {
        const double e = (double)yd[i], d = fabs((double)out[i] - e);
        if (!(d <= ATOL + RTOL * fabs(e)))          /* NaN fails too */
            bad++;
        if (!(d <= worst))
            worst = d;
    }
    check(rc == RNE_OK && bad == 0, label, "rc %d, %zu of %zu outside tolerance, max abs error %.3g",
          rc, bad, ysize, worst);
    if (rc == RNE_OK && worst > worst_all) {
        worst_all = worst;
        snprintf(worst_case, sizeof worst_case, "%s", name);
    }
    /* 2. run again from the same state: same bits */
    rne_stream_reset(&r.s);
    if (have_state)
        memcpy(r.state.p, st.data, st.count * 4);
    rc = runner_run(&r, xd, steps, out2);
    snprintf(label, sizeof label, "case_%s_rerun_same_bits", name);
    check(rc == RNE_OK && memcmp(out, out2, ysize * 4) == 0, label, "second run differs");
    if (m.streamable) {
        /* 3. step by step: same output (the last step's, many-to-one) and same final state */
        buf final_run = buf_new(r.state.size, 0);
        int ok = 1;
        memcpy(final_run.p, r.state.p, r.state.size);
        rne_stream_reset(&r.s);
        if (have_state)
            memcpy(r.state.p, st.data, st.count * 4);
        for (t = 0; ok && t < steps; t++) {
            float *dst = m.many_to_one ? out2 : out2 + t * out_row;
            ok = rne_step(&r.s, xd + t * in_row, dst) == RNE_OK;
        }
        snprintf(label, sizeof label, "case_%s_step_equals_run", name);
        if (m.many_to_one && !take_last_full(&m))
            check(1, label, "");   /* TAKE_LAST with split < F: a step is a one-step run */
        else
            check(ok && memcmp(out, out2, ysize * 4) == 0 &&
                  memcmp(final_run.p, r.state.p, r.state.size) == 0, label,
                  "stepped output or final state differs from one run");
        /* 4. two chunks */
        if (!m.many_to_one && steps >= 2) {
            const uint32_t t1 = steps / 3 + 1;
            rne_stream_reset(&r.s);
            if (have_state)
                memcpy(r.state.p, st.data, st.count * 4);
            ok = runner_run(&r, xd, t1, out2) == RNE_OK &&
                 runner_run(&r, xd + t1 * in_row, steps - t1, out2 + t1 * out_row) == RNE_OK;
            snprintf(label, sizeof label, "case_%s_chunked_run", name);
            check(ok && memcmp(out, out2, ysize * 4) == 0 &&
                  memcmp(final_run.p, r.state.p, r.state.size) == 0, label,
                  "two chunks differ from one run");
        }
        buf_free(&final_run);
    } else {
        /* a backward model cannot be stepped: RNE_ESTREAM, y and state untouched */
        buf before = buf_new(r.state.size, 0);
        memcpy(before.p, r.state.p, r.state.size);
        out2[0] = 12345.0f;
        rc = rne_step(&r.s, xd, out2);
        snprintf(label, sizeof label, "case_%s_step_refused", name);
        check(rc == RNE_ESTREAM && out2[0] == 12345.0f &&
              memcmp(before.p, r.state.p, r.state.size) == 0, label, "rne_step gave %d", rc);
        buf_free(&before);
    }
    /* 5. batch B == B single streams (bit for bit) */
    if (batch > 1) {
        runner one;
        float *x1 = malloc(steps * (size_t)m.in_features * sizeof(float));
        float *y1 = malloc(out_steps * (size_t)m.out_features * sizeof(float));
        int ok = runner_init(&one, &m, 1, steps);
        for (b = 0; ok && b < batch; b++) {
            rne_stream_reset(&one.s);
            if (have_state)
                state_take_batch(&m, (const uint8_t *)st.data, batch, b, one.state.p);
            for (t = 0; t < steps; t++)
                memcpy(x1 + t * m.in_features, xd + t * in_row + b * (size_t)m.in_features,
                       m.in_features * sizeof(float));
            ok = runner_run(&one, x1, steps, y1) == RNE_OK;
            for (t = 0; ok && t < out_steps; t++)
                ok = memcmp(y1 + t * (size_t)m.out_features,
                            out + t * out_row + b * (size_t)m.out_features,
                            m.out_features * sizeof(float)) == 0;
        }
        snprintf(label, sizeof label, "case_%s_batch_equals_single", name);
        check(ok, label, "batch row %u differs from a single stream", b ? b - 1 : 0);
        runner_free(&one);
        free(x1);
        free(y1);
    }
    runner_free(&r);
done_out:
    free(out);
    free(out2);
done_files:
    buf_free(&x.file);
    buf_free(&y.file);
    if (have_state)
        buf_free(&st.file);
    buf_free(&blob);
}

/* ---- corruption ------------------------------------------------------------------------------- */

enum { AT_HEADER, AT_LAYER, AT_TENSOR, AT_DATA, AT_SIZE, AT_SWAP_LAYERS, AT_MISALIGN, AT_VALUE };

typedef struct edit {
    int at;             /* where: header, node record, tensor record, tensor data, value record ... */
    uint32_t index;     /* node / tensor / value index (AT_SWAP_LAYERS: the first of two nodes) */
    size_t field;       /* byte offset in the record (AT_DATA: in the tensor's data) */
    size_t width;       /* bytes written: 1, 2 or 4 (0: xor the byte with value) */
    uint32_t value;
} edit;

typedef struct corruption {
    const char *name;
    const char *base;   /* case whose blob is corrupted */
    int fix_crc;
    int expect;
    edit e[2];
    const char *where;  /* rne_model_load_where's fault, as fault_text gives it */
} corruption;

#define HDR(f) AT_HEADER, 0, offsetof(rne_header, f), sizeof(((rne_header *)0)->f)
#define LAY(i, f) AT_LAYER, i, offsetof(rne_node, f), sizeof(((rne_node *)0)->f)
#define TEN(i, f) AT_TENSOR, i, offsetof(rne_tensor, f), sizeof(((rne_tensor *)0)->f)
#define VAL(i, f) AT_VALUE, i, offsetof(rne_value, f), sizeof(((rne_value *)0)->f)
#define F32BITS_NAN 0x7FC00000u
#define STACK "stack_bilstm_lstm_last_dense_softmax"

/* nodes of STACK: 0 LSTM bidir 4->10 (tensors 0..2: W R B), 1 LSTM 10->6 (3..5), 2 TAKE_LAST 6,
 * 3 DENSE 6->3 (6, 7), 4 ACT softmax 3; values: 0 input [4], 1 [10], 2 [6], 3 [6] last,
 * 4 [3] last, 5 output [3] last; node i reads value i and writes value i + 1 */
static const corruption corruptions[] = {
    { "untouched_blob_loads", STACK, 0, RNE_OK, { { AT_SIZE, 0, 0, 0, 0 } }, "none" },
    { "bad_magic", STACK, 0, RNE_EMAGIC, { { HDR(magic[0]) , 'X' } }, "header magic" },
    { "future_version", STACK, 0, RNE_EVERSION, { { HDR(version), 3 } }, "header version" },
    { "version_one", STACK, 0, RNE_EVERSION, { { HDR(version), 1 } }, "header version" },
    { "version_zero", STACK, 1, RNE_EHEADER, { { HDR(version), 0 } }, "header version" },
    { "header_size_not_64", STACK, 1, RNE_EHEADER, { { HDR(header_size), 68 } }, "header header_size" },
    { "header_flags_set", STACK, 1, RNE_EHEADER, { { HDR(flags), 1 } }, "header flags" },
    { "header_reserved_set", STACK, 1, RNE_EHEADER, { { HDR(reserved), 1 } }, "header reserved" },
    { "alignment_not_power_of_two", STACK, 1, RNE_EHEADER, { { HDR(alignment), 48 } }, "header alignment" },
    { "alignment_too_small", STACK, 1, RNE_EHEADER, { { HDR(alignment), 8 } }, "header alignment" },
    { "alignment_too_large", STACK, 1, RNE_EHEADER, { { HDR(alignment), 8192 } }, "header alignment" },
    { "misaligned_buffer_by_half_alignment", STACK, 0, RNE_EALIGN, { { AT_MISALIGN, 0, 0, 0, 0 } }, "header blob" },
    { "misaligned_buffer_by_1", STACK, 0, RNE_EALIGN, { { AT_MISALIGN, 0, 0, 0, 1 } }, "header blob" },
    { "file_size_below_header_and_crc", STACK, 1, RNE_EHEADER, { { HDR(file_size), 67 } }, "header reserved" },
    { "no_nodes", STACK, 1, RNE_EHEADER, { { HDR(n_nodes), 0 } }, "header n_nodes" },
    { "too_many_nodes", STACK, 1, RNE_EHEADER, { { HDR(n_nodes), RNE_MAX_NODES + 1 } }, "header n_nodes" },
    { "too_many_tensors", STACK, 1, RNE_EHEADER, { { HDR(n_tensors), 4097 } }, "header n_tensors" },
    { "one_value", STACK, 1, RNE_EHEADER, { { HDR(n_values), 1 } }, "header n_values" },
    { "too_many_values", STACK, 1, RNE_EHEADER, { { HDR(n_values), RNE_MAX_VALUES + 1 } }, "header n_values" },
    { "arena_row_not_16_multiple", STACK, 1, RNE_EHEADER, { { HDR(arena_row), 8 } }, "header arena_row" },
    { "truncated_to_0", STACK, 0, RNE_ETRUNC, { { AT_SIZE, 0, 0, 0, 0 + 1 } }, "header size" },
    { "truncated_inside_header", STACK, 0, RNE_ETRUNC, { { AT_SIZE, 0, 0, 0, 63 + 1 } }, "header size" },
    { "truncated_at_metadata", STACK, 0, RNE_ETRUNC, { { AT_SIZE, 1, 0, 0, 0 } }, "header file_size" },
    { "truncated_at_node_table", STACK, 0, RNE_ETRUNC, { { AT_SIZE, 2, 0, 0, 0 } }, "header file_size" },
    { "truncated_at_tensor_table", STACK, 0, RNE_ETRUNC, { { AT_SIZE, 3, 0, 0, 0 } }, "header file_size" },
    { "truncated_at_value_table", STACK, 0, RNE_ETRUNC, { { AT_SIZE, 11, 0, 0, 0 } }, "header file_size" },
    { "truncated_at_tensor_data", STACK, 0, RNE_ETRUNC, { { AT_SIZE, 4, 0, 0, 0 } }, "header file_size" },
    { "truncated_at_crc", STACK, 0, RNE_ETRUNC, { { AT_SIZE, 5, 0, 0, 0 } }, "header file_size" },
    { "truncated_by_one_byte", STACK, 0, RNE_ETRUNC, { { AT_SIZE, 6, 0, 0, 0 } }, "header file_size" },
    { "flipped_byte_in_weights", STACK, 0, RNE_ECRC, { { AT_DATA, 1, 5, 0, 0x10 } }, "crc crc" },
    { "flipped_byte_in_node_table", STACK, 0, RNE_ECRC, { { AT_LAYER, 3, 9, 0, 0x01 } }, "crc crc" },
    { "flipped_byte_in_value_table", STACK, 0, RNE_ECRC, { { AT_VALUE, 2, 4, 0, 0x01 } }, "crc crc" },
    { "flipped_bit_in_metadata", STACK, 0, RNE_ECRC, { { AT_HEADER, 0, 70, 0, 0x80 } }, "crc crc" },
    { "node_table_offset_not_8_aligned", STACK, 1, RNE_EALIGN, { { HDR(node_off), 4 } }, "header node_off" },
    { "value_table_offset_not_8_aligned", STACK, 1, RNE_EALIGN, { { HDR(value_off), 4 } }, "header value_off" },
    { "metadata_past_end", STACK, 1, RNE_ETRUNC, { { HDR(meta_size), 1000000 } }, "metadata meta_off/meta_size" },
    { "value_table_past_end", STACK, 1, RNE_ETRUNC, { { HDR(n_values), 1000 } }, "header value_off" },
    { "tensor_table_over_node_table", STACK, 1, RNE_EHEADER, { { AT_SIZE, 7, 0, 0, 0 } }, "header tensor_off #2" },
    { "value_table_over_tensor_table", STACK, 1, RNE_EHEADER, { { AT_SIZE, 12, 0, 0, 0 } }, "header value_off #3" },
    { "metadata_over_header", STACK, 1, RNE_EHEADER, { { HDR(meta_off), 8 } }, "metadata meta_off/meta_size #0" },
    { "tensor_bad_name", STACK, 1, RNE_ETENSOR, { { TEN(0, name[1]), ' ' } }, "tensor T0 name" },
    { "tensor_name_not_terminated", STACK, 1, RNE_ETENSOR, { { TEN(0, name[23]), 'x' } }, "tensor T0 name" },
    { "tensor_duplicate_name", STACK, 1, RNE_ETENSOR, { { AT_SIZE, 8, 0, 0, 0 } }, "tensor T1 name #0" },
    { "tensor_unknown_dtype", STACK, 1, RNE_ETENSOR, { { TEN(0, dtype), 9 } }, "tensor T0 dtype" },
    { "tensor_ndim_zero", STACK, 1, RNE_ETENSOR, { { TEN(0, ndim), 0 } }, "tensor T0 ndim" },
    { "tensor_ndim_five", STACK, 1, RNE_ETENSOR, { { TEN(0, ndim), 5 } }, "tensor T0 ndim" },
    { "tensor_unused_dim_not_one", STACK, 1, RNE_ETENSOR, { { TEN(0, shape[3]), 2 } }, "tensor T0 shape #3" },
    { "tensor_zero_dim", STACK, 1, RNE_ETENSOR, { { TEN(0, shape[1]), 0 } }, "tensor T0 shape #1" },
    { "tensor_nbytes_wrong", STACK, 1, RNE_ETENSOR, { { TEN(0, nbytes), 4 } }, "tensor T0 nbytes" },
    { "tensor_offset_misaligned", STACK, 1, RNE_EALIGN, { { AT_TENSOR, 0, offsetof(rne_tensor, offset), 0, 0x08 } }, "tensor T0 offset" },
    { "tensor_data_past_end", STACK, 1, RNE_ETRUNC, { { TEN(0, offset), 0x7FFFFF00u } }, "tensor T0 offset" },
    { "tensor_data_over_header", STACK, 1, RNE_ETENSOR, { { TEN(1, offset), 0 } }, "tensor T1 offset" },
    { "tensor_data_overlapping", STACK, 1, RNE_ETENSOR, { { AT_SIZE, 10, 0, 0, 0 } }, "tensor T1 offset #0" },
    { "tensor_reserved_set", STACK, 1, RNE_ETENSOR, { { TEN(2, reserved1), 1 } }, "tensor T2 reserved" },
    { "tensor_f32_with_scale", STACK, 1, RNE_ETENSOR, { { TEN(2, scale), 0x3F800000u } }, "tensor T2 scale" },
    /* the value table (docs/graph.md section 1) */
    { "value_unknown_kind", STACK, 1, RNE_ELAYER, { { VAL(1, kind), 9 } }, "value V1 kind" },
    { "value_second_output", STACK, 1, RNE_ELAYER, { { VAL(4, kind), RNE_V_OUTPUT }, { VAL(4, offset), 0 } }, "value V5 kind" },
    { "value_no_output", STACK, 1, RNE_ELAYER, { { VAL(5, kind), RNE_V_TEMP } }, "value kind" },
    { "value_s32_temp", STACK, 1, RNE_ELAYER, { { VAL(1, dtype), RNE_DT_S32 } }, "value V1 dtype" },
    { "value_s16_without_scale", STACK, 1, RNE_ELAYER, { { VAL(1, dtype), RNE_DT_S16 } }, "value V1 scale" },
    { "value_f32_with_scale", STACK, 1, RNE_ELAYER, { { VAL(1, scale), 0x3F800000u } }, "value V1 scale" },
    { "value_last_input", STACK, 1, RNE_ELAYER, { { VAL(0, flags), RNE_VF_LAST } }, "value V0 flags" },
    { "value_unknown_flag", STACK, 1, RNE_ELAYER, { { VAL(1, flags), 2 } }, "value V1 flags" },
    { "value_reserved_set", STACK, 1, RNE_ELAYER, { { VAL(2, reserved[1]), 1 } }, "value V2 reserved" },
    { "value_ndim_zero", STACK, 1, RNE_ESHAPE, { { VAL(1, ndim), 0 } }, "value V1 ndim" },
    { "value_unused_dim_not_one", STACK, 1, RNE_ESHAPE, { { VAL(1, shape[2]), 2 } }, "value V1 shape #2" },
    { "value_zero_features", STACK, 1, RNE_ESHAPE, { { VAL(4, shape[0]), 0 } }, "value V4 shape #0" },
    { "value_features_product_past_cap", STACK, 1, RNE_ESHAPE, { { VAL(0, ndim), 2 }, { VAL(0, shape[1]), 1u << 19 } }, "value V0 shape" },
    /* every feature count in 1..RNE_MAX_FEATURES: an ACT (or SLICE) node has no tensor to bound it */
    { "value_act_features_2_31_minus_1", "act_relu", 1, RNE_ESHAPE, { { VAL(0, shape[0]), 0x7FFFFFFFu }, { VAL(1, shape[0]), 0x7FFFFFFFu } }, "value V0 shape #0" },
    { "value_act_features_past_cap", "act_relu", 1, RNE_ESHAPE, { { VAL(0, shape[0]), RNE_MAX_FEATURES + 1u }, { VAL(1, shape[0]), RNE_MAX_FEATURES + 1u } }, "value V0 shape #0" },
    { "value_act_features_at_cap_loads", "act_relu", 1, RNE_OK, { { VAL(0, shape[0]), RNE_MAX_FEATURES }, { VAL(1, shape[0]), RNE_MAX_FEATURES } }, "none" },
    { "value_slice_input_past_cap", "slice", 1, RNE_ESHAPE, { { VAL(0, shape[0]), RNE_MAX_FEATURES + 1u } }, "value V0 shape #0" },
    { "value_temp_offset_misaligned", STACK, 1, RNE_EALIGN, { { VAL(2, offset), 8 } }, "value V2 offset" },
    { "value_temp_past_the_arena", STACK, 1, RNE_ESHAPE, { { VAL(2, offset), 4096 } }, "value V2 arena_row" },
    { "value_input_with_offset", STACK, 1, RNE_ELAYER, { { VAL(0, offset), 16 } }, "value V0 offset" },
    { "value_update_on_a_temp", STACK, 1, RNE_ELAYER, { { VAL(1, update), 2 } }, "value V1 update #2" },
    { "value_init_on_a_temp", STACK, 1, RNE_ELAYER, { { VAL(1, init), 0 } }, "value V1 init" },
    { "value_state_update_out_of_range", STACK, 1, RNE_ELAYER, { { VAL(1, kind), RNE_V_STATE }, { VAL(1, update), 99 } }, "value V1 update #99" },
    { "value_state_update_of_another_size", STACK, 1, RNE_ESHAPE, { { VAL(1, kind), RNE_V_STATE }, { VAL(1, update), 2 } }, "value V1 update #2" },
    { "value_state_init_of_another_size", STACK, 1, RNE_ESHAPE, { { VAL(1, kind), RNE_V_STATE }, { VAL(1, init), 0 } }, "value V1 T0 init" },
    /* the nodes' values (docs/graph.md section 2) */
    { "node_input_out_of_range", STACK, 1, RNE_ELAYER, { { LAY(3, in[0]), 999 } }, "node L3 in #0" },
    { "node_input_absent", STACK, 1, RNE_ELAYER, { { LAY(3, in[0]), RNE_NONE } }, "node L3 in #0" },
    { "node_extra_input", STACK, 1, RNE_ELAYER, { { LAY(3, in[1]), 0 } }, "node L3 in #1" },
    { "node_extra_output", STACK, 1, RNE_ELAYER, { { LAY(3, out[3]), 1 } }, "node L3 out #3" },
    { "node_reads_before_written", STACK, 1, RNE_ELAYER, { { LAY(1, in[0]), 2 } }, "node L1 V2 in #0" },
    { "node_writes_the_input", STACK, 1, RNE_ELAYER, { { LAY(3, out[0]), 0 } }, "node L3 V0 out #0" },
    { "node_writes_a_value_twice", STACK, 1, RNE_ELAYER, { { LAY(4, out[0]), 4 } }, "node L4 V4 out #0" },
    { "node_output_never_written", STACK, 1, RNE_ELAYER, { { LAY(4, out[0]), RNE_NONE } }, "node L4 out #0" },
    { "node_take_last_output_not_last", STACK, 1, RNE_ELAYER, { { VAL(3, flags), 0 } }, "node L2 V3 flags #0" },
    { "node_recurrent_h_init_of_another_size", STACK, 1, RNE_ESHAPE, { { LAY(1, in[1]), 0 } }, "node L1 V0 in #1" },
    { "node_recurrent_y_h_of_another_size", STACK, 1, RNE_ESHAPE, { { LAY(0, out[1]), 2 }, { VAL(2, flags), RNE_VF_LAST } }, "node L0 V2 out #1" },
    { "node_leading_axes_differ", "act_relu", 1, RNE_ESHAPE, { { VAL(1, ndim), 2 } }, "node L0 V1 shape" },
    { "tensor_shape_swapped_same_size", STACK, 1, RNE_ESHAPE, { { TEN(0, shape[1]), 20 }, { TEN(0, shape[2]), 4 } }, "node L0 T0 R0 shape #1" },
    { "tensor_wrong_dtype_same_size", STACK, 1, RNE_ESHAPE, { { TEN(0, dtype), RNE_DT_S32 } }, "node L0 T0 R0 dtype" },
    { "node_unknown_op", STACK, 1, RNE_ELAYER, { { LAY(3, op), 99 } }, "node L3 op" },
    { "node_op_zero", STACK, 1, RNE_ELAYER, { { LAY(3, op), 0 } }, "node L3 op" },
#if !RNE__GRAPH_OPS
    { "node_graph_op_not_built", STACK, 1, RNE_ELAYER, { { LAY(3, op), RNE_OP_COPY }, { LAY(3, tensor[0]), 0xFFFFFFFFu } }, "node L3 op" },
#endif
    { "node_graph_op_checked_by_its_checker", STACK, 1, RNE_ESHAPE, { { LAY(3, op), RNE_OP_COPY }, { LAY(3, tensor[0]), 0xFFFFFFFFu } }, "node L3 out" },
    { "node_f32_act_abs_loads", "act_relu", 1, RNE_OK, { { LAY(0, act[0][0]), RNE_ACT_ABS } }, "none" },
    { "node_integer_format", STACK, 1, RNE_ESHAPE, { { LAY(0, fmt), RNE_FMT_S16 } }, "node L0 V0 dtype #0" },
    { "node_unknown_flag", STACK, 1, RNE_ELAYER, { { LAY(0, flags), 64 | RNE_LF_BIDIR } }, "node L0 flags" },
#ifdef RNE_NO_INNER   /* the flag itself is what a build without such nodes refuses */
    { "node_inner_without_its_length", STACK, 1, RNE_ELAYER, { { LAY(1, flags), RNE_LF_INNER } }, "node L1 flags" },
#else
    { "node_inner_without_its_length", STACK, 1, RNE_ELAYER, { { LAY(1, flags), RNE_LF_INNER } }, "node L1 param #0" },
#endif
    { "node_inner_on_dense", STACK, 1, RNE_ELAYER, { { LAY(2, flags), RNE_LF_INNER } }, "node L2 flags" },
    { "node_reverse_and_bidir", STACK, 1, RNE_ELAYER, { { LAY(0, flags), RNE_LF_REVERSE | RNE_LF_BIDIR } }, "node L0 flags" },
    { "node_clip_flag_without_clip", STACK, 1, RNE_ELAYER, { { LAY(1, flags), RNE_LF_CLIP } }, "node L1 clip" },
    { "node_clip_without_flag", STACK, 1, RNE_ELAYER, { { LAY(1, clip), 0x3F800000u } }, "node L1 clip" },
    { "node_clip_nan", STACK, 1, RNE_ELAYER, { { LAY(1, flags), RNE_LF_CLIP }, { LAY(1, clip), F32BITS_NAN } }, "node L1 clip" },
    { "node_flag_on_dense", STACK, 1, RNE_ELAYER, { { LAY(3, flags), RNE_LF_REVERSE } }, "node L3 flags" },
    { "node_linear_before_reset_on_lstm", STACK, 1, RNE_ELAYER, { { LAY(1, flags), RNE_LF_LINEAR_BEFORE_RESET } }, "node L1 flags" },
    { "node_softmax_in_a_cell", STACK, 1, RNE_ELAYER, { { LAY(1, act[0][1]), RNE_ACT_SOFTMAX } }, "node L1 act #1" },
    { "node_unknown_activation", STACK, 1, RNE_ELAYER, { { LAY(4, act[0][0]), 99 } }, "node L4 act #0" },
    { "node_activation_alpha_nan", STACK, 1, RNE_ELAYER, { { LAY(1, alpha[0][0]), F32BITS_NAN } }, "node L1 act #0" },
    { "node_unused_activation_slot_set", STACK, 1, RNE_ELAYER, { { LAY(1, act[1][0]), RNE_ACT_TANH } }, "node L1 act #3" },
    { "node_padding_set", STACK, 1, RNE_ELAYER, { { LAY(4, pad[1]), 1 } }, "node L4 reserved" },
    { "node_reserved_set", STACK, 1, RNE_ELAYER, { { LAY(4, reserved[1]), 1 } }, "node L4 reserved" },
    { "node_skip_loads", STACK, 1, RNE_OK, { { LAY(4, reserved[0]), 3 } }, "none" },
    { "node_cell_without_hidden", STACK, 1, RNE_ELAYER, { { LAY(1, hidden), 0 } }, "node L1 hidden" },
    { "node_out_features_wrong", STACK, 1, RNE_ESHAPE, { { VAL(2, shape[0]), 7 } }, "node L1 out_features" },
    { "node_tensor_index_out_of_range", STACK, 1, RNE_ELAYER, { { LAY(3, tensor[0]), 999 } }, "node L3 T999 R0 tensor" },
    { "node_required_tensor_absent", STACK, 1, RNE_ELAYER, { { LAY(1, tensor[1]), 0xFFFFFFFFu } }, "node L1 T-1 R1 tensor" },
    { "node_tensor_role_not_used", STACK, 1, RNE_ELAYER, { { LAY(3, tensor[6]), 0 } }, "node L3 T0 R6 tensor" },
    { "node_tensor_of_other_shape", STACK, 1, RNE_ESHAPE, { { LAY(3, tensor[0]), 0 } }, "node L3 T0 R0 ndim" },
    { "node_take_last_split_too_big", STACK, 1, RNE_ELAYER, { { LAY(2, param[0]), 7 } }, "node L2 param" },
    { "node_params_on_dense", STACK, 1, RNE_ELAYER, { { LAY(3, param[1]), 1 } }, "node L3 param #1" },
    { "node_slice_empty", "slice", 1, RNE_ELAYER, { { LAY(0, param[1]), 1000 } }, "node L0 param" },
    { "node_layernorm_epsilon_zero", "layernorm", 1, RNE_ELAYER, { { LAY(0, alpha[0][0]), 0 } }, "node L0 alpha #0" },
    { "value_size_disagrees_with_weights", STACK, 1, RNE_ESHAPE, { { VAL(4, shape[0]), 4 }, { VAL(5, shape[0]), 4 } }, "node L3 T6 R0 shape #1" },
    { "node_take_last_reads_a_last_value", STACK, 1, RNE_ELAYER, { { LAY(4, op), RNE_OP_TAKE_LAST }, { LAY(4, act[0][0]), 0 } }, "node L4 V4 in #0" },
    { "node_cell_reads_a_last_value", "c_rnn_square_last", 1, RNE_ELAYER, { { AT_SWAP_LAYERS, 0, 0, 0, 0 } }, "node L0 V1 in #0" },
    { "arena_live_values_overlap", STACK, 1, RNE_ESHAPE, { { AT_SIZE, 13, 0, 0, 0 } }, "value V2 lifetime #1" },
};

static void put(uint8_t *p, size_t width, uint32_t v)
{
    if (width == 0)
        *p ^= (uint8_t)v;
    else if (width == 1)
        *p = (uint8_t)v;
    else if (width == 2) {
        const uint16_t u = (uint16_t)v;
        memcpy(p, &u, 2);
    } else
        memcpy(p, &v, 4);
}

static void fix_crc(uint8_t *p)
{
    uint32_t fs, crc;
    memcpy(&fs, p + offsetof(rne_header, file_size), 4);
    crc = rne__crc32(p, fs - 4u);
    memcpy(p + fs - 4u, &crc, 4);
}

/* AT_SIZE special edits: 1..13 are section boundaries/structure changes, see the table above */
static size_t apply_special(uint8_t *p, const rne_header *h, uint32_t which, size_t size)
{
    const rne_tensor *ts = (const rne_tensor *)(const void *)(p + h->tensor_off);
    switch (which) {
    case 1: return h->meta_off;
    case 2: return h->node_off;
    case 3: return h->tensor_off;
    case 11: return h->value_off;
    case 12: put(p + offsetof(rne_header, value_off), 4, h->tensor_off); return size;
    case 13: {                          /* value 2 into value 1's arena bytes: both live at node 1 */
        const rne_value *vs = (const rne_value *)(const void *)(p + h->value_off);
        put(p + h->value_off + 2 * sizeof(rne_value) + offsetof(rne_value, offset), 4,
            vs[1].offset);
        return size;
    }
    case 4: return ts[0].offset;
    case 5: return h->file_size - 4u;
    case 6: return h->file_size - 1u;
    case 7: put(p + offsetof(rne_header, tensor_off), 4, h->node_off); return size;
    case 8: memcpy(p + h->tensor_off + 64 + offsetof(rne_tensor, name), ts[0].name, 24); return size;
    case 10: put(p + h->tensor_off + 64 + offsetof(rne_tensor, offset), 4, ts[0].offset); return size;
    default: return size;
    }
}

static void test_corruptions(const char *dir)
{
    size_t c;
    for (c = 0; c < sizeof corruptions / sizeof corruptions[0]; c++) {
        const corruption *k = &corruptions[c];
        char path[1024], label[128];
        buf orig, b;
        rne_header h;
        size_t size, misalign = 0;
        int i;
        snprintf(label, sizeof label, "corrupt_%s", k->name);
        snprintf(path, sizeof path, "%s/%s.rne", dir, k->base);
        if (!read_file(path, &orig, 0)) {
            check(0, label, "cannot read %s", path);
            continue;
        }
        memcpy(&h, orig.p, sizeof h);
        for (i = 0; i < 2; i++)
            if (k->e[i].at == AT_MISALIGN)
                misalign = k->e[i].value != 0 ? k->e[i].value : h.alignment / 2;
        b = buf_new(orig.size, misalign);
        memcpy(b.p, orig.p, orig.size);
        size = orig.size;
        for (i = 0; i < 2; i++) {
            const edit *e = &k->e[i];
            switch (e->at) {
            case AT_HEADER:
                put(b.p + e->field, e->width, e->value);
                break;
            case AT_LAYER:
                put(b.p + h.node_off + e->index * sizeof(rne_node) + e->field, e->width, e->value);
                break;
            case AT_VALUE:
                put(b.p + h.value_off + e->index * sizeof(rne_value) + e->field, e->width,
                    e->value);
                break;
            case AT_TENSOR:
                put(b.p + h.tensor_off + e->index * 64u + e->field, e->width, e->value);
                break;
            case AT_DATA: {
                const rne_tensor *t =
                    (const rne_tensor *)(const void *)(orig.p + h.tensor_off) + e->index;
                put(b.p + t->offset + e->field, e->width, e->value);
                break;
            }
            case AT_SIZE:
                if (e->index == 0 && e->value != 0)
                    size = e->value - 1u;
                else
                    size = apply_special(b.p, &h, e->index, size);
                break;
            case AT_SWAP_LAYERS: {
                uint8_t tmp[sizeof(rne_node)];
                uint8_t *l0 = b.p + h.node_off + e->index * sizeof(rne_node);
                uint8_t *l1 = l0 + sizeof(rne_node);
                memcpy(tmp, l0, sizeof tmp);
                memcpy(l0, l1, sizeof tmp);
                memcpy(l1, tmp, sizeof tmp);
                break;
            }
            default:
                break;
            }
        }
        if (k->fix_crc)
            fix_crc(b.p);
        check_load_fault(label, b.p, size, k->expect, k->where);
        buf_free(&b);
        buf_free(&orig);
    }
}

/* ---- API arguments ---------------------------------------------------------------------------- */

static void test_api(const char *dir)
{
    char path[1024];
    buf blob, big, bidir_blob;
    rne_model m, mb;
    rne_stream s;
    size_t ss, sc;
    float x[64], y[64];
    int ok;
    snprintf(path, sizeof path, "%s/%s.rne", dir, "c_stack_lstm_gru_dense_layernorm");
    if (!read_file(path, &blob, 0) || rne_model_load(blob.p, blob.size, &m) != RNE_OK) {
        check(0, "api_setup", "cannot load %s", path);
        return;
    }
    snprintf(path, sizeof path, "%s/%s.rne", dir, "lstm_bidirectional_yh");
    if (!read_file(path, &bidir_blob, 0) ||
        rne_model_load(bidir_blob.p, bidir_blob.size, &mb) != RNE_OK) {
        check(0, "api_setup", "cannot load %s", path);
        buf_free(&blob);
        return;
    }
    check(rne_model_load(NULL, 100, &m) == RNE_EARG &&
          rne_model_load(blob.p, blob.size, NULL) == RNE_EARG,
          "api_load_null_arguments", "NULL blob or model not refused");
    {
        rne_fault f;
        char text[160];
        check(rne_model_load_where(NULL, 100, &m, &f) == RNE_EARG &&
                  strcmp(fault_text(&f, text, sizeof text), "arguments blob") == 0 &&
                  rne_model_load_where(blob.p, blob.size, NULL, &f) == RNE_EARG &&
                  strcmp(fault_text(&f, text, sizeof text), "arguments model") == 0 &&
                  rne_model_load_where(blob.p, blob.size, &m, NULL) == RNE_OK &&
                  rne_model_load_where(blob.p, blob.size, &m, &f) == RNE_OK &&
                  strcmp(fault_text(&f, text, sizeof text), "none") == 0 &&
                  strcmp(rne_fault_field_name(RNE_FF_WEIGHT), "weight") == 0 &&
                  strcmp(rne_fault_field_name(RNE_FF_LIFETIME), "lifetime") == 0 &&
                  strcmp(rne_fault_field_name(RNE_FF_LIFETIME + 1), "?") == 0 &&
                  strcmp(rne_fault_field_name(-1), "?") == 0 &&
                  strcmp(rne_fault_section_name(RNE_SEC_LAYER), "node") == 0 &&
                  strcmp(rne_fault_section_name(RNE_SEC_VALUE), "value") == 0 &&
                  strcmp(rne_fault_section_name(RNE_SEC_VALUE + 1), "?") == 0,
              "api_load_where", "arguments, success and the name tables");
    }
    check(m.in_features == 4 && m.out_features == 3 && m.streamable == 1 && m.many_to_one == 0 &&
          m.max_features == 8 && m.max_gates == 32 && m.n_nodes == 4, "api_model_figures",
          "in %u out %u streamable %u m2o %u max_features %u max_gates %u", m.in_features,
          m.out_features, m.streamable, m.many_to_one, m.max_features, m.max_gates);
    check(mb.streamable == 0 && mb.many_to_one == 1, "api_model_figures_bidir",
          "streamable %u many_to_one %u", mb.streamable, mb.many_to_one);
    /* state layout: LSTM 8 (h, c) then GRU 6 (h) */
    ss = rne_state_size(&m, 3);
    check(ss == (24 + 24 + 20) * 4 && rne_state_offset(&m, 0, 3) == 0 &&
          rne_state_offset(&m, 1, 3) == 48 * 4 && rne_state_offset(&m, 2, 3) == (size_t)-1 &&
          rne_state_offset(&m, 9, 3) == (size_t)-1 && rne_state_offset(&m, 0, 0) == (size_t)-1,
          "api_state_layout", "state size %zu, offsets %zu %zu", ss, rne_state_offset(&m, 0, 3),
          rne_state_offset(&m, 1, 3));
    check(rne_state_c_offset(&m, 0, 3) == 24 * 4 && rne_state_c_offset(&m, 1, 3) == (size_t)-1 &&
              rne_state_c_offset(&m, 2, 3) == (size_t)-1 && rne_state_c_offset(&m, 9, 3) == (size_t)-1 &&
              rne_state_c_offset(&m, 0, 0) == (size_t)-1 && rne_state_c_offset(NULL, 0, 3) == (size_t)-1,
          "api_state_c_offset", "LSTM c at %zu, GRU %zu", rne_state_c_offset(&m, 0, 3),
          rne_state_c_offset(&m, 1, 3));
    /* a pipeline has no STATE values: every value index answers (size_t)-1 */
    check(rne_value_state_offset(&m, 0, 3) == (size_t)-1 &&
              rne_value_state_offset(&m, m.output, 3) == (size_t)-1 &&
              rne_value_state_offset(&m, 999, 3) == (size_t)-1 &&
              rne_value_state_offset(NULL, 0, 3) == (size_t)-1 && m.explicit_state == 0 &&
              m.n_values == m.n_nodes + 1 && m.input == 0 && m.output == m.n_nodes,
          "api_value_state_offset", "a pipeline's values: %u of them, input %u output %u",
          m.n_values, m.input, m.output);
    check(rne_state_size(&m, 0) == 0 && rne_scratch_size(&m, 0, 1) == 0 &&
          rne_state_size(NULL, 1) == 0 && rne_scratch_size(NULL, 1, 1) == 0,
          "api_sizes_zero_batch", "zero batch or NULL model not refused");
    check(rne_scratch_size(&m, 0xFFFFFFFFu, 0xFFFFFFFFu) == 0, "api_scratch_size_overflow",
          "overflow not detected");
    sc = rne_scratch_size(&m, 1, 1);
    big = buf_new(4096 + ss + sc, 0);
    ss = rne_state_size(&m, 1);
    check(rne_stream_init(NULL, &m, 1, big.p, ss, big.p + 2048, sc) == RNE_EARG &&
          rne_stream_init(&s, NULL, 1, big.p, ss, big.p + 2048, sc) == RNE_EARG &&
          rne_stream_init(&s, &m, 0, big.p, ss, big.p + 2048, sc) == RNE_EARG,
          "api_stream_init_bad_arguments", "NULL or zero batch not refused");
    check(rne_stream_init(&s, &m, 1, big.p + 4, ss, big.p + 2048, sc) == RNE_ESIZE &&
          rne_stream_init(&s, &m, 1, big.p, ss, big.p + 2056, sc) == RNE_ESIZE &&
          rne_stream_init(&s, &m, 1, big.p, ss - 4, big.p + 2048, sc) == RNE_ESIZE &&
          rne_stream_init(&s, &m, 1, big.p, ss, big.p + 2048, sc - 4) == RNE_ESIZE &&
          rne_stream_init(&s, &m, 1, NULL, ss, big.p + 2048, sc) == RNE_ESIZE,
          "api_stream_init_small_or_misaligned", "a small or misaligned buffer was accepted");
    ok = rne_stream_init(&s, &m, 1, big.p, ss, big.p + 2048, sc) == RNE_OK;
    memset(x, 0, sizeof x);
    check(ok && rne_step(&s, NULL, y) == RNE_EARG && rne_step(&s, x, NULL) == RNE_EARG &&
          rne_step(NULL, x, y) == RNE_EARG &&
          rne_step(&s, (const uint8_t *)(const void *)x + 1, y) == RNE_ESIZE,
          "api_step_bad_arguments", "bad rne_step argument accepted");
    /* a streamable model runs in chunks: scratch for one step is enough, less is not */
    check(ok && rne_run(&s, x, 0, y, NULL, 0) == RNE_OK &&
          rne_run(&s, x, 2, y, big.p + 2048, sc - 4) == RNE_ESIZE &&
          rne_run(&s, x, 2, y, big.p + 2056, rne_scratch_size(&m, 1, 2)) == RNE_ESIZE &&
          rne_run(&s, NULL, 2, y, big.p + 2048, rne_scratch_size(&m, 1, 2)) == RNE_EARG &&
          rne_run(&s, x, 0xFFFFFFFFu, y, big.p + 2048, sc - 16) ==
              (rne_scratch_size(&m, 1, 0xFFFFFFFFu) == 0 ? RNE_EARG : RNE_ESIZE) &&
          rne_run(&s, x, 2, y, big.p + 2048, sc) == RNE_OK,
          "api_run_bad_arguments", "bad rne_run argument accepted (or a chunked run refused)");
    {   /* rne_run_end (docs/c-api.md): end > steps refused; end == steps is rne_run; with
           end < steps the recurrent nodes stop at end: the first end rows and the state are
           those of an end-step run (the rows after: x's zeros) */
        float y1[64], y2[64];
        unsigned char st[1024];
        int i, same = 1;
        for (i = 0; i < 20; i++)
            x[i] = i < 12 ? (float)((i * 7) % 5) * 0.25f - 0.5f : 0.0f;
        ok = ok && ss <= sizeof st && rne_run_end(&s, x, 2, 3, y, big.p + 2048, sc) == RNE_EARG;
        ok = ok && rne_stream_reset(&s) == RNE_OK && rne_run(&s, x, 5, y1, big.p + 2048, sc) == RNE_OK &&
             rne_stream_reset(&s) == RNE_OK &&
             rne_run_end(&s, x, 5, 5, y2, big.p + 2048, sc) == RNE_OK;
        for (i = 0; ok && i < 15; i++)
            same = same && y1[i] == y2[i];
        ok = ok && same && rne_stream_reset(&s) == RNE_OK &&
             rne_run(&s, x, 3, y1, big.p + 2048, sc) == RNE_OK;
        if (ok)
            memcpy(st, big.p, ss);
        ok = ok && rne_stream_reset(&s) == RNE_OK &&
             rne_run_end(&s, x, 5, 3, y2, big.p + 2048, sc) == RNE_OK;
        for (i = 0; ok && i < 9; i++)
            same = same && y1[i] == y2[i];
        check(ok && same && memcmp(st, big.p, ss) == 0, "api_run_end",
              "rne_run_end: end > steps accepted, or not rne_run's rows and state");
    }
    /* many-to-one: zero steps have no last step */
    ss = rne_state_size(&mb, 1);
    sc = rne_scratch_size(&mb, 1, 1);
    ok = ss + sc < 4096 && rne_stream_init(&s, &mb, 1, big.p, ss, big.p + 2048, sc) == RNE_OK;
    check(ok && rne_run(&s, x, 0, y, big.p + 2048, sc) == RNE_EARG, "api_run_zero_steps_many_to_one",
          "zero steps of a many-to-one model not refused");
    buf_free(&bidir_blob);
    /* a stateless one-layer model still reports non-zero sizes (0 means an error) and runs */
    snprintf(path, sizeof path, "%s/%s.rne", dir, "act_relu");
    ok = read_file(path, &bidir_blob, 0) && rne_model_load(bidir_blob.p, bidir_blob.size, &mb) == 0;
    ss = ok ? rne_state_size(&mb, 2) : 0;
    sc = ok ? rne_scratch_size(&mb, 2, 1) : 0;
    ok = ok && ss == 16 && sc == 16 &&
         rne_stream_init(&s, &mb, 2, big.p, ss, big.p + 2048, sc) == RNE_OK;
    x[0] = -1.0f, x[1] = 2.0f;
    ok = ok && rne_step(&s, x, y) == RNE_OK && y[0] == 0.0f && y[1] == 2.0f;
    check(ok, "api_stateless_model_sizes", "state %zu scratch %zu", ss, sc);
    buf_free(&big);
    buf_free(&blob);
    buf_free(&bidir_blob);
}

/* ---- non-finite input (docs/robustness.md, "NaN and infinities") ------------------------------- */

/* Counts of NaN and of infinite values among y[0..n). */
static void count_nonfinite(const float *y, size_t n, size_t *nan, size_t *inf)
{
    size_t j;
    *nan = *inf = 0;
    for (j = 0; j < n; j++) {
        *nan += isnan(y[j]) != 0;
        *inf += isinf(y[j]) != 0;
    }
}

/* The f32 rule, on a cell of each kind: NaN in one feature makes every output NaN at that step
 * and at every later step (through the state) until rne_stream_reset; +-inf in one feature (its
 * weights nonzero) saturates the gates: finite outputs; +inf in every feature meets weights of
 * both signs in one sum (inf - inf): NaN, again kept by the state until the reset. */
static void test_nonfinite(const char *dir)
{
    static const char *const cases[] = { "lstm_forward", "gru_forward", "rnn_forward", "lstm_clip" };
    size_t c;
    for (c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        char path[1024], label[128];
        buf blob;
        rne_model m;
        runner r;
        float x[64], y[64];
        size_t n_in, n_out, j, nan[3] = { 0, 0, 0 }, inf[3] = { 0, 0, 0 };
        int k, ok = 1;
        snprintf(path, sizeof path, "%s/%s.rne", dir, cases[c]);
        snprintf(label, sizeof label, "nonfinite_%s", cases[c]);
        if (!read_file(path, &blob, 0) || rne_model_load(blob.p, blob.size, &m) != RNE_OK ||
            m.in_features > 64 || m.out_features > 64) {
            check(0, label, "cannot load %s", path);
            continue;
        }
        n_in = m.in_features, n_out = m.out_features;
        for (k = 0; ok && k < 4; k++) {     /* NaN at 0, +inf at 0, -inf at 0, +inf everywhere */
            ok = runner_init(&r, &m, 1, 1);
            for (j = 0; j < n_in; j++)
                x[j] = 0.25f * (float)((int)(j % 5) - 2);
            ok = ok && rne_step(&r.s, x, y) == RNE_OK;
            for (j = 0; j < n_in; j++)
                if (j == 0 || k == 3)
                    x[j] = k == 0 ? (float)NAN : k == 2 ? -(float)INFINITY : (float)INFINITY;
            ok = ok && rne_step(&r.s, x, y) == RNE_OK;
            count_nonfinite(y, n_out, &nan[0], &inf[0]);
            for (j = 0; j < n_in; j++)
                x[j] = 0.5f;
            ok = ok && rne_step(&r.s, x, y) == RNE_OK && rne_step(&r.s, x, y) == RNE_OK;
            count_nonfinite(y, n_out, &nan[1], &inf[1]);
            ok = ok && rne_stream_reset(&r.s) == RNE_OK && rne_step(&r.s, x, y) == RNE_OK;
            count_nonfinite(y, n_out, &nan[2], &inf[2]);
            if (k == 0 || k == 3)   /* poisoned until the reset, finite after it */
                ok = ok && nan[0] == n_out && nan[1] == n_out && nan[2] == 0 && inf[2] == 0;
            else                    /* saturated: finite, and the state stays finite */
                ok = ok && nan[0] == 0 && inf[0] == 0 && nan[1] == 0 && inf[1] == 0;
            runner_free(&r);
        }
        check(ok, label, "input kind %d of 0..3: NaN outputs at that step %zu, two steps later "
              "%zu, after the reset %zu (of %zu)", k - 1, nan[0], nan[1], nan[2], n_out);
        buf_free(&blob);
    }
}

/* ---- main ------------------------------------------------------------------------------------- */

int main(int argc, char **argv)
{
    const char *dir = argc > 1 ? argv[1] : "../tests/data/c";
    char **names;
    size_t n, i;
    test_crc();
    test_strerror();
    test_activation("sigmoid", rne__f32_sigmoid1, sigmoid_ref, rne__f32_sigmoid, 0);
    test_activation("tanh", rne__f32_tanh1, tanh, rne__f32_tanh, 1);
    test_act_kinds();
    test_gemm();
    if (list_cases(dir, &names, &n)) {
        for (i = 0; i < n; i++) {
            test_case(dir, names[i]);
            free(names[i]);
        }
        free(names);
        test_corruptions(dir);
        test_api(dir);
        test_blob_changes(dir, "lstm_forward", "lstm_hidden16_batch3", "blob_change_lstm");
        test_blob_changes(dir, "c_stack_lstm_gru_dense_layernorm", "c_lstm17_peepholes_logsoftmax",
                          "blob_change_stack");
        test_nonfinite(dir);
    }
    {   /* converted dataflow graphs (format version 2 beyond a pipeline): <dir>/graph */
        char gdir[1024];
        snprintf(gdir, sizeof gdir, "%s/graph", dir);
        if (list_cases(gdir, &names, &n)) {
            for (i = 0; i < n; i++) {
                test_case(gdir, names[i]);
                free(names[i]);
            }
            free(names);
        }
    }
    if (worst_case[0] != '\0')
        printf("note largest |output - expected| over all cases: %.3g, in %s\n", worst_all,
               worst_case);
    return test_summary();
}
