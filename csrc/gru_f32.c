/*
 * gru_f32.c - the ONNX GRU's step, float32 (gate order z, r, h along the 3H axis).
 *
 *   z = f(Xt Wz + Ht-1 Rz + Wbz + Rbz)
 *   r = f(Xt Wr + Ht-1 Rr + Wbr + Rbr)
 *   linear_before_reset = 0:  n = g(Xt Wh + (r . Ht-1) Rh + Rbh + Wbh)
 *   linear_before_reset = 1:  n = g(Xt Wh + r . (Ht-1 Rh + Rbh) + Wbh)
 *   Ht = (1 - z) . n + z . Ht-1
 * With clip, the pre-activations of z, r and n are clamped to [-clip, clip].
 * Without linear_before_reset the Rh product needs r first: one product over the z|r columns
 * of R_t, then one over the h columns with r . Ht-1 (same multiply count, two passes). The loop
 * over directions, time and batch is seq_f32.c's.
 */
#include "rne_internal.h"
#include "vec.h"

void rne__gru_f32_step(const rne__dir_f32 *dir, float *g)
{
    const rne_model_layer *l = dir->layer;
    const size_t hs = l->hidden, n = 3 * hs, batch = dir->batch, d = dir->d;
    const int lbr = (l->flags & RNE_LF_LINEAR_BEFORE_RESET) != 0;
    const int clip = (l->flags & RNE_LF_CLIP) != 0;
    const float *rt = dir->r, *rb = dir->rb;
    const unsigned af = l->act[d][0], ag = l->act[d][1];
    float *h = dir->h, *tmp = dir->tmp;
    size_t b, j;
    if (!dir->rh)
        rne__f32_gemm_acc(g, n, h, hs, rt, n, batch, 2 * hs, hs);
    if (lbr) {
        for (b = 0; b < batch; b++)
            for (j = 0; j < hs; j++)
                tmp[b * hs + j] = rb != NULL ? rb[2 * hs + j] : 0.0f;
        rne__f32_gemm_acc(tmp, hs, h, hs, rt + 2 * hs, n, batch, hs, hs);
    }
    if (lbr && !clip && af == RNE_ACT_SIGMOID && ag == RNE_ACT_TANH) {
        for (b = 0; b < batch; b++)     /* the common cell, one vector at a time */
            rne__f32_gru_cell(g + b * n, tmp + b * hs, h + b * hs, hs);
        return;
    }
    for (b = 0; b < batch; b++) {
        float *gz = g + b * n, *gr = gz + hs, *gh = gr + hs;
        const float *hb = h + b * hs;
        if (clip)
            rne__f32_clip(gz, 2 * hs, l->clip);
        rne__f32_act(gz, 2 * hs, af, l->alpha[d][0], l->beta[d][0]);
        if (lbr)
            for (j = 0; j < hs; j++)
                gh[j] += gr[j] * tmp[b * hs + j];
        else
            for (j = 0; j < hs; j++)
                tmp[b * hs + j] = gr[j] * hb[j];
    }
    if (!lbr)
        rne__f32_gemm_acc(g + 2 * hs, n, tmp, hs, rt + 2 * hs, n, batch, hs, hs);
    for (b = 0; b < batch; b++) {
        float *gz = g + b * n, *gh = gz + 2 * hs, *hb = h + b * hs;
        if (clip)
            rne__f32_clip(gh, hs, l->clip);
        rne__f32_act(gh, hs, ag, l->alpha[d][1], l->beta[d][1]);
        for (j = 0; j < hs; j++)
            hb[j] = (1.0f - gz[j]) * gh[j] + gz[j] * hb[j];
    }
}
