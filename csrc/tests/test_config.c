/*
 * test_config.c - the build configuration macros (rne_internal.h, docs/c-api.md "Build
 * configuration"): built with any set of RNE_NO_* macros, the library refuses at load every
 * one-node model whose op or number format was compiled out (RNE_ELAYER, field op or fmt, node
 * 0), and still loads and runs every other one as the reference says (f32 within 1e-5, integer
 * bit for bit). `make configs` builds and runs it once per macro and with the int8 LSTM-only set
 * that `rnnedge export-c` prints for such a model.
 *
 *   test_config DATA_DIR      (../tests/data/c: its one-node cases and int/)
 */
#define _POSIX_C_SOURCE 200809L
#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rnnedge.h"
#include "rne_internal.h"
#include "tests/testutil.h"

/* what this build left out */
#ifdef RNE_NO_F32
#define NO_F32 1
#else
#define NO_F32 0
#endif
#ifdef RNE_NO_S16
#define NO_S16 1
#else
#define NO_S16 0
#endif
#ifdef RNE_NO_S8
#define NO_S8 1
#else
#define NO_S8 0
#endif
#ifdef RNE_NO_DENSE
#define NO_DENSE 1
#else
#define NO_DENSE 0
#endif
#ifdef RNE_NO_ACT
#define NO_ACT 1
#else
#define NO_ACT 0
#endif
#ifdef RNE_NO_LSTM
#define NO_LSTM 1
#else
#define NO_LSTM 0
#endif
#ifdef RNE_NO_GRU
#define NO_GRU 1
#else
#define NO_GRU 0
#endif
#ifdef RNE_NO_RNN
#define NO_RNN 1
#else
#define NO_RNN 0
#endif
#ifdef RNE_NO_LAYERNORM
#define NO_LAYERNORM 1
#else
#define NO_LAYERNORM 0
#endif

typedef struct config_case {
    const char *name;       /* DATA_DIR/name.rne, .x.npy, .y.npy */
    int fmt;                /* RNE_FMT_* of its one node */
    int op;                 /* RNE_OP_* of its one node */
} config_case;

static const config_case CASES[] = {
    {"dense", RNE_FMT_F32, RNE_OP_DENSE},
    {"act_relu", RNE_FMT_F32, RNE_OP_ACT},
    {"lstm_forward", RNE_FMT_F32, RNE_OP_LSTM},
    {"gru_forward", RNE_FMT_F32, RNE_OP_GRU},
    {"rnn_forward", RNE_FMT_F32, RNE_OP_RNN},
    {"layernorm", RNE_FMT_F32, RNE_OP_LAYERNORM},
    {"int/q16_dense", RNE_FMT_S16, RNE_OP_DENSE},
    {"int/q16_act_relu", RNE_FMT_S16, RNE_OP_ACT},
    {"int/q16_lstm_forward", RNE_FMT_S16, RNE_OP_LSTM},
    {"int/q16_rnn_forward", RNE_FMT_S16, RNE_OP_RNN},
    {"int/q16_layernorm", RNE_FMT_S16, RNE_OP_LAYERNORM},
    {"int/q8_dense", RNE_FMT_S8, RNE_OP_DENSE},
    {"int/q8_lstm_no_bias", RNE_FMT_S8, RNE_OP_LSTM},
    {"int/q8_gru_forward", RNE_FMT_S8, RNE_OP_GRU},
    {"int/q8_rnn_relu", RNE_FMT_S8, RNE_OP_RNN},
};

static int fmt_out(int fmt)
{
    return (fmt == RNE_FMT_F32 && NO_F32) || (fmt == RNE_FMT_S16 && NO_S16) ||
           (fmt == RNE_FMT_S8 && NO_S8);
}

static int op_out(int op)
{
    switch (op) {
    case RNE_OP_DENSE: return NO_DENSE;
    case RNE_OP_ACT: return NO_ACT;
    case RNE_OP_LSTM: return NO_LSTM;
    case RNE_OP_GRU: return NO_GRU;
    case RNE_OP_RNN: return NO_RNN;
    case RNE_OP_LAYERNORM: return NO_LAYERNORM;
    default: return 0;
    }
}

/* the reference outputs of a case that loaded: run x, compare with y */
static void check_runs(const char *dir, const config_case *c, const rne_model *m)
{
    char path[512], label[160];
    const int f32 = c->fmt == RNE_FMT_F32;
    const size_t es = f32 ? 4u : 2u;
    npy x, y;
    runner r;
    void *out;
    int rc, ok = 1;
    size_t i, n;
    snprintf(label, sizeof label, "%s_runs_as_the_reference", c->name);
    snprintf(path, sizeof path, "%s/%s.x.npy", dir, c->name);
    if (!npy_read(path, f32 ? "<f4" : "<i2", es, &x)) {
        check(0, label, "cannot read %s", path);
        return;
    }
    snprintf(path, sizeof path, "%s/%s.y.npy", dir, c->name);
    if (!npy_read(path, f32 ? "<f4" : "<i2", es, &y)) {
        check(0, label, "cannot read %s", path);
        buf_free(&x.file);
        return;
    }
    if (x.ndim != 3 || !runner_init(&r, m, (uint32_t)x.dims[1], (uint32_t)x.dims[0])) {
        check(0, label, "the files do not fit the model");
        buf_free(&x.file);
        buf_free(&y.file);
        return;
    }
    out = xmalloc(y.nbytes);
    rc = runner_run(&r, x.data, (uint32_t)x.dims[0], out);
    n = y.count;
    for (i = 0; rc == RNE_OK && i < n; i++) {
        if (f32) {
            const float a = ((const float *)out)[i], b = ((const float *)y.data)[i];
            ok = ok && fabsf(a - b) <= 1e-5f + 1e-5f * fabsf(b);
        } else {
            ok = ok && ((const int16_t *)out)[i] == ((const int16_t *)y.data)[i];
        }
    }
    check(rc == RNE_OK && ok, label, "rc %d, outputs %s", rc, ok ? "equal" : "differ");
    free(out);
    runner_free(&r);
    buf_free(&x.file);
    buf_free(&y.file);
}

/* A node that skips steps (rne_node.reserved[0] > 0: a lookahead conv's delay, docs/graph.md
 * section 6) loads only where convs are built: without them (RNE_NO_CONV) the step counter and the
 * skips are compiled out, and the loader refuses the field. */
static void check_skip(const char *dir)
{
    char path[512];
    buf blob;
    rne_model m;
    rne_fault w;
    rne_header h;
    uint32_t skip = 3, fs, crc;
    int rc;
    snprintf(path, sizeof path, "%s/%s.rne", dir, CASES[0].name);
    if (!read_file(path, &blob, 0)) {
        check(0, "skip_needs_convs", "cannot read %s", path);
        return;
    }
    memcpy(&h, blob.p, sizeof h);
    memcpy((uint8_t *)blob.p + h.node_off + offsetof(rne_node, reserved), &skip, 4);
    memcpy(&fs, (uint8_t *)blob.p + offsetof(rne_header, file_size), 4);
    crc = rne__crc32((const uint8_t *)blob.p, fs - 4u);
    memcpy((uint8_t *)blob.p + fs - 4u, &crc, 4);
    rc = rne_model_load_where(blob.p, blob.size, &m, &w);
    if (fmt_out(CASES[0].fmt) || op_out(CASES[0].op)) {     /* refused for its op or format */
        check(rc == RNE_ELAYER, "skip_needs_convs", "rc %d", rc);
        buf_free(&blob);
        return;
    }
#ifdef RNE_NO_CONV
    check(rc == RNE_ELAYER && w.field == RNE_FF_RESERVED && w.layer == 0, "skip_needs_convs",
          "a node with a skip: expected RNE_ELAYER at node 0, field reserved; got rc %d, field %d",
          rc, (int)w.field);
#else
    check(rc == RNE_OK && m.skips == 1 && rne_state_size(&m, 1) % 16 == 0, "skip_needs_convs",
          "a node with a skip: rc %d (%s), field %d", rc, rne_strerror(rc), (int)w.field);
#endif
    buf_free(&blob);
}

int main(int argc, char **argv)
{
    const char *dir = argc > 1 ? argv[1] : "../tests/data/c";
    size_t i;
    for (i = 0; i < sizeof CASES / sizeof CASES[0]; i++) {
        const config_case *c = &CASES[i];
        char path[512], label[160];
        buf blob;
        rne_model m;
        rne_fault w;
        int rc, expect_field;
        snprintf(path, sizeof path, "%s/%s.rne", dir, c->name);
        if (!read_file(path, &blob, 0)) {
            check(0, c->name, "cannot read %s", path);
            continue;
        }
        rc = rne_model_load_where(blob.p, blob.size, &m, &w);
        /* the format is checked before the op (blob.c, rne__check_node) */
        expect_field = fmt_out(c->fmt) ? RNE_FF_FMT : op_out(c->op) ? RNE_FF_OP : RNE_FF_NONE;
        if (expect_field != RNE_FF_NONE) {
            snprintf(label, sizeof label, "%s_refused_compiled_out", c->name);
            check(rc == RNE_ELAYER && w.field == expect_field && w.layer == 0 &&
                      w.section == RNE_SEC_LAYER,
                  label, "expected RNE_ELAYER at node 0, field %d; got rc %d, node %d, field %d",
                  expect_field, rc, (int)w.layer, (int)w.field);
        } else {
            snprintf(label, sizeof label, "%s_loads", c->name);
            check(rc == RNE_OK, label, "rc %d (%s), field %d", rc, rne_strerror(rc),
                  (int)w.field);
            if (rc == RNE_OK)
                check_runs(dir, c, &m);
        }
        buf_free(&blob);
    }
    check_skip(dir);
    return test_summary();
}
