/*
 * gru_int.c - the ONNX GRU's step in the integer formats (s16 and s8 weights, int16 h),
 * docs/quantization.md §5:
 *
 *   z, r = f(sat(rq32(W x, Mw) + rq32(R h, Mr) + b, +-zlim))             rows z, r (Q0.15)
 *   linear_before_reset = 0:  n_pre = rq32(Wh x) + rq32(Rh rshr(r h, 15)) + b_h  (Wbh + Rbh)
 *   linear_before_reset = 1:  hn = sat(rq32(Rh h) + Rbh, +-2^20)
 *                             n_pre = rq32(Wh x) + Wbh + rshr(r hn, 15)
 *   n = g(sat(n_pre, +-zlim));  h' = sat16(n + rshr(z (h - n), 15)), or with f = Sigmoid
 *   h' = sat16(h + rshr(zc (n - h), 31)), zc = 1 - z in Q0.31 (rne__sigmoid_tail_q31)
 * Without linear_before_reset the Rh product needs r first: one product over the z|r columns,
 * then one over the h columns (the same multiply count). The loop over directions, time and batch
 * is seq_int.c's. Integer-only.
 */
#include "qvec.h"
#include "rne_internal.h"

void rne__gru_int_step(const rne__dir_int *dir, const int32_t *wxt)
{
    const rne__cell_int *p = &dir->p;
    const rne__work_int *w = dir->w;
    const size_t hs = dir->hidden, n = 3 * hs;
    const int lbr = (dir->flags & RNE_LF_LINEAR_BEFORE_RESET) != 0;
    const int sig = dir->p.act[0].kind == RNE_ACT_SIGMOID;
    int32_t *rq = w->rq, *zr = w->gate;
    size_t b, j;
    for (b = 0; b < dir->batch; b++) {
        const int32_t *wx = wxt + b * n;
        int16_t *hb = dir->h + b * hs;
        rne__q_matvec(rq, hb, hs, &p->r, 0, 2 * hs, p->mr, p->shift_r, w->acc);
        rne__q_pre(zr, wx, rq, p->bias, p->zlim, 2 * hs);
        if (sig)                            /* z: 1 - z in Q0.31 from its pre-activation */
            rne__q_tail_rows(zr, hs);
        rne__q_act_rows(&p->act[0], zr + (sig ? hs : 0), sig ? hs : 2 * hs);
        if (lbr) {
            rne__q_matvec(rq + 2 * hs, hb, hs, &p->r, 2 * hs, hs, p->mr + 2 * hs, p->shift_r,
                          w->acc);
        } else {
            for (j = 0; j < hs; j++)        /* r h: Q0.15 x Q0.15 < 2^30 */
                w->tmp[j] = (int16_t)rne__rshr(zr[hs + j] * hb[j], 15);
            rne__q_matvec(rq + 2 * hs, w->tmp, hs, &p->r, 2 * hs, hs, p->mr + 2 * hs, p->shift_r,
                          w->acc);
        }
        if (lbr) {
            for (j = 0; j < hs; j++) {
                const int64_t hn = rne__sat((int64_t)rq[2 * hs + j] + p->bias[3 * hs + j],
                                            -RNE__ZMAX, RNE__ZMAX);
                rq[2 * hs + j] = (int32_t)rne__sat(
                    (int64_t)wx[2 * hs + j] + p->bias[2 * hs + j] + rne__rshr(zr[hs + j] * hn, 15),
                    -p->zlim, p->zlim);
            }
        } else {
            rne__q_pre(rq + 2 * hs, wx + 2 * hs, rq + 2 * hs, p->bias + 2 * hs, p->zlim, hs);
        }
        rne__q_act_rows(&p->act[1], rq + 2 * hs, hs);
        for (j = 0; j < hs; j++) {
            const int32_t nv = rq[2 * hs + j];
            if (sig)                        /* |zc (n - h)| < 2^31 2^16 */
                hb[j] = rne__sat16(hb[j] + rne__rshr((int64_t)zr[j] * (nv - hb[j]), 31));
            else
                hb[j] = rne__sat16(nv + rne__rshr(zr[j] * (hb[j] - nv), 15));
        }
    }
}
