/*
 * lstm_int.c - the ONNX LSTM's step in the integer formats (s16 and s8 weights, int16 h),
 * docs/quantization.md §5:
 *
 *   pre = rq32(W x, Mw) + rq32(R h, Mr) + b            (int64 sum; rows i, o, f, g)
 *   zi += rq32(Pi c, Mpi);  zf += rq32(Pf c, Mpf)       (peepholes see the old c)
 *   i = f(zi);  f = input_forget ? min(32768 - i, 32767) : f(zf);  g = g(zg)   (z clamped to zlim)
 *   c' = sat32(rshr(f c, 15) + rshr(i g, 10))          (c int32 Q11.20)
 *   zo += rq32(Po c', Mpo);  o = f(zo)
 *   h' = sat16(rshr(o h(sat(rshr(3 c', 8), +-2^20)), 15))
 * h is int16 Q0.15, gates Q0.15, pre-activations in units of 1/12288. The loop over directions,
 * time and batch is seq_int.c's. Integer-only.
 */
#include "qvec.h"
#include "rne_internal.h"

static int32_t rne__clampz(int64_t z, int32_t zlim)
{
    return (int32_t)rne__sat(z, -zlim, zlim);
}

/* One row (one batch element, one step): wx, rh: the row's 4H requantized terms of W x and R h;
 * c, h updated in place. In phases over whole rows of gates, each a plain loop the compiler
 * vectorizes and each activation one call over a row (rne__q_act_rows), with the integers of
 * the formulas above: the gates' pre-activations and then the gates in place of rh (o after c'
 * when it has a peephole, which sees c'), c' into c, the argument of act_h in place of i, then
 * act_h of it, then h'. */
RNE__THUMB1_OUTLINE
static void rne__lstm_int_row(const rne__cell_int *p, size_t hs, int coupled, const int32_t *wx,
                              int32_t *rh, int32_t *c, int16_t *h)
{
    const int32_t *b = p->bias;
    const int16_t *peep = p->peep;
    const int32_t zl = p->zlim;
    int32_t *gi = rh, *go = rh + hs, *gf = rh + 2 * hs, *gg = rh + 3 * hs;
    size_t j;
    if (peep == NULL) {
        rne__q_pre(rh, wx, rh, b, zl, 4 * hs);
    } else {
        for (j = 0; j < hs; j++) {
            gi[j] = rne__clampz((int64_t)wx[j] + gi[j] + b[j] +
                                    rne__rq32((int64_t)peep[j] * c[j], p->pm[0], p->pshift),
                                zl);
            gf[j] = rne__clampz((int64_t)wx[2 * hs + j] + gf[j] + b[2 * hs + j] +
                                    rne__rq32((int64_t)peep[2 * hs + j] * c[j], p->pm[2],
                                              p->pshift),
                                zl);
        }
        rne__q_pre(gg, wx + 3 * hs, gg, b + 3 * hs, zl, hs);
    }
    if (coupled) {
        rne__q_act_rows(&p->act[0], gi, peep == NULL ? 2 * hs : hs);
        for (j = 0; j < hs; j++)
            gf[j] = RNE__Q15_ONE - gi[j] < INT16_MAX ? RNE__Q15_ONE - gi[j] : INT16_MAX;
    } else if (peep == NULL) {
        rne__q_act_rows(&p->act[0], gi, 3 * hs);
    } else {
        rne__q_act_rows(&p->act[0], gi, hs);
        rne__q_act_rows(&p->act[0], gf, hs);
    }
    rne__q_act_rows(&p->act[1], gg, hs);
    for (j = 0; j < hs; j++) {
        const int32_t cn = rne__sat32(rne__rshr((int64_t)gf[j] * c[j], 15) +
                                      rne__rshr(gi[j] * gg[j], 10));
        c[j] = cn;
        gi[j] = (int32_t)rne__sat(rne__rshr((int64_t)3 * cn, 8), -RNE__ZMAX, RNE__ZMAX);
    }
    if (peep != NULL) {
        for (j = 0; j < hs; j++)
            go[j] = rne__clampz((int64_t)wx[hs + j] + go[j] + b[hs + j] +
                                    rne__rq32((int64_t)peep[hs + j] * c[j], p->pm[1], p->pshift),
                                zl);
        rne__q_act_rows(&p->act[0], go, hs);
    }
    rne__q_act_rows(&p->act[2], gi, hs);
    for (j = 0; j < hs; j++)
        h[j] = rne__sat16(rne__rshr(go[j] * gi[j], 15));
}

void rne__lstm_int_step(const rne__dir_int *dir, const int32_t *wx)
{
    const rne__cell_int *p = &dir->p;
    const rne__work_int *w = dir->w;
    const size_t hs = dir->hidden, n = 4 * hs;
    const int coupled = (dir->flags & RNE_LF_INPUT_FORGET) != 0;
    size_t b;
    for (b = 0; b < dir->batch; b++) {
        int16_t *hb = dir->h + b * hs;
        rne__q_matvec(w->rq, hb, hs, &p->r, 0, n, p->mr, p->shift_r, w->acc);
        rne__lstm_int_row(p, hs, coupled, wx + b * n, w->rq, dir->c + b * hs, hb);
    }
}

#ifndef RNE_NO_STATE_IO
void rne__lstm_int_cell_io(const rne_model_layer *l, int32_t *block, int16_t *val, size_t batch,
                           int to_value)
{
    const size_t dirs = (l->flags & RNE_LF_BIDIR) ? 2u : 1u, hs = l->hidden;
    size_t d, b, j;
    for (d = 0; d < dirs; d++) {
        const int32_t *q = (const int32_t *)l->data[RNE_T_Q] + d * (RNE__Q_SLOTS + 8 * hs) +
                           (to_value ? 19 : 17);
        for (b = 0; b < batch; b++) {
            int32_t *c = block + (d * batch + b) * hs;
            int16_t *v = val + (b * dirs + d) * hs;
            for (j = 0; j < hs; j++) {  /* sat16(sat32(r)) = sat16(r): one requantization */
                const int32_t r = rne__rq32(to_value ? c[j] : v[j], q[0], (unsigned)q[1]);
                if (to_value)
                    v[j] = rne__sat16(r);
                else
                    c[j] = r;
            }
        }
    }
}
#endif
