/*
 * rnn_int.c - the ONNX RNN's step in the integer formats (s16 and s8 weights, int16 h),
 * docs/quantization.md §5:
 *   h' = f(sat(rq32(W x, Mw) + rq32(R h, Mr) + b, +-zlim))
 * Tanh / Sigmoid / HardSigmoid give Q0.15; Relu gives sat(rshr(pre, 8), 0, 32767) in the hidden
 * state's own (calibrated) units s_h, its pre-activation being in units of s_h / 256 (so that the
 * bias and the two products keep 8 fraction bits and h is rounded once). The loop over
 * directions, time and batch is seq_int.c's. Integer-only.
 */
#include "qvec.h"
#include "rne_internal.h"

void rne__rnn_int_step(const rne__dir_int *dir, const int32_t *wx)
{
    const rne__cell_int *p = &dir->p;
    const rne__work_int *w = dir->w;
    const size_t hs = dir->hidden;
    size_t b, j;
    for (b = 0; b < dir->batch; b++) {
        int16_t *hb = dir->h + b * hs;
        rne__q_matvec(w->rq, hb, hs, &p->r, 0, hs, p->mr, p->shift_r, w->acc);
        rne__q_pre(w->rq, wx + b * hs, w->rq, p->bias, p->zlim, hs);
        rne__q_act_rows(&p->act[0], w->rq, hs);
        for (j = 0; j < hs; j++)
            hb[j] = (int16_t)w->rq[j];
    }
}
