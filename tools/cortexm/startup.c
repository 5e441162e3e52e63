/*
 * startup.c - the smallest Cortex-M start for the test programs under qemu-system-arm.
 *
 * The vector table (section .vectors, placed at the boot address by the linker script): the
 * initial stack pointer, reset, and the fault and exception entries, which all report the fault
 * through semihosting and exit with a failure. No interrupt is ever enabled.
 *
 * Reset: enable the FPU (CPACR CP10/CP11 full access) when the code is built for one, before any
 * float instruction can run; copy .data from flash; zero .bss; call main(); exit through
 * semihosting with main's verdict (0 = pass).
 */
#include <stdint.h>

#include "semihost.h"

int main(void);

/* from the linker script (sections.ld) */
extern uint32_t __data_load[], __data_start[], __data_end[], __bss_start[], __bss_end[];
extern uint32_t __stack_top[];

void rne_reset(void) __attribute__((noreturn));
void rne_fault(void) __attribute__((naked, noreturn));
void rne_fault_report(const uint32_t *frame, uint32_t exc_return) __attribute__((noreturn, used));

void rne_reset(void)
{
    const uint32_t *src = __data_load;
    uint32_t *dst;
#if defined(__ARM_FP)
    /* CPACR: CP10 and CP11 full access, then let the write take effect before any VFP op */
    *(volatile uint32_t *)0xE000ED88u |= 0xFu << 20;
    __asm__ volatile("dsb\n\tisb" ::: "memory");
#endif
    for (dst = __data_start; dst < __data_end; dst++)
        *dst = *src++;
    for (dst = __bss_start; dst < __bss_end; dst++)
        *dst = 0u;
    sh_exit(main() == 0);
}

/* Which stack the exception frame is on (EXC_RETURN bit 2), handed to the C report. The
 * literal-pool load reaches the report wherever the linker puts it (Thumb-1 has no long b). */
void rne_fault(void)
{
    __asm__ volatile(
        "mov r1, lr\n\t"
        "movs r0, #4\n\t"
        "tst r1, r0\n\t"
        "bne 1f\n\t"
        "mrs r0, msp\n\t"
        "b 2f\n"
        "1:\n\t"
        "mrs r0, psp\n"
        "2:\n\t"
        "ldr r2, =rne_fault_report\n\t"
        "bx r2\n\t"
        ".ltorg");
}

void rne_fault_report(const uint32_t *frame, uint32_t exc_return)
{
    const uint32_t icsr = *(volatile const uint32_t *)0xE000ED04u;
    out_str("FAULT exception ");
    out_u32(icsr & 0x1FFu);
    out_str(" (3 HardFault, 4 MemManage, 5 BusFault, 6 UsageFault) at pc ");
    out_hex(frame[6]);
    out_str(", lr ");
    out_hex(frame[5]);
    out_str(", exc_return ");
    out_hex(exc_return);
#if __ARM_ARCH >= 7
    out_str(", cfsr ");
    out_hex(*(volatile const uint32_t *)0xE000ED28u);
    out_str(", hfsr ");
    out_hex(*(volatile const uint32_t *)0xE000ED2Cu);
#endif
    out_nl();
    sh_exit(0);
}

typedef union rne_vector {
    void (*handler)(void);
    uint32_t *stack;
} rne_vector;

/* 16 system entries: stack, reset, NMI, HardFault, MemManage, BusFault, UsageFault,
 * SecureFault (ARMv8-M), 3 reserved, SVCall, DebugMonitor, reserved, PendSV, SysTick */
__attribute__((section(".vectors"), used)) const rne_vector rne_vectors[16] = {
    { .stack = __stack_top },
    { .handler = rne_reset },
    { .handler = rne_fault }, { .handler = rne_fault }, { .handler = rne_fault },
    { .handler = rne_fault }, { .handler = rne_fault }, { .handler = rne_fault },
    { .handler = 0 }, { .handler = 0 }, { .handler = 0 },
    { .handler = rne_fault }, { .handler = rne_fault }, { .handler = 0 },
    { .handler = rne_fault }, { .handler = rne_fault },
};
