/*
 * seq_f32.c - the f32 sequence loop: every recurrent layer walks direction x time x batch here
 * and calls its cell's step once per time step (CMSIS-NN's arm_lstm_unidirectional_s8 ->
 * arm_nn_lstm_step_s8). The cells only step (lstm_f32.c, gru_f32.c, rnn_f32.c).
 */
#include <string.h>

#include "rne_internal.h"
#include "vec.h"

void rne__seq_f32(const rne__call *k, rne__step_f32 step)
{
    const rne_model_layer *l = k->layer;
    const size_t hs = l->hidden, n = (size_t)rne__gates(l->op) * hs, in = l->in_features;
    const size_t dirs = rne__dirs(l), steps = k->steps, batch = k->batch, ystride = dirs * hs;
    /* a GRU with linear_before_reset multiplies Rbh by r: it stays out of the projection */
    const size_t nrb = (l->flags & RNE_LF_LINEAR_BEFORE_RESET) != 0 ? 2 * hs : n;
    /* the columns of the step's first R h product: a GRU's z and r, else all */
    const size_t nh = l->op == RNE_OP_GRU ? 2 * hs : n;
    const float *w = rne__tensor_f32(l, RNE_T_W);
    const float *r = rne__tensor_f32(l, RNE_T_R);
    const float *bias = rne__tensor_f32(l, RNE_T_B);
    const float *peep = rne__tensor_f32(l, RNE_T_P);
    float *proj = (float *)k->work;
    float *y = (float *)k->y;
    rne__dir_f32 dir;
    size_t d, s, b;
    dir.layer = l;
    dir.batch = batch;
    dir.tmp = l->op == RNE_OP_GRU ? proj + rne__round4(steps * batch * n) : NULL;
    for (d = 0; d < dirs; d++) {
        const int back = d == 1 || (l->flags & RNE_LF_REVERSE) != 0;
        const float *wb = bias != NULL ? bias + d * 2 * n : NULL;
        dir.d = d;
        dir.r = r + d * hs * n;
        dir.rb = wb != NULL ? wb + n : NULL;
        dir.peep = peep != NULL ? peep + d * 3 * hs : NULL;
        dir.h = (float *)k->state + d * batch * hs;
        dir.c = l->op == RNE_OP_LSTM
                    ? (float *)(void *)((uint8_t *)k->state + k->c_off) + d * batch * hs
                    : NULL;
        dir.rh = steps == 1;
        if (dir.rh) {       /* one step: bias, W x and R h of each row in one pass */
            for (b = 0; b < batch; b++) {
                rne__bias_f32(proj + b * n, n, wb, dir.rb, nrb);
                rne__f32_gemv2_acc(proj + b * n, (const float *)k->x + b * in, in,
                                   w + d * in * n, dir.h + b * hs, hs, dir.r, n, n, nh);
            }
        } else {
            rne__project_f32(proj, (const float *)k->x, steps * batch, in, w + d * in * n, n,
                             wb, dir.rb, nrb);
        }
        for (s = 0; s < steps; s++) {
            const size_t t = back ? steps - 1 - s : s;
            step(&dir, proj + t * batch * n);
            for (b = 0; b < batch; b++)
                memcpy(y + (t * batch + b) * ystride + d * hs, dir.h + b * hs, hs * sizeof(float));
        }
    }
}

void rne__inner_f32(const rne__call *k, rne__step_f32 step)
{
    const rne_model_layer *l = k->layer;
    const size_t len = (size_t)l->param[0], seqs = k->steps * k->batch / len;
    const size_t in = l->in_features, out = rne__dirs(l) * l->hidden, blk = rne__inner_state(l);
    float *h = (float *)k->work;
    rne__call c = *k;
    size_t i;
    c.steps = len;
    c.batch = 1;
    c.state = h;
    c.c_off = blk * sizeof(float);
    c.work = h + 2 * blk;
    for (i = 0; i < seqs; i++) {
        memset(h, 0, 2 * blk * sizeof(float));
        c.x = (const float *)k->x + i * len * in;
        c.y = (float *)k->y + i * len * out;
        rne__seq_f32(&c, step);
    }
}
