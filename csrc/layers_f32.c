/*
 * layers_f32.c - the f32 layer dispatch and the non-recurrent f32 layers (DENSE, ACT, LAYERNORM,
 * SLICE, TAKE_LAST), plus the input projection the cells share. Semantics: docs/format.md.
 */
#include <math.h>
#include <string.h>

#include "rne_internal.h"
#include "vec.h"

void rne__bias_f32(float *proj, size_t n, const float *wb, const float *rb, size_t nrb)
{
    size_t j;
    const size_t nr = rb != NULL ? nrb : 0u;  /* elements with a recurrent bias (nrb <= n) */
    /* proj = Wb + Rb, each absent one as 0.0f (so that -0.0 + 0.0f gives +0.0 as ever); two
     * plain loops, which the compiler vectorises */
    if (wb != NULL) {
        for (j = 0; j < nr; j++)
            proj[j] = wb[j] + rb[j];
        for (j = nr; j < n; j++)
            proj[j] = wb[j] + 0.0f;
    } else {
        for (j = 0; j < nr; j++)
            proj[j] = 0.0f + rb[j];
        for (j = nr; j < n; j++)
            proj[j] = 0.0f;
    }
}

void rne__project_f32(float *proj, const float *x, size_t rows, size_t in, const float *wt,
                      size_t n, const float *wb, const float *rb, size_t nrb)
{
    size_t r;
    if (rows == 0)
        return;
    rne__bias_f32(proj, n, wb, rb, nrb);
    for (r = 1; r < rows; r++)
        memcpy(proj + r * n, proj, n * sizeof(float));
    rne__f32_gemm_acc(proj, n, x, in, wt, n, rows, n, in);
}

/* y = x W + b: W_t [K][N] */
#ifndef RNE_NO_DENSE
static void rne__dense(const rne__call *k)
{
    const rne_model_layer *l = k->layer;
    const size_t rows = k->steps * k->batch, n = l->out_features;
    const float *b = rne__tensor_f32(l, RNE_T_B);
    rne__project_f32((float *)k->y, (const float *)k->x, rows, l->in_features,
                     rne__tensor_f32(l, RNE_T_W), n, b, NULL, 0);
}
#endif /* RNE_NO_DENSE */

#ifndef RNE_NO_ACT
static void rne__act(const rne__call *k)
{
    const rne_model_layer *l = k->layer;
    const size_t f = l->in_features, rows = k->steps * k->batch;
    float *y = (float *)k->y;
    size_t r;
    if (l->act[0][0] == RNE_ACT_RELU) {     /* one pass, rne__f32_act's expression: its bits */
        const float *x = (const float *)k->x;
        for (r = 0; r < rows * f; r++)
            y[r] = x[r] < 0.0f ? 0.0f : x[r];       /* NaN stays NaN */
        return;
    }
    memcpy(y, k->x, rows * f * sizeof(float));
    if (l->act[0][0] == RNE_ACT_SOFTMAX) {
        for (r = 0; r < rows; r++)
            rne__f32_softmax(y + r * f, f);
    } else if (l->act[0][0] == RNE_ACT_LOGSOFTMAX) {
        for (r = 0; r < rows; r++)
            rne__f32_logsoftmax(y + r * f, f);
    } else {
        rne__f32_act(y, rows * f, l->act[0][0], l->alpha[0][0], l->beta[0][0]);
    }
}
#endif /* RNE_NO_ACT */

#ifndef RNE_NO_LAYERNORM
/* (x - mean) / sqrt(var + eps) * gamma + beta per row; population variance, two passes */
static void rne__layernorm(const rne__call *k)
{
    const rne_model_layer *l = k->layer;
    const size_t f = l->in_features, rows = k->steps * k->batch;
    const float *gamma = rne__tensor_f32(l, RNE_T_W);
    const float *beta = rne__tensor_f32(l, RNE_T_B);
    const float eps = l->alpha[0][0], inv_f = 1.0f / (float)f;
    size_t r, j;
    for (r = 0; r < rows; r++) {
        const float *x = (const float *)k->x + r * f;
        float *y = (float *)k->y + r * f;
        float mean = 0.0f, var = 0.0f, inv;
        for (j = 0; j < f; j++)
            mean += x[j];
        mean *= inv_f;
        for (j = 0; j < f; j++)
            var += (x[j] - mean) * (x[j] - mean);
        inv = 1.0f / sqrtf(var * inv_f + eps);
        for (j = 0; j < f; j++)
            y[j] = (x[j] - mean) * inv * gamma[j] + (beta != NULL ? beta[j] : 0.0f);
    }
}
#endif /* RNE_NO_LAYERNORM */

static void rne__slice(const rne__call *k)
{
    const rne_model_layer *l = k->layer;
    const size_t f = l->in_features, n = l->out_features, rows = k->steps * k->batch;
    size_t r;
    for (r = 0; r < rows; r++)
        memcpy((float *)k->y + r * n, (const float *)k->x + r * f + (size_t)l->param[1], n * sizeof(float));
}

/* features [0, split) from step T-1, [split, F) from step 0 */
static void rne__take_last(const rne__call *k)
{
    const rne_model_layer *l = k->layer;
    const size_t f = l->in_features, split = (size_t)l->param[0], last = k->steps - 1;
    size_t b;
    for (b = 0; b < k->batch; b++) {
        float *y = (float *)k->y + b * f;
        const float *x_last = (const float *)k->x + (last * k->batch + b) * f;
        const float *x_first = (const float *)k->x + b * f;
        memcpy(y, x_last, split * sizeof(float));
        memcpy(y + split, x_first + split, (f - split) * sizeof(float));
    }
}

#if !defined(RNE_NO_LSTM) || !defined(RNE_NO_GRU) || !defined(RNE_NO_RNN)
/* A recurrent node: over each step's rows (RNE_LF_INNER, rne__inner_f32) or over time. */
static void rne__recurrent_f32(const rne__call *k, rne__step_f32 step)
{
    if (RNE__INNER(k->layer->flags))
        rne__inner_f32(k, step);
    else
        rne__seq_f32(k, step);
}
#endif

void rne__layer_f32(const rne__call *k)
{
    switch (k->layer->op) {
#ifndef RNE_NO_DENSE
    case RNE_OP_DENSE: rne__dense(k); break;
#endif
#ifndef RNE_NO_ACT
    case RNE_OP_ACT: rne__act(k); break;
#endif
#ifndef RNE_NO_LSTM
    case RNE_OP_LSTM:
        rne__recurrent_f32(k, rne__lstm_f32_step);
        break;
#endif
#ifndef RNE_NO_GRU
    case RNE_OP_GRU:
        rne__recurrent_f32(k, rne__gru_f32_step);
        break;
#endif
#ifndef RNE_NO_RNN
    case RNE_OP_RNN:
        rne__recurrent_f32(k, rne__rnn_f32_step);
        break;
#endif
    case RNE_OP_TAKE_LAST: rne__take_last(k); break;
    case RNE_OP_SLICE: rne__slice(k); break;
#ifndef RNE_NO_LAYERNORM
    case RNE_OP_LAYERNORM: rne__layernorm(k); break;
#endif
    default: break;     /* refused by rne_model_load */
    }
}
