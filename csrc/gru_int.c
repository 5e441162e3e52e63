/*
 * gru_int.c - the ONNX GRU in the integer formats (s16 and s8 weights), docs/quantization.md §5:
 *
 *   z, r = f(sat(rq32(W x, Mw) + rq32(R h, Mr) + b, +-zlim))             rows z, r (Q0.15)
 *   linear_before_reset = 0:  n_pre = rq32(Wh x) + rq32(Rh rshr(r h, 15)) + b_h  (Wbh + Rbh)
 *   linear_before_reset = 1:  hn = sat(rq32(Rh h) + Rbh, +-2^20)
 *                             n_pre = rq32(Wh x) + Wbh + rshr(r hn, 15)
 *   n = g(sat(n_pre, +-zlim));  h' = sat16(n + rshr(z (h - n), 15))
 * Without linear_before_reset the Rh product needs r first: one product over the z|r columns,
 * then one over the h columns (the same multiply count). Integer-only.
 */
#include "qvec.h"
#include "rne_internal.h"

void rne__gru_int(const rne__call *k, const rne__work_int *w)
{
    const rne_model_layer *l = k->layer;
    const size_t hs = l->hidden, n = 3 * hs, in = l->in_features, dirs = rne__dirs(l);
    const size_t steps = k->steps, batch = k->batch, rows = steps * batch, ystride = dirs * hs;
    const int lbr = (l->flags & RNE_LF_LINEAR_BEFORE_RESET) != 0;
    const int16_t *x = (const int16_t *)k->x;
    int16_t *y = (int16_t *)k->y;
    int32_t *rq = w->rq, *zr = w->gate;
    size_t d, s, b, r, j;
    for (d = 0; d < dirs; d++) {
        const int back = d == 1 || (l->flags & RNE_LF_REVERSE) != 0;
        int16_t *h = (int16_t *)k->state + d * batch * hs;
        rne__cell_int p;
        rne__cell_int_fill(l, d, &p);
        for (r = 0; r < rows; r++)
            rne__q_matvec(w->wx + r * n, x + r * in, in, &p.w, 0, n, p.mw, p.shift_w, w->acc);
        for (s = 0; s < steps; s++) {
            const size_t t = back ? steps - 1 - s : s;
            for (b = 0; b < batch; b++) {
                const int32_t *wx = w->wx + (t * batch + b) * n;
                int16_t *hb = h + b * hs, *yb = y + (t * batch + b) * ystride + d * hs;
                rne__q_matvec(rq, hb, hs, &p.r, 0, 2 * hs, p.mr, p.shift_r, w->acc);
                rne__q_pre(zr, wx, rq, p.bias, p.zlim, 2 * hs);
                rne__q_act_rows(&p.act[0], zr, 2 * hs);
                if (lbr) {
                    rne__q_matvec(rq + 2 * hs, hb, hs, &p.r, 2 * hs, hs, p.mr + 2 * hs, p.shift_r,
                                  w->acc);
                } else {
                    for (j = 0; j < hs; j++)        /* r h: Q0.15 x Q0.15 < 2^30 */
                        w->tmp[j] = (int16_t)rne__rshr(zr[hs + j] * hb[j], 15);
                    rne__q_matvec(rq + 2 * hs, w->tmp, hs, &p.r, 2 * hs, hs, p.mr + 2 * hs,
                                  p.shift_r, w->acc);
                }
                if (lbr) {
                    for (j = 0; j < hs; j++) {
                        const int64_t hn = rne__sat((int64_t)rq[2 * hs + j] + p.bias[3 * hs + j],
                                                    -RNE__ZMAX, RNE__ZMAX);
                        rq[2 * hs + j] = (int32_t)rne__sat(
                            (int64_t)wx[2 * hs + j] + p.bias[2 * hs + j] +
                                rne__rshr(zr[hs + j] * hn, 15),
                            -p.zlim, p.zlim);
                    }
                } else {
                    rne__q_pre(rq + 2 * hs, wx + 2 * hs, rq + 2 * hs, p.bias + 2 * hs, p.zlim, hs);
                }
                rne__q_act_rows(&p.act[1], rq + 2 * hs, hs);
                for (j = 0; j < hs; j++) {
                    const int32_t nv = rq[2 * hs + j];
                    hb[j] = rne__sat16(nv + rne__rshr(zr[j] * (hb[j] - nv), 15));
                    yb[j] = hb[j];
                }
            }
        }
    }
}
