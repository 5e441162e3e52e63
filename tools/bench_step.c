/*
 * bench_step.c - the C-level step time of an rnnedge model, with no Python around it, and this
 * machine's cache bandwidth for a buffer of a given size (for the "floor" of docs/benchmarks.md).
 *
 *   bench_step MODEL.rne [STEPS [WARMUP]]   time rne_step at batch 1 (default 2000 steps after
 *                                           200 of warm-up); prints one JSON object
 *   bench_step --bandwidth BYTES            stream a BYTES buffer through the core repeatedly;
 *                                           prints one JSON object
 *   bench_step --macs MACS                  the multiply-add floor: a plain f32 matrix-vector
 *                                           product y[64] += x[K] W[K][64] with K = MACS / 64
 *                                           (rounded up), weights read once per product, as the
 *                                           compiler vectorises it; prints one JSON object
 *
 * Built by tools/bench.py (tools/bench/probes.py; or `make -C tools`): the csrc/ sources with
 * the Python extension's flags, this file with -O3 -march=native so that the bandwidth loop uses
 * the machine's widest loads. An integer model is fed int16 inputs, a float one floats
 * (rnnedge.h). This is a tool, not the library: it allocates freely.
 */
#define _POSIX_C_SOURCE 200112L

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "rnnedge.h"

static double now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* The q-quantile (0..1) of n sorted values, nearest rank. */
static double quantile(const double *sorted, size_t n, double q)
{
    size_t k = (size_t)(q * (double)(n - 1) + 0.5);
    return sorted[k < n ? k : n - 1];
}

static void *aligned_zeroed(size_t size, size_t align)
{
    void *p = NULL;
    if (size == 0)
        size = align;
    if (posix_memalign(&p, align, size) != 0)
        return NULL;
    memset(p, 0, size);
    return p;
}

static int fail(const char *what, const char *detail)
{
    fprintf(stderr, "bench_step: %s: %s\n", what, detail);
    return 1;
}

/* Read a whole file into memory aligned to 4096 (the largest alignment a blob may ask for). */
static void *read_file(const char *path, size_t *size)
{
    FILE *f = fopen(path, "rb");
    void *buf = NULL;
    long n;
    if (f == NULL)
        return NULL;
    if (fseek(f, 0, SEEK_END) == 0 && (n = ftell(f)) > 0 && fseek(f, 0, SEEK_SET) == 0) {
        buf = aligned_zeroed((size_t)n, 4096);
        if (buf != NULL && fread(buf, 1, (size_t)n, f) != (size_t)n) {
            free(buf);
            buf = NULL;
        }
        *size = (size_t)n;
    }
    fclose(f);
    return buf;
}

/* Time rne_step on a loaded, streamable model at batch 1; prints one JSON line. */
static int time_model(const rne_model *model, const char *path, long steps, long warmup)
{
    size_t state_size = rne_state_size(model, 1), scratch_size = rne_scratch_size(model, 1, 1);
    /* an integer model takes and gives int16 (rnnedge.h); a float one float */
    int integer = model->nodes[0].fmt != RNE_FMT_F32, rc, status = 0;
    size_t row = model->in_features * (integer ? sizeof(int16_t) : sizeof(float));
    long i, n_inputs = 64;
    void *state = aligned_zeroed(state_size, 64), *scratch = aligned_zeroed(scratch_size, 64);
    void *x = aligned_zeroed((size_t)n_inputs * row, 64);
    void *y = aligned_zeroed(model->out_features * sizeof(float), 64);
    double *dt = malloc((size_t)steps * sizeof(double)), total;
    uint32_t lcg = 12345u;
    rne_stream stream;

    if (state == NULL || scratch == NULL || x == NULL || y == NULL || dt == NULL) {
        status = fail(path, "out of memory");
        goto done;
    }
    /* 64 different input vectors, cycled through: floats in [-1, 1), or int16 values in
     * [-8192, 8192), a quarter of the integer input range */
    for (i = 0; i < n_inputs * (long)model->in_features; i++) {
        lcg = lcg * 1664525u + 1013904223u;
        if (integer)
            ((int16_t *)x)[i] = (int16_t)((int32_t)(lcg >> 18) - 8192);
        else
            ((float *)x)[i] = (float)(lcg >> 8) / 8388608.0f - 1.0f;
    }
    rc = rne_stream_init(&stream, model, 1, state, state_size, scratch, scratch_size);
    if (rc != RNE_OK) {
        status = fail(path, rne_strerror(rc));
        goto done;
    }
    for (i = 0; i < warmup; i++)
        rne_step(&stream, (const uint8_t *)x + (size_t)(i % n_inputs) * row, y);
    total = now_ns();
    for (i = 0; i < steps; i++) {
        double t0 = now_ns();
        rne_step(&stream, (const uint8_t *)x + (size_t)(i % n_inputs) * row, y);
        dt[i] = now_ns() - t0;
    }
    total = now_ns() - total;
    qsort(dt, (size_t)steps, sizeof(double), cmp_double);
    printf("{\"steps\": %ld, \"warmup\": %ld, \"io\": \"%s\", \"median_us\": %.4f, "
           "\"p99_us\": %.4f, \"min_us\": %.4f, \"mean_us\": %.4f}\n",
           steps, warmup, integer ? "int16" : "float32", quantile(dt, (size_t)steps, 0.5) / 1e3,
           quantile(dt, (size_t)steps, 0.99) / 1e3, dt[0] / 1e3, total / (double)steps / 1e3);
done:
    free(dt);
    free(y);
    free(x);
    free(scratch);
    free(state);
    return status;
}

static int bench_model(const char *path, long steps, long warmup)
{
    size_t size = 0;
    rne_model model;
    int rc, status;
    void *blob;

    errno = 0;
    blob = read_file(path, &size);
    if (blob == NULL)
        return fail(path, errno ? strerror(errno) : "empty or unreadable file");
    rc = rne_model_load(blob, size, &model);
    if (rc != RNE_OK)
        status = fail(path, rne_strerror(rc));
    else if (!model.streamable)
        status = fail(path, rne_strerror(RNE_ESTREAM));
    else
        status = time_model(&model, path, steps, warmup);
    free(blob);
    return status;
}

/* One pass over the buffer: a sum of 64-bit words, in 8 independent lanes so that the loop
 * vectorises into the widest loads the compiler may use. */
static uint64_t stream_once(const uint64_t *p, size_t words)
{
    uint64_t s[8] = {0, 0, 0, 0, 0, 0, 0, 0};
    size_t i, k;
    for (i = 0; i + 8 <= words; i += 8)
        for (k = 0; k < 8; k++)
            s[k] += p[i + k];
    return s[0] + s[1] + s[2] + s[3] + s[4] + s[5] + s[6] + s[7];
}

static int bench_bandwidth(long bytes)
{
    size_t words = ((size_t)bytes + 63) / 64 * 8;
    uint64_t *buf = aligned_zeroed(words * 8, 64);
    volatile uint64_t sink = 0;
    double best = 1e300, block_ns;
    long passes = 1, block, i;

    if (buf == NULL)
        return fail("--bandwidth", "out of memory");
    for (i = 0; i < (long)words; i++)
        buf[i] = (uint64_t)i * 2654435761u;
    /* enough passes per timed block for 20 us (the clock's cost is then negligible) */
    for (;;) {
        double t0 = now_ns();
        for (i = 0; i < passes; i++)
            sink += stream_once(buf, words);
        block_ns = now_ns() - t0;
        if (block_ns >= 20e3 || passes >= (1L << 24))
            break;
        passes *= 2;
    }
    for (block = 0; block < 50; block++) {
        double t0 = now_ns();
        for (i = 0; i < passes; i++)
            sink += stream_once(buf, words);
        block_ns = (now_ns() - t0) / (double)passes;
        if (block_ns < best)
            best = block_ns;
    }
    printf("{\"bytes\": %zu, \"passes_per_block\": %ld, \"pass_us\": %.4f, \"gbps\": %.2f}\n",
           words * 8, passes, best / 1e3, (double)(words * 8) / best);
    free(buf);
    (void)sink; /* the passes add into a volatile: the compiler must keep them */
    return 0;
}

/* y[n] += sum_k x[k] w[k][n]: the loop a compiler turns into broadcast-and-FMA over n */
static void matvec(float *restrict y, const float *restrict x, const float *restrict w, size_t k,
                   size_t n)
{
    size_t i, j;
    for (i = 0; i < k; i++) {
        const float v = x[i];
        const float *wr = w + i * n;
        for (j = 0; j < n; j++)
            y[j] += v * wr[j];
    }
}

static int bench_macs(long macs)
{
    const size_t n = 64, k = ((size_t)macs + n - 1) / n;
    float *w = aligned_zeroed(k * n * sizeof(float), 64), *x = aligned_zeroed(k * sizeof(float), 64);
    float *y = aligned_zeroed(n * sizeof(float), 64);
    volatile float sink = 0.0f;
    double best = 1e300, block_ns;
    long passes = 1, block, i;

    if (w == NULL || x == NULL || y == NULL)
        return fail("--macs", "out of memory");
    for (i = 0; i < (long)(k * n); i++)
        w[i] = (float)(i % 7) * 0.01f - 0.03f;
    for (i = 0; i < (long)k; i++)
        x[i] = (float)(i % 5) * 0.1f - 0.2f;
    for (;;) { /* enough products per timed block for 20 us */
        double t0 = now_ns();
        for (i = 0; i < passes; i++)
            matvec(y, x, w, k, n);
        block_ns = now_ns() - t0;
        if (block_ns >= 20e3 || passes >= (1L << 24))
            break;
        passes *= 2;
    }
    for (block = 0; block < 50; block++) {
        double t0 = now_ns();
        for (i = 0; i < passes; i++)
            matvec(y, x, w, k, n);
        block_ns = (now_ns() - t0) / (double)passes;
        if (block_ns < best)
            best = block_ns;
    }
    for (i = 0; i < (long)n; i++)
        sink += y[i];
    printf("{\"macs\": %zu, \"k\": %zu, \"n\": %zu, \"passes_per_block\": %ld, "
           "\"product_us\": %.4f, \"gmacs\": %.2f}\n",
           k * n, k, n, passes, best / 1e3, (double)(k * n) / best);
    free(y);
    free(x);
    free(w);
    (void)sink;
    return 0;
}

static long parse_count(const char *s, const char *what)
{
    char *end;
    long v;
    errno = 0;
    v = strtol(s, &end, 10);
    if (errno || *end != '\0' || v < 1) {
        fprintf(stderr, "bench_step: %s must be a positive integer, got '%s'\n", what, s);
        exit(2);
    }
    return v;
}

int main(int argc, char **argv)
{
    if (argc == 3 && strcmp(argv[1], "--bandwidth") == 0)
        return bench_bandwidth(parse_count(argv[2], "BYTES"));
    if (argc == 3 && strcmp(argv[1], "--macs") == 0)
        return bench_macs(parse_count(argv[2], "MACS"));
    if (argc >= 2 && argc <= 4 && argv[1][0] != '-')
        return bench_model(argv[1], argc > 2 ? parse_count(argv[2], "STEPS") : 2000,
                           argc > 3 ? parse_count(argv[3], "WARMUP") : 200);
    fprintf(stderr, "usage: bench_step MODEL.rne [STEPS [WARMUP]]\n"
                    "       bench_step --bandwidth BYTES\n"
                    "       bench_step --macs MACS\n");
    return 2;
}
