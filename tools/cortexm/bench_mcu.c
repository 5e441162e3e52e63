/*
 * bench_mcu.c - rne_step N times on one model, for counting instructions under qemu.
 *
 *   qemu-system-arm ... -semihosting-config enable=on,target=native,arg=bench,arg=N -kernel ELF
 *
 * The model is linked in by run.sh (an .incbin of the .rne file into .rodata.model, which the
 * linker script puts in the MODEL region: flash, or the board's PSRAM for the big ones) as
 * bench_blob / bench_blob_size. The stream's state and scratch come from a static arena of
 * MCU_ARENA bytes; the input is a fixed pattern. run.sh runs N = 0 and N = STEPS under the
 * instruction-counting plugin (insn_count.c): the difference over STEPS is one step's count.
 * Prints the model's state and scratch bytes (batch 1), the stack the whole program used (the
 * free stack is painted before the model is loaded; the deepest word changed after the steps),
 * and y[0] after the last step.
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "rnnedge.h"
#include "semihost.h"

#ifndef MCU_ARENA
#define MCU_ARENA 65536
#endif

extern const unsigned char bench_blob[];
extern const uint32_t bench_blob_size;
extern uint32_t __bss_end[], __stack_top[];    /* the stack is what lies between (sections.ld) */

#define PAINT 0xA5C3E1F0u

/* Fill the free stack from the end of .bss up to 256 bytes below the current stack pointer. */
static void paint_stack(void)
{
    uint32_t *sp, *p;
    __asm__ volatile("mov %0, sp" : "=r"(sp));
    for (p = __bss_end; p < sp - 64; p++)
        *(volatile uint32_t *)p = PAINT;
}

/* Bytes of stack used so far: from the top down to the deepest word no longer painted. */
static uint32_t stack_used(void)
{
    const uint32_t *p = __bss_end;
    while (p < __stack_top && *(volatile const uint32_t *)p == PAINT)
        p++;
    return (uint32_t)((uintptr_t)__stack_top - (uintptr_t)p);
}

static unsigned char arena[MCU_ARENA] __attribute__((aligned(16)));

/* the last number on the semihosting command line, or 0 */
static uint32_t steps_wanted(void)
{
    char cmd[128];
    size_t n = sh_cmdline(cmd, sizeof cmd), i = n;
    uint32_t v = 0, scale = 1;
    while (i > 0 && cmd[i - 1] >= '0' && cmd[i - 1] <= '9') {
        v += (uint32_t)(cmd[i - 1] - '0') * scale;
        scale *= 10u;
        i--;
    }
    return v;
}

int main(void)
{
    const uint32_t steps = steps_wanted();
    static rne_model m;     /* the caller's memory, a static as in firmware (docs/c-api.md) */
    rne_stream s;
    size_t ss, sc, io, i;
    unsigned char *state, *scratch, *x, *y;
    int integer, rc;
    uint32_t t;
    paint_stack();
    rc = rne_model_load(bench_blob, bench_blob_size, &m);
    if (rc != RNE_OK) {
        out_str("bench: rne_model_load: ");
        out_str(rne_strerror(rc));
        out_nl();
        return 1;
    }
    integer = m.nodes[0].fmt != RNE_FMT_F32;
    ss = (rne_state_size(&m, 1) + 15u) & ~(size_t)15u;
    sc = (rne_scratch_size(&m, 1, 1) + 15u) & ~(size_t)15u;
    io = ((size_t)m.in_features * 4u + 15u) & ~(size_t)15u;
    if (ss + sc + io + (size_t)m.out_features * 4u > sizeof arena) {
        out_str("bench: nofit: the arena (MCU_ARENA) is too small for this model's state and scratch");
        out_nl();
        return 1;
    }
    state = arena;
    scratch = state + ss;
    x = scratch + sc;
    y = x + io;
    rc = rne_stream_init(&s, &m, 1, state, ss, scratch, sc);
    for (i = 0; rc == RNE_OK && i < m.in_features; i++) {
        const int32_t k = (int32_t)(i * 37u % 17u) - 8;
        if (integer) {
            const int16_t v = (int16_t)(k * 1024);
            memcpy(x + 2u * i, &v, 2);
        } else {
            const float v = (float)k * 0.125f;
            memcpy(x + 4u * i, &v, 4);
        }
    }
    for (t = 0; rc == RNE_OK && t < steps; t++)
        rc = rne_step(&s, x, y);
    if (rc != RNE_OK) {
        out_str("bench: ");
        out_str(rne_strerror(rc));
        out_nl();
        return 1;
    }
    out_str("bench steps ");
    out_u32(steps);
    out_str(" state ");
    out_u32((uint32_t)rne_state_size(&m, 1));
    out_str(" scratch ");
    out_u32((uint32_t)rne_scratch_size(&m, 1, 1));
    out_str(" stack ");
    out_u32(stack_used());
    if (steps > 0u) {
        out_str(" y0 ");
        if (integer) {
            int16_t v;
            memcpy(&v, y, 2);
            out_i32(v);
        } else {
            float v;
            memcpy(&v, y, 4);
            out_f32(v);
        }
    }
    out_nl();
    return 0;
}
