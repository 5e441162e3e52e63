/*
 * rnn_f32.c - the ONNX RNN, float32:  Ht = f(Xt Wi + Ht-1 Ri + Wbi + Rbi), the pre-activation
 * clamped to [-clip, clip] with clip.
 */
#include <string.h>

#include "rne_internal.h"
#include "vec.h"

void rne__rnn_f32(const rne__call *k)
{
    const rne_model_layer *l = k->layer;
    const size_t hs = l->hidden, in = l->in_features, dirs = rne__dirs(l);
    const size_t steps = k->steps, batch = k->batch, ystride = dirs * hs;
    const float *w = rne__tensor_f32(l, RNE_T_W);
    const float *r = rne__tensor_f32(l, RNE_T_R);
    const float *bias = rne__tensor_f32(l, RNE_T_B);
    float *proj = (float *)k->work;
    size_t d, s, b;
    for (d = 0; d < dirs; d++) {
        const int back = d == 1 || (l->flags & RNE_LF_REVERSE) != 0;
        const float *wb = bias != NULL ? bias + d * 2 * hs : NULL;
        float *h = (float *)k->state + d * batch * hs;
        rne__project_f32(proj, (const float *)k->x, steps * batch, in, w + d * in * hs, hs, wb,
                         wb != NULL ? wb + hs : NULL, hs);
        for (s = 0; s < steps; s++) {
            const size_t t = back ? steps - 1 - s : s;
            float *g = proj + t * batch * hs;
            rne__f32_gemm_acc(g, hs, h, hs, r + d * hs * hs, hs, batch, hs, hs);
            if (l->flags & RNE_LF_CLIP)
                rne__f32_clip(g, batch * hs, l->clip);
            rne__f32_act(g, batch * hs, l->act[d][0], l->alpha[d][0], l->beta[d][0]);
            memcpy(h, g, batch * hs * sizeof(float));
            for (b = 0; b < batch; b++)
                memcpy((float *)k->y + (t * batch + b) * ystride + d * hs, g + b * hs,
                       hs * sizeof(float));
        }
    }
}
