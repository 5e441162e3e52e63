/*
 * ops.h - the graph ops of format version 2 (docs/graph.md): BINARY, CONCAT, TRANSPOSE, COPY,
 * GATHER, REDUCE and SLICE along any axis, f32 and integer (ops_f32.c, ops_int.c), and their
 * load-time checks (ops_check.c). The executor (model.c) calls them once per node over all the
 * rows of a chunk; a kernel trusts everything rne__check_op proved.
 *
 * Each op can be compiled out for small firmware: -DRNE_NO_GRAPH_OPS removes every op of this
 * file (the loader then refuses such a node with RNE_ELAYER, field RNE_FF_OP); the executor's
 * dispatch and rne__check_op honour it.
 */
#ifndef RNE_OPS_H
#define RNE_OPS_H

#include "rne_internal.h"

/* One graph op applied to `rows` rows. Values are [rows][features], each row laid out row-major
 * in its per-step shape (dims beyond ndim are 1). Inputs and output never overlap. */
typedef struct rne__opcall {
    const rne_model_layer *node;    /* op, fmt, param[8], data[role], q[8] (integer: q slots) */
    const void *in[4];              /* input rows, NULL where the node has no such input */
    uint32_t in_shape[4][4];        /* each input's per-step shape */
    uint32_t in_ndim[4];
    void *out;                      /* output rows */
    uint32_t out_shape[4];
    uint32_t out_ndim;
    size_t rows;                    /* steps * batch, or batch for LAST values */
} rne__opcall;

/* f32 (values float; GATHER's ids int32) and integer (values int16, GATHER's ids int32, q
 * slots in node->q and the q tensor at node->data[RNE_T_Q]). */
void rne__op_f32(const rne__opcall *k);
void rne__op_int(const rne__opcall *k);

/* rne_model_load's checks of a graph op's node (ops 7 and 9..14): params, the shapes of its
 * inputs and output (broadcasting, concat sizes, perm, slice bounds, reduce axes, gather table),
 * its tensors, and for an integer node every q slot its kernel relies on (shift 1..62, no int64
 * overflow for int16 inputs). `vals` is the blob's value table. RNE_OK, or a refusal
 * (RNE__AT(status, field)) with *w's node/tensor/index set. */
int rne__check_op(const rne__blobview *m, const rne_node *n, const rne_value *vals, rne_fault *w);

/* GATHER: RNE_OK if every id of `rows` rows of `n` ids is in [0, vocab), else RNE_EINPUT. */
int rne__check_ids(const int32_t *ids, size_t n, uint32_t vocab);

#endif /* RNE_OPS_H */
