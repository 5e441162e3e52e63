/*
 * mcu_case.h - one test case embedded in a Cortex-M test program (no filesystem there).
 *
 * tools/make_mcu_vectors.py writes a C file defining mcu_cases[] from tests/data/c (float
 * models, compared within a tolerance with onnxruntime's outputs) and tests/data/c/int (integer
 * models, compared exactly with the bit-exact numpy reference). test_mcu.c runs them.
 */
#ifndef RNE_MCU_CASE_H
#define RNE_MCU_CASE_H

#include <stdint.h>

typedef struct mcu_case {
    const char *name;                 /* file stem in tests/data/c, e.g. "int/q8_lstm_no_bias" */
    const unsigned char *blob;        /* the .rne bytes, aligned to the blob's alignment */
    uint32_t blob_size;
    uint32_t integer;                 /* 1: x and y are int16 (an integer model); 0: float */
    uint32_t steps, batch;            /* x is [steps][batch][in_features] */
    uint32_t in_features, out_features;
    uint32_t out_steps;               /* 1 for a many-to-one model, else steps */
    const void *x;                    /* float or int16; NULL for a generated (long) case */
    const void *y;                    /* expected [out_steps][batch][out_features]; NULL if long */
    const unsigned char *state;       /* the initial state (rne_state_size bytes), or NULL */
    const unsigned char *final;       /* the expected final state, or NULL (float models) */
    uint32_t state_size;              /* bytes of state and of final; 0 if neither */
    /* a long case (x == NULL): test_int.c's input generator and the reference's CRC-32s */
    uint32_t generator, seed, crc_y, crc_state;
} mcu_case;

extern const mcu_case mcu_cases[];
extern const uint32_t mcu_n_cases;

#endif /* RNE_MCU_CASE_H */
