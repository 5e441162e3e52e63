/*
 * boundary.c - the float <-> int16 boundary of an integer model, for hosts with an FPU.
 *
 * The same arithmetic as rnnedge.fixedpoint.quantize / dequantize (docs/quantization.md section
 * 4), operation for operation in double, so the two agree bit for bit. The integer step path
 * never calls these: a device without an FPU feeds int16 straight to rne_step. No libm.
 * rne_step_float wraps the three calls of one float step into one (the Python binding's step).
 */
#include "rne_internal.h"

void rne_quantize_s16(const float *x, size_t n, double scale, int16_t *q)
{
    size_t i;
    for (i = 0; i < n; i++) {
        double v = (double)x[i] / scale + 0.5;
        int32_t t;
        if (v != v)                     /* NaN: converting it to an integer would be undefined */
            t = 0;
        else if (v >= 32767.0)          /* floor(v) >= 32767, +inf included */
            t = 32767;
        else if (v < -32768.0)          /* floor(v) < -32768, -inf included */
            t = -32768;
        else {                          /* in range: truncate, then step down to the floor */
            t = (int32_t)v;
            if ((double)t > v)
                t -= 1;
        }
        q[i] = (int16_t)t;
    }
}

void rne_dequantize_s16(const int16_t *q, size_t n, double scale, float *y)
{
    size_t i;
    for (i = 0; i < n; i++)
        y[i] = (float)((double)q[i] * scale);
}

int rne_step_float(rne_stream *stream, const float *x, double in_scale, int16_t *xq,
                   int16_t *yq, double out_scale, float *y)
{
    const rne_model *m;
    int rc;
    if (stream == NULL || stream->model == NULL || x == NULL || xq == NULL || yq == NULL ||
        y == NULL)
        return RNE_EARG;
    if ((rc = rne__stream_check(stream)) != RNE_OK)
        return rc;                      /* before x is quantized into xq at the model's size */
    m = stream->model;
    if (m->in_dtype != RNE_DT_S16)
        return RNE_EARG;                /* a float model takes float x in rne_step itself (and
                                           a model of ids takes ids) */
    rne_quantize_s16(x, (size_t)stream->batch * m->in_features, in_scale, xq);
    rc = rne_step(stream, xq, yq);
    if (rc == RNE_OK)
        rne_dequantize_s16(yq, (size_t)stream->batch * m->out_features, out_scale, y);
    return rc;
}
