/*
 * lstm_q.c - the ONNX LSTM in the integer formats (s16 and s8 weights), docs/quantization.md §5:
 *
 *   pre = rq32(W x, Mw) + rq32(R h, Mr) + b            (int64 sum; rows i, o, f, g)
 *   zi += rq32(Pi c, Mpi);  zf += rq32(Pf c, Mpf)       (peepholes see the old c)
 *   i = f(zi);  f = input_forget ? min(32768 - i, 32767) : f(zf);  g = g(zg)   (z clamped to zlim)
 *   c' = sat32(rshr(f c, 15) + rshr(i g, 10))          (c int32 Q11.20)
 *   zo += rq32(Po c', Mpo);  o = f(zo)
 *   h' = sat16(rshr(o h(sat(rshr(3 c', 8), +-2^20)), 15))
 * h is int16 Q0.15, gates Q0.15, pre-activations in units of 1/12288. Integer-only.
 */
#include "qvec.h"
#include "rne_internal.h"

static int32_t rne__clampz(int64_t z, int32_t zlim)
{
    return (int32_t)rne__sat(z, -zlim, zlim);
}

/* act(z) of slot a; std: the slots hold ONNX's defaults Sigmoid, Tanh, Tanh (called with a
 * constant, so that the common case compiles without the dispatch) */
static inline int32_t rne__lstm_act(const rne__qcell *p, int std, unsigned a, int32_t z)
{
    if (std)
        return a == 0 ? rne__sigmoid_q15(z) : rne__tanh_q15(z);
    return rne__qgate_apply(&p->act[a], z);
}

/* One row: wx, rh: the row's 4H requantized terms of W x and R h; c, h updated in place. */
static inline void rne__lstm_q_row(const rne__qcell *p, int std, size_t hs, int coupled,
                                   const int32_t *wx, const int32_t *rh, int32_t *c, int16_t *h)
{
    const int32_t *b = p->bias;
    const int32_t zl = p->zlim;
    size_t j;
    for (j = 0; j < hs; j++) {
        const size_t ji = j, jo = hs + j, jf = 2 * hs + j, jg = 3 * hs + j;
        const int32_t cj = c[j];
        int64_t zi = (int64_t)wx[ji] + rh[ji] + b[ji], zo = (int64_t)wx[jo] + rh[jo] + b[jo];
        int64_t zf = (int64_t)wx[jf] + rh[jf] + b[jf];
        const int64_t zg = (int64_t)wx[jg] + rh[jg] + b[jg];
        int32_t i, f, g, o, t, cn;
        if (p->peep != NULL) {
            zi += rne__rq32((int64_t)p->peep[j] * cj, p->pm[0], p->pshift);
            zf += rne__rq32((int64_t)p->peep[2 * hs + j] * cj, p->pm[2], p->pshift);
        }
        i = rne__lstm_act(p, std, 0, rne__clampz(zi, zl));
        if (coupled)
            f = RNE__Q15_ONE - i < INT16_MAX ? RNE__Q15_ONE - i : INT16_MAX;
        else
            f = rne__lstm_act(p, std, 0, rne__clampz(zf, zl));
        g = rne__lstm_act(p, std, 1, rne__clampz(zg, zl));
        cn = rne__sat32(rne__rshr((int64_t)f * cj, 15) + rne__rshr(i * g, 10));
        if (p->peep != NULL)
            zo += rne__rq32((int64_t)p->peep[hs + j] * cn, p->pm[1], p->pshift);
        o = rne__lstm_act(p, std, 0, rne__clampz(zo, zl));
        t = rne__lstm_act(p, std, 2, (int32_t)rne__sat(rne__rshr((int64_t)3 * cn, 8), -RNE__ZMAX,
                                                       RNE__ZMAX));
        c[j] = cn;
        h[j] = rne__sat16(rne__rshr(o * t, 15));
    }
}

void rne__lstm_q(const rne__call *k, const rne__qwork *w)
{
    const rne_layer *l = k->layer;
    const size_t hs = l->hidden, n = 4 * hs, in = l->in_features, dirs = rne__dirs(l);
    const size_t steps = k->steps, batch = k->batch, rows = steps * batch, ystride = dirs * hs;
    const int coupled = (l->flags & RNE_LF_INPUT_FORGET) != 0;
    const int16_t *x = (const int16_t *)k->x;
    int16_t *y = (int16_t *)k->y;
    size_t d, s, b, r, j;
    for (d = 0; d < dirs; d++) {
        const int back = d == 1 || (l->flags & RNE_LF_REVERSE) != 0;
        int16_t *h = (int16_t *)k->state + d * batch * hs;
        int32_t *c = (int32_t *)(void *)((uint8_t *)k->state + k->c_off) + d * batch * hs;
        rne__qcell p;
        int std;
        rne__q_cell(k->model, l, d, &p);
        std = p.act[0].kind == RNE_ACT_SIGMOID && p.act[1].kind == RNE_ACT_TANH &&
              p.act[2].kind == RNE_ACT_TANH;
        for (r = 0; r < rows; r++)      /* the input terms of every step at once */
            rne__q_matvec(w->wx + r * n, x + r * in, in, &p.w, 0, n, p.mw, p.shift_w, w->acc);
        for (s = 0; s < steps; s++) {
            const size_t t = back ? steps - 1 - s : s;
            for (b = 0; b < batch; b++) {
                int16_t *hb = h + b * hs, *yb = y + (t * batch + b) * ystride + d * hs;
                rne__q_matvec(w->rq, hb, hs, &p.r, 0, n, p.mr, p.shift_r, w->acc);
                if (std)
                    rne__lstm_q_row(&p, 1, hs, coupled, w->wx + (t * batch + b) * n, w->rq,
                                    c + b * hs, hb);
                else
                    rne__lstm_q_row(&p, 0, hs, coupled, w->wx + (t * batch + b) * n, w->rq,
                                    c + b * hs, hb);
                for (j = 0; j < hs; j++)
                    yb[j] = hb[j];
            }
        }
    }
}
