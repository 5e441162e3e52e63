/*
 * semihost.h - ARM semihosting for the Cortex-M test programs: text out, the command line, exit.
 *
 * A semihosting call is `bkpt 0xab` with the operation in r0 and its argument in r1; the debugger
 * (here qemu-system-arm -semihosting-config enable=on,target=native) carries it out on the host.
 * Without a debugger attached, the bkpt is a HardFault on real hardware: these programs are for
 * the emulator (firmware prints through its own UART or SWO instead).
 *
 * The out_* functions fill one line buffer that out_nl() writes (SYS_WRITE0), so the host sees
 * whole lines. No printf, no double: numbers are formatted here with integer arithmetic.
 */
#ifndef RNE_SEMIHOST_H
#define RNE_SEMIHOST_H

#include <stddef.h>
#include <stdint.h>

/* Write a NUL-terminated string to the host's console (SYS_WRITE0). */
void sh_write0(const char *s);

/* Copy the command line qemu was given (-semihosting-config ...,arg=A,arg=B: "A B") into buf,
 * NUL-terminated; returns its length, or 0 if there is none or it does not fit. */
size_t sh_cmdline(char *buf, size_t size);

/* End the emulation: exit status 0 if ok, 1 otherwise (SYS_EXIT, ADP_Stopped_ApplicationExit
 * or ADP_Stopped_RunTimeErrorUnknown). Flushes the line buffer first. */
void sh_exit(int ok) __attribute__((noreturn));

/* The line buffer (a line longer than it is written in pieces). */
void out_str(const char *s);
void out_u32(uint32_t v);
void out_i32(int32_t v);
void out_hex(uint32_t v);           /* 0x followed by 8 hex digits */
void out_f32(float v);              /* 4 significant digits, e.g. 1.234e-05, -0, nan, inf */
void out_nl(void);                  /* end the line and write it */

#endif /* RNE_SEMIHOST_H */
