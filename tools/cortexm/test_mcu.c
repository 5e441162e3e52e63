/*
 * test_mcu.c - the C library's test on a Cortex-M core under qemu-system-arm (semihosting).
 *
 * The host's test_rnnedge / test_int read tests/data/c from files; here the same vectors are
 * compiled in (mcu_cases[], from tools/make_mcu_vectors.py) and every buffer comes from one
 * static arena of MCU_ARENA bytes. Per case:
 * - the blob loads in place from flash and its figures match the vectors;
 * - rne_run over the whole sequence (from the case's initial state if it has one) gives the
 *   expected output: float models within |y - e| <= 1e-5 + 1e-5 |e| of onnxruntime's (the
 *   host's tolerance), integer models bit for bit with the numpy reference, final state included;
 * - streamable models: rne_step one step at a time gives the run's output and final state bit for
 *   bit; others: rne_step is refused with RNE_ESTREAM;
 * - long integer cases: test_int.c's generated input over thousands of steps (or every int16
 *   value), stepped one step at a time where the model allows it, whose output and final state
 *   must have the reference's CRC-32s.
 * Then the loader's refusals on a corrupted, truncated and misaligned copy of a blob, and the
 * CRC-32 known answer. Prints "ok   name" / "FAIL name: why" per test and "N passed, M failed";
 * exits non-zero (through semihosting) on any failure.
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "mcu_case.h"
#include "rne_internal.h"
#include "rnnedge.h"
#include "semihost.h"

#ifndef MCU_ARENA
#define MCU_ARENA 8192
#endif

#define ATOL 1e-5f
#define RTOL 1e-5f

static uint32_t n_pass, n_fail;
static float worst_all;
static const char *worst_case;

static unsigned char arena[MCU_ARENA] __attribute__((aligned(64)));
/* the model of the case under test (rne_model holds a copy of each node and value: RNE_MAX_NODES,
 * RNE_MAX_VALUES) */
static rne_model mcu_model;
static size_t arena_used;

/* 16-byte aligned zeroed bytes from the arena (NULL if it is full), as the host tests' calloc:
 * the padding between state blocks, which the library never writes, is then 0 in both, and whole
 * state buffers compare. arena_reset() frees everything. */
static void *arena_take(size_t n)
{
    void *p;
    n = (n + 15u) & ~(size_t)15u;
    if (n > sizeof arena - arena_used)
        return NULL;
    p = arena + arena_used;
    arena_used += n;
    memset(p, 0, n);
    return p;
}

static void arena_reset(void)
{
    arena_used = 0;
}

static void pass(const char *name, const char *what)
{
    n_pass++;
    out_str("ok   ");
    out_str(name);
    out_str(what);
    out_nl();
}

/* starts a FAIL line: the caller adds the reason and ends it with out_nl() */
static void fail(const char *name, const char *what)
{
    n_fail++;
    out_str("FAIL ");
    out_str(name);
    out_str(what);
    out_str(": ");
}

/* ---- CRC-32 (zlib's), incremental: crc = crc32_update(crc, ...) from crc = 0 --------------- */

static uint32_t crc32_update(uint32_t crc, const void *data, size_t n)
{
    static const uint32_t nibble[16] = {
        0x00000000u, 0x1DB71064u, 0x3B6E20C8u, 0x26D930ACu, 0x76DC4190u, 0x6B6B51F4u,
        0x4DB26158u, 0x5005713Cu, 0xEDB88320u, 0xF00F9344u, 0xD6D6A3E8u, 0xCB61B38Cu,
        0x9B64C2B0u, 0x86D3D2D4u, 0xA00AE278u, 0xBDBDF21Cu,
    };
    const unsigned char *p = data;
    crc = ~crc;
    while (n-- > 0u) {
        crc ^= *p++;
        crc = (crc >> 4) ^ nibble[crc & 15u];
        crc = (crc >> 4) ^ nibble[crc & 15u];
    }
    return ~crc;
}

/* ---- test_int.c's input generator (tests/make_c_vectors.py int_x), one value at a time ----- */

typedef struct gen {
    uint32_t generator, s;
    size_t i, steps, per_step;
} gen;

static int16_t gen_next(gen *g)
{
    const size_t i = g->i++;
    uint32_t top, u;
    int32_t v;
    if (g->generator == 1)
        return (int16_t)((int32_t)(i % 65536u) - 32768);
    g->s = g->s * 1664525u + 1013904223u;
    top = g->s >> 24;
    u = (g->s >> 8) & 0xFFFFu;
    v = (int32_t)u - (u >= 32768u ? 65536 : 0);
    switch (4u * (i / g->per_step) / g->steps) {
    case 0: return (int16_t)v;
    case 1: return (int16_t)(top < 128u ? 32767 : v);
    case 2: return -32768;
    default: return (int16_t)(top < 64u ? 0 : v >> 4);
    }
}

static void gen_fill(gen *g, int16_t *x, size_t n)
{
    size_t k;
    for (k = 0; k < n; k++)
        x[k] = gen_next(g);
}

/* ---- helpers ---------------------------------------------------------------------------------- */

/* 1 unless a TAKE_LAST takes some features from step 0 (then a step is a one-step run, not the
 * end of the sequence so far) */
static int take_last_full(const rne_model *m)
{
    uint32_t i;
    for (i = 0; i < m->n_nodes; i++)
        if (m->nodes[i].op == RNE_OP_TAKE_LAST &&
            (uint32_t)m->nodes[i].param[0] != m->nodes[i].in_features)
            return 0;
    return 1;
}

/* |out - expected| <= ATOL + RTOL |expected| for every element (NaN fails); the largest error */
static size_t count_off(const float *out, const float *expected, size_t n, float *worst)
{
    size_t i, bad = 0;
    for (i = 0; i < n; i++) {
        const float e = expected[i], d = out[i] > e ? out[i] - e : e - out[i];
        const float ae = e < 0.0f ? -e : e;
        if (!(d <= ATOL + RTOL * ae))
            bad++;
        if (!(d <= *worst))
            *worst = d;
    }
    return bad;
}

static size_t first_diff(const void *a, const void *b, size_t n, size_t elem)
{
    size_t i;
    for (i = 0; i < n; i++)
        if (memcmp((const char *)a + i * elem, (const char *)b + i * elem, elem) != 0)
            return i;
    return n;
}

/* Load a case's blob and check its figures; 0 (after a FAIL line) if anything is off. */
static int load(const mcu_case *c, rne_model *m)
{
    const int rc = rne_model_load(c->blob, c->blob_size, m);
    if (rc != RNE_OK) {
        fail(c->name, "_load");
        out_str(rne_strerror(rc));
        out_nl();
        return 0;
    }
    if (m->in_features != c->in_features || m->out_features != c->out_features ||
        (c->x != NULL && c->out_steps != (m->many_to_one ? 1u : c->steps)) ||
        (c->state_size != 0u && c->state_size != rne_state_size(m, c->batch))) {
        fail(c->name, "_load");
        out_str("the vectors do not fit the model (features ");
        out_u32(m->in_features);
        out_str(" -> ");
        out_u32(m->out_features);
        out_str(", state ");
        out_u32((uint32_t)rne_state_size(m, c->batch));
        out_str(" bytes)");
        out_nl();
        return 0;
    }
    pass(c->name, "_load");
    return 1;
}

static int no_room(const mcu_case *c)
{
    fail(c->name, "_memory");
    out_str("the arena (MCU_ARENA = ");
    out_u32((uint32_t)sizeof arena);
    out_str(" bytes) is too small for this case");
    out_nl();
    return 0;
}

typedef struct bufs {
    rne_stream s;
    void *state, *scratch_run, *state_after_run;
    size_t state_size, scratch_run_size;
} bufs;

/* stream, state and scratch for `steps` steps of batch B; 0 if the arena is full */
static int bufs_init(bufs *b, const rne_model *m, uint32_t batch, uint32_t steps)
{
    const size_t sc1 = rne_scratch_size(m, batch, 1);
    void *scratch1;
    b->state_size = rne_state_size(m, batch);
    b->scratch_run_size = rne_scratch_size(m, batch, steps);
    b->state = arena_take(b->state_size);
    b->state_after_run = arena_take(b->state_size);
    scratch1 = arena_take(sc1);
    b->scratch_run = steps > 1u ? arena_take(b->scratch_run_size) : scratch1;
    return b->state != NULL && b->state_after_run != NULL && scratch1 != NULL &&
           b->scratch_run != NULL &&
           rne_stream_init(&b->s, m, batch, b->state, b->state_size, scratch1, sc1) == RNE_OK;
}

static void bufs_start(bufs *b, const unsigned char *state)
{
    rne_stream_reset(&b->s);
    if (state != NULL)
        memcpy(b->state, state, b->state_size);
}

/* ---- a case with stored x and expected y ----------------------------------------------------- */

static void test_case(const mcu_case *c)
{
    const size_t esz = c->integer ? 2u : 4u;
    rne_model *const m = &mcu_model;
    bufs b;
    size_t in_row, out_row, ysize, bad, at;
    unsigned char *yrun, *ystep;
    uint32_t t;
    int rc, ok;
    float worst = 0.0f;

    arena_reset();
    if (!load(c, m))
        return;
    in_row = (size_t)c->batch * c->in_features;
    out_row = (size_t)c->batch * c->out_features;
    ysize = (size_t)c->out_steps * out_row;
    if (!bufs_init(&b, m, c->batch, c->steps) || (yrun = arena_take(ysize * esz)) == NULL ||
        (ystep = arena_take(out_row * esz)) == NULL) {
        (void)no_room(c);
        return;
    }
    /* 1. one run: the expected output (and final state) */
    bufs_start(&b, c->state);
    rc = rne_run(&b.s, c->x, c->steps, yrun, b.scratch_run, b.scratch_run_size);
    if (c->integer) {
        at = first_diff(yrun, c->y, ysize, 2);
        ok = rc == RNE_OK && at == ysize &&
             (c->final == NULL || memcmp(b.state, c->final, b.state_size) == 0);
        if (ok) {
            pass(c->name, "_matches_reference");
        } else {
            fail(c->name, "_matches_reference");
            out_str("rc ");
            out_i32(rc);
            if (at < ysize) {
                int16_t got, want;
                memcpy(&got, yrun + at * 2u, 2);
                memcpy(&want, (const unsigned char *)c->y + at * 2u, 2);
                out_str(", output ");
                out_u32((uint32_t)at);
                out_str(" is ");
                out_i32(got);
                out_str(", expected ");
                out_i32(want);
            }
            if (c->final != NULL && memcmp(b.state, c->final, b.state_size) != 0)
                out_str(", the final state differs");
            out_nl();
        }
    } else {
        bad = rc == RNE_OK ? count_off((const float *)(void *)yrun, c->y, ysize, &worst) : ysize;
        if (rc == RNE_OK && bad == 0u) {
            pass(c->name, "_matches_expected");
        } else {
            fail(c->name, "_matches_expected");
            out_str("rc ");
            out_i32(rc);
            out_str(", ");
            out_u32((uint32_t)bad);
            out_str(" of ");
            out_u32((uint32_t)ysize);
            out_str(" outside tolerance, max abs error ");
            out_f32(worst);
            out_nl();
        }
        if (rc == RNE_OK && worst > worst_all) {
            worst_all = worst;
            worst_case = c->name;
        }
    }
    memcpy(b.state_after_run, b.state, b.state_size);
    /* 2. step by step: the run's bits, or a refusal for a model that reads backwards */
    bufs_start(&b, c->state);
    if (!m->streamable) {
        memset(ystep, 0x5A, out_row * esz);
        rc = rne_step(&b.s, c->x, ystep);
        if (rc == RNE_ESTREAM && ((const unsigned char *)ystep)[0] == 0x5A) {
            pass(c->name, "_step_refused");
        } else {
            fail(c->name, "_step_refused");
            out_str("rne_step gave ");
            out_i32(rc);
            out_nl();
        }
        return;
    }
    if (m->many_to_one && !take_last_full(m))
        return;     /* a step is a one-step run here: nothing to compare with the whole run */
    for (t = 0, ok = 1; ok && t < c->steps; t++) {
        const unsigned char *x = (const unsigned char *)c->x + (size_t)t * in_row * esz;
        ok = rne_step(&b.s, x, ystep) == RNE_OK &&
             (m->many_to_one || memcmp(ystep, yrun + (size_t)t * out_row * esz, out_row * esz) == 0);
    }
    ok = ok && (!m->many_to_one || memcmp(ystep, yrun, out_row * esz) == 0) &&
         memcmp(b.state, b.state_after_run, b.state_size) == 0;
    if (ok) {
        pass(c->name, "_step_equals_run");
    } else {
        fail(c->name, "_step_equals_run");
        out_str("stepped output or final state differs from one run (step ");
        out_u32(t);
        out_str(")");
        out_nl();
    }
}

/* ---- a long generated stream (integer models) ------------------------------------------------ */

static void test_long(const mcu_case *c)
{
    rne_model *const m = &mcu_model;
    bufs b;
    gen g;
    size_t in_row, out_row;
    uint32_t crc_y = 0, crc_s, t;
    int16_t *x, *y;
    int rc = RNE_OK, stepped;

    arena_reset();
    if (!load(c, m))
        return;
    in_row = (size_t)c->batch * m->in_features;
    out_row = (size_t)c->batch * m->out_features;
    g.generator = c->generator;
    g.s = c->seed;
    g.i = 0;
    g.steps = c->steps;
    g.per_step = in_row;
    stepped = m->streamable && take_last_full(m);
    if (stepped) {
        /* one row at a time: the generator and the CRC run along with the stream */
        if (!bufs_init(&b, m, c->batch, 1) || (x = arena_take(in_row * 2u)) == NULL ||
            (y = arena_take(out_row * 2u)) == NULL) {
            (void)no_room(c);
            return;
        }
        bufs_start(&b, NULL);
        for (t = 0; rc == RNE_OK && t < c->steps; t++) {
            gen_fill(&g, x, in_row);
            rc = rne_step(&b.s, x, y);
            if (!m->many_to_one)
                crc_y = crc32_update(crc_y, y, out_row * 2u);
        }
        if (m->many_to_one)
            crc_y = crc32_update(0, y, out_row * 2u);
    } else {
        const size_t out_steps = m->many_to_one ? 1u : c->steps;
        if (!bufs_init(&b, m, c->batch, c->steps) ||
            (x = arena_take(c->steps * in_row * 2u)) == NULL ||
            (y = arena_take(out_steps * out_row * 2u)) == NULL) {
            (void)no_room(c);
            return;
        }
        bufs_start(&b, NULL);
        gen_fill(&g, x, c->steps * in_row);
        rc = rne_run(&b.s, x, c->steps, y, b.scratch_run, b.scratch_run_size);
        crc_y = crc32_update(0, y, out_steps * out_row * 2u);
    }
    crc_s = crc32_update(0, b.state, b.state_size);
    if (rc == RNE_OK && crc_y == c->crc_y && crc_s == c->crc_state) {
        pass(c->name, stepped ? "_stepped_equals_reference" : "_run_equals_reference");
    } else {
        fail(c->name, stepped ? "_stepped_equals_reference" : "_run_equals_reference");
        out_str("rc ");
        out_i32(rc);
        out_str(", crc32 of y ");
        out_hex(crc_y);
        out_str(" (expected ");
        out_hex(c->crc_y);
        out_str("), of the final state ");
        out_hex(crc_s);
        out_str(" (expected ");
        out_hex(c->crc_state);
        out_str(")");
        out_nl();
    }
}

/* ---- the loader on the target: refusals, and the checksum ------------------------------------ */

static void expect_status(const char *name, int rc, int want)
{
    if (rc == want) {
        pass(name, "");
    } else {
        fail(name, "");
        out_str("expected ");
        out_str(rne_strerror(want));
        out_str(", got ");
        out_str(rne_strerror(rc));
        out_nl();
    }
}

static void test_loader(void)
{
    const mcu_case *c = NULL;
    unsigned char *copy;
    uint32_t i, align;
    rne_model *const m = &mcu_model;
    const uint32_t crc = rne__crc32((const uint8_t *)"123456789", 9);
    if (crc == 0xCBF43926u && crc32_update(0, "123456789", 9) == crc) {
        pass("crc32_known_answer", "");
    } else {
        fail("crc32_known_answer", "");
        out_hex(crc);
        out_nl();
    }
    for (i = 0; i < mcu_n_cases; i++)     /* the smallest blob */
        if (c == NULL || mcu_cases[i].blob_size < c->blob_size)
            c = &mcu_cases[i];
    if (c == NULL)
        return;
    arena_reset();
    memcpy(&align, c->blob + 16, sizeof align);     /* rne_header.alignment */
    copy = arena_take(c->blob_size + align);
    if (copy == NULL || align > 64u) {
        (void)no_room(c);
        return;
    }
    memcpy(copy, c->blob, c->blob_size);
    expect_status("loader_copy_in_ram_loads", rne_model_load(copy, c->blob_size, m), RNE_OK);
    copy[c->blob_size / 2u] ^= 0x10u;
    expect_status("loader_flipped_bit_is_crc_error", rne_model_load(copy, c->blob_size, m), RNE_ECRC);
    copy[c->blob_size / 2u] ^= 0x10u;
    expect_status("loader_truncated", rne_model_load(copy, c->blob_size - 4u, m), RNE_ETRUNC);
    copy[0] = 'X';
    expect_status("loader_bad_magic", rne_model_load(copy, c->blob_size, m), RNE_EMAGIC);
    memcpy(copy + align / 2u, c->blob, c->blob_size);
    expect_status("loader_misaligned", rne_model_load(copy + align / 2u, c->blob_size, m),
                  RNE_EALIGN);
}

int main(void)
{
    uint32_t i;
    out_str("rnnedge on ");
    out_str(MCU_CORE);
    out_str(": ");
    out_u32(mcu_n_cases);
    out_str(" cases, arena ");
    out_u32((uint32_t)sizeof arena);
    out_str(" bytes");
    out_nl();
    test_loader();
    for (i = 0; i < mcu_n_cases; i++) {
        if (mcu_cases[i].x != NULL)
            test_case(&mcu_cases[i]);
        else
            test_long(&mcu_cases[i]);
    }
    if (worst_case != NULL) {
        out_str("note largest |output - expected| over the float cases: ");
        out_f32(worst_all);
        out_str(", in ");
        out_str(worst_case);
        out_nl();
    }
    out_u32(n_pass);
    out_str(" passed, ");
    out_u32(n_fail);
    out_str(" failed");
    out_nl();
    return n_fail == 0u ? 0 : 1;
}
