/*
 * ops_move.c - the graph ops that only move elements (docs/graph.md section 2), for f32 (4-byte
 * elements) and int16 (2-byte) values alike: SLICE along any axis, TRANSPOSE, COPY, GATHER, and
 * CONCAT without requantization (f32; the integer CONCAT requantizes, ops_int.c). Integer-only:
 * no float type appears here. Every index is within the shapes rne__check_op proved.
 */
#include <string.h>

#include "ops.h"

#ifndef RNE_NO_GRAPH_OPS

/* n elements from src (stride `step` elements) to dst (contiguous). */
static void rne__move(uint8_t *dst, const uint8_t *src, size_t n, size_t step, size_t esize)
{
    size_t i;
    if (step == 1) {
        memcpy(dst, src, n * esize);
        return;
    }
    if (esize == 4)
        for (i = 0; i < n; i++)
            memcpy(dst + 4 * i, src + 4 * i * step, 4);
    else
        for (i = 0; i < n; i++)
            memcpy(dst + 2 * i, src + 2 * i * step, 2);
}

/* SLICE: y = x[.., start:stop:step, ..] along axis param[0] (y's size along it says how many). */
static void rne__slice(const rne__opcall *k, size_t esize)
{
    const uint32_t nd = k->in_ndim[0], axis = (uint32_t)k->param[0];
    const size_t start = (size_t)k->param[1], step = (size_t)k->param[3];
    const size_t fin = rne__op_count(k->in_shape[0], nd), fout = rne__op_count(k->out_shape, nd);
    const size_t dim = k->in_shape[0][axis], n = k->out_shape[axis];
    size_t outer = 1, inner = 1, r, o, i;
    uint32_t a;
    for (a = 0; a < axis; a++)
        outer *= k->in_shape[0][a];
    for (a = axis + 1; a < nd; a++)
        inner *= k->in_shape[0][a];
    for (r = 0; r < k->rows; r++) {
        const uint8_t *x = (const uint8_t *)k->in[0] + r * fin * esize;
        uint8_t *y = (uint8_t *)k->out + r * fout * esize;
        for (o = 0; o < outer; o++)
            for (i = 0; i < n; i++)
                memcpy(y + ((o * n + i) * inner) * esize,
                       x + ((o * dim + start + i * step) * inner) * esize, inner * esize);
    }
}

/* TRANSPOSE: y[i0..] = x[...] with y.shape[i] = x.shape[perm[i]]: the innermost y axis walks x
 * with that axis' stride. */
static void rne__transpose(const rne__opcall *k, size_t esize)
{
    const uint32_t nd = k->in_ndim[0];
    const size_t f = rne__op_count(k->in_shape[0], nd);
    size_t xs[4], st[4], d[4], r, i0, i1, i2;
    uint32_t a;
    xs[nd - 1] = 1;
    for (a = nd - 1; a > 0; a--)
        xs[a - 1] = xs[a] * k->in_shape[0][a];
    for (a = 0; a < 4; a++) {           /* y's axes aligned right, the stride of each in x */
        const uint32_t pad = 4u - nd;
        d[a] = a < pad ? 1u : (size_t)k->out_shape[a - pad];
        st[a] = a < pad ? 0u : xs[(uint32_t)k->param[a - pad]];
    }
    for (r = 0; r < k->rows; r++) {
        const uint8_t *x = (const uint8_t *)k->in[0] + r * f * esize;
        uint8_t *y = (uint8_t *)k->out + r * f * esize;
        for (i0 = 0; i0 < d[0]; i0++)
            for (i1 = 0; i1 < d[1]; i1++)
                for (i2 = 0; i2 < d[2]; i2++) {
                    rne__move(y, x + (i0 * st[0] + i1 * st[1] + i2 * st[2]) * esize, d[3], st[3],
                              esize);
                    y += d[3] * esize;
                }
    }
}

/* GATHER: y[i] = table[ids[i]] (E elements each); an id outside [0, V) (never reached: the
 * executor refuses them first, rne__check_ids) gives a zero row rather than a wild read. */
static void rne__gather(const rne__opcall *k, size_t esize)
{
    const size_t n = k->in_shape[0][0], e = k->out_shape[1], vocab = (size_t)k->param[0];
    const uint8_t *table = (const uint8_t *)k->node->data[RNE_T_W];
    const int32_t *ids = (const int32_t *)k->in[0];
    uint8_t *y = (uint8_t *)k->out;
    size_t i;
    for (i = 0; i < k->rows * n; i++, y += e * esize)
        if (ids[i] >= 0 && (size_t)ids[i] < vocab)
            memcpy(y, table + (size_t)ids[i] * e * esize, e * esize);
        else
            memset(y, 0, e * esize);
}

/* CONCAT without requantization: per row, per index before the axis, each input's block. */
static void rne__concat(const rne__opcall *k, size_t esize)
{
    const uint32_t nd = k->out_ndim, axis = (uint32_t)k->param[0];
    const size_t fout = rne__op_count(k->out_shape, nd);
    size_t outer = 1, inner = 1, block[4] = {0, 0, 0, 0}, fin[4] = {0, 0, 0, 0}, r, o;
    uint32_t a, j;
    for (a = 0; a < axis; a++)
        outer *= k->out_shape[a];
    for (a = axis + 1; a < nd; a++)
        inner *= k->out_shape[a];
    for (j = 0; j < 4 && k->in[j] != NULL; j++) {
        block[j] = (size_t)k->in_shape[j][axis] * inner;
        fin[j] = block[j] * outer;
    }
    for (r = 0; r < k->rows; r++) {
        uint8_t *y = (uint8_t *)k->out + r * fout * esize;
        for (o = 0; o < outer; o++)
            for (j = 0; j < 4 && k->in[j] != NULL; j++) {
                memcpy(y, (const uint8_t *)k->in[j] + (r * fin[j] + o * block[j]) * esize,
                       block[j] * esize);
                y += block[j] * esize;
            }
    }
}

void rne__op_move(const rne__opcall *k, size_t esize)
{
    switch (k->node->op) {
    case RNE_OP_SLICE: rne__slice(k, esize); break;
    case RNE_OP_TRANSPOSE: rne__transpose(k, esize); break;
    case RNE_OP_GATHER: rne__gather(k, esize); break;
    case RNE_OP_CONCAT: rne__concat(k, esize); break;
    case RNE_OP_COPY:
        memcpy(k->out, k->in[0], k->rows * rne__op_count(k->out_shape, k->out_ndim) * esize);
        break;
    default: break;
    }
}

#else

void rne__op_move(const rne__opcall *k, size_t esize)
{
    (void)k;
    (void)esize;
}

#endif /* RNE_NO_GRAPH_OPS */
