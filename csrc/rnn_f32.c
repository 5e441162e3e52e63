/*
 * rnn_f32.c - the ONNX RNN's step, float32:  Ht = f(Xt Wi + Ht-1 Ri + Wbi + Rbi), the
 * pre-activation clamped to [-clip, clip] with clip. The loop over directions, time and batch is
 * seq_f32.c's.
 */
#include <string.h>

#include "rne_internal.h"
#include "vec.h"

void rne__rnn_f32_step(const rne__dir_f32 *dir, float *g)
{
    const rne_model_layer *l = dir->layer;
    const size_t hs = l->hidden, batch = dir->batch, d = dir->d;
    if (!dir->rh)
        rne__f32_gemm_acc(g, hs, dir->h, hs, dir->r, hs, batch, hs, hs);
    if (l->flags & RNE_LF_CLIP)
        rne__f32_clip(g, batch * hs, l->clip);
    rne__f32_act(g, batch * hs, l->act[d][0], l->alpha[d][0], l->beta[d][0]);
    memcpy(dir->h, g, batch * hs * sizeof(float));
}
