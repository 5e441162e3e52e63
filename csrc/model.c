/*
 * model.c - the graph executor (docs/graph.md section 4): state and scratch sizes, streams,
 * rne_step and rne_run.
 *
 * rne_run runs the node list, in table order, over chunks of timesteps: each node processes all
 * the chunk's rows at once (a recurrent node projects them in one matrix product, then runs its
 * recurrence); rne_step is a chunk of one step. A streamable model without STATE values and
 * without a TAKE_LAST that reads the first step runs in the largest chunk whose scratch fits
 * the caller's buffer; a model with STATE values runs one step at a time (the updates are copied
 * into the states after every step, in value order); the others in one chunk of all steps.
 *
 * Values: the INPUT is the caller's x, the OUTPUT the caller's y; a TEMP value of the chunk's
 * rows = steps * batch rows (batch rows for a LAST value) starts at arena + offset * rows, a
 * STATE value at its block of the state buffer.
 * Scratch for `steps` x `batch` (bytes, 16-byte aligned blocks):
 *   arena           arena_row * rows (the converter's plan, proved by rne_model_load)
 *   work            max over nodes of their work space: f32 recurrent nodes rne__rnn_work,
 *                   integer nodes rne__work_int_bytes (layers_int.c), convs rne__conv_work_bytes
 * State: per recurrent node in order, h [D][batch][H] then (LSTM) c [D][batch][H], each block
 * rounded up to 16 bytes (a CONV node with kt > 1 has its frame cache [(kt-1) dt][batch][C_in W]
 * in node order among them, zeros at reset), elements in the node's storage type (f32: float; integer: h int16,
 * c int32); then the STATE values, value v at offset(v) * batch, [batch][features]; then, for a
 * model with a node that skips steps (node reserved[0] > 0, docs/graph.md section 6), the
 * stream's step counter (a uint64_t in a 16-byte block, 0 at reset).
 * Skips: a node whose skip D is larger than the stream's step count t keeps no state from steps
 * t < D and writes zeros for them (a recurrent node or a conv runs on the rows from step D on;
 * any other node runs on every row and its output's rows before step D are zeroed).
 * Every size is computed with overflow checks, so the kernels' index arithmetic cannot wrap.
 * Everything here reads the node and value copies in rne_model (rne_model_load made them), never
 * the blob's records: a blob changed after load cannot change a size. A stream remembers its
 * model's identity (blob CRC and address, feature, node and value counts, arena row), the
 * buffer sizes it was given and the layout of one step at its batch (rne__scratch_plan, made
 * once by rne_stream_init: a step does no planning); rne__stream_check refuses to run it
 * (RNE_EMODEL) once the model has been re-loaded with another blob.
 */
#include <string.h>

#include "conv.h"
#include "ops.h"
#include "rne_internal.h"

/* a * b + c without wrapping; 0 (and *ok = 0) on overflow */
static size_t rne__mad(size_t a, size_t b, size_t c, int *ok)
{
    if (a != 0 && b > ((size_t)-1 - c) / a) {
        *ok = 0;
        return 0;
    }
    return a * b + c;
}

#ifndef RNE_NO_F32                      /* for rne__rnn_work */
/* rne__round4(n) without wrapping */
static size_t rne__round4_checked(size_t n, int *ok)
{
    if (n > (size_t)-1 - 3u) {
        *ok = 0;
        return 0;
    }
    return rne__round4(n);
}
#endif

/* Bytes of one h (c: 1) state element: the layer's number format decides (f32: float; integer:
 * h int16, c int32). */
static size_t rne__state_elem(const rne_model_layer *l, int c)
{
    if (l->fmt == RNE_FMT_F32)
        return sizeof(float);
    return c ? sizeof(int32_t) : sizeof(int16_t);
}

/* The state block of a recurrent layer (a gate count, not a conv) in bytes: h, then (LSTM) c at
 * *c_off, each rounded up to 16 bytes. Unchecked: for a batch whose rne__state_bytes the caller
 * has proved to fit (rne__step_plain: rne_stream_init's rne_state_size). */
static size_t rne__cell_block(const rne_model_layer *l, size_t batch, size_t *c_off)
{
    const size_t n = rne__dirs(l) * batch * l->hidden;
    const size_t hblock = (n * rne__state_elem(l, 0) + 15u) & ~(size_t)15;
    *c_off = l->op == RNE_OP_LSTM ? hblock : 0u;
    return l->op == RNE_OP_LSTM ? hblock + ((n * rne__state_elem(l, 1) + 15u) & ~(size_t)15)
                                : hblock;
}

/* The state block of one layer in bytes: h, then (LSTM) c at *c_off, each rounded up to 16
 * bytes (rne__cell_block, once its sizes are proved to fit); 0 for a stateless layer. */
static size_t rne__state_bytes(const rne_model_layer *l, size_t batch, size_t *c_off, int *ok)
{
    size_t n;
    *c_off = 0;
#ifndef RNE_NO_CONV
    if (l->op == RNE_OP_CONV)   /* its frame cache [(kt-1) dt][batch][in_features], 0 if kt 1 */
        return rne__mad(rne__conv_cache_bytes(l, l->in_features, 1), batch, 15, ok) &
               ~(size_t)15;
#endif
    if (rne__gates(l->op) == 0 || RNE__INNER(l->flags))  /* inner: state in work */
        return 0;
    /* the c block's elements are the widest: two of them rounded up fit, then so does the sum */
    n = rne__mad(rne__mad(rne__dirs(l), batch, 0, ok), l->hidden, 0, ok);
    (void)rne__mad(rne__mad(n, rne__state_elem(l, 1), 15, ok), 2, 0, ok);
    return *ok ? rne__cell_block(l, batch, c_off) : 0u;
}

/* Bytes of one element of a value (f32, s16, s32). */
static size_t rne__elem(uint8_t dtype)
{
    return dtype == RNE_DT_S16 ? sizeof(int16_t) : sizeof(float);
}

/* Bytes of one value element passed between nodes: float, or int16 in an integer model
 * (rne_model_load proved that every value has the OUTPUT's family of dtypes). */
static size_t rne__value_size(const rne_model *m)
{
    return rne__elem(m->values[m->output].dtype);
}

#ifndef RNE_NO_F32
/* Floats of rne__seq_f32's work space (layout in rne_internal.h, rne__call.work): the input
 * projection of steps * batch rows, and for GRU a [batch][H] block */
static size_t rne__rnn_work_seq(const rne_model_layer *l, size_t steps, size_t batch, int *ok)
{
    const size_t gh = (size_t)rne__gates(l->op) * l->hidden;
    size_t n = rne__round4_checked(rne__mad(rne__mad(steps, batch, 0, ok), gh, 0, ok), ok);
    if (l->op == RNE_OP_GRU)
        n = rne__mad(1, n, rne__round4_checked(rne__mad(batch, l->hidden, 0, ok), ok), ok);
    return n;
}

/* Floats of work space for a recurrent layer; an inner one (rne__inner_f32): its h and c
 * blocks, then rne__seq_f32's of L steps of one row */
static size_t rne__rnn_work(const rne_model_layer *l, size_t steps, size_t batch, int *ok)
{
    if (RNE__INNER(l->flags))
        return rne__mad(2, rne__inner_state(l), rne__rnn_work_seq(l, (size_t)l->param[0], 1, ok),
                        ok);
    return rne__rnn_work_seq(l, steps, batch, ok);
}
#endif

static int rne__model_ok(const rne_model *m)
{
    return m != NULL && m->blob != NULL && m->n_nodes >= 1 && m->n_nodes <= RNE_MAX_NODES &&
           m->n_values <= RNE_MAX_VALUES && m->input < m->n_values && m->output < m->n_values;
}

/* Bytes of the recurrent nodes' blocks (before the STATE values' blocks). */
static size_t rne__cell_state(const rne_model *m, size_t batch, int *ok)
{
    size_t total = 0, c_off;
    uint32_t i;
    for (i = 0; i < m->n_nodes; i++)
        total = rne__mad(1, total, rne__state_bytes(&m->nodes[i], batch, &c_off, ok), ok);
    return total;
}

/* Bytes of the STATE values' blocks: batch * the largest end of one (offsets 16-aligned). */
static size_t rne__value_state(const rne_model *m, size_t batch, int *ok)
{
    size_t end = 0;
    uint32_t i;
    for (i = 0; i < m->n_values; i++) {
        const rne_model_value *v = &m->values[i];
        if (v->kind == RNE_V_STATE) {
            const size_t e = rne__mad(v->features, rne__elem(v->dtype), 15u + v->offset, ok) &
                             ~(size_t)15;
            end = e > end ? e : end;
        }
    }
    return rne__mad(end, batch, 0, ok);
}

/* Bytes of the step counter block: 16 if a node skips steps (rne_model_layer.skip > 0), else 0. */
static size_t rne__counter_bytes(const rne_model *m)
{
#ifdef RNE_NO_CONV
    (void)m;                            /* no skips without convs (rne_model_load refuses them) */
    return 0u;
#else
    return m->skips != 0 ? 16u : 0u;
#endif
}

size_t rne_state_size(const rne_model *model, uint32_t batch)
{
    size_t total;
    int ok = 1;
    if (!rne__model_ok(model) || batch == 0)
        return 0;
    total = rne__mad(1, rne__cell_state(model, batch, &ok), rne__value_state(model, batch, &ok),
                     &ok);
    total = rne__mad(1, total, rne__counter_bytes(model), &ok);
    /* at least one 16-byte block, so that 0 always means an error */
    return ok ? (total == 0 ? 16u : total) : 0;
}

size_t rne_state_offset(const rne_model *model, uint32_t node, uint32_t batch)
{
    size_t off = 0, c_off;
    uint32_t i;
    int ok = 1;
    if (!rne__model_ok(model) || batch == 0 || node >= model->n_nodes ||
        rne__state_bytes(&model->nodes[node], batch, &c_off, &ok) == 0)
        return (size_t)-1;              /* no state: not a recurrent node nor a conv with a cache */
    for (i = 0; i < node; i++)
        off = rne__mad(1, off, rne__state_bytes(&model->nodes[i], batch, &c_off, &ok), &ok);
    return ok ? off : (size_t)-1;
}

size_t rne_state_c_offset(const rne_model *model, uint32_t node, uint32_t batch)
{
    size_t off = rne_state_offset(model, node, batch), c_off;
    int ok = 1;
    if (off == (size_t)-1 || model->nodes[node].op != RNE_OP_LSTM)
        return (size_t)-1;
    (void)rne__state_bytes(&model->nodes[node], batch, &c_off, &ok);
    return ok ? rne__mad(1, off, c_off, &ok) : (size_t)-1;
}

size_t rne_value_state_offset(const rne_model *model, uint32_t value, uint32_t batch)
{
    size_t off;
    int ok = 1;
    if (!rne__model_ok(model) || batch == 0 || value >= model->n_values ||
        model->values[value].kind != RNE_V_STATE)
        return (size_t)-1;
    off = rne__mad(model->values[value].offset, batch, rne__cell_state(model, batch, &ok), &ok);
    return ok ? off : (size_t)-1;
}

/* Scratch layout in bytes: the arena (arena_row * rows), then the work space of the node that
 * needs the most; total and state: the bytes of scratch and of state (rne_scratch_size,
 * rne_state_size). */
typedef struct rne__scratch_plan {
    size_t arena, work, total, state, cells, counter;
} rne__scratch_plan;

static int rne__plan(const rne_model *m, size_t batch, size_t steps, rne__scratch_plan *p)
{
    uint32_t i;
    int ok = 1;
    const size_t rows = rne__mad(steps, batch, 0, &ok);
    p->arena = rne__mad(rows, m->arena_row, 0, &ok);       /* arena_row: a multiple of 16 */
    p->work = 0;
    for (i = 0; i < m->n_nodes; i++) {
        const rne_model_layer *l = &m->nodes[i];
        size_t w = 0;
#ifndef RNE_NO_CONV
        if (l->op == RNE_OP_CONV || l->op == RNE_OP_CONV_T) {
            const rne_model_value *x = &m->values[l->in[0]], *y = &m->values[l->out[0]];
            w = rne__conv_work_bytes(l, x->shape[0], x->ndim == 2 ? x->shape[1] : 1u,
                                     y->shape[0], y->ndim == 2 ? y->shape[1] : 1u);
        } else
#endif
#ifndef RNE__NO_INT
        if (l->fmt != RNE_FMT_F32)
            w = rne__work_int_bytes(l, rne__mad(rows, l->lead, 0, &ok), &ok);
#ifndef RNE_NO_F32
        else
#endif
#endif
#ifndef RNE_NO_F32                      /* else every node is integer (rne_model_load) */
        if (rne__gates(l->op) != 0)
            w = rne__mad(rne__rnn_work(l, steps, batch, &ok), sizeof(float), 0, &ok);
#endif
        w = rne__mad(1, w, 15, &ok) & ~(size_t)15;
        p->work = w > p->work ? w : p->work;
    }
    p->total = rne__mad(1, p->arena, p->work, &ok);
    p->total = p->total == 0 ? 16u : p->total;         /* never 0: 0 means an error */
    p->cells = rne__cell_state(m, batch, &ok);
    p->counter = rne__mad(1, p->cells, rne__value_state(m, batch, &ok), &ok);
    p->state = rne__mad(1, p->counter, rne__counter_bytes(m), &ok);
    p->state = p->state == 0 ? 16u : p->state;        /* as rne_state_size */
    return ok;
}

/* The plan of one step in rne_stream.step_plan, and back (slot 5, the plain path, is
 * rne__plain's). */
static void rne__plan_put(size_t *slot, const rne__scratch_plan *p)
{
    slot[0] = p->arena;
    slot[1] = p->total;
    slot[2] = p->state;
    slot[3] = p->cells;
    slot[4] = p->counter;
}

static void rne__plan_get(const size_t *slot, rne__scratch_plan *p)
{
    p->arena = slot[0];
    p->total = slot[1];
    p->state = slot[2];
    p->cells = slot[3];
    p->counter = slot[4];
    p->work = slot[1] - slot[0];
}

/* 1 if the model has a TAKE_LAST node (rne_run_end with an end before the last step then runs
 * in one chunk: the step before the end must be in it). */
static int rne__has_take_last(const rne_model *m)
{
    uint32_t i;
    for (i = 0; i < m->n_nodes; i++)
        if (m->nodes[i].op == RNE_OP_TAKE_LAST)
            return 1;
    return 0;
}

/* 1 if rne_run may split a call into chunks of steps (docs/graph.md section 4): the model reads
 * the sequence forwards, keeps no STATE values (those run one step at a time), and no TAKE_LAST
 * takes features from the first step (split < F). */
static int rne__chunkable(const rne_model *m)
{
    uint32_t i;
    if (!m->streamable || m->explicit_state)
        return 0;
    for (i = 0; i < m->n_nodes; i++)
        if (m->nodes[i].op == RNE_OP_TAKE_LAST &&
            (uint32_t)m->nodes[i].param[0] != m->nodes[i].in_features)
            return 0;
    return 1;
}

#if RNE__GRAPH_OPS && !defined(RNE_NO_GRAPH_OPS)
/* 1 if node l runs on a graph-op kernel (csrc/ops.h): ops 9..14, SLICE off the last axis or with
 * a step (the loader routed the same nodes to rne__check_op). */
static int rne__graph_op(const rne_model *m, const rne_model_layer *l)
{
    if (l->op == RNE_OP_SLICE)
        return l->param[0] != (int32_t)m->values[l->in[0]].ndim - 1 || l->param[3] != 1;
    return l->op >= RNE_OP_BINARY && l->op <= RNE_OP_REDUCE;
}
#endif

/* 1 if a step of the model may take the plain path (rne__step_plain): a chain of nodes, each
 * reading the value before it alone (the first the INPUT, the last writing the OUTPUT; a graph
 * op's constant operand is no value), none skipping steps or taking or giving its state as
 * values, no LAST value, no STATE value, no ids to check. Such a step is rne__nodes' with nothing
 * of its skips, ends, state values and chunks to decide: the same kernels (layers, convs with
 * their frame caches, graph ops) on the same buffers, so the same bits. */
static int rne__plain(const rne_model *m)
{
    uint32_t i, j, prev = m->input;
    if (!m->streamable || m->explicit_state || m->updates != 0 || m->many_to_one ||
        rne__counter_bytes(m) != 0 || m->checks_ids)
        return 0;
    for (i = 0; i < m->n_nodes; i++) {
        const rne_model_layer *l = &m->nodes[i];
        if (l->op == RNE_OP_TAKE_LAST || l->skip != 0 || l->in[0] != prev ||
            (m->values[l->in[0]].flags & RNE_VF_LAST) != 0 ||
            (m->values[l->out[0]].flags & RNE_VF_LAST) != 0)
            return 0;
        for (j = 1; j < 4; j++)
            if (l->in[j] != RNE_NONE || l->out[j] != RNE_NONE)
                return 0;
        prev = l->out[0];
    }
    return prev == m->output;
}

size_t rne_scratch_size(const rne_model *model, uint32_t batch, uint32_t steps)
{
    rne__scratch_plan p;
    if (!rne__model_ok(model) || batch == 0)
        return 0;
    /* a model with STATE values runs one step at a time, whatever the call's steps */
    if (!rne__plan(model, batch, steps == 0 || model->explicit_state ? 1u : steps, &p))
        return 0;
    return p.total;
}

static int rne__aligned(const void *p, size_t a)
{
    return ((uintptr_t)p % a) == 0;
}

int rne_stream_init(rne_stream *stream, const rne_model *model, uint32_t batch,
                    void *state, size_t state_size, void *scratch, size_t scratch_size)
{
    size_t need_state, need_scratch;
    if (stream == NULL || !rne__model_ok(model) || batch == 0)
        return RNE_EARG;
    need_state = rne_state_size(model, batch);
    need_scratch = rne_scratch_size(model, batch, 1);
    if (need_state == 0 || need_scratch == 0)
        return RNE_EARG;                              /* batch too large to address */
    if (state == NULL || scratch == NULL || !rne__aligned(state, 16) ||
        !rne__aligned(scratch, 16) || state_size < need_state || scratch_size < need_scratch)
        return RNE_ESIZE;
    stream->model = model;
    stream->state = state;
    stream->scratch = scratch;
    stream->state_size = state_size;
    stream->scratch_size = scratch_size;
    stream->batch = batch;
    stream->model_crc = model->crc;
    stream->model_in = model->in_features;
    stream->model_out = model->out_features;
    stream->model_blob = model->blob;
    stream->model_nodes = model->n_nodes;
    stream->model_values = model->n_values;
    stream->model_arena_row = model->arena_row;
    {
        rne__scratch_plan p;
        if (!rne__plan(model, batch, 1, &p))
            return RNE_EARG;                          /* not reached: sized above */
        rne__plan_put(stream->step_plan, &p);
        stream->step_plan[5] = (size_t)rne__plain(model);
    }
    return rne_stream_reset(stream);
}

/* O(1): the step path checks the state and scratch sizes as it plans (rne__pipeline), so that a
 * blob with the same CRC but other sizes (a collision, or a crafted blob) cannot make a step
 * overrun the stream's buffers either; the caller's x and y were sized for the features. */
int rne__stream_check(const rne_stream *stream)
{
    const rne_model *m;
    if (stream == NULL || stream->model == NULL || stream->state == NULL ||
        stream->scratch == NULL || stream->batch == 0)
        return RNE_EARG;
    m = stream->model;
    if (!rne__model_ok(m) || m->crc != stream->model_crc || m->in_features != stream->model_in ||
        m->out_features != stream->model_out || m->blob != stream->model_blob ||
        m->n_nodes != stream->model_nodes || m->n_values != stream->model_values ||
        m->arena_row != stream->model_arena_row)
        return RNE_EMODEL;
    return RNE_OK;
}

/* Fill [D][batch][H] elements of `elem` bytes from a [D][H] tensor (broadcast over the batch)
 * or with zeros. */
static void rne__fill_state(uint8_t *dst, const uint8_t *init, size_t d, size_t batch, size_t h,
                            size_t elem)
{
    const size_t row = h * elem;
    size_t i, b;
    for (i = 0; i < d; i++)
        for (b = 0; b < batch; b++) {
            if (init != NULL)
                memcpy(dst + (i * batch + b) * row, init + i * row, row);
            else
                memset(dst + (i * batch + b) * row, 0, row);
        }
}

int rne_stream_reset(rne_stream *stream)
{
    const rne_model *m;
    uint8_t *state;
    size_t base;
    uint32_t i;
    int rc, ok = 1;
    if ((rc = rne__stream_check(stream)) != RNE_OK)
        return rc;
    m = stream->model;
    if (rne_state_size(m, stream->batch) > stream->state_size)
        return RNE_EMODEL;
    state = (uint8_t *)stream->state;
    for (i = 0; i < m->n_nodes; i++) {
        const rne_model_layer *l = &m->nodes[i];
        size_t c_off;
        const size_t n = rne__state_bytes(l, stream->batch, &c_off, &ok);
        if (n == 0)
            continue;
#ifndef RNE_NO_CONV
        if (l->op == RNE_OP_CONV) {     /* a conv's frame cache: zeros */
            memset(state, 0, n);
            state += n;
            continue;
        }
#endif
        /* H0 and C0 have the state's element types (proved by rne_model_load) */
        rne__fill_state(state, (const uint8_t *)l->data[RNE_T_H0], rne__dirs(l), stream->batch,
                        l->hidden, rne__state_elem(l, 0));
        if (l->op == RNE_OP_LSTM)
            rne__fill_state(state + c_off, (const uint8_t *)l->data[RNE_T_C0], rne__dirs(l),
                            stream->batch, l->hidden, rne__state_elem(l, 1));
        state += n;
    }
    base = (size_t)(state - (uint8_t *)stream->state);
    for (i = 0; i < m->n_values; i++) {
        const rne_model_value *v = &m->values[i];
        if (v->kind == RNE_V_STATE)         /* [batch][features] from init [features], or 0 */
            rne__fill_state((uint8_t *)stream->state + base + (size_t)v->offset * stream->batch,
                            (const uint8_t *)v->init, 1, stream->batch, v->features,
                            rne__elem(v->dtype));
    }
    if (rne__counter_bytes(m) != 0)     /* the step counter after the STATE values: 0 */
        memset((uint8_t *)stream->state + base + rne__value_state(m, stream->batch, &ok), 0, 16);
    return RNE_OK;
}

/* Where one chunk's values live: the caller's x and y, the arena, the state. */
typedef struct rne__chunk {
    const void *x;
    void *y;
    uint8_t *arena;
    uint8_t *state;             /* the STATE values' blocks (after the recurrent nodes') */
    size_t rows;                /* steps * batch */
    size_t batch;
} rne__chunk;

static void *rne__value_ptr(const rne_model *m, uint32_t i, const rne__chunk *c)
{
    const rne_model_value *v = &m->values[i];
    switch (v->kind) {
    case RNE_V_INPUT: return (void *)(uintptr_t)c->x;      /* read only: never written */
    case RNE_V_OUTPUT: return c->y;
    case RNE_V_STATE: return c->state + (size_t)v->offset * c->batch;
    default: return c->arena + (size_t)v->offset * c->rows;
    }
}

#ifndef RNE_NO_STATE_IO
/* A recurrent node's h_init / c_init: the first row of the chunk of value `v` ([D*H] per batch
 * row) into its state block [D][batch][H]; Y_h / Y_c (to = 1): the block into the value. */
static void rne__state_io(uint8_t *block, uint8_t *val, size_t dirs, size_t batch, size_t h,
                          size_t elem, int to_value)
{
    const size_t row = h * elem;
    size_t d, b;
    for (d = 0; d < dirs; d++)
        for (b = 0; b < batch; b++) {
            uint8_t *s = block + (d * batch + b) * row, *v = val + (b * dirs + d) * row;
            if (to_value)
                memcpy(v, s, row);
            else
                memcpy(s, v, row);
        }
}

/* An LSTM's c_init (Y_c: to_value = 1) as rne__state_io moves h: a float cell state is the
 * value's floats; an integer one (Q11.20) is requantized to and from the value's int16. */
static void rne__cell_io(const rne_model_layer *l, uint8_t *block, void *val, size_t dirs,
                         size_t batch, int to_value)
{
#ifndef RNE__NO_INT
    if (l->fmt != RNE_FMT_F32) {
        rne__lstm_int_cell_io(l, (int32_t *)(void *)block, (int16_t *)val, batch, to_value);
        return;
    }
#endif
    rne__state_io(block, (uint8_t *)val, dirs, batch, l->hidden, sizeof(float), to_value);
}
#endif

/* Bytes of one step of value v for `batch` streams (its rows of one timestep). */
static size_t rne__row_bytes(const rne_model_value *v, size_t batch)
{
    return (size_t)v->features * rne__elem(v->dtype) * batch;
}

/* The skip (docs/graph.md section 6): zeros in the first `lo` steps of node l's output (not of
 * a LAST value: one row per call, computed from inputs that hold the zeros). */
static void rne__zero_skipped(const rne_model *m, const rne_model_layer *l, const rne__chunk *c,
                              size_t lo)
{
    const rne_model_value *y = &m->values[l->out[0]];
    if (lo != 0 && (y->flags & RNE_VF_LAST) == 0)
        memset(rne__value_ptr(m, l->out[0], c), 0, lo * rne__row_bytes(y, c->batch));
}

/* Zeros in steps hi .. steps - 1 of value v's rows in the chunk (not of a LAST value). */
static void rne__zero_from(const rne_model *m, uint32_t v, const rne__chunk *c, size_t hi,
                           size_t steps)
{
    const rne_model_value *x = &m->values[v];
    if (hi < steps && (x->flags & RNE_VF_LAST) == 0)
        memset((uint8_t *)rne__value_ptr(m, v, c) + hi * rne__row_bytes(x, c->batch), 0,
               (steps - hi) * rne__row_bytes(x, c->batch));
}

#ifndef RNE_NO_CONV
/* A conv node (csrc/conv.h) over the chunk's rows from step lo on (the steps before are
 * skipped: not read, not kept in the cache); cache: its frame cache in the state buffer
 * (NULL when kt is 1). */
static void rne__run_conv(const rne_model *m, const rne_model_layer *l, const rne__chunk *c,
                          size_t steps, size_t lo, void *cache, void *work)
{
    const rne_model_value *x = &m->values[l->in[0]], *y = &m->values[l->out[0]];
    rne__convcall k;
    k.node = l;
    k.param = l->param;
    k.x = (const uint8_t *)rne__value_ptr(m, l->in[0], c) + lo * rne__row_bytes(x, c->batch);
    k.y = (uint8_t *)rne__value_ptr(m, l->out[0], c) + lo * rne__row_bytes(y, c->batch);
    k.cache = cache;
    k.work = work;
    k.c_in = x->shape[0];
    k.w_in = x->ndim == 2 ? x->shape[1] : 1u;
    k.c_out = y->shape[0];
    k.w_out = y->ndim == 2 ? y->shape[1] : 1u;
    k.steps = (x->flags & RNE_VF_LAST) != 0 ? 1u : steps - lo;
    k.batch = c->batch;
    if (k.steps == 0)
        return;                         /* every row skipped: the caller zeroed y */
#if !defined(RNE_NO_F32) && !defined(RNE__NO_INT)
    if (l->fmt == RNE_FMT_F32)
        rne__conv_f32(&k);
    else
        rne__conv_int(&k);
#elif !defined(RNE_NO_F32)
    rne__conv_f32(&k);                   /* every node is f32 (rne_internal.h) */
#elif !defined(RNE__NO_INT)
    rne__conv_int(&k);                   /* every node is integer */
#else
    (void)k;                            /* no number format built in: every node refused */
#endif
}
#endif

#if RNE__GRAPH_OPS && !defined(RNE_NO_GRAPH_OPS)
/* A graph op over the chunk's rows of its values. */
static void rne__run_op(const rne_model *m, const rne_model_layer *l, const rne__chunk *c)
{
    rne__opcall k;
    const rne_model_value *y = &m->values[l->out[0]];
    uint32_t i;
    memset(&k, 0, sizeof k);
    k.node = l;
    k.param = l->param;
    for (i = 0; i < 4; i++)
        if (l->in[i] != RNE_NONE) {
            const rne_model_value *v = &m->values[l->in[i]];
            k.in[i] = rne__value_ptr(m, l->in[i], c);
            memcpy(k.in_shape[i], v->shape, sizeof v->shape);
            k.in_ndim[i] = v->ndim;
        }
    if (l->op == RNE_OP_BINARY && l->in[1] == RNE_NONE && l->data[RNE_T_W] != NULL) {
        k.in[1] = l->data[RNE_T_W];     /* a constant operand: one row for every row (ops.h) */
        memcpy(k.in_shape[1], l->wshape, sizeof l->wshape);
        k.in_ndim[1] = l->wndim;
    }
    k.out = rne__value_ptr(m, l->out[0], c);
    memcpy(k.out_shape, y->shape, sizeof y->shape);
    k.out_ndim = y->ndim;
    k.rows = (y->flags & RNE_VF_LAST) != 0 ? c->batch : c->rows;
#if !defined(RNE_NO_F32) && !defined(RNE__NO_INT)
    if (l->fmt == RNE_FMT_F32)
        rne__op_f32(&k);
    else
        rne__op_int(&k);
#elif !defined(RNE_NO_F32)
    rne__op_f32(&k);                   /* every node is f32 (rne_internal.h) */
#elif !defined(RNE__NO_INT)
    rne__op_int(&k);                   /* every node is integer */
#else
    (void)k;                            /* no number format built in: every node refused */
#endif
}
#endif

/* A node that rne__layer_f32 / rne__layer_int runs, by its number format. */
static void rne__run_layer(const rne__call *k)
{
    switch (k->layer->fmt) {
#ifndef RNE_NO_F32
    case RNE_FMT_F32:
        rne__layer_f32(k);
        break;
#endif
#ifndef RNE__NO_INT
    case RNE_FMT_S16:
    case RNE_FMT_S8:
        rne__layer_int(k);
        break;
#endif
    default:    /* refused by rne_model_load */
        break;
    }
}

/* Run every node over one chunk of `steps` timesteps, the chunk's first at stream step t0.
 * end (rne_run_end; UINT64_MAX: none): the stream step where the real input ends; a node whose
 * input has delay D sees its input end at step end + D (docs/graph.md section 6): a conv reads
 * zeros from there on (its input's rows are zeroed in place: every other reader of that value
 * has the same delay and reads none of those rows but as zeros, or computes rows that are past
 * the end of their own readers' inputs too; the INPUT's rows there are the caller's zeros), a
 * recurrent node stops before it (zeros after, no state kept), TAKE_LAST takes the step before. */
static void rne__nodes(const rne_stream *s, const rne__chunk *c, size_t steps, void *work,
                       uint8_t *cells, uint64_t t0, uint64_t end)
{
    const rne_model *m = s->model;
    uint8_t *state = cells;
    uint32_t i;
    for (i = 0; i < m->n_nodes; i++) {
        const rne_model_layer *l = &m->nodes[i];
        const int last_in = (m->values[l->in[0]].flags & RNE_VF_LAST) != 0;
        /* the steps of this chunk the node skips: those before step reserved[0] */
#ifdef RNE_NO_CONV
        const size_t lo = 0u;           /* no skips without convs (rne_model_load refuses them) */
        (void)t0;
#else
        const uint64_t d = l->skip;
        const size_t lo = last_in || d <= t0 ? 0u : (d - t0 < steps ? (size_t)(d - t0) : steps);
#endif
        /* the steps of this chunk past the node's input's end: from step end + skip on */
        const uint64_t e = end == UINT64_MAX || end > UINT64_MAX - l->skip ? UINT64_MAX : end + l->skip;
        const size_t hi = last_in || e == UINT64_MAX ? steps :
                          e <= t0 || e - t0 <= lo ? lo : (e - t0 < steps ? (size_t)(e - t0) : steps);
        rne__call k;
        int ok = 1;
        const size_t nstate = rne__state_bytes(l, s->batch, &k.c_off, &ok);
#ifndef RNE_NO_CONV
        if (l->op == RNE_OP_CONV || l->op == RNE_OP_CONV_T) {
            if (l->in[0] != m->input)
                rne__zero_from(m, l->in[0], c, hi, steps);
            rne__zero_skipped(m, l, c, lo);
            rne__run_conv(m, l, c, steps, lo, nstate != 0 ? (void *)state : NULL, work);
            state += nstate;
            continue;
        }
#endif
#if RNE__GRAPH_OPS && !defined(RNE_NO_GRAPH_OPS)   /* else refused by rne_model_load */
        if (rne__graph_op(m, l)) {
            rne__run_op(m, l, c);
            rne__zero_skipped(m, l, c, lo);
            continue;
        }
#endif
        k.layer = l;
        k.x = rne__value_ptr(m, l->in[0], c);
        k.y = rne__value_ptr(m, l->out[0], c);
        k.state = nstate != 0 ? (void *)state : NULL;
        k.work = work;
        k.steps = last_in ? 1u : steps;
        if (nstate != 0 && (lo != 0 || hi != steps)) {  /* a recurrent node runs over steps
                                           lo .. hi - 1 (rne_model_load: a skip, no state inputs) */
            rne__zero_skipped(m, l, c, lo);
            rne__zero_from(m, l->out[0], c, hi, steps);
            k.x = (const uint8_t *)k.x + lo * rne__row_bytes(&m->values[l->in[0]], s->batch);
            k.y = (uint8_t *)k.y + lo * rne__row_bytes(&m->values[l->out[0]], s->batch);
            k.steps = hi - lo;
        } else if (l->op == RNE_OP_TAKE_LAST && hi != steps) {
            k.steps = hi;               /* the step before its input's end; none: zeros */
            if (hi == 0)
                memset(k.y, 0, rne__row_bytes(&m->values[l->out[0]], s->batch));
        }
        k.batch = s->batch * (size_t)l->lead;
#ifndef RNE_NO_STATE_IO
        if (nstate != 0) {
            const size_t dirs = rne__dirs(l);
            if (l->in[1] != RNE_NONE)
                rne__state_io(state, (uint8_t *)rne__value_ptr(m, l->in[1], c), dirs, s->batch,
                              l->hidden, rne__state_elem(l, 0), 0);
            if (l->in[2] != RNE_NONE)
                rne__cell_io(l, state + k.c_off, rne__value_ptr(m, l->in[2], c), dirs, s->batch,
                             0);
        }
#endif
        if (k.steps != 0)               /* 0: every step of the chunk skipped */
            rne__run_layer(&k);
        if (nstate == 0)
            rne__zero_skipped(m, l, c, lo);
#ifndef RNE_NO_STATE_IO
        if (nstate != 0) {
            const size_t dirs = rne__dirs(l);
            if (l->out[1] != RNE_NONE)
                rne__state_io(state, (uint8_t *)rne__value_ptr(m, l->out[1], c), dirs, s->batch,
                              l->hidden, rne__state_elem(l, 0), 1);
            if (l->out[2] != RNE_NONE)
                rne__cell_io(l, state + k.c_off, rne__value_ptr(m, l->out[2], c), dirs, s->batch,
                             1);
        }
#endif
        state += nstate;
    }
    /* every STATE value takes its update's last row block, in value order */
    for (i = 0; m->updates != 0 && i < m->n_values; i++) {
        const rne_model_value *v = &m->values[i];
        if (v->kind == RNE_V_STATE && v->update >= 0) {
            const size_t n = (size_t)v->features * rne__elem(v->dtype) * s->batch;
            const rne_model_value *u = &m->values[v->update];
            const uint8_t *src = (const uint8_t *)rne__value_ptr(m, (uint32_t)v->update, c);
            /* the update's last step: its only rows if it is LAST (a Y_h) */
            memcpy(rne__value_ptr(m, i, c), src + ((u->flags & RNE_VF_LAST) ? 0u : steps - 1) * n,
                   n);
        }
    }
}

/* Run the model over `steps` timesteps in chunks whose scratch fits scratch_size (one chunk of
 * all steps unless the model may be chunked; one step at a time for a model with STATE values).
 * RNE_EMODEL (nothing touched) if the model now needs more state or scratch than the stream's
 * buffers hold. */
static int rne__pipeline(const rne_stream *s, const void *x, void *y, size_t steps, void *scratch,
                         size_t scratch_size, size_t end)
{
    const rne_model *m = s->model;
    const size_t vsize = rne__value_size(m);
    const size_t in_row = (size_t)m->in_features * rne__elem((uint8_t)m->in_dtype) * s->batch;
    const size_t out_row = (size_t)m->out_features * vsize * s->batch;
    rne__scratch_plan plan;
    size_t chunk = m->explicit_state ? 1u : steps, t;
    int fits;
    if (chunk == 1) {                   /* a step: the plan rne_stream_init made */
        rne__plan_get(s->step_plan, &plan);
        fits = plan.total <= scratch_size;
    } else {
        fits = rne__plan(m, s->batch, chunk, &plan) && plan.total <= scratch_size;
    }
    if (!fits && rne__chunkable(m) && (end >= steps || !rne__has_take_last(m))) {
        size_t lo = 1, hi = chunk;          /* the largest chunk that fits: plan grows with it */
        while (lo < hi) {
            const size_t mid = lo + (hi - lo + 1) / 2;
            if (rne__plan(m, s->batch, mid, &plan) && plan.total <= scratch_size)
                lo = mid;
            else
                hi = mid - 1;
        }
        chunk = lo;
        fits = rne__plan(m, s->batch, chunk, &plan) && plan.total <= scratch_size;
    }
    if (!fits || plan.state > s->state_size)
        return RNE_EMODEL;
#if RNE__GRAPH_OPS && !defined(RNE_NO_GRAPH_OPS)
    if (m->checks_ids) {                /* every id of the call in range before anything runs */
        uint32_t i;
        for (i = 0; i < m->n_nodes; i++)
            if (m->nodes[i].op == RNE_OP_GATHER && m->nodes[i].in[0] == m->input &&
                rne__check_ids((const int32_t *)x, steps * s->batch * m->in_features,
                               (uint32_t)m->nodes[i].param[0]) != RNE_OK)
                return RNE_EINPUT;
    }
#endif
    uint64_t t0 = 0;
    uint8_t *counter = (uint8_t *)s->state + plan.counter;
    const int counts = rne__counter_bytes(m) != 0;
    if (counts)
        memcpy(&t0, counter, sizeof t0);
    for (t = 0; t < steps; t += chunk) {
        const size_t n = steps - t < chunk ? steps - t : chunk;
        rne__chunk c;
        c.x = (const uint8_t *)x + t * in_row;
        c.y = (uint8_t *)y + (m->many_to_one ? 0u : t * out_row);
        c.arena = (uint8_t *)scratch;
        c.state = (uint8_t *)s->state + plan.cells;
        c.rows = n * s->batch;
        c.batch = s->batch;
        rne__nodes(s, &c, n, (uint8_t *)scratch + plan.arena, (uint8_t *)s->state,
                   t0 > UINT64_MAX - t ? UINT64_MAX : t0 + t,
                   end >= steps ? UINT64_MAX : (t0 > UINT64_MAX - end ? UINT64_MAX : t0 + end));
    }
    if (counts) {                       /* saturates: a stream never wraps back into a skip */
        t0 = t0 + steps < t0 ? UINT64_MAX : t0 + steps;
        memcpy(counter, &t0, sizeof t0);
    }
    return RNE_OK;
}

/* A step on the plain path (rne__plain): each node's kernel on its values in turn. RNE_EMODEL
 * (nothing touched) as rne__pipeline's. */
static int rne__step_plain(const rne_stream *s, const void *x, void *y)
{
    const rne_model *m = s->model;
    const size_t *plan = s->step_plan;      /* arena, total, state (rne__plan_put) */
    uint8_t *state = (uint8_t *)s->state;
    rne__chunk c;
    uint32_t i;
    if (plan[1] > s->scratch_size || plan[2] > s->state_size)
        return RNE_EMODEL;
    c.x = x;
    c.y = y;
    c.arena = (uint8_t *)s->scratch;
    c.state = NULL;                     /* no STATE values */
    c.rows = s->batch;
    c.batch = s->batch;
    for (i = 0; i < m->n_nodes; i++) {
        const rne_model_layer *l = &m->nodes[i];
        rne__call k;
        /* sizes proved by rne_stream_init (rne_state_size of this batch); an inner recurrence
         * keeps its state in work, none in the stream (rne__state_bytes) */
        const size_t nstate = rne__gates(l->op) != 0 && !RNE__INNER(l->flags)
                                  ? rne__cell_block(l, s->batch, &k.c_off) : 0u;
#ifndef RNE_NO_CONV
        if (l->op == RNE_OP_CONV || l->op == RNE_OP_CONV_T) {   /* rne__nodes' conv, lo 0 */
            const size_t cache = (rne__conv_cache_bytes(l, l->in_features, 1) * s->batch + 15u) &
                                 ~(size_t)15;
            rne__run_conv(m, l, &c, 1, 0, cache != 0 ? (void *)state : NULL,
                          (uint8_t *)s->scratch + plan[0]);
            state += cache;
            continue;
        }
#endif
#if RNE__GRAPH_OPS && !defined(RNE_NO_GRAPH_OPS)
        if (rne__graph_op(m, l)) {
            rne__run_op(m, l, &c);
            continue;
        }
#endif
        k.layer = l;
        k.x = rne__value_ptr(m, l->in[0], &c);
        k.y = rne__value_ptr(m, l->out[0], &c);
        k.state = nstate != 0 ? (void *)state : NULL;
        k.work = (uint8_t *)s->scratch + plan[0];
        k.steps = 1;
        k.batch = s->batch * (size_t)l->lead;
        rne__run_layer(&k);
        state += nstate;
    }
    return RNE_OK;
}

int rne_step(rne_stream *stream, const void *x, void *y)
{
    int rc;
    if ((rc = rne__stream_check(stream)) != RNE_OK)
        return rc;
    if (x == NULL || y == NULL)
        return RNE_EARG;
    if (!rne__aligned(x, rne__elem((uint8_t)stream->model->in_dtype)) ||
        !rne__aligned(y, rne__value_size(stream->model)))
        return RNE_ESIZE;
    if (!stream->model->streamable)
        return RNE_ESTREAM;
    if (stream->step_plan[5] != 0)
        return rne__step_plain(stream, x, y);
    return rne__pipeline(stream, x, y, 1, stream->scratch, stream->scratch_size, 1);
}

int rne_run(rne_stream *stream, const void *x, uint32_t steps, void *y,
            void *scratch, size_t scratch_size)
{
    return rne_run_end(stream, x, steps, steps, y, scratch, scratch_size);
}

int rne_run_end(rne_stream *stream, const void *x, uint32_t steps, uint32_t end, void *y,
                void *scratch, size_t scratch_size)
{
    size_t need;
    int rc;
    if ((rc = rne__stream_check(stream)) != RNE_OK)
        return rc;
    if (end > steps)
        return RNE_EARG;
    if (steps == 0)
        return stream->model->many_to_one ? RNE_EARG : RNE_OK;
    if (x == NULL || y == NULL || scratch == NULL)
        return RNE_EARG;
    /* a model that may run in chunks needs scratch for one step; the others (and a TAKE_LAST
       model run with an end before its last step) for all */
    need = rne_scratch_size(stream->model, stream->batch,
                            rne__chunkable(stream->model) &&
                            (end == steps || !rne__has_take_last(stream->model)) ? 1u : steps);
    if (need == 0 || rne_scratch_size(stream->model, stream->batch, steps) == 0)
        return RNE_EARG;                              /* steps * batch too large to address */
    if (!rne__aligned(x, rne__elem((uint8_t)stream->model->in_dtype)) ||
        !rne__aligned(y, rne__value_size(stream->model)) || !rne__aligned(scratch, 16) ||
        scratch_size < need)
        return RNE_ESIZE;
    return rne__pipeline(stream, x, y, steps, scratch, scratch_size, end);
}
