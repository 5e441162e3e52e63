/*
 * fuzz_load.c - libFuzzer target: arbitrary bytes into rne_model_load, and, when they load, a few
 * steps and runs over them. The invariant under test (docs/robustness.md): any blob the loader
 * accepts can be stepped and run for any T and batch with no out-of-bounds access and no
 * undefined behaviour.
 *
 *   tools/fuzz.sh SECONDS        (clang -fsanitize=fuzzer,address,undefined)
 *
 * The harness rewrites the blob's CRC (when its header's file_size fits the input) so that
 * mutations reach the checks behind the checksum; the checksum itself has its own unit tests.
 * Every refusal must say where (rne_model_load_where: a section and a field, the layer / tensor in
 * range when set), and a load must say none; else the harness aborts.
 * This is a test program: it allocates (the library never does).
 */
#define _POSIX_C_SOURCE 200112L

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "rnnedge.h"
#include "rne_internal.h"

/* Skip models whose buffers would exceed this: a layer may be 2^20 features wide
 * (RNE_MAX_FEATURES), and a 40 MB sequence of it under ASan and coverage instrumentation took
 * over libFuzzer's 10 s limit (a timeout of the harness, not of the library). */
#define MAX_BYTES ((size_t)8 << 20)

static void *zalloc(size_t n)
{
    void *p = NULL;
    if (posix_memalign(&p, 64, n ? n : 1) != 0)
        return NULL;
    memset(p, 0, n ? n : 1);
    return p;
}

/* Fill x (n elements of 4 bytes: enough for f32 and int16 inputs) from the fuzz input, including
 * NaN, infinities and extremes. */
static void fill(uint8_t *x, size_t nbytes, const uint8_t *data, size_t size)
{
    size_t i, head = nbytes < size ? nbytes : size;
    if (head == 0) {
        memset(x, 0, nbytes);
        return;
    }
    for (i = 0; i < head; i++)
        x[i] = data[(i * 7u) % size];
    for (i = head; i < nbytes; i += head) /* then the same bytes again, a block at a time */
        memcpy(x + i, x, nbytes - i < head ? nbytes - i : head);
}

static void exercise(const rne_model *m, uint32_t batch, uint32_t steps, const uint8_t *data,
                     size_t size)
{
    size_t state_size = rne_state_size(m, batch);
    size_t scratch_step = rne_scratch_size(m, batch, 1);
    size_t scratch_run = rne_scratch_size(m, batch, steps);
    size_t in_bytes = (size_t)4 * m->in_features * batch * steps;
    size_t out_bytes = (size_t)4 * m->out_features * batch * steps;
    void *state, *scratch, *run_scratch;
    uint8_t *x, *y;
    rne_stream s;

    if (state_size == 0 || scratch_step == 0 || scratch_run == 0 || state_size > MAX_BYTES ||
        scratch_run > MAX_BYTES || in_bytes > MAX_BYTES || out_bytes > MAX_BYTES)
        return;
    state = zalloc(state_size);
    scratch = zalloc(scratch_step);
    run_scratch = zalloc(scratch_run);
    x = zalloc(in_bytes);
    y = zalloc(out_bytes);
    if (state && scratch && run_scratch && x && y &&
        rne_stream_init(&s, m, batch, state, state_size, scratch, scratch_step) == RNE_OK) {
        fill(x, in_bytes, data, size);
        if (m->streamable) {
            (void)rne_step(&s, x, y);
            (void)rne_step(&s, x, y);
        }
        (void)rne_run(&s, x, steps, y, run_scratch, scratch_run);
        rne_stream_reset(&s);
        (void)rne_run(&s, x, 1, y, run_scratch, scratch_run);
    }
    free(state);
    free(scratch);
    free(run_scratch);
    free(x);
    free(y);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    uint8_t *blob;
    rne_model m;
    rne_fault where;
    uint32_t file_size;
    int rc;

    if (size < 64 || size > MAX_BYTES)
        return 0;
    blob = zalloc(size); /* 64-aligned, like a real blob buffer */
    if (blob == NULL)
        return 0;
    memcpy(blob, data, size);
    memcpy(&file_size, blob + 20, 4);
    if (file_size >= 68 && file_size <= size) {
        uint32_t crc = rne__crc32(blob, file_size - 4u);
        memcpy(blob + file_size - 4u, &crc, 4);
    }
    rc = rne_model_load_where(blob, size, &m, &where);
    if (rc == RNE_OK ? where.section != RNE_SEC_NONE || where.field != RNE_FF_NONE
                     : where.section == RNE_SEC_NONE || where.field == RNE_FF_NONE ||
                           where.layer >= RNE_MAX_NODES || where.value >= RNE_MAX_VALUES ||
                           (where.section == RNE_SEC_TENSOR &&
                            (where.tensor < 0 || where.tensor >= RNE_MAX_TENSORS)))
        abort();
    if (rc == RNE_OK) {
        exercise(&m, 1, 3, data, size);
        exercise(&m, 2, 5, data, size);
    }
    free(blob);
    return 0;
}
