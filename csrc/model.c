/*
 * model.c - the pipeline: state and scratch sizes, streams, rne_step and rne_run.
 *
 * rne_run goes layer by layer over the whole sequence (a recurrent layer projects all T*B input
 * rows in one matrix product, then runs its recurrence); rne_step is the same code with T = 1.
 * Intermediate sequences ping-pong between two scratch buffers; the first layer reads the
 * caller's x and the last writes the caller's y directly.
 *
 * Scratch for `steps` x `batch` (each block 16-byte aligned, sizes in floats):
 *   buf[0], buf[1]  rows * max_features values each (only as many as n_layers - 1 needs, at most
 *                   2); values are float, or int16 in an integer model
 *   work            max over layers of their work space: f32 recurrent layers rne__rnn_work,
 *                   integer layers rne__work_int_bytes (layers_int.c)
 * State: per recurrent layer in order, h [D][batch][H] then (LSTM) c [D][batch][H], each block
 * rounded up to 16 bytes, elements in the layer's storage type (f32: float; integer: h int16,
 * c int32).
 * Every size is computed with overflow checks, so the kernels' index arithmetic cannot wrap.
 * Everything here reads the layer copies in rne_model (rne_model_load made them), never the
 * blob's records: a blob changed after load cannot change a size. A stream remembers its model's
 * blob CRC and the buffer sizes it was given; rne__stream_check refuses to run it (RNE_EMODEL)
 * once the model has been re-loaded with another blob.
 */
#include <string.h>

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

/* rne__round4(n) without wrapping */
static size_t rne__round4_checked(size_t n, int *ok)
{
    if (n > (size_t)-1 - 3u) {
        *ok = 0;
        return 0;
    }
    return rne__round4(n);
}

/* Bytes of one h (c: 1) state element: the layer's number format decides (f32: float; integer:
 * h int16, c int32). */
static size_t rne__state_elem(const rne_model_layer *l, int c)
{
    if (l->fmt == RNE_FMT_F32)
        return sizeof(float);
    return c ? sizeof(int32_t) : sizeof(int16_t);
}

/* The state block of one layer in bytes: h, then (LSTM) c at *c_off, each rounded up to 16
 * bytes; 0 for a stateless layer. */
static size_t rne__state_bytes(const rne_model_layer *l, size_t batch, size_t *c_off, int *ok)
{
    size_t n, hblock;
    *c_off = 0;
    if (rne__gates(l->op) == 0)
        return 0;
    n = rne__mad(rne__mad(rne__dirs(l), batch, 0, ok), l->hidden, 0, ok);
    hblock = rne__mad(n, rne__state_elem(l, 0), 15, ok) & ~(size_t)15;
    if (l->op != RNE_OP_LSTM)
        return hblock;
    *c_off = hblock;
    return rne__mad(1, hblock, rne__mad(n, rne__state_elem(l, 1), 15, ok) & ~(size_t)15, ok);
}

/* Bytes of one value passed between layers: float, or int16 in an integer model (rne_model_load
 * proved that every layer of a model has the first layer's family of formats). */
static size_t rne__value_size(const rne_model *m)
{
    return m->layers[0].fmt == RNE_FMT_F32 ? sizeof(float) : sizeof(int16_t);
}

/* Floats of work space for a recurrent layer (layout in rne_internal.h, rne__call.work) */
static size_t rne__rnn_work(const rne_model_layer *l, size_t steps, size_t batch, int *ok)
{
    const size_t gh = (size_t)rne__gates(l->op) * l->hidden;
    size_t n = rne__round4_checked(rne__mad(rne__mad(steps, batch, 0, ok), gh, 0, ok), ok);
    if (l->op == RNE_OP_GRU)
        n = rne__mad(1, n, rne__round4_checked(rne__mad(batch, l->hidden, 0, ok), ok), ok);
    return n;
}

static int rne__model_ok(const rne_model *m)
{
    return m != NULL && m->blob != NULL && m->n_layers >= 1 && m->n_layers <= RNE_MAX_LAYERS;
}

size_t rne_state_size(const rne_model *model, uint32_t batch)
{
    size_t total = 0, c_off;
    uint32_t i;
    int ok = 1;
    if (!rne__model_ok(model) || batch == 0)
        return 0;
    for (i = 0; i < model->n_layers; i++)
        total = rne__mad(1, total, rne__state_bytes(&model->layers[i], batch, &c_off, &ok), &ok);
    /* at least one 16-byte block, so that 0 always means an error */
    return ok ? (total == 0 ? 16u : total) : 0;
}

size_t rne_state_offset(const rne_model *model, uint32_t layer, uint32_t batch)
{
    size_t off = 0, c_off;
    uint32_t i;
    int ok = 1;
    if (!rne__model_ok(model) || batch == 0 || layer >= model->n_layers ||
        rne__gates(model->layers[layer].op) == 0)
        return (size_t)-1;
    for (i = 0; i < layer; i++)
        off = rne__mad(1, off, rne__state_bytes(&model->layers[i], batch, &c_off, &ok), &ok);
    return ok ? off : (size_t)-1;
}

size_t rne_state_c_offset(const rne_model *model, uint32_t layer, uint32_t batch)
{
    size_t off = rne_state_offset(model, layer, batch), c_off;
    int ok = 1;
    if (off == (size_t)-1 || model->layers[layer].op != RNE_OP_LSTM)
        return (size_t)-1;
    (void)rne__state_bytes(&model->layers[layer], batch, &c_off, &ok);
    return ok ? rne__mad(1, off, c_off, &ok) : (size_t)-1;
}

/* Scratch layout in floats: ping-pong buffer size (each), number of them, work size; total and
 * state: the bytes of scratch and of state (rne_scratch_size, rne_state_size). */
typedef struct rne__scratch_plan {
    size_t buf, nbuf, work, total, state;
} rne__scratch_plan;

static int rne__plan(const rne_model *m, size_t batch, size_t steps, rne__scratch_plan *p)
{
    uint32_t i;
    int ok = 1;
    const size_t rows = rne__mad(steps, batch, 0, &ok);
    const size_t values = rne__mad(rows, m->max_features, 0, &ok);
    /* in floats: int16 values take half as many, rounded up */
    const size_t floats = rne__value_size(m) == sizeof(float) ? values : values / 2 + values % 2;
    p->buf = rne__round4_checked(floats, &ok);
    p->nbuf = m->n_layers >= 3 ? 2u : m->n_layers - 1u;
    p->work = 0;
    p->state = 0;
    for (i = 0; i < m->n_layers; i++) {
        const rne_model_layer *l = &m->layers[i];
        size_t w = 0, c_off;
        p->state = rne__mad(1, p->state, rne__state_bytes(l, batch, &c_off, &ok), &ok);
        if (l->fmt != RNE_FMT_F32)
            w = rne__round4_checked(rne__work_int_bytes(l, rows, &ok) / sizeof(float), &ok);
        else if (rne__gates(l->op) != 0)
            w = rne__rnn_work(l, steps, batch, &ok);
        p->work = w > p->work ? w : p->work;
    }
    p->total = rne__mad(p->buf, p->nbuf, p->work, &ok);
    p->total = p->total == 0 ? 4u : p->total;         /* never 0: 0 means an error */
    p->total = rne__mad(p->total, sizeof(float), 0, &ok);
    p->state = p->state == 0 ? 16u : p->state;        /* as rne_state_size */
    return ok;
}

size_t rne_scratch_size(const rne_model *model, uint32_t batch, uint32_t steps)
{
    rne__scratch_plan p;
    if (!rne__model_ok(model) || batch == 0)
        return 0;
    if (!rne__plan(model, batch, steps == 0 ? 1u : steps, &p))
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
        m->out_features != stream->model_out)
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
    uint32_t i;
    int rc;
    if ((rc = rne__stream_check(stream)) != RNE_OK)
        return rc;
    m = stream->model;
    if (rne_state_size(m, stream->batch) > stream->state_size)
        return RNE_EMODEL;
    state = (uint8_t *)stream->state;
    for (i = 0; i < m->n_layers; i++) {
        const rne_model_layer *l = &m->layers[i];
        size_t c_off;
        int ok = 1;
        const size_t n = rne__state_bytes(l, stream->batch, &c_off, &ok);
        if (n == 0)
            continue;
        /* H0 and C0 have the state's element types (proved by rne_model_load) */
        rne__fill_state(state, (const uint8_t *)l->data[RNE_T_H0], rne__dirs(l), stream->batch,
                        l->hidden, rne__state_elem(l, 0));
        if (l->op == RNE_OP_LSTM)
            rne__fill_state(state + c_off, (const uint8_t *)l->data[RNE_T_C0], rne__dirs(l),
                            stream->batch, l->hidden, rne__state_elem(l, 1));
        state += n;
    }
    return RNE_OK;
}

/* Run every layer over `steps` timesteps; scratch laid out by rne__plan. RNE_EMODEL (nothing
 * touched) if the model now needs more state or scratch than the stream's buffers hold. */
static int rne__pipeline(const rne_stream *s, const void *x, void *y, size_t steps, void *scratch,
                         size_t scratch_size)
{
    const rne_model *m = s->model;
    rne__scratch_plan plan;
    float *buf[2], *work;
    uint8_t *state = (uint8_t *)s->state;
    const void *in = x;
    uint32_t i;
    if (!rne__plan(m, s->batch, steps, &plan) || plan.total > scratch_size ||
        plan.state > s->state_size)
        return RNE_EMODEL;
    buf[0] = (float *)scratch;
    buf[1] = plan.nbuf == 2 ? buf[0] + plan.buf : buf[0];
    work = buf[0] + plan.buf * plan.nbuf;
    for (i = 0; i < m->n_layers; i++) {
        const rne_model_layer *l = &m->layers[i];
        rne__call k;
        int ok = 1;
        const size_t nstate = rne__state_bytes(l, s->batch, &k.c_off, &ok);
        k.layer = l;
        k.x = in;
        k.y = i + 1 == m->n_layers ? y : (void *)buf[i % 2];
        k.state = nstate != 0 ? (void *)state : NULL;
        k.work = work;
        k.steps = steps;
        k.batch = s->batch;
        switch (l->fmt) {
        case RNE_FMT_F32:
            rne__layer_f32(&k);
            break;
        case RNE_FMT_S16:
        case RNE_FMT_S8:
            rne__layer_int(&k);
            break;
        default:        /* refused by rne_model_load */
            break;
        }
        state += nstate;
        if (l->op == RNE_OP_TAKE_LAST)
            steps = 1;
        in = k.y;
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
    if (!rne__aligned(x, rne__value_size(stream->model)) ||
        !rne__aligned(y, rne__value_size(stream->model)))
        return RNE_ESIZE;
    if (!stream->model->streamable)
        return RNE_ESTREAM;
    return rne__pipeline(stream, x, y, 1, stream->scratch, stream->scratch_size);
}

int rne_run(rne_stream *stream, const void *x, uint32_t steps, void *y,
            void *scratch, size_t scratch_size)
{
    size_t need;
    int rc;
    if ((rc = rne__stream_check(stream)) != RNE_OK)
        return rc;
    if (steps == 0)
        return stream->model->many_to_one ? RNE_EARG : RNE_OK;
    if (x == NULL || y == NULL || scratch == NULL)
        return RNE_EARG;
    need = rne_scratch_size(stream->model, stream->batch, steps);
    if (need == 0)
        return RNE_EARG;                              /* steps * batch too large to address */
    if (!rne__aligned(x, rne__value_size(stream->model)) ||
        !rne__aligned(y, rne__value_size(stream->model)) || !rne__aligned(scratch, 16) ||
        scratch_size < need)
        return RNE_ESIZE;
    return rne__pipeline(stream, x, y, steps, scratch, scratch_size);
}
