/*
 * rnn_int.c - the ONNX RNN in the integer formats (s16 and s8 weights), docs/quantization.md §5:
 *   h' = f(sat(rq32(W x, Mw) + rq32(R h, Mr) + b, +-zlim))
 * Tanh / Sigmoid / HardSigmoid give Q0.15; Relu gives sat(rshr(pre, 8), 0, 32767) in the hidden
 * state's own (calibrated) units s_h, its pre-activation being in units of s_h / 256 (so that the
 * bias and the two products keep 8 fraction bits and h is rounded once). Integer-only.
 */
#include "qvec.h"
#include "rne_internal.h"

void rne__rnn_int(const rne__call *k, const rne__work_int *w)
{
    const rne_model_layer *l = k->layer;
    const size_t hs = l->hidden, in = l->in_features, dirs = rne__dirs(l);
    const size_t steps = k->steps, batch = k->batch, rows = steps * batch, ystride = dirs * hs;
    const int16_t *x = (const int16_t *)k->x;
    int16_t *y = (int16_t *)k->y;
    size_t d, s, b, r, j;
    for (d = 0; d < dirs; d++) {
        const int back = d == 1 || (l->flags & RNE_LF_REVERSE) != 0;
        int16_t *h = (int16_t *)k->state + d * batch * hs;
        rne__cell_int p;
        rne__cell_int_fill(l, d, &p);
        for (r = 0; r < rows; r++)
            rne__q_matvec(w->wx + r * hs, x + r * in, in, &p.w, 0, hs, p.mw, p.shift_w, w->acc);
        for (s = 0; s < steps; s++) {
            const size_t t = back ? steps - 1 - s : s;
            for (b = 0; b < batch; b++) {
                const int32_t *wx = w->wx + (t * batch + b) * hs;
                int16_t *hb = h + b * hs, *yb = y + (t * batch + b) * ystride + d * hs;
                rne__q_matvec(w->rq, hb, hs, &p.r, 0, hs, p.mr, p.shift_r, w->acc);
                rne__q_pre(w->rq, wx, w->rq, p.bias, p.zlim, hs);
                rne__q_act_rows(&p.act[0], w->rq, hs);
                for (j = 0; j < hs; j++) {
                    hb[j] = (int16_t)w->rq[j];
                    yb[j] = hb[j];
                }
            }
        }
    }
}
