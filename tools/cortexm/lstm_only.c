/*
 * lstm_only.c - "LSTM only" programs at link time, to measure what the LSTM path alone weighs.
 *
 * The library has no build option that leaves cells out: model.c and layers_*.c dispatch to
 * every cell, so every cell is linked. Linked before librnnedge.a, the definitions below keep the
 * archive members of the other cells (and of the other number format) out of the program, as a
 * library option would. run.sh links its size probes with this file and runs an LSTM model on
 * each, which proves that the LSTM path needs nothing that was left out.
 *
 *   -DLSTM_ONLY_F32  float LSTM only: the GRU and RNN steps trap; integer layers are refused at
 *                    load (RNE_ELAYER), so no integer code is linked.
 *   -DLSTM_ONLY_Q    integer LSTM only (int8 / int16): the integer GRU and RNN steps and the
 *                    whole float layer path trap (an integer model never calls them).
 * Both leave the graph ops of format version 2 out (csrc/ops.h): rne__check_op refuses them at
 * load as a -DRNE_NO_GRAPH_OPS build does, the kernels trap.
 * Only for these measurements: a product would want the option in the library (docs/embedded.md).
 */
#include "ops.h"
#include "rne_internal.h"

int rne__check_op(const rne__blobview *m, const rne_node *n, const rne_value *vals, rne_fault *w)
{
    (void)m;
    (void)n;
    (void)vals;
    (void)w;
    return RNE__AT(RNE_ELAYER, RNE_FF_OP);
}

int rne__check_ids(const int32_t *ids, size_t n, uint32_t vocab)
{
    (void)ids;
    (void)n;
    (void)vocab;
    return RNE_EINPUT;
}

void rne__op_f32(const rne__opcall *k)
{
    (void)k;
    __builtin_trap();
}

void rne__op_int(const rne__opcall *k)
{
    (void)k;
    __builtin_trap();
}

#if defined(LSTM_ONLY_F32)
void rne__gru_f32_step(const rne__dir_f32 *dir, float *g)
{
    (void)dir;
    (void)g;
    __builtin_trap();
}

void rne__rnn_f32_step(const rne__dir_f32 *dir, float *g)
{
    (void)dir;
    (void)g;
    __builtin_trap();
}

int rne__check_layer_q(const rne__blobview *m, const rne__layer *l, rne_fault *w)
{
    (void)m;
    (void)l;
    (void)w;
    return RNE__AT(RNE_ELAYER, RNE_FF_FMT);
}

void rne__layer_int(const rne__call *k)
{
    (void)k;
    __builtin_trap();
}

size_t rne__work_int_bytes(const rne_model_layer *l, size_t rows, int *ok)
{
    (void)l;
    (void)rows;
    *ok = 0;
    return 0;
}
#elif defined(LSTM_ONLY_Q)
#include "qvec.h"

void rne__layer_f32(const rne__call *k)
{
    (void)k;
    __builtin_trap();
}

void rne__gru_int_step(const rne__dir_int *dir, const int32_t *wx)
{
    (void)dir;
    (void)wx;
    __builtin_trap();
}

void rne__rnn_int_step(const rne__dir_int *dir, const int32_t *wx)
{
    (void)dir;
    (void)wx;
    __builtin_trap();
}
#else
#error "define LSTM_ONLY_F32 or LSTM_ONLY_Q"
#endif
