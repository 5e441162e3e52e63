/*
 * seq_int.c - the integer formats' sequence loop (s16 and s8 weights, int16 h and values): every
 * recurrent layer walks direction x time x batch here and calls its cell's step once per time
 * step (CMSIS-NN's arm_lstm_unidirectional_s8 -> arm_nn_lstm_step_s8). The cells only step
 * (lstm_int.c, gru_int.c, rnn_int.c). Integer-only.
 */
#include "qvec.h"
#include "rne_internal.h"

void rne__seq_int(const rne__call *k, const rne__work_int *w, rne__step_int step)
{
    const rne_model_layer *l = k->layer;
    const size_t hs = l->hidden, n = (size_t)rne__gates(l->op) * hs, in = l->in_features;
    const size_t dirs = rne__dirs(l), steps = k->steps, batch = k->batch, rows = steps * batch;
    const size_t ystride = dirs * hs;
    const int16_t *x = (const int16_t *)k->x;
    int16_t *y = (int16_t *)k->y;
    rne__dir_int dir;
    size_t d, s, b, r, j;
    dir.w = w;
    dir.flags = l->flags;
    dir.hidden = hs;
    dir.batch = batch;
    for (d = 0; d < dirs; d++) {
        const int back = d == 1 || (l->flags & RNE_LF_REVERSE) != 0;
        dir.h = (int16_t *)k->state + d * batch * hs;
        dir.c = l->op == RNE_OP_LSTM
                    ? (int32_t *)(void *)((uint8_t *)k->state + k->c_off) + d * batch * hs
                    : NULL;
        rne__cell_int_fill(l, d, &dir.p);
        for (r = 0; r < rows; r++)      /* the input terms of every step at once */
            rne__q_matvec(w->wx + r * n, x + r * in, in, &dir.p.w, 0, n, dir.p.mw, dir.p.shift_w,
                          w->acc);
        for (s = 0; s < steps; s++) {
            const size_t t = back ? steps - 1 - s : s;
            step(&dir, w->wx + t * batch * n);
            for (b = 0; b < batch; b++) {
                const int16_t *restrict hb = dir.h + b * hs;
                int16_t *restrict yb = y + (t * batch + b) * ystride + d * hs;
                for (j = 0; j < hs; j++)
                    yb[j] = hb[j];
            }
        }
    }
}

void rne__inner_int(const rne__call *k, const rne__work_int *w, rne__step_int step)
{
    const rne_model_layer *l = k->layer;
    const size_t len = (size_t)l->param[0], seqs = k->steps * k->batch / len;
    const size_t in = l->in_features, out = rne__dirs(l) * l->hidden, blk = rne__inner_state(l);
    int32_t *h = w->wx + len * (size_t)rne__gates(l->op) * l->hidden;
    rne__call c = *k;
    size_t i, j;
    c.steps = len;
    c.batch = 1;
    c.state = h;
    c.c_off = blk * sizeof(int32_t);
    for (i = 0; i < seqs; i++) {
        for (j = 0; j < 2 * blk; j++)   /* (no string.h in the integer objects: freestanding) */
            h[j] = 0;
        c.x = (const int16_t *)k->x + i * len * in;
        c.y = (int16_t *)k->y + i * len * out;
        rne__seq_int(&c, w, step);
    }
}
