/*
 * insn_step.c - rne_step N times on one model, for counting instructions under qemu user mode.
 *
 *   insn_step MODEL.rne N        load MODEL.rne, open a batch-1 stream, step it N times on a fixed
 *                                input; prints "steps N state S scratch C y0 V"
 *
 * tools/pi/insn_count.sh links it statically with librnnedge.a built for the Cortex-A72 (NEON, or
 * the scalar reference with -DRNE_NO_SIMD) and runs it with N = 0 and N = 100 under qemu-aarch64
 * with the instruction-counting plugin (tools/cortexm/insn_count.c): everything but the steps is
 * the same in both runs, so the difference / 100 is one step's instructions. The input is
 * tools/cortexm/bench_mcu.c's pattern, so the figures compare with docs/embedded.md's.
 * A tool, not the library: it allocates.
 */
#define _POSIX_C_SOURCE 200112L

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rnnedge.h"

static void *zeroed(size_t size)
{
    void *p = NULL;
    if (posix_memalign(&p, 64, size == 0 ? 64 : size) != 0)
        return NULL;
    memset(p, 0, size == 0 ? 64 : size);
    return p;
}

/* the whole file in a 64-byte aligned buffer (the blob's alignment is at most that); NULL on error */
static unsigned char *read_file(const char *path, size_t *size)
{
    FILE *f = fopen(path, "rb");
    unsigned char *buf = NULL;
    long n;
    if (f == NULL)
        return NULL;
    if (fseek(f, 0, SEEK_END) == 0 && (n = ftell(f)) > 0 && fseek(f, 0, SEEK_SET) == 0) {
        buf = zeroed((size_t)n);
        if (buf != NULL && fread(buf, 1, (size_t)n, f) != (size_t)n) {
            free(buf);
            buf = NULL;
        }
        *size = (size_t)n;
    }
    fclose(f);
    return buf;
}

int main(int argc, char **argv)
{
    unsigned char *blob, *state, *scratch, *x, *y;
    size_t blob_size = 0, ss, sc, i;
    unsigned long steps, t;
    rne_model m;
    rne_stream s;
    char *end;
    int integer, rc;
    if (argc != 3) {
        fprintf(stderr, "usage: insn_step MODEL.rne STEPS\n");
        return 2;
    }
    steps = strtoul(argv[2], &end, 10);
    if (*argv[2] == '\0' || *end != '\0') {
        fprintf(stderr, "insn_step: STEPS must be a number, not '%s'\n", argv[2]);
        return 2;
    }
    blob = read_file(argv[1], &blob_size);
    if (blob == NULL) {
        fprintf(stderr, "insn_step: cannot read %s: %s\n", argv[1], strerror(errno));
        return 1;
    }
    rc = rne_model_load(blob, blob_size, &m);
    if (rc != RNE_OK) {
        fprintf(stderr, "insn_step: %s: %s\n", argv[1], rne_strerror(rc));
        return 1;
    }
    integer = m.nodes[0].fmt != RNE_FMT_F32;
    ss = rne_state_size(&m, 1);
    sc = rne_scratch_size(&m, 1, 1);
    state = zeroed(ss);
    scratch = zeroed(sc);
    x = zeroed((size_t)m.in_features * 4u);
    y = zeroed((size_t)m.out_features * 4u);
    if (state == NULL || scratch == NULL || x == NULL || y == NULL) {
        fprintf(stderr, "insn_step: out of memory\n");
        return 1;
    }
    rc = rne_stream_init(&s, &m, 1, state, ss, scratch, sc);
    for (i = 0; i < m.in_features; i++) {
        const int32_t k = (int32_t)(i * 37u % 17u) - 8;
        if (integer) {
            const int16_t v = (int16_t)(k * 1024);
            memcpy(x + 2u * i, &v, 2);
        } else {
            const float v = (float)k * 0.125f;
            memcpy(x + 4u * i, &v, 4);
        }
    }
    for (t = 0; rc == RNE_OK && t < steps; t++)
        rc = rne_step(&s, x, y);
    if (rc != RNE_OK) {
        fprintf(stderr, "insn_step: %s: %s\n", argv[1], rne_strerror(rc));
        return 1;
    }
    printf("steps %lu state %zu scratch %zu", steps, ss, sc);
    if (steps > 0) {
        if (integer) {
            int16_t v;
            memcpy(&v, y, 2);
            printf(" y0 %d", v);
        } else {
            float v;
            memcpy(&v, y, 4);
            printf(" y0 %.9g", (double)v);
        }
    }
    printf("\n");
    return 0;
}
