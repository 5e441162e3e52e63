/*
 * rne_internal.h - private declarations shared by the library's files (names rne__*).
 *
 * Layer kernels come per number format. A kernel reads its layer from rne_model's copy
 * (rne_model_layer: nothing from the blob's tables) and trusts everything rne_model_load
 * proved; its sizes arrive as size_t already checked against overflow by
 * rne_scratch_size/rne_state_size.
 * Per number format, one layer dispatch (layers_f32.c, layers_int.c), one sequence loop for the
 * recurrent layers (seq_f32.c, seq_int.c: directions x time x batch) and a step per cell
 * (lstm_f32.c ..., lstm_int.c ...): the cells only step. The integer formats (weights s16 or s8,
 * values and h int16) have their own files (*_int.c, qvec.h) and a case in model.c's dispatch.
 */
#ifndef RNE_INTERNAL_H
#define RNE_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "rnnedge.h"

/* The graph ops of csrc/ops.h (BINARY ... REDUCE, SLICE along any axis, the ACT kinds ABS ..
 * POW): 1 while their files (ops_f32.c, ops_int.c, ops_check.c, ops_move.c) are part of the
 * library; -DRNE_NO_GRAPH_OPS compiles them out and the loader refuses them (RNE_ELAYER, field
 * op or act). */
#ifndef RNE__GRAPH_OPS
#define RNE__GRAPH_OPS 1
#endif

/* Build configuration (docs/c-api.md, "Build configuration"; `rnnedge export-c` prints the set a
 * model needs): each macro compiles a family out of the library, so that firmware built for one
 * model links only what that model runs. rne_model_load refuses a node that needs a family that
 * was compiled out with RNE_ELAYER, field op (an op) or fmt (a number format), as it refuses an
 * unknown op: the checks of what stays built in are unchanged.
 *   RNE_NO_F32          the float format (integer-only firmware); field fmt
 *   RNE_NO_S16, RNE_NO_S8   an integer format (both: float-only firmware, RNE__NO_INT); fmt
 *   RNE_NO_LSTM, RNE_NO_GRU, RNE_NO_RNN, RNE_NO_LAYERNORM      that layer op; field op
 *   RNE_NO_GRAPH_OPS    the graph ops of ops.h (above); RNE_NO_CONV the convs of conv.h
 *   RNE_NO_STATE_IO     a recurrent node's state as values (h_init / c_init, Y_h / Y_c: the
 *                       explicit-state step functions); field in / out, index 1 or 2
 *   RNE_NO_INNER        a recurrent node over a per-step axis (RNE_LF_INNER); field flags
 *   RNE_NO_FAULT_NAMES  rne_strerror, rne_fault_section_name and rne_fault_field_name return
 *                       one short string for every code (the codes themselves stay) */

/* Thumb-1 (Cortex-M0, ARMv6-M) code size: GCC's -Os inlines a static function called once into
 * its caller, where the eight low registers spill around it, and a small helper (64-bit span and
 * size arithmetic, a fault setter) into each of its callers; kept out of line there the program is
 * smaller (docs/embedded.md, "Flash": each function measured alone and together; the loader's
 * helpers only, no step-path kernel but rne__lstm_int_row). Every other target compiles as
 * before. */
#if defined(__GNUC__) && defined(__thumb__) && !defined(__thumb2__)
#define RNE__THUMB1_OUTLINE __attribute__((noinline))
#else
#define RNE__THUMB1_OUTLINE
#endif

/* RNE__IS(op, K): op is RNE_OP_K and the build runs K: 0, a constant, when RNE_NO_K compiled K
 * out. For what runs after rne__check_node has refused an op compiled out (the loader's later
 * checks, the step path): there the test is exact, and the code for such an op folds away. */
#ifdef RNE_NO_DENSE
#define RNE__HAS_DENSE 0
#else
#define RNE__HAS_DENSE 1
#endif
#ifdef RNE_NO_ACT
#define RNE__HAS_ACT 0
#else
#define RNE__HAS_ACT 1
#endif
#ifdef RNE_NO_LSTM
#define RNE__HAS_LSTM 0
#else
#define RNE__HAS_LSTM 1
#endif
#ifdef RNE_NO_GRU
#define RNE__HAS_GRU 0
#else
#define RNE__HAS_GRU 1
#endif
#ifdef RNE_NO_RNN
#define RNE__HAS_RNN 0
#else
#define RNE__HAS_RNN 1
#endif
#ifdef RNE_NO_LAYERNORM
#define RNE__HAS_LAYERNORM 0
#else
#define RNE__HAS_LAYERNORM 1
#endif
#define RNE__IS(op, K) (RNE__HAS_##K && (op) == RNE_OP_##K)
#ifdef RNE_NO_INNER
#define RNE__HAS_INNER 0
#else
#define RNE__HAS_INNER 1
#endif
/* flags has RNE_LF_INNER and the build runs such nodes (0, a constant, under RNE_NO_INNER) */
#define RNE__INNER(flags) (RNE__HAS_INNER && ((flags) & RNE_LF_INNER) != 0)

#if defined(RNE_NO_S16) && defined(RNE_NO_S8)
#define RNE__NO_INT 1   /* no integer format: the integer step path is not referenced */
#endif

/* CRC-32 (zlib's) of n bytes. */
uint32_t rne__crc32(const uint8_t *p, size_t n);

/* Gates per cell (LSTM 4, GRU 3, RNN 1), 0 for a non-recurrent op or a cell the build compiled
 * out (RNE__IS: rne_model_load refuses such a node before anything asks). */
uint32_t rne__gates(uint32_t op);

/* Directions of a recurrent layer (2 if RNE_LF_BIDIR): of a loaded layer, of a blob record. */
static inline uint32_t rne__dirs(const rne_model_layer *l)
{
    return (l->flags & RNE_LF_BIDIR) ? 2u : 1u;
}

/* A node record as the per-op checks (blob.c, blob_q.c) read it: the record's fields, and the
 * kernel row widths and rows per value row that rne_model_layer will hold (in_features,
 * out_features, lead), derived from its values by the loader. */
typedef struct rne__layer {
    uint16_t op;
    uint16_t fmt;
    uint32_t in_features;
    uint32_t out_features;
    uint32_t lead;
    uint32_t hidden;
    uint32_t flags;
    float    clip;
    int32_t  param[8];
    uint8_t  act[2][3];
    uint8_t  pad[2];
    float    alpha[2][3];
    float    beta[2][3];
    int32_t  tensor[8];
    uint32_t reserved[2];
    uint8_t  cio;           /* an LSTM's cell state as a value: bit 0 c_init (in[2]), bit 1 Y_c
                               (out[2]); an integer one has their q slots 17..20 */
} rne__layer;

static inline uint32_t rne__rec_dirs(const rne__layer *l)
{
    return (l->flags & RNE_LF_BIDIR) ? 2u : 1u;
}

/* A loaded layer's f32 tensor by role, NULL if absent. */
static inline const float *rne__tensor_f32(const rne_model_layer *l, int role)
{
    return (const float *)l->data[role];
}

/* The blob as rne_model_load reads it (its records in place): the loader's checks only; the step
 * path never sees it. */
typedef struct rne__blobview {
    const uint8_t *blob;
    const rne_header *header;
    const rne_node *nodes;
    const rne_tensor *tensors;
    const rne_value *values;
} rne__blobview;

/* RNE_OK if the stream may run: initialized, and its model is still the one it was initialized
 * with (the same blob CRC, in_features and out_features); else RNE_EARG (NULL or uninitialized)
 * or RNE_EMODEL. O(1); the state and scratch sizes are checked where they are planned (model.c). */
int rne__stream_check(const rne_stream *stream);

/* Round a count of floats up to a multiple of 4 (16 bytes): every scratch and state block starts
 * 16-byte aligned. */
static inline size_t rne__round4(size_t n)
{
    return (n + 3u) & ~(size_t)3u;
}

/* One node applied to `steps` timesteps of `batch` rows (model.c passes batch * lead for a
 * row-wise node). Buffers never overlap.
 *   x      [steps][batch][in_features]
 *   y      [steps][batch][out_features]  ([1][batch][F] for TAKE_LAST)
 *   state  recurrent layers: h [D][batch][H], then (LSTM) c [D][batch][H] c_off bytes further;
 *          in: the state before the sequence, out: after it (a backward direction "ends" after
 *          step 0). NULL for the other ops.
 *   work   recurrent layers: the input projection of all steps * batch rows for one direction
 *          (G*H floats each), then, for GRU, a [batch][H] block at rne__round4(rows * 3H); an
 *          integer layer's blocks are in qvec.h (rne__work_int). Sized with overflow checks by
 *          model.c, so the kernels' index arithmetic cannot wrap. */
typedef struct rne__call {
    const rne_model_layer *layer;
    const void *x;
    void *y;
    void *state;
    size_t c_off;
    void *work;
    size_t steps;
    size_t batch;
} rne__call;

/* The f32 layers (layers_f32.c dispatches on op; model.c dispatches on fmt). */
void rne__layer_f32(const rne__call *k);

/* One direction of an f32 cell over a batch: what a step needs beside its gates. rne__seq_f32
 * fills it once per direction. */
typedef struct rne__dir_f32 {
    const rne_model_layer *layer;
    size_t d;               /* the direction: its row of act, alpha, beta */
    size_t batch;
    const float *r;         /* R_t [H][G*H] of this direction */
    const float *rb;        /* its Rb [G*H], NULL without a bias */
    const float *peep;      /* LSTM: its P [3H] (i, o, f), NULL without */
    float *h;               /* [batch][H]: in Ht-1, out Ht */
    float *c;               /* LSTM: [batch][H] cell state; NULL for GRU and RNN */
    float *tmp;             /* GRU: [batch][H] of scratch; NULL for LSTM and RNN */
    int rh;                 /* 1: g already holds R h over the columns of the step's first
                               product (all G*H; a GRU's z, r): rne__seq_f32 at one step */
} rne__dir_f32;

/* A cell's step at one time over the whole batch: g [batch][G*H] holds the rows' input
 * projections with the biases rne__seq_f32 put in them (all of Wb + Rb but a GRU's Rbh with
 * linear_before_reset); the step adds R h (unless dir->rh: already added, in the same order),
 * applies the gates and updates h (and c) in place; g is its to overwrite. Called once per time
 * step and direction, never per row. */
typedef void (*rne__step_f32)(const rne__dir_f32 *dir, float *g);

/* The direction x time x batch loop of an f32 recurrent layer (seq_f32.c): per direction, the
 * input projection of every step in one product, then `step` per time (backward for the reverse
 * direction), each row of h copied to y. A call of one step (rne_step) takes each row's bias,
 * input and recurrent products in one pass instead (rne__f32_gemv2_acc: the same sums in the same
 * order, so the same bits as a step of a longer call). */
void rne__seq_f32(const rne__call *k, rne__step_f32 step);

/* A recurrent node over a per-step axis (RNE_LF_INNER, docs/graph.md section 2): every L =
 * param[0] consecutive rows of k (model.c passes batch * lead, lead = L) are one sequence of L
 * elements, run from a zero state (both ways when bidirectional) by rne__seq_f32 with steps L
 * and a batch of 1; k->state is unused. Work: the zeroed state (h, then c, each
 * rne__inner_state(l) floats), then rne__seq_f32's work of L steps (seq_f32.c). */
void rne__inner_f32(const rne__call *k, rne__step_f32 step);

/* Floats (f32) or int32 words (integer) of an inner node's state block: h [D][H], or c. */
static inline size_t rne__inner_state(const rne_model_layer *l)
{
    return rne__round4((size_t)rne__dirs(l) * l->hidden);
}

/* The f32 steps (lstm_f32.c, gru_f32.c, rnn_f32.c). */
void rne__lstm_f32_step(const rne__dir_f32 *dir, float *g);
void rne__gru_f32_step(const rne__dir_f32 *dir, float *g);
void rne__rnn_f32_step(const rne__dir_f32 *dir, float *g);

/* The integer formats (fmt s16 / s8; every layer of an integer model has one): layers_int.c
 * dispatches on op; seq_int.c, lstm_int.c, gru_int.c, rnn_int.c and qvec.h hold the rest. x and
 * y are int16. */
void rne__layer_int(const rne__call *k);

/* An integer LSTM's cell state as a value (lstm_int.c; docs/quantization.md section 14): c_init's
 * rows (int16, [batch][D*H]) into the Q11.20 state block ([D][batch][H]), c = sat32(rshr(v * m,
 * shift)) by q slots 17, 18; or (to_value) the block into Y_c, y = sat16(rshr(c * m, shift)) by
 * slots 19, 20. */
void rne__lstm_int_cell_io(const rne_model_layer *l, int32_t *block, int16_t *val, size_t batch,
                           int to_value);

/* Bytes of work space an integer layer needs for `rows` = steps * batch rows (layers_int.c);
 * 0 and *ok = 0 on size_t overflow. */
size_t rne__work_int_bytes(const rne_model_layer *l, size_t rows, int *ok);

/* rne_model_load's checks of an integer layer (blob_q.c): its op and activations, tensor roles,
 * dtypes and shapes, and every q-tensor value the step path relies on; a fault is recorded in
 * *w and the return value (RNE__AT, rne__fail_t). */
int rne__check_layer_q(const rne__blobview *m, const rne__layer *l, rne_fault *w);

/* Where the loader stops (rne_fault, rnnedge.h). A refusal returns its status and field in one
 * int, RNE__AT(status, field) = status | field << 8, which rne_model_load_where splits once: one
 * constant per refusal site, cheap in a microcontroller's flash. The loader sets the section,
 * layer and tensor it is in; rne__fail_t (blob.c) records layer l's tensor of role `role` (index
 * l->tensor[role]; the caller sets w->index, the element or dimension, when there is one), and
 * a value field (RNE_FF_Q_SLOT and later) moves the section to DATA. */
#define RNE__AT(rc, field) ((int)(rc) | (int)(field) << 8)

int rne__fail_t(rne_fault *w, int at, const rne__layer *l, int role);

/* proj[r][j] = wb[j] + (j < nrb ? rb[j] : 0) + sum_p x[r][p] wt[p][j] for r < rows, j < n: the
 * input projection of a cell (wb, rb may be NULL). Shared by the f32 cells. rne__bias_f32 is
 * its first part, one row of wb[j] + (j < nrb ? rb[j] : 0) (an absent one as 0.0f). */
void rne__project_f32(float *proj, const float *x, size_t rows, size_t in, const float *wt,
                      size_t n, const float *wb, const float *rb, size_t nrb);
void rne__bias_f32(float *proj, size_t n, const float *wb, const float *rb, size_t nrb);

#endif /* RNE_INTERNAL_H */
