/*
 * ops.h - the graph ops of format version 2 (docs/graph.md): BINARY, CONCAT, TRANSPOSE, COPY,
 * GATHER, REDUCE and SLICE along any axis, f32 and integer (ops_f32.c, ops_int.c; the data
 * movement both share, in ops_move.c), and their load-time checks (ops_check.c). The executor
 * (model.c) calls them once per node over all the rows of a chunk; a kernel trusts everything
 * rne__check_op proved.
 *
 * Each op can be compiled out for small firmware: -DRNE_NO_GRAPH_OPS removes every op of this
 * file (rne__check_op then refuses such a node with RNE_ELAYER, field RNE_FF_OP, and the kernels
 * are empty); the executor's dispatch and rne__check_op honour it.
 *
 * The params: the kernels read the node's param[8] (docs/graph.md section 2) through
 * rne__opcall.param (the executor passes its copy of the node record's param[8]), the q slots
 * 0..7 from node->q, and GATHER its table from node->data[RNE_T_W]; GATHER's param[0] is V, the
 * table's rows (rne__check_op proves it equal to the table's shape[0]: the executor passes it to
 * rne__check_ids). A BINARY node with a constant operand (tensor role 0, in[1] absent, param[1]
 * = 1 if it is the left operand) gets it as in[1], with the tensor's shape in in_shape[1] /
 * in_ndim[1]: one row, the same for every row (rne__binop below).
 */
#ifndef RNE_OPS_H
#define RNE_OPS_H

#include "rne_internal.h"

/* One graph op applied to `rows` rows. Values are [rows][features], each row laid out row-major
 * in its per-step shape (dims beyond ndim are 1). Every input has `rows` rows (rne__check_op
 * proves that the inputs and the output are all LAST or all not). Inputs and output never
 * overlap. */
typedef struct rne__opcall {
    const rne_model_layer *node;    /* op, fmt, data[role], q[8] (integer: q slots) */
    const int32_t *param;           /* the node's param[8] */
    const void *in[4];              /* input rows, NULL where the node has no such input */
    uint32_t in_shape[4][4];        /* each input's per-step shape */
    uint32_t in_ndim[4];
    void *out;                      /* output rows */
    uint32_t out_shape[4];
    uint32_t out_ndim;
    size_t rows;                    /* steps * batch, or batch for LAST values */
} rne__opcall;

/* A per-step shape as 4 dims aligned right (numpy's broadcasting alignment): d[4 - ndim + i] =
 * shape[i], the leading dims 1. ndim is 1..4 (proved at load). */
static inline void rne__op_dims(const uint32_t *shape, uint32_t ndim, size_t d[4])
{
    uint32_t i;
    for (i = 0; i < 4; i++)
        d[i] = i < 4u - ndim ? 1u : (size_t)shape[i - (4u - ndim)];
}

/* Elements of a per-step shape (its features). */
static inline size_t rne__op_count(const uint32_t *shape, uint32_t ndim)
{
    size_t n = 1;
    uint32_t i;
    for (i = 0; i < ndim; i++)
        n *= shape[i];
    return n;
}


/* BINARY's two operands as the kernels walk them: a and b, their per-step shapes, elements per
 * row (fa, fb) and row strides in elements (ra, rb: 0 for a constant operand, the same row for
 * every row). A node with a constant (node->data[RNE_T_W] != NULL) has it in in[1] (the executor
 * passes the constant's data and shape there); param[1] = 1 makes it the left operand a. */
typedef struct rne__binop {
    const void *a, *b;
    const uint32_t *sa, *sb;
    uint32_t na, nb;
    size_t fa, fb, ra, rb;
} rne__binop;

static inline void rne__binop_of(const rne__opcall *k, rne__binop *o)
{
    const int konst = k->node->data[RNE_T_W] != NULL, left = konst && k->param[1] == 1;
    const unsigned ia = left ? 1u : 0u, ib = left ? 0u : 1u;
    o->a = k->in[ia];
    o->b = k->in[ib];
    o->sa = k->in_shape[ia];
    o->sb = k->in_shape[ib];
    o->na = k->in_ndim[ia];
    o->nb = k->in_ndim[ib];
    o->fa = rne__op_count(o->sa, o->na);
    o->fb = rne__op_count(o->sb, o->nb);
    o->ra = konst && left ? 0u : o->fa;
    o->rb = konst && !left ? 0u : o->fb;
}

/* f32 (values float; GATHER's ids int32) and integer (values int16, GATHER's ids int32, q
 * slots in node->q; docs/quantization.md "Graph ops" has every formula). */
void rne__op_f32(const rne__opcall *k);
void rne__op_int(const rne__opcall *k);

/* The data movement of SLICE, TRANSPOSE, COPY and GATHER, and CONCAT without requantization, on
 * elements of `esize` bytes (4: f32, 2: int16) (ops_move.c, integer-only). */
void rne__op_move(const rne__opcall *k, size_t esize);

/* The same-shape elementwise BINARY ADD / MUL, the one part with SIMD variants: rne__bin_f32
 * (vec.h) and rne__bin_s16 (qvec.h). */

/* rne_model_load's checks of a graph op's node (ops 7 and 9..14): params, the shapes of its
 * inputs and output (broadcasting, concat sizes, perm, slice bounds, reduce axes, gather table),
 * its tensors, and for an integer node every q slot its kernel relies on (docs/quantization.md
 * "Graph ops"). `vals` is the blob's value table; the caller has proved every index in n->in and
 * n->out to be a value (or RNE_NONE) and every value record valid (ndim 1..4, dims >= 1, dims
 * beyond ndim 1, features <= RNE_MAX_FEATURES), and set w->section and w->layer. RNE_OK, or a
 * refusal (RNE__AT(status, field)) with w->tensor / w->role / w->index set (ops_check.c lists
 * them). */
int rne__check_op(const rne__blobview *m, const rne_node *n, const rne_value *vals, rne_fault *w);

/* GATHER: RNE_OK if each of the n ids is in [0, vocab), else RNE_EINPUT (the executor calls it
 * on every row of ids before any node runs). */
int rne__check_ids(const int32_t *ids, size_t n, uint32_t vocab);

#endif /* RNE_OPS_H */
