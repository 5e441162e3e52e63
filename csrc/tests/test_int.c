/*
 * test_int.c - the integer formats' test program (docs/quantization.md).
 *
 *   test_int DATA_DIR        (DATA_DIR = tests/data/c/int, written by tests/make_c_vectors.py)
 *
 * Prints one line per test ("ok   name" or "FAIL name: why") and a last line "N passed, M failed";
 * exits non-zero if anything failed. Every comparison is exact: the expected integers come from
 * the bit-exact reference rnnedge/fixedpoint.py.
 *
 * - the constant tables against the CRC-32s of the spec; the rounding rule, requantization and
 *   the table activations at known answers, and sigmoid / tanh over every pre-activation in
 *   [-2^20, 2^20] (range, monotony, symmetry);
 * - every DATA_DIR/<case>.rne with x and y: the output and the final state equal the reference's;
 *   a second run after reset gives the same bits; for streamable models rne_step one step at a
 *   time and two chunked runs give one run's output and final state (else rne_step is refused);
 *   batch B equals B single streams;
 * - every <case>.long.npy: a long stream (thousands of steps driven to the rails, or a sweep of
 *   every int16 value) generated here, whose output and final state must have the reference's
 *   CRC-32, run at once and (streamable) step by step;
 * - integer corruptions: each q-tensor fault the loader must refuse (shift, multiplier range,
 *   acc32, zlim, reserved slots, LayerNorm's eps_q, tables, dtypes, formats), with the CRC
 *   recomputed;
 * - the API on an integer model: int16 alignment, state layout (int16 h, int32 c).
 *
 * This is a test program: it allocates (the library never does).
 */
#define _POSIX_C_SOURCE 200809L
#define _FILE_OFFSET_BITS 64      /* readdir on 32-bit hosts with 64-bit inodes */

#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "qvec.h"
#include "rne_internal.h"
#include "rnnedge.h"
#include "testutil.h"

/* ---- files ---------------------------------------------------------------------------------------- */

static int npy_try(const char *dir, const char *name, const char *ext, const char *descr,
                   size_t elem, npy *a)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/%s.%s", dir, name, ext);
    return npy_read(path, descr, elem, a);
}

/* ---- primitives -------------------------------------------------------------------------------- */

static void test_tables(void)
{
    /* the tables' little-endian bytes (this host is little-endian: rne_model_load insists) */
    const uint32_t s = rne__crc32((const uint8_t *)rne__q_sigmoid, sizeof rne__q_sigmoid);
    const uint32_t e = rne__crc32((const uint8_t *)rne__q_exp2, sizeof rne__q_exp2);
    const uint32_t l = rne__crc32((const uint8_t *)rne__q_log2, sizeof rne__q_log2);
    check(s == 0x73960d91u && e == 0x5d4b05f4u && l == 0x8e1ba773u, "tables_match_spec_crcs",
          "sigmoid %08x exp2 %08x log2 %08x", s, e, l);
}

static void test_scalars(void)
{
    static const int64_t v1[] = { 5, -5, 6, -6, 7, -7, -8 }, r1[] = { 3, -2, 3, -3, 4, -3, -4 };
    static const int64_t v2[] = { -6, -2, -1, 6, 2 }, r2[] = { -1, 0, 0, 2, 1 };
    /* z, sigmoid_q15(z), tanh_q15(z) from rnnedge/fixedpoint.py */
    static const int32_t st[][3] = {
        { 0, 16384, 0 }, { 1, 16385, 3 }, { -1, 16383, -3 }, { 511, 16725, 1362 },
        { 512, 16726, 1365 }, { -512, 16042, -1365 }, { 6144, 20397, 15143 },
        { -6144, 12371, -15143 }, { 12288, 23956, 24956 }, { 100000, 32759, 32766 },
        { 1048576, 32767, 32766 }, { -1048576, 1, -32766 }, { 65535, 32610, 32766 }
    };
    size_t i;
    int ok = 1;
    for (i = 0; i < sizeof v1 / sizeof v1[0]; i++)
        ok = ok && rne__rshr(v1[i], 1) == r1[i];
    for (i = 0; i < sizeof v2 / sizeof v2[0]; i++)
        ok = ok && rne__rshr(v2[i], 2) == r2[i];
    check(ok, "rshr_rounds_half_up_negative_ties_too", "rshr differs from floor(v/2^n + 1/2)");
    /* rq32 saturates; a product of -2^62 and the rounding term 2^61 do not overflow */
    ok = rne__rq32((int64_t)1 << 31, INT32_MAX, 1) == INT32_MAX &&
         rne__rq32(-((int64_t)1 << 31), INT32_MAX, 1) == INT32_MIN &&
         rne__rq32((int64_t)1 << 31, INT32_MIN, 62) == -1 &&
         rne__rq32(3, 1, 1) == 2 && rne__rq32(-3, 1, 1) == -1 && rne__rq32(-1, -1, 1) == 1;
    check(ok, "rq32_known_answers_and_saturation", "rq32 wrong");
    for (i = 0, ok = 1; i < sizeof st / sizeof st[0]; i++)
        if (rne__sigmoid_q15(st[i][0]) != st[i][1] || rne__tanh_q15(st[i][0]) != st[i][2]) {
            ok = 0;
            check(0, "sigmoid_tanh_known_answers", "z %d: sigmoid %d tanh %d, expected %d %d",
                  st[i][0], rne__sigmoid_q15(st[i][0]), rne__tanh_q15(st[i][0]), st[i][1],
                  st[i][2]);
        }
    if (ok)
        check(1, "sigmoid_tanh_known_answers", "");
}

/* every pre-activation: sigmoid in [1, 32767], tanh in [-32766, 32766], both non-decreasing,
 * sigmoid(-z) = 32768 - sigmoid(z) and tanh(-z) = -tanh(z) for z > 0 */
static void test_activations_everywhere(void)
{
    int32_t z, ps = 0, pt = -32768;
    int ok = 1;
    for (z = -RNE__ZMAX; ok && z <= RNE__ZMAX; z++) {
        const int32_t s = rne__sigmoid_q15(z), t = rne__tanh_q15(z);
        ok = s >= 1 && s <= 32767 && t >= -32767 && t <= 32767 && s >= ps && t >= pt;
        if (ok && z > 0)
            ok = rne__sigmoid_q15(-z) == 32768 - s && rne__tanh_q15(-z) == -t;
        ps = s;
        pt = t;
    }
    check(ok, "sigmoid_tanh_every_pre_activation", "range, order or symmetry broken at z = %d",
          z - 1);
}

/* ---- running a model ----------------------------------------------------------------------------- */

static int load_case(const char *dir, const char *name, buf *blob, rne_model *m)
{
    char path[1024], label[256];
    int rc;
    snprintf(path, sizeof path, "%s/%s.rne", dir, name);
    snprintf(label, sizeof label, "%s_load", name);
    if (!read_file(path, blob, 0)) {
        check(0, label, "cannot read %s", path);
        return 0;
    }
    rc = rne_model_load(blob->p, blob->size, m);
    check(rc == RNE_OK && m->nodes[0].fmt != RNE_FMT_F32, label, "rne_model_load: %s (fmt %u)",
          rne_strerror(rc), rc == RNE_OK ? m->nodes[0].fmt : 0u);
    if (rc != RNE_OK)
        buf_free(blob);
    return rc == RNE_OK;
}

/* step by step from the state `start` (NULL: reset): the outputs and final state of one run? */
static int stepped_equals(runner *r, const rne_model *m, const npy *start, const int16_t *x,
                          uint32_t steps, size_t in_row, size_t out_row, const int16_t *want,
                          const buf *final_run, int16_t *scratch_y)
{
    uint32_t t;
    int ok = 1;
    rne_stream_reset(&r->s);
    if (start != NULL)
        memcpy(r->state.p, start->data, start->nbytes);
    for (t = 0; ok && t < steps; t++)
        ok = rne_step(&r->s, x + t * in_row, m->many_to_one ? scratch_y : scratch_y + t * out_row)
             == RNE_OK;
    return ok && memcmp(want, scratch_y, (m->many_to_one ? 1u : steps) * out_row * 2) == 0 &&
           memcmp(final_run->p, r->state.p, r->state.size) == 0;
}

static void test_case(const char *dir, const char *name)
{
    char label[256];
    buf blob, final_run;
    npy x, y, st, fin;
    int have_state, have_final, rc, ok;
    rne_model m;
    runner r;
    uint32_t steps, batch, out_steps, b, t;
    size_t in_row, out_row, ysize;
    int16_t *out, *out2;

    if (!load_case(dir, name, &blob, &m))
        return;
    snprintf(label, sizeof label, "%s_files", name);
    if (!npy_try(dir, name, "x.npy", "<i2", 2, &x)) {
        check(0, label, "cannot read %s.x.npy", name);
        buf_free(&blob);
        return;
    }
    if (!npy_try(dir, name, "y.npy", "<i2", 2, &y)) {
        check(0, label, "cannot read %s.y.npy", name);
        buf_free(&x.file);
        buf_free(&blob);
        return;
    }
    have_state = npy_try(dir, name, "state.npy", "|u1", 1, &st);
    have_final = npy_try(dir, name, "final.npy", "|u1", 1, &fin);
    steps = (uint32_t)x.dims[0];
    batch = (uint32_t)x.dims[1];
    out_steps = m.many_to_one ? 1 : steps;
    in_row = batch * (size_t)m.in_features;
    out_row = batch * (size_t)m.out_features;
    ysize = out_steps * out_row;
    if (x.ndim != 3 || x.dims[2] != m.in_features || y.ndim != 3 || y.dims[0] != out_steps ||
        y.dims[1] != batch || y.dims[2] != m.out_features ||
        (have_state && st.nbytes != rne_state_size(&m, batch)) ||
        (have_final && fin.nbytes != rne_state_size(&m, batch)) ||
        !runner_init(&r, &m, batch, steps)) {
        check(0, label, "files do not fit the model");
        goto done;
    }
    out = malloc(ysize * 2);
    out2 = malloc(ysize * 2 + out_row * 2);
    /* 1. the output and the final state, exactly */
    if (have_state)
        memcpy(r.state.p, st.data, st.nbytes);
    rc = runner_run(&r, (const int16_t *)x.data, steps, out);
    snprintf(label, sizeof label, "%s_equals_reference", name);
    ok = rc == RNE_OK && memcmp(out, y.data, ysize * 2) == 0 &&
         (!have_final || memcmp(r.state.p, fin.data, fin.nbytes) == 0);
    if (!ok && rc == RNE_OK) {
        size_t i, bad = 0, first = 0;
        for (i = 0; i < ysize; i++)
            if (out[i] != ((const int16_t *)y.data)[i] && bad++ == 0)
                first = i;
        check(0, label, "%zu of %zu outputs differ (first at %zu: %d, expected %d); final state %s",
              bad, ysize, first, bad ? out[first] : 0, bad ? ((const int16_t *)y.data)[first] : 0,
              have_final && memcmp(r.state.p, fin.data, fin.nbytes) != 0 ? "differs" : "equal");
    } else {
        check(ok, label, "rc %d", rc);
    }
    final_run = buf_new(r.state.size, 0);
    memcpy(final_run.p, r.state.p, r.state.size);
    /* 2. again from the same state: the same bits */
    rne_stream_reset(&r.s);
    if (have_state)
        memcpy(r.state.p, st.data, st.nbytes);
    rc = runner_run(&r, (const int16_t *)x.data, steps, out2);
    snprintf(label, sizeof label, "%s_rerun_same_bits", name);
    check(rc == RNE_OK && memcmp(out, out2, ysize * 2) == 0, label, "second run differs");
    if (m.streamable) {
        /* 3. step by step, 4. two chunks */
        snprintf(label, sizeof label, "%s_step_equals_run", name);
        if (m.many_to_one && !take_last_full(&m))
            check(1, label, "");    /* TAKE_LAST with split < F: a step is a one-step run */
        else
            check(stepped_equals(&r, &m, have_state ? &st : NULL, (const int16_t *)x.data, steps,
                                 in_row, out_row, out, &final_run, out2),
                  label, "stepped output or final state differs from one run");
        if (!m.many_to_one && steps >= 2) {
            const uint32_t t1 = steps / 3 + 1;
            rne_stream_reset(&r.s);
            if (have_state)
                memcpy(r.state.p, st.data, st.nbytes);
            ok = runner_run(&r, (const int16_t *)x.data, t1, out2) == RNE_OK &&
                 runner_run(&r, (const int16_t *)x.data + t1 * in_row, steps - t1,
                            out2 + t1 * out_row) == RNE_OK;
            snprintf(label, sizeof label, "%s_chunked_run", name);
            check(ok && memcmp(out, out2, ysize * 2) == 0 &&
                  memcmp(final_run.p, r.state.p, r.state.size) == 0, label,
                  "two chunks differ from one run");
        }
    } else {
        buf before = buf_new(r.state.size, 0);
        memcpy(before.p, r.state.p, r.state.size);
        out2[0] = 12345;
        rc = rne_step(&r.s, x.data, out2);
        snprintf(label, sizeof label, "%s_step_refused", name);
        check(rc == RNE_ESTREAM && out2[0] == 12345 &&
              memcmp(before.p, r.state.p, r.state.size) == 0, label, "rne_step gave %d", rc);
        buf_free(&before);
    }
    /* 5. batch B == B single streams */
    if (batch > 1) {
        runner one;
        int16_t *x1 = malloc(steps * (size_t)m.in_features * 2);
        int16_t *y1 = malloc(out_steps * (size_t)m.out_features * 2);
        ok = runner_init(&one, &m, 1, steps);
        for (b = 0; ok && b < batch; b++) {
            rne_stream_reset(&one.s);
            if (have_state)
                state_take_batch(&m, (const uint8_t *)st.data, batch, b, one.state.p);
            for (t = 0; t < steps; t++)
                memcpy(x1 + t * m.in_features,
                       (const int16_t *)x.data + t * in_row + b * (size_t)m.in_features,
                       m.in_features * 2u);
            ok = runner_run(&one, x1, steps, y1) == RNE_OK;
            for (t = 0; ok && t < out_steps; t++)
                ok = memcmp(y1 + t * (size_t)m.out_features,
                            out + t * out_row + b * (size_t)m.out_features,
                            m.out_features * 2u) == 0;
        }
        snprintf(label, sizeof label, "%s_batch_equals_single", name);
        check(ok, label, "batch row %u differs from a single stream", b ? b - 1 : 0);
        runner_free(&one);
        free(x1);
        free(y1);
    }
    buf_free(&final_run);
    free(out);
    free(out2);
    runner_free(&r);
done:
    buf_free(&x.file);
    buf_free(&y.file);
    if (have_state)
        buf_free(&st.file);
    if (have_final)
        buf_free(&fin.file);
    buf_free(&blob);
}

/* ---- long streams ---------------------------------------------------------------------------------- */

/* tests/make_c_vectors.py int_x: generator 1 sweeps every int16 value; generator 0 is an LCG in
 * four phases of steps/4 (uniform; half at +32767; all -32768; small values) */
static void gen_x(int16_t *x, uint32_t generator, uint32_t seed, size_t steps, size_t per_step)
{
    uint32_t s = seed;
    size_t i;
    for (i = 0; i < steps * per_step; i++) {
        uint32_t top, u;
        int32_t v;
        if (generator == 1) {
            x[i] = (int16_t)((int32_t)(i % 65536u) - 32768);
            continue;
        }
        lcg_next(&s);
        top = s >> 24;
        u = (s >> 8) & 0xFFFFu;
        v = (int32_t)u - (u >= 32768u ? 65536 : 0);
        switch (4 * (i / per_step) / steps) {
        case 0: x[i] = (int16_t)v; break;
        case 1: x[i] = (int16_t)(top < 128 ? 32767 : v); break;
        case 2: x[i] = -32768; break;
        default: x[i] = (int16_t)(top < 64 ? 0 : v >> 4); break;
        }
    }
}

static void test_long(const char *dir, const char *name)
{
    char label[256];
    buf blob;
    npy spec;
    rne_model m;
    runner r;
    const uint32_t *v;
    uint32_t steps, batch, t, crc_y, crc_s;
    size_t in_row, out_row, ysize;
    int16_t *x, *y;
    int rc;
    if (!load_case(dir, name, &blob, &m))
        return;
    snprintf(label, sizeof label, "%s_files", name);
    if (!npy_try(dir, name, "long.npy", "<u4", 4, &spec) || spec.count != 6) {
        check(0, label, "cannot read %s.long.npy", name);
        buf_free(&blob);
        return;
    }
    v = (const uint32_t *)spec.data;
    steps = v[0];
    batch = v[1];
    in_row = batch * (size_t)m.in_features;
    out_row = batch * (size_t)m.out_features;
    ysize = (m.many_to_one ? 1u : steps) * out_row;
    x = malloc(steps * in_row * 2);
    y = malloc(steps * out_row * 2);
    gen_x(x, v[2], v[3], steps, in_row);
    if (!runner_init(&r, &m, batch, steps)) {
        check(0, label, "stream init failed");
    } else {
        rc = runner_run(&r, x, steps, y);
        crc_y = rne__crc32((const uint8_t *)y, ysize * 2);
        crc_s = rne__crc32(r.state.p, r.state.size);
        snprintf(label, sizeof label, "%s_%lu_steps_equals_reference", name, (unsigned long)steps);
        check(rc == RNE_OK && crc_y == v[4] && crc_s == v[5], label,
              "rc %d, crc32 of y %08lx (expected %08lx), of the final state %08lx (expected %08lx)",
              rc, (unsigned long)crc_y, (unsigned long)v[4], (unsigned long)crc_s, (unsigned long)v[5]);
        if (m.streamable && !m.many_to_one) {
            rne_stream_reset(&r.s);
            for (t = 0, rc = RNE_OK; rc == RNE_OK && t < steps; t++)
                rc = rne_step(&r.s, x + t * in_row, y + t * out_row);
            snprintf(label, sizeof label, "%s_step_equals_run", name);
            check(rc == RNE_OK && rne__crc32((const uint8_t *)y, ysize * 2) == v[4] &&
                  rne__crc32(r.state.p, r.state.size) == v[5], label,
                  "stepping differs from the run");
        }
    }
    runner_free(&r);
    free(x);
    free(y);
    buf_free(&spec.file);
    buf_free(&blob);
}

/* ---- corruptions ----------------------------------------------------------------------------------- */

enum { AT_Q, AT_TENSOR_REC, AT_LAYER_REC, AT_ROLE, AT_VALUE_REC };

/* Write `value` at: AT_Q element `index` of layer `layer`'s q tensor; AT_TENSOR_REC byte `index`
 * (width bytes) of the record of that layer's tensor `role`; AT_LAYER_REC byte `index` of the
 * layer record; AT_ROLE: tensor[index] of the layer record; AT_VALUE_REC byte `index` of value
 * record `layer`. */
typedef struct qedit {
    int at;
    uint32_t layer;
    int role;
    size_t index, width;
    int64_t value;
} qedit;

typedef struct qcorruption {
    const char *name, *base;
    int expect;
    qedit e[2];
    const char *where;  /* rne_model_load_where's fault, as fault_text gives it */
} qcorruption;

#define Q(l, i, v) { AT_Q, l, RNE_T_Q, i, 4, v }
#define TREC(l, r, f, v) { AT_TENSOR_REC, l, r, offsetof(rne_tensor, f), sizeof(((rne_tensor *)0)->f), v }
#define LREC(l, f, v) { AT_LAYER_REC, l, 0, offsetof(rne_node, f), sizeof(((rne_node *)0)->f), v }
#define ROLE(l, r, v) { AT_ROLE, l, 0, (size_t)(r), 4, v }
#define VREC(i, f, v) { AT_VALUE_REC, i, 0, offsetof(rne_value, f), sizeof(((rne_value *)0)->f), v }
/* bases: LSTM s16 I 3 H 5 with peepholes (q row 24 + 2 * 20); LSTM s16 I 4 H 20 (R rows of 20
 * weights: a bound past 2^32); GRU s16 H 5 bidirectional (q rows 24 + 2 * 15); LSTM s8 H 5
 * bidirectional (q rows 24 + 2 * 20); DENSE s8 2100 -> 3 (a bound past 2^32); the pipeline
 * bi-LSTM, LSTM, TAKE_LAST, DENSE, ACT softmax */
#define PEEP "q16_lstm_peepholes"
#define LONG "q16_c_lstm_long_sequence"
#define BIGRU "q16_gru_bidirectional"
#define BILSTM8 "q8_lstm_bidirectional"
#define WIDE "q8_long_dense_s8_acc64"
#define STACK "q8_stack_bilstm_lstm_last_dense_softmax"
#define LN "q16_layernorm"      /* LAYERNORM s16, F = 6, with beta: q [24 + 6], B s32 [6] */

static const qcorruption qcorruptions[] = {
    { "untouched", PEEP, RNE_OK, { { AT_Q, 0, RNE_T_Q, 0, 0, 0 } }, "none" },
    { "w_shift_zero", PEEP, RNE_ELAYER, { Q(0, 0, 0) } , "data L0 T4 R6 q slot #0" },
    { "r_shift_63", PEEP, RNE_ELAYER, { Q(0, 1, 63) } , "data L0 T4 R6 q slot #1" },
    { "zlim_above_2_20", PEEP, RNE_ELAYER, { Q(0, 2, (1 << 20) + 1) } , "data L0 T4 R6 q slot #2" },
    { "zlim_negative", PEEP, RNE_ELAYER, { Q(0, 2, -1) } , "data L0 T4 R6 q slot #2" },
    { "acc32_two", PEEP, RNE_ELAYER, { Q(0, 3, 2) } , "data L0 T4 R6 q slot #3" },
    { "acc32_on_int16_weights", PEEP, RNE_ELAYER, { Q(0, 3, 1) } , "data L0 T4 R6 acc32 #24" },
    { "w_multiplier_overflows_int64", WIDE, RNE_ELAYER, { Q(0, 24 + 1, INT32_MIN), Q(0, 0, 62) } , "data L0 T1 R6 multiplier #25" },
    { "r_multiplier_overflows_int64", LONG, RNE_ELAYER, { Q(0, 24 + 80 + 7, INT32_MIN), Q(0, 1, 62) } , "data L0 T3 R6 multiplier #111" },
    { "peephole_shift_zero", PEEP, RNE_ELAYER, { Q(0, 4, 0) } , "data L0 T4 R6 q slot #4" },
    { "peephole_multiplier_overflows", PEEP, RNE_ELAYER, { Q(0, 6, INT32_MAX), Q(0, 4, 1) } , "data L0 T4 R6 multiplier #6" },
    { "hardsigmoid_slot_on_sigmoid", PEEP, RNE_ELAYER, { Q(0, 9, 5) } , "data L0 T4 R6 q slot #9" },
    { "reserved_slot_set", PEEP, RNE_ELAYER, { Q(0, 23, 1) } , "data L0 T4 R6 q slot #23" },
    { "q_scale_zero", PEEP, RNE_ELAYER, { TREC(0, RNE_T_Q, scale, 0) } , "node L0 T4 R6 scale" },
    { "q_shape_wrong", PEEP, RNE_ESHAPE, { TREC(0, RNE_T_Q, shape[1], 63), TREC(0, RNE_T_Q, nbytes, 63 * 4) } , "node L0 T4 R6 shape #1" },
    { "weights_int8_in_s16_layer", PEEP, RNE_ESHAPE, { TREC(0, RNE_T_R, dtype, RNE_DT_S8), TREC(0, RNE_T_R, nbytes, 5 * 20) } , "node L0 T1 R1 dtype" },
    { "bias_zero_point", PEEP, RNE_ESHAPE, { TREC(0, RNE_T_B, zero_point, 3) } , "node L0 T2 R2 zero_point" },
    { "peepholes_int32", PEEP, RNE_ESHAPE, { TREC(0, RNE_T_P, dtype, RNE_DT_S32), TREC(0, RNE_T_P, nbytes, 15 * 4) } , "node L0 T3 R3 dtype" },
    { "q_tensor_absent", PEEP, RNE_ELAYER, { ROLE(0, RNE_T_Q, -1) } , "node L0 T-1 R6 tensor" },
    { "bias_absent", PEEP, RNE_ELAYER, { ROLE(0, RNE_T_B, -1) } , "node L0 T-1 R2 tensor" },
    { "table_role_on_lstm", PEEP, RNE_ELAYER, { ROLE(0, RNE_T_LUT, 0) } , "node L0 T0 R7 tensor" },
    { "format_three", PEEP, RNE_ELAYER, { LREC(0, fmt, 3) } , "node L0 fmt" },
    { "relu_in_an_lstm", PEEP, RNE_ELAYER, { LREC(0, act[0][1], RNE_ACT_RELU) } , "node L0 act #1" },
    { "directions_disagree_on_shift", BIGRU, RNE_ELAYER, { Q(0, 54 + 0, 7) } , "data L0 T3 R6 q slot #54" },
    { "second_direction_reserved_set", BIGRU, RNE_ELAYER, { Q(0, 54 + 20, 1) } , "data L0 T3 R6 q slot #74" },
    { "second_direction_hardsigmoid_slot_set", BIGRU, RNE_ELAYER, { Q(0, 54 + 12, 1) } , "data L0 T3 R6 q slot #66" },
    { "acc32_cleared_int8_still_loads", BILSTM8, RNE_OK, { Q(0, 3, 0), Q(0, 64 + 3, 0) } , "none" },
    { "dense_shift_zero", STACK, RNE_ELAYER, { Q(3, 0, 0) } , "data L3 T10 R6 q slot #0" },
    { "dense_unused_slot_set", STACK, RNE_ELAYER, { Q(3, 1, 1) } , "data L3 T10 R6 q slot #1" },
    { "softmax_negative_exponent_multiplier", STACK, RNE_ELAYER, { Q(4, 0, -5) } , "data L4 T11 R6 q slot #0" },
    { "softmax_m2_set", STACK, RNE_ELAYER, { Q(4, 3, 5) } , "data L4 T11 R6 q slot #3" },
    { "softmax_with_a_table", STACK, RNE_ELAYER, { ROLE(4, RNE_T_LUT, 0) } , "node L4 T0 R7 tensor" },
    { "act_in_s8", STACK, RNE_ELAYER, { LREC(4, fmt, RNE_FMT_S8) } , "node L4 fmt" },
    { "take_last_with_a_tensor", STACK, RNE_ELAYER, { ROLE(2, RNE_T_Q, 0) } , "node L2 T0 R6 tensor" },
    { "take_last_f32_in_integer_model", STACK, RNE_ESHAPE, { LREC(2, fmt, RNE_FMT_F32) } , "node L2 V2 dtype #0" },
    { "elu_without_its_table", "q16_act_elu_0p8", RNE_ELAYER, { ROLE(0, RNE_T_LUT, -1) } , "node L0 T-1 R7 tensor" },
    { "elu_table_uint16", "q16_act_elu_0p8", RNE_ESHAPE, { TREC(0, RNE_T_LUT, dtype, RNE_DT_U16) } , "node L0 T0 R7 dtype" },
    { "elu_table_short", "q16_act_elu_0p8", RNE_ESHAPE, { TREC(0, RNE_T_LUT, shape[0], 256), TREC(0, RNE_T_LUT, nbytes, 512) } , "node L0 T0 R7 shape #0" },
    { "clip_with_k1_but_affine", "q16_act_affine_0p5", RNE_ELAYER, { Q(0, 7, 1) } , "data L0 T0 R6 q slot #7" },
    { "act_features_past_cap", "q16_act_relu", RNE_ESHAPE, { VREC(0, shape[0], RNE_MAX_FEATURES + 1), VREC(1, shape[0], RNE_MAX_FEATURES + 1) } , "value V0 shape #0" },
    { "act_features_2_31_minus_1", "q16_act_relu", RNE_ESHAPE, { VREC(0, shape[0], INT32_MAX), VREC(1, shape[0], INT32_MAX) } , "value V0 shape #0" },
    { "act_abs_loads", "q16_act_relu", RNE_OK, { LREC(0, act[0][0], RNE_ACT_ABS) } , "none" },
    { "act_sqrt_without_its_table", "q16_act_relu", RNE_ELAYER, { LREC(0, act[0][0], RNE_ACT_SQRT) } , "node L0 T-1 R7 tensor" },
    { "act_past_pow", "q16_act_relu", RNE_ELAYER, { LREC(0, act[0][0], RNE_ACT_POW + 1) } , "node L0 act #0" },
    { "integer_value_in_f32_node", "q16_act_relu", RNE_ESHAPE, { LREC(0, fmt, RNE_FMT_F32) } , "node L0 V0 dtype #0" },
    { "layernorm_shift_zero", LN, RNE_ELAYER, { Q(0, 0, 0) } , "data L0 T1 R6 q slot #0" },
    { "layernorm_shift_63", LN, RNE_ELAYER, { Q(0, 0, 63) } , "data L0 T1 R6 q slot #0" },
    { "layernorm_eps_high_word_past_2_30", LN, RNE_ELAYER, { Q(0, 1, (1 << 30) + 1) } , "data L0 T1 R6 q slot #1" },
    { "layernorm_eps_past_2_61", LN, RNE_ELAYER, { Q(0, 1, 1 << 30), Q(0, 2, 1) } , "data L0 T1 R6 q slot #2" },
    { "layernorm_eps_at_2_61_loads", LN, RNE_OK, { Q(0, 1, 1 << 30), Q(0, 2, 0) } , "none" },
    { "layernorm_eps_low_word_negative", LN, RNE_ELAYER, { Q(0, 2, -1) } , "data L0 T1 R6 q slot #2" },
    { "layernorm_eps_high_word_negative", LN, RNE_ELAYER, { Q(0, 1, -1) } , "data L0 T1 R6 q slot #1" },
    { "layernorm_unused_slot_set", LN, RNE_ELAYER, { Q(0, 3, 1) } , "data L0 T1 R6 q slot #3" },
    { "layernorm_in_s8", LN, RNE_ELAYER, { LREC(0, fmt, RNE_FMT_S8) } , "node L0 fmt" },
    { "layernorm_with_a_gamma_tensor", LN, RNE_ELAYER, { ROLE(0, RNE_T_W, 0) } , "node L0 T0 R0 tensor" },
    { "layernorm_without_q", LN, RNE_ELAYER, { ROLE(0, RNE_T_Q, -1) } , "node L0 T-1 R6 tensor" },
    { "layernorm_bias_int16", LN, RNE_ESHAPE, { TREC(0, RNE_T_B, dtype, RNE_DT_S16), TREC(0, RNE_T_B, nbytes, 12) } , "node L0 T0 R2 dtype" },
    { "layernorm_q_short", LN, RNE_ESHAPE, { TREC(0, RNE_T_Q, shape[0], 29), TREC(0, RNE_T_Q, nbytes, 29 * 4) } , "node L0 T1 R6 shape #0" },
};

static void put(uint8_t *p, size_t width, int64_t v)
{
    if (width == 1) {
        const uint8_t u = (uint8_t)v;
        memcpy(p, &u, 1);
    } else if (width == 2) {
        const uint16_t u = (uint16_t)v;
        memcpy(p, &u, 2);
    } else {
        const uint32_t u = (uint32_t)v;     /* int32 or float bits */
        memcpy(p, &u, 4);
    }
}

static void test_corruptions(const char *dir)
{
    size_t c;
    for (c = 0; c < sizeof qcorruptions / sizeof qcorruptions[0]; c++) {
        const qcorruption *k = &qcorruptions[c];
        char path[1024], label[128];
        buf b;
        rne_header h;
        int i;
        snprintf(label, sizeof label, "corrupt_%s", k->name);
        snprintf(path, sizeof path, "%s/%s.rne", dir, k->base);
        if (!read_file(path, &b, 0)) {
            check(0, label, "cannot read %s", path);
            continue;
        }
        memcpy(&h, b.p, sizeof h);
        for (i = 0; i < 2; i++) {
            const qedit *e = &k->e[i];
            uint8_t *rec = b.p + h.node_off + e->layer * sizeof(rne_node);
            int32_t ti;
            if (e->width == 0)
                continue;
            memcpy(&ti, rec + offsetof(rne_node, tensor) + (size_t)e->role * 4, 4);
            switch (e->at) {
            case AT_Q: {
                rne_tensor t;
                memcpy(&t, b.p + h.tensor_off + (size_t)ti * sizeof t, sizeof t);
                put(b.p + t.offset + e->index * 4, 4, e->value);
                break;
            }
            case AT_TENSOR_REC:
                put(b.p + h.tensor_off + (size_t)ti * sizeof(rne_tensor) + e->index, e->width,
                    e->value);
                break;
            case AT_LAYER_REC:
                put(rec + e->index, e->width, e->value);
                break;
            case AT_VALUE_REC:
                put(b.p + h.value_off + e->layer * sizeof(rne_value) + e->index, e->width,
                    (uint32_t)e->value);
                break;
            default:
                put(rec + offsetof(rne_node, tensor) + e->index * 4, 4, e->value);
                break;
            }
        }
        put(b.p + h.file_size - 4, 4, rne__crc32(b.p, h.file_size - 4u));
        check_load_fault(label, b.p, b.size, k->expect, k->where);
        buf_free(&b);
    }
}

/* ---- API on an integer model --------------------------------------------------------------------- */

static void test_api(const char *dir)
{
    buf blob, mem;
    rne_model m;
    rne_stream s;
    size_t ss, sc;
    int16_t xy[64];
    int ok;
    if (!load_case(dir, "q8_lstm_hidden16_batch3", &blob, &m))
        return;
    /* LSTM H = 16: h int16 [1][3][16] = 96 bytes, c int32 = 192 bytes */
    ss = rne_state_size(&m, 3);
    check(ss == 96 + 192 && rne_state_offset(&m, 0, 3) == 0 && rne_state_size(&m, 1) == 32 + 64 &&
              rne_state_c_offset(&m, 0, 3) == 96 && rne_state_c_offset(&m, 0, 1) == 32,
          "api_state_layout_int16_h_int32_c", "state size %zu", ss);
    sc = rne_scratch_size(&m, 1, 1);
    mem = buf_new(4096 + sc, 0);
    ok = rne_stream_init(&s, &m, 1, mem.p, rne_state_size(&m, 1), mem.p + 2048, sc) == RNE_OK;
    memset(xy, 0, sizeof xy);
    check(ok && rne_step(&s, (const uint8_t *)(const void *)xy + 1, xy + 32) == RNE_ESIZE &&
          rne_step(&s, xy, (uint8_t *)(void *)(xy + 32) + 1) == RNE_ESIZE &&
          rne_step(&s, xy + 1, xy + 33) == RNE_OK,
          "api_int16_alignment", "int16 I/O: odd addresses not refused, or even ones refused");
    buf_free(&mem);
    buf_free(&blob);
}

/* rne_model_io: an integer model's input and output scales are the value records' (what the
 * metadata's qio says), the shapes and formats the loaded figures; a float model's scales are 0;
 * bad arguments are RNE_EARG with *io zeroed. */
static void check_io(const char *dir, const char *name, uint32_t fmt)
{
    buf blob;
    rne_model m;
    rne_io in, out;
    const rne_header *h;
    const rne_value *vals;
    int ok;
    if (!load_case(dir, name, &blob, &m))
        return;
    h = (const rne_header *)(const void *)blob.p;
    vals = (const rne_value *)(const void *)(blob.p + h->value_off);
    ok = rne_model_io(&m, RNE_V_INPUT, &in) == RNE_OK && rne_model_io(&m, RNE_V_OUTPUT, &out) == RNE_OK;
    check(ok && in.value == m.input && out.value == m.output && vals[in.value].kind == RNE_V_INPUT &&
              vals[out.value].kind == RNE_V_OUTPUT && in.scale == vals[in.value].scale &&
              out.scale == vals[out.value].scale && in.scale > 0.0f && out.scale > 0.0f,
          name, "rne_model_io scales %g %g, value records %g %g", (double)in.scale,
          (double)out.scale, (double)vals[in.value].scale, (double)vals[out.value].scale);
    check(in.dtype == RNE_DT_S16 && out.dtype == RNE_DT_S16 && in.fmt == fmt && out.fmt == fmt &&
              in.features == m.in_features && out.features == m.out_features &&
              in.ndim == vals[in.value].ndim && in.shape[0] == vals[in.value].shape[0] &&
              out.last == ((vals[out.value].flags & RNE_VF_LAST) != 0) && in.last == 0,
          name, "rne_model_io: dtype %u/%u fmt %u/%u features %u/%u", in.dtype, out.dtype, in.fmt,
          out.fmt, in.features, out.features);
    buf_free(&blob);
}

static void test_model_io(const char *dir)
{
    buf fblob;
    rne_model fm, none;
    rne_io io;
    char up[1024];
    check_io(dir, "q8_lstm_hidden16_batch3", RNE_FMT_S8);
    check_io(dir, "q16_c_lstm17_peepholes_logsoftmax", RNE_FMT_S16);
    check_io(dir, "q8_c_lstm17_peepholes_logsoftmax", RNE_FMT_S8);
    memset(&fblob, 0, sizeof fblob);
    snprintf(up, sizeof up, "%s/../lstm_forward.rne", dir);   /* a float model of tests/data/c */
    if (!read_file(up, &fblob, 0) || rne_model_load(fblob.p, fblob.size, &fm) != RNE_OK)
        check(0, "api_model_io_float", "cannot load %s", up);
    else
        check(rne_model_io(&fm, RNE_V_OUTPUT, &io) == RNE_OK && io.dtype == RNE_DT_F32 &&
                  io.fmt == RNE_FMT_F32 && io.scale == 0.0f && io.features == fm.out_features,
              "api_model_io_float", "dtype %u fmt %u scale %g", io.dtype, io.fmt, (double)io.scale);
    memset(&none, 0, sizeof none);                              /* not loaded: blob == NULL */
    memset(&io, 0xAB, sizeof io);
    check(rne_model_io(NULL, RNE_V_INPUT, &io) == RNE_EARG && io.dtype == 0 && io.scale == 0.0f &&
              rne_model_io(&fm, RNE_V_INPUT, NULL) == RNE_EARG &&
              rne_model_io(&fm, RNE_V_TEMP, &io) == RNE_EARG &&
              rne_model_io(&fm, RNE_V_STATE, &io) == RNE_EARG && rne_model_io(&fm, -1, &io) == RNE_EARG &&
              rne_model_io(&none, RNE_V_INPUT, &io) == RNE_EARG && io.features == 0,
          "api_model_io_bad_arguments", "a bad argument was not refused with RNE_EARG");
    buf_free(&fblob);
}

/* rne_step_float gives exactly rne_quantize_s16 + rne_step + rne_dequantize_s16, over a few steps
 * of inputs with NaN, infinities and values past int16; refuses NULL pointers and float models. */
static void test_step_float(const char *dir)
{
    static const float special[] = { 0.0f, 1e-4f, -3.7f, 1e30f, -1e30f, 12.5f };
    buf blob, fblob, mem;
    rne_model m, fm;
    rne_stream s1, s2, fs;
    char up[1024];
    size_t ss, sc, n_in, n_out, i;
    float x[64], y1[64], y2[64];
    int16_t xq[64], yq[64], xq2[64], yq2[64];
    int t, ok = 1, same = 1;
    if (!load_case(dir, "q8_lstm_hidden16_batch3", &blob, &m))
        return;
    n_in = m.in_features, n_out = m.out_features;
    ss = rne_state_size(&m, 1), sc = rne_scratch_size(&m, 1, 1);
    mem = buf_new(2 * (round16(ss) + round16(sc)), 0);
    ok = n_in <= 64 && n_out <= 64 &&
         rne_stream_init(&s1, &m, 1, mem.p, ss, mem.p + round16(ss), sc) == RNE_OK &&
         rne_stream_init(&s2, &m, 1, mem.p + round16(ss) + round16(sc), ss,
                         mem.p + 2 * round16(ss) + round16(sc), sc) == RNE_OK;
    for (t = 0; ok && t < 4; t++) {
        for (i = 0; i < n_in; i++)
            x[i] = i < 6 ? special[(i + (size_t)t) % 6] : (float)((int)(i * 7 + (size_t)t) % 13 - 6) * 0.37f;
        if (t == 2)
            x[0] = (float)NAN, x[1] = (float)INFINITY, x[2] = -(float)INFINITY;
        ok = rne_step_float(&s1, x, 1e-3, xq, yq, 3.0517578125e-05, y1) == RNE_OK;
        rne_quantize_s16(x, n_in, 1e-3, xq2);
        ok = ok && rne_step(&s2, xq2, yq2) == RNE_OK;
        rne_dequantize_s16(yq2, n_out, 3.0517578125e-05, y2);
        same = same && memcmp(xq, xq2, n_in * sizeof *xq) == 0 &&
               memcmp(yq, yq2, n_out * sizeof *yq) == 0 && memcmp(y1, y2, n_out * sizeof *y1) == 0;
    }
    check(ok && same, "api_step_float_equals_the_three_calls", "ok %d, same %d", ok, same);
    check(rne_step_float(NULL, x, 1e-3, xq, yq, 1e-3, y1) == RNE_EARG &&
          rne_step_float(&s1, NULL, 1e-3, xq, yq, 1e-3, y1) == RNE_EARG &&
          rne_step_float(&s1, x, 1e-3, NULL, yq, 1e-3, y1) == RNE_EARG &&
          rne_step_float(&s1, x, 1e-3, xq, NULL, 1e-3, y1) == RNE_EARG &&
          rne_step_float(&s1, x, 1e-3, xq, yq, 1e-3, NULL) == RNE_EARG,
          "api_step_float_null", "a NULL pointer was not refused with RNE_EARG");
    memset(&fblob, 0, sizeof fblob);                             /* buf_free(NULL base) is a no-op */
    snprintf(up, sizeof up, "%s/../lstm_forward.rne", dir);   /* a float model of tests/data/c */
    if (!read_file(up, &fblob, 0) || rne_model_load(fblob.p, fblob.size, &fm) != RNE_OK)
        check(0, "api_step_float_refuses_a_float_model", "cannot load %s", up);
    else {
        buf fmem = buf_new(round16(rne_state_size(&fm, 1)) + rne_scratch_size(&fm, 1, 1), 0);
        ok = rne_stream_init(&fs, &fm, 1, fmem.p, rne_state_size(&fm, 1),
                             fmem.p + round16(rne_state_size(&fm, 1)),
                             rne_scratch_size(&fm, 1, 1)) == RNE_OK;
        check(ok && rne_step_float(&fs, x, 1e-3, xq, yq, 1e-3, y1) == RNE_EARG,
              "api_step_float_refuses_a_float_model", "a float model was stepped");
        buf_free(&fmem);
    }
    buf_free(&fblob);
    buf_free(&mem);
    buf_free(&blob);
}

/* ---- int32 column sums over weights changed after load ----------------------------------------- */

/* The int8 DENSE 2100 -> 3 with all weights 0 and acc32 set (the load proves it: every column sum
 * 0), then weights -128 written over the loaded blob and input -32768: the int32 sums reach
 * 2100 * 2^22 = 2^33. The step must run without undefined behaviour (it wraps: other numbers;
 * make asan with RNE_NO_SIMD takes the scalar sums). */
static void test_acc32_weights_changed(const char *dir)
{
    char path[1024];
    buf b;
    rne_header h;
    rne_node l;
    rne_tensor tw, tq;
    rne_model m;
    runner r;
    int16_t x[2100], y[3];
    int32_t one = 1;
    size_t i;
    int ok, rc1 = -1, rc2 = -1;
    snprintf(path, sizeof path, "%s/q8_long_dense_s8_acc64.rne", dir);
    if (!read_file(path, &b, 0)) {
        check(0, "acc32_weights_changed_after_load", "cannot read %s", path);
        return;
    }
    memcpy(&h, b.p, sizeof h);
    memcpy(&l, b.p + h.node_off, sizeof l);
    memcpy(&tw, b.p + h.tensor_off + (size_t)l.tensor[RNE_T_W] * sizeof tw, sizeof tw);
    memcpy(&tq, b.p + h.tensor_off + (size_t)l.tensor[RNE_T_Q] * sizeof tq, sizeof tq);
    ok = l.op == RNE_OP_DENSE && l.fmt == RNE_FMT_S8;
    memset(b.p + tw.offset, 0, tw.nbytes);                    /* every column sum 0 ... */
    memcpy(b.p + tq.offset + 2 * sizeof(int32_t), &one, 4);   /* ... so acc32 (q slot 2) loads */
    put(b.p + h.file_size - 4, 4, rne__crc32(b.p, h.file_size - 4u));
    ok = ok && rne_model_load(b.p, b.size, &m) == RNE_OK && m.nodes[0].q[2] == 1 &&
         m.nodes[0].in_features == 2100 && m.nodes[0].out_features <= 3 &&
         runner_init(&r, &m, 1, 1);
    if (ok) {
        for (i = 0; i < 2100; i++)
            x[i] = INT16_MIN;
        rc1 = rne_step(&r.s, x, y);
        memset(b.p + tw.offset, 0x80, tw.nbytes);             /* int8 -128 after load */
        rc2 = rne_step(&r.s, x, y);
        runner_free(&r);
    }
    check(ok && rc1 == RNE_OK && rc2 == RNE_OK, "acc32_weights_changed_after_load",
          "setup %d, steps %d %d", ok, rc1, rc2);
    buf_free(&b);
}

/* ---- main ------------------------------------------------------------------------------------------ */

static int has_file(const char *dir, const char *name, const char *ext)
{
    char path[1024];
    FILE *f;
    snprintf(path, sizeof path, "%s/%s.%s", dir, name, ext);
    f = fopen(path, "rb");
    if (f != NULL)
        fclose(f);
    return f != NULL;
}

int main(int argc, char **argv)
{
    const char *dir = argc > 1 ? argv[1] : "../tests/data/c/int";
    char **names;
    size_t n, i;
    test_tables();
    test_scalars();
    test_activations_everywhere();
    if (list_cases(dir, &names, &n)) {
        for (i = 0; i < n; i++) {
            if (has_file(dir, names[i], "long.npy"))
                test_long(dir, names[i]);
            else
                test_case(dir, names[i]);
            free(names[i]);
        }
        free(names);
        test_corruptions(dir);
        test_api(dir);
        test_model_io(dir);
        test_step_float(dir);
        test_blob_changes(dir, "q16_c_stack_lstm_gru_dense_layernorm",
                          "q16_c_lstm17_peepholes_logsoftmax", "qblob_change_stack");
        test_blob_changes(dir, "q8_c_lstm17_peepholes_logsoftmax", "q8_lstm_hidden16_batch3",
                          "qblob_change_peepholes_logsoftmax");
        test_blob_changes(dir, "q8_long_lstm_coupled_clip_hardsigmoid", "q8_rnn_hardsigmoid",
                          "qblob_change_hardsigmoid");
        test_blob_changes(dir, "q16_act_softmax", "q16_long_layernorm_3", "qblob_change_softmax");
        test_blob_changes(dir, "q8_rnn_relu", "q16_gru_initial_h", "qblob_change_relu");
        test_blob_changes(dir, "q16_long_dense_s16_acc32", "q8_long_dense_s8_acc64",
                          "qblob_change_acc32");
        test_acc32_weights_changed(dir);
    }
    return test_summary();
}
