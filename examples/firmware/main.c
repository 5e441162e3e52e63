/*
 * main.c - an activity classifier on a Cortex-M: rnnedge's bundled LSTM (smartwatch readings,
 * 6 values at 10 Hz -> Standing / Running / Walking / Badminton), loaded in place from flash and
 * stepped one sensor frame at a time.
 *
 *   model_data.h     rnnedge export-c har.rne -o model_data.h --symbol har_model
 *                                     --section .rodata.model
 *   sensor_frames.h  recorded frames standing in for a sensor driver (make_firmware_data.py)
 *   csrc/ *.c        the rnnedge C library; printf: your SDK's (semihosting under qemu)
 *
 * No heap: the model is a few dozen bytes of pointers into the flash array; the stream's state
 * and scratch are static arrays of exactly the sizes export-c computed. Works for an f32 or an
 * integer (int8 / int16) export: an integer model takes and gives int16 at the scales in the
 * header. The sensor gives int16 counts (SENSOR_SCALE units each). With an integer model the
 * program computes no float at all (a Cortex-M0 has no FPU; soft-float would cost code and
 * time): the counts become the model's input through one integer multiplier, and its outputs
 * millionths through another, both computed on the host (make_firmware_data.py). Every 20 frames
 * it prints the class probabilities ("step T: p0 p1 p2 p3", what the model says if the sequence
 * ended there); then the class it settles on.
 */
#include <stdint.h>
#include <stdio.h>

#include "model_data.h"
#include "rnnedge.h"
#include "sensor_frames.h"

#if HAR_MODEL_OUT_FEATURES != SENSOR_CLASSES || HAR_MODEL_IN_FEATURES != SENSOR_VALUES
#error "model_data.h and sensor_frames.h do not fit together"
#endif
#if !HAR_MODEL_STREAMABLE
#error "a model that reads the sequence backwards cannot be stepped: use rne_run on whole sequences"
#endif

static rne_model model;
static rne_stream stream;
static unsigned char state[HAR_MODEL_STATE_BYTES] __attribute__((aligned(16)));
static unsigned char scratch[HAR_MODEL_SCRATCH_BYTES] __attribute__((aligned(16)));

/* millionths v / 10^6 printed as "0.xxxxxx", without printf's float support */
static void print_micro(int64_t v)
{
    const char *sign = v < 0 ? "-" : "";
    const int64_t a = v < 0 ? -v : v;
    printf(" %s%ld.%06ld", sign, (long)(a / 1000000), (long)(a % 1000000));
}

#if HAR_MODEL_INTEGER
typedef int16_t value;

/* round(p / 2^32), halves up, for |p| < 2^62: shifts of non-negative values only (C99 leaves
 * the shift of a negative value to the implementation) */
static int64_t round_q32(int64_t p)
{
    const int64_t t = p + ((int64_t)1 << 31);
    return t >= 0 ? (int64_t)((uint64_t)t >> 32)
                  : -(int64_t)(((uint64_t)(-t) + 0xFFFFFFFFu) >> 32);
}

/* a sensor count -> the model's int16 input: round(count * SENSOR_SCALE / input scale),
 * saturated, in integers (the multiplier is that ratio in Q32) */
static value to_model(int16_t count)
{
    const int64_t q = round_q32((int64_t)count * SENSOR_TO_MODEL_MULT);
    return (value)(q < INT16_MIN ? INT16_MIN : q > INT16_MAX ? INT16_MAX : q);
}

/* an output in millionths: round(y * output scale * 10^6), in integers */
static int64_t micro(value y)
{
    return round_q32((int64_t)y * MODEL_TO_MICRO_MULT);
}
#else
typedef float value;

static value to_model(int16_t count)
{
    return (float)count * (float)SENSOR_SCALE;  /* exact: SENSOR_SCALE is a power of two */
}

/* v in millionths, rounded half away from zero */
static int64_t micro(value v)
{
    const float m = v * 1000000.0f;
    return (int64_t)(m < 0.0f ? m - 0.5f : m + 0.5f);
}
#endif

int main(void)
{
    value x[HAR_MODEL_IN_FEATURES], y[HAR_MODEL_OUT_FEATURES];
    int rc = rne_model_load(har_model, HAR_MODEL_SIZE, &model);
    unsigned seq, t, i, best;
    if (rc == RNE_OK)
        rc = rne_stream_init(&stream, &model, 1, state, sizeof state, scratch, sizeof scratch);
    if (rc != RNE_OK) {
        printf("model: %s\n", rne_strerror(rc));
        return 1;
    }
    printf("har_model: %u bytes in flash, state %u + scratch %u bytes of RAM\n",
           (unsigned)HAR_MODEL_SIZE, (unsigned)sizeof state, (unsigned)sizeof scratch);
    for (seq = 0; seq < SENSOR_SEQUENCES; seq++) {
        rne_stream_reset(&stream);
        printf("sequence %u (%s)\n", seq, sensor_class_names[sensor_labels[seq]]);
        for (t = 0; t < SENSOR_FRAMES; t++) {
            for (i = 0; i < HAR_MODEL_IN_FEATURES; i++)
                x[i] = to_model(sensor_counts[seq][t][i]);
            rne_step(&stream, x, y);
            if ((t + 1) % 20 == 0) {
                printf("step %u %u:", seq, t);
                for (i = 0; i < HAR_MODEL_OUT_FEATURES; i++)
                    print_micro(micro(y[i]));
                printf("\n");
            }
        }
        for (i = 1, best = 0; i < HAR_MODEL_OUT_FEATURES; i++)
            if (y[i] > y[best])  /* an integer model's y grows with its value */
                best = i;
        printf("sequence %u: %s\n", seq, sensor_class_names[best]);
    }
    fflush(stdout);
    return 0;
}
