/*
 * lstm_only.c - "LSTM only" programs at link time, to measure what the LSTM path alone weighs.
 *
 * The library has no build option that leaves cells out: model.c and layers_*.c dispatch to
 * every cell, so every cell is linked. Linked before librnnedge.a, the definitions below keep the
 * archive members of the other cells (and of the other number format) out of the program, as a
 * library option would. run.sh links its size probes with this file and runs an LSTM model on
 * each, which proves that the LSTM path needs nothing that was left out.
 *
 *   -DLSTM_ONLY_F32  float LSTM only: GRU and RNN kernels trap; integer layers are refused at
 *                    load (RNE_ELAYER), so no integer code is linked.
 *   -DLSTM_ONLY_Q    integer LSTM only (int8 / int16): the integer GRU and RNN kernels and the
 *                    whole float layer path trap (an integer model never calls them).
 * Only for these measurements: a product would want the option in the library (docs/embedded.md).
 */
#include "rne_internal.h"

#if defined(LSTM_ONLY_F32)
void rne__gru_f32(const rne__call *k)
{
    (void)k;
    __builtin_trap();
}

void rne__rnn_f32(const rne__call *k)
{
    (void)k;
    __builtin_trap();
}

int rne__check_layer_q(const rne__blobview *m, const rne_layer *l, rne_fault *w)
{
    (void)m;
    (void)l;
    (void)w;
    return RNE__AT(RNE_ELAYER, RNE_FF_FMT);
}

void rne__layer_q(const rne__call *k)
{
    (void)k;
    __builtin_trap();
}

size_t rne__q_work_bytes(const rne_model_layer *l, size_t rows, int *ok)
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

void rne__gru_q(const rne__call *k, const rne__qwork *w)
{
    (void)k;
    (void)w;
    __builtin_trap();
}

void rne__rnn_q(const rne__call *k, const rne__qwork *w)
{
    (void)k;
    (void)w;
    __builtin_trap();
}
#else
#error "define LSTM_ONLY_F32 or LSTM_ONLY_Q"
#endif
