/*
 * lstm_f32.c - the ONNX LSTM's step, float32 (gate order i, o, f, c along the 4H axis).
 *
 *   i = f(Xt Wi + Ht-1 Ri + Pi . Ct-1 + Wbi + Rbi)
 *   f = f(Xt Wf + Ht-1 Rf + Pf . Ct-1 + Wbf + Rbf)      (input_forget: f = 1 - i)
 *   c = g(Xt Wc + Ht-1 Rc + Wbc + Rbc)
 *   Ct = f . Ct-1 + i . c
 *   o = f(Xt Wo + Ht-1 Ro + Po . Ct + Wbo + Rbo)
 *   Ht = o . h(Ct)
 * With clip, every gate pre-activation is clamped to [-clip, clip] before its activation; the
 * cell state and the input of h() are not (onnxruntime's reading of the spec). The loop over
 * directions, time and batch is seq_f32.c's.
 */
#include <string.h>

#include "rne_internal.h"
#include "vec.h"

/* One row's gates -> new c and h. g: the row's 4H pre-activations (overwritten). */
static void rne__lstm_row(const rne_model_layer *l, size_t d, size_t hs, float *g, const float *p,
                          float *c, float *h)
{
    float *gi = g, *go = g + hs, *gf = g + 2 * hs, *gc = g + 3 * hs;
    const int clip = (l->flags & RNE_LF_CLIP) != 0, coupled = (l->flags & RNE_LF_INPUT_FORGET) != 0;
    const unsigned af = l->act[d][0], ag = l->act[d][1], ah = l->act[d][2];
    size_t j;
    if (p == NULL && !coupled) {
        /* i, o, f need nothing but their pre-activations: one pass over the 3H of them */
        if (clip)
            rne__f32_clip(g, 4 * hs, l->clip);
        rne__f32_act(gi, 3 * hs, af, l->alpha[d][0], l->beta[d][0]);
    } else {
        if (p != NULL)
            for (j = 0; j < hs; j++)
                gi[j] += p[j] * c[j];
        if (clip)
            rne__f32_clip(gi, hs, l->clip);
        rne__f32_act(gi, hs, af, l->alpha[d][0], l->beta[d][0]);
        if (coupled) {
            for (j = 0; j < hs; j++)
                gf[j] = 1.0f - gi[j];
        } else {
            if (p != NULL)
                for (j = 0; j < hs; j++)
                    gf[j] += p[2 * hs + j] * c[j];
            if (clip)
                rne__f32_clip(gf, hs, l->clip);
            rne__f32_act(gf, hs, af, l->alpha[d][0], l->beta[d][0]);
        }
        if (clip)
            rne__f32_clip(gc, hs, l->clip);
    }
    rne__f32_act(gc, hs, ag, l->alpha[d][1], l->beta[d][1]);
    for (j = 0; j < hs; j++)
        c[j] = gf[j] * c[j] + gi[j] * gc[j];
    if (p != NULL || coupled) {
        if (p != NULL)
            for (j = 0; j < hs; j++)
                go[j] += p[hs + j] * c[j];
        if (clip)
            rne__f32_clip(go, hs, l->clip);
        rne__f32_act(go, hs, af, l->alpha[d][0], l->beta[d][0]);
    }
    memcpy(gc, c, hs * sizeof(float));              /* h(Ct) goes where c was */
    rne__f32_act(gc, hs, ah, l->alpha[d][2], l->beta[d][2]);
    for (j = 0; j < hs; j++)
        h[j] = go[j] * gc[j];
}

void rne__lstm_f32_step(const rne__dir_f32 *dir, float *g)
{
    const rne_model_layer *l = dir->layer;
    const size_t hs = l->hidden, n = 4 * hs;
    const uint8_t *act = l->act[dir->d];
    /* the common cell (vec.h, lstm_cell): no peepholes, clip or input_forget, the default
     * activations; decided here, so that its step calls nothing else */
    const int common = dir->peep == NULL &&
                       (l->flags & (RNE_LF_CLIP | RNE_LF_INPUT_FORGET)) == 0 &&
                       act[0] == RNE_ACT_SIGMOID && act[1] == RNE_ACT_TANH &&
                       act[2] == RNE_ACT_TANH;
    size_t b;
    if (!dir->rh)
        rne__f32_gemm_acc(g, n, dir->h, hs, dir->r, n, dir->batch, n, hs);
    if (common) {       /* apart from the other loop, whose set-up the compiler hoists */
        for (b = 0; b < dir->batch; b++)
            rne__f32_lstm_cell(g + b * n, dir->c + b * hs, dir->h + b * hs, hs);
        return;
    }
    for (b = 0; b < dir->batch; b++)
        rne__lstm_row(l, dir->d, hs, g + b * n, dir->peep, dir->c + b * hs, dir->h + b * hs);
}
