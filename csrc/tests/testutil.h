/*
 * testutil.h - what the host C test programs (test_vec, test_qvec, test_rnnedge, test_int) share:
 * the pass/fail lines and their summary, memory that never comes back NULL, 64-byte aligned
 * blocks, the LCG, a clock, file and .npy reading, the list of a data directory's cases, and a
 * model's stream with its buffers. Static inline functions: each program is one translation unit
 * over librnnedge.a, so nothing here needs a build rule, and what a program does not call costs
 * it nothing. Include it after `#define _POSIX_C_SOURCE 200809L` (clock_gettime, opendir).
 *
 * Not for tools/cortexm/test_mcu.c: it is freestanding (no stdio, no malloc, no files).
 */
#ifndef RNE_TESTUTIL_H
#define RNE_TESTUTIL_H

#if !defined(_POSIX_C_SOURCE) || _POSIX_C_SOURCE < 200809L
#error "testutil.h: define _POSIX_C_SOURCE 200809L before the first #include"
#endif

#include <dirent.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "rne_internal.h"
#include "rnnedge.h"

/* ---- results: "ok   name" / "FAIL name: why" per test, then "N passed, M failed" ------------- */

static int n_pass, n_fail;

static inline void check(int ok, const char *name, const char *fmt, ...)
{
    if (ok) {
        n_pass++;
        printf("ok   %s\n", name);
    } else {
        va_list ap;
        n_fail++;
        printf("FAIL %s: ", name);
        va_start(ap, fmt);
        vprintf(fmt, ap);
        va_end(ap);
        printf("\n");
    }
    fflush(stdout);
}

/* The last line (scripts grep it); main's exit status: 0 if nothing failed, else 1. */
static inline int test_summary(void)
{
    printf("%d passed, %d failed\n", n_pass, n_fail);
    return n_fail == 0 ? 0 : 1;
}

/* ---- memory: a test program allocates (the library never does) -------------------------------- */

static inline void out_of_memory(void)
{
    fprintf(stderr, "out of memory\n");
    exit(2);
}

static inline void *xmalloc(size_t n)
{
    void *p = malloc(n == 0 ? 1 : n);
    if (p == NULL)
        out_of_memory();
    return p;
}

static inline void *xrealloc(void *p, size_t n)
{
    void *q = realloc(p, n == 0 ? 1 : n);
    if (q == NULL)
        out_of_memory();
    return q;
}

/* A zeroed block whose p is 64-byte aligned plus `misalign` bytes (the library asks for 16;
 * blobs for up to 64); free with buf_free. */
typedef struct buf {
    void *base;
    uint8_t *p;
    size_t size;
} buf;

static inline buf buf_new(size_t size, size_t misalign)
{
    buf b;
    b.base = calloc(1, size + 128);
    if (b.base == NULL)
        out_of_memory();
    b.p = (uint8_t *)b.base + ((64u - (uintptr_t)b.base % 64u) % 64u) + misalign;
    b.size = size;
    return b;
}

static inline void buf_free(buf *b)
{
    free(b->base);
    b->base = NULL;
    b->p = NULL;
}

static inline size_t round16(size_t n)
{
    return (n + 15u) & ~(size_t)15u;
}

/* ---- random numbers and time ------------------------------------------------------------------ */

/* The LCG of the tests and of tools/make_c_vectors.py: the next state. */
static inline uint32_t lcg_next(uint32_t *s)
{
    *s = *s * 1664525u + 1013904223u;
    return *s;
}

/* 24 random bits */
static inline uint32_t lcg(uint32_t *s)
{
    return lcg_next(s) >> 8;
}

/* uniform in [-1, 1) in steps of 2^-23 */
static inline float lcg_float(uint32_t *s)
{
    return (float)lcg(s) / 8388608.0f - 1.0f;
}

static inline double now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

/* ---- files ------------------------------------------------------------------------------------ */

/* The whole file into a new buf at 64-byte alignment + misalign; 0 if it cannot be read. */
static inline int read_file(const char *path, buf *out, size_t misalign)
{
    FILE *f = fopen(path, "rb");
    long n;
    if (f == NULL)
        return 0;
    if (fseek(f, 0, SEEK_END) != 0 || (n = ftell(f)) < 0 || fseek(f, 0, SEEK_SET) != 0) {
        fclose(f);
        return 0;
    }
    *out = buf_new((size_t)n, misalign);
    if (fread(out->p, 1, (size_t)n, f) != (size_t)n) {
        fclose(f);
        buf_free(out);
        return 0;
    }
    fclose(f);
    return 1;
}

/* A .npy file (format 1.0, C order, up to 4 dims; dims past ndim are 1): its data, count elements
 * of nbytes in all, aligned for their type. Free with buf_free(&a->file). */
typedef struct npy {
    buf file;
    void *data;
    size_t dims[4];
    int ndim;
    size_t count, nbytes;
} npy;

/* Reads path as a .npy of the given descr ('<f4', '<i2', '<u4', '|u1') and element size; 0 if it
 * cannot be read, is not such a file, or its data does not start at a multiple of elem. */
static inline int npy_read(const char *path, const char *descr, size_t elem, npy *a)
{
    char want[32];
    const char *hdr, *s;
    size_t hlen, i;
    memset(a, 0, sizeof *a);
    if (!read_file(path, &a->file, 0))
        return 0;
    if (a->file.size < 10 || memcmp(a->file.p, "\x93NUMPY\x01\x00", 8) != 0)
        goto bad;
    hlen = (size_t)a->file.p[8] | (size_t)a->file.p[9] << 8;
    if (10 + hlen > a->file.size || (10 + hlen) % elem != 0)
        goto bad;
    hdr = (const char *)a->file.p + 10;
    snprintf(want, sizeof want, "'descr': '%s'", descr);
    if (strstr(hdr, want) == NULL || strstr(hdr, "'fortran_order': False") == NULL ||
        (s = strstr(hdr, "'shape': (")) == NULL)
        goto bad;
    s += strlen("'shape': (");
    a->count = 1;
    while (*s != ')') {
        char *end;
        const unsigned long d = strtoul(s, &end, 10);
        if (end == s || a->ndim == 4)
            goto bad;
        a->dims[a->ndim++] = (size_t)d;
        a->count *= (size_t)d;
        s = end;
        while (*s == ',' || *s == ' ')
            s++;
    }
    a->nbytes = a->count * elem;
    if (10 + hlen + a->nbytes != a->file.size)
        goto bad;
    a->data = a->file.p + 10 + hlen;     /* 10 + hlen is a multiple of 64 (numpy pads to it) */
    for (i = (size_t)a->ndim; i < 4; i++)
        a->dims[i] = 1;
    return 1;
bad:
    buf_free(&a->file);
    return 0;
}

static inline int cmp_names(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The cases of a data directory: the names of its <name>.rne files without ".rne", sorted, into
 * *names (free each, then the array) and *n. Checks "data_dir" (the directory opens) and then
 * "data_dir_has_cases"; returns 0 if the directory cannot be opened. */
static inline int list_cases(const char *dir, char ***names, size_t *n)
{
    DIR *d = opendir(dir);
    struct dirent *ent;
    size_t cap = 0;
    *names = NULL;
    *n = 0;
    if (d == NULL) {
        check(0, "data_dir", "cannot open %s", dir);
        return 0;
    }
    while ((ent = readdir(d)) != NULL) {
        const size_t len = strlen(ent->d_name);
        if (len > 4 && strcmp(ent->d_name + len - 4, ".rne") == 0) {
            if (*n == cap) {
                cap = cap ? 2 * cap : 64;
                *names = xrealloc(*names, cap * sizeof **names);
            }
            (*names)[*n] = xmalloc(len - 3);
            memcpy((*names)[*n], ent->d_name, len - 4);
            (*names)[*n][len - 4] = '\0';
            (*n)++;
        }
    }
    closedir(d);
    check(*n > 0, "data_dir_has_cases", "no .rne files in %s", dir);
    if (*n > 0)
        qsort(*names, *n, sizeof **names, cmp_names);
    return 1;
}

/* ---- running a model: a stream with its state, step scratch and run scratch ------------------- */

typedef struct runner {
    rne_model m;
    rne_stream s;
    buf state, step_scratch, scratch;
    uint32_t batch;
} runner;

/* 0 if a size is 0 or rne_stream_init refuses; free with runner_free either way. */
static inline int runner_init(runner *r, const rne_model *m, uint32_t batch, uint32_t steps)
{
    const size_t ss = rne_state_size(m, batch), sc1 = rne_scratch_size(m, batch, 1);
    const size_t sc = rne_scratch_size(m, batch, steps);
    r->m = *m;
    r->batch = batch;
    r->state = buf_new(ss, 0);
    r->step_scratch = buf_new(sc1, 0);
    r->scratch = buf_new(sc, 0);
    return ss != 0 && sc1 != 0 && sc != 0 &&
           rne_stream_init(&r->s, &r->m, batch, r->state.p, ss, r->step_scratch.p, sc1) == RNE_OK;
}

static inline void runner_free(runner *r)
{
    buf_free(&r->state);
    buf_free(&r->step_scratch);
    buf_free(&r->scratch);
}

static inline int runner_run(runner *r, const void *x, uint32_t steps, void *y)
{
    return rne_run(&r->s, x, steps, y, r->scratch.p, r->scratch.size);
}

/* Copy batch row b of a state for `batch` streams into a state for one. Per recurrent layer at
 * rne_state_offset: h [D][B][H], then (LSTM) c [D][B][H] at the next multiple of 16 bytes; f32
 * layers keep both in float, integer layers h in int16 and c in int32. */
static inline void state_take_batch(const rne_model *m, const uint8_t *full, uint32_t batch,
                                    uint32_t b, uint8_t *one)
{
    uint32_t i;
    for (i = 0; i < m->n_layers; i++) {
        const rne_layer *l = &m->layers[i];
        const size_t off = rne_state_offset(m, i, batch), off1 = rne_state_offset(m, i, 1);
        const size_t hs = l->hidden, dirs = rne__dirs(l);
        const size_t he = l->fmt == RNE_FMT_F32 ? 4 : 2;    /* bytes of an h element; c: 4 */
        const size_t cfull = round16(dirs * batch * hs * he), c1 = round16(dirs * hs * he);
        size_t d;
        if (off == (size_t)-1)
            continue;
        for (d = 0; d < dirs; d++) {
            memcpy(one + off1 + d * hs * he, full + off + (d * batch + b) * hs * he, hs * he);
            if (l->op == RNE_OP_LSTM)
                memcpy(one + off1 + c1 + d * hs * 4, full + off + cfull + (d * batch + b) * hs * 4,
                       hs * 4);
        }
    }
}

/* 0 if a TAKE_LAST layer has split < F (features [split, F) come from step 0): rne_step, a
 * one-step run, then takes them from the step itself and cannot give a long run's output. */
static inline int take_last_full(const rne_model *m)
{
    uint32_t i;
    for (i = 0; i < m->n_layers; i++)
        if (m->layers[i].op == RNE_OP_TAKE_LAST && m->layers[i].param[0] != m->layers[i].in_features)
            return 0;
    return 1;
}

#endif
