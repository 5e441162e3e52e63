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
 * header. Every 20 frames it prints the class probabilities ("step T: p0 p1 p2 p3", what the
 * model says if the sequence ended there); then the class it settles on.
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

#if HAR_MODEL_INTEGER
typedef int16_t value;

/* the binding's rule (rnnedge.fixedpoint.quantize): clamp(floor(v / scale + 0.5)) in double */
static value to_model(float v)
{
    const double t = (double)v / (double)HAR_MODEL_INPUT_SCALE + 0.5;
    int32_t q;
    if (t != t)
        return 0;
    if (t <= -32768.0)
        return INT16_MIN;
    if (t >= 32767.0)
        return INT16_MAX;
    q = (int32_t)t;
    return (int16_t)((double)q > t ? q - 1 : q);
}

static float from_model(value v)
{
    return (float)v * HAR_MODEL_OUTPUT_SCALE;
}
#else
typedef float value;

static value to_model(float v)
{
    return v;
}

static float from_model(value v)
{
    return v;
}
#endif

/* v in [0, 1] with 6 decimals, without printf's float support (often left out of firmware) */
static void print_prob(float v)
{
    const int32_t micro = (int32_t)(v * 1000000.0f + 0.5f);
    printf(" %ld.%06ld", (long)(micro / 1000000), (long)(micro % 1000000));
}

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
                x[i] = to_model(sensor_frames[seq][t][i]);
            rne_step(&stream, x, y);
            if ((t + 1) % 20 == 0) {
                printf("step %u %u:", seq, t);
                for (i = 0; i < HAR_MODEL_OUT_FEATURES; i++)
                    print_prob(from_model(y[i]));
                printf("\n");
            }
        }
        for (i = 1, best = 0; i < HAR_MODEL_OUT_FEATURES; i++)
            if (from_model(y[i]) > from_model(y[best]))
                best = i;
        printf("sequence %u: %s\n", seq, sensor_class_names[best]);
    }
    fflush(stdout);
    return 0;
}
