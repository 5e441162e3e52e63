/* semihost.c - see semihost.h. */
#include "semihost.h"

#include <string.h>

enum {
    SYS_WRITE0 = 0x04,
    SYS_GET_CMDLINE = 0x15,
    SYS_EXIT = 0x18,
    ADP_STOPPED_APPLICATION_EXIT = 0x20026,
    ADP_STOPPED_RUN_TIME_ERROR_UNKNOWN = 0x20023
};

static uintptr_t sh_call(uintptr_t op, const void *arg)
{
    register uintptr_t r0 __asm__("r0") = op;
    register const void *r1 __asm__("r1") = arg;
    __asm__ volatile("bkpt 0xab" : "+r"(r0) : "r"(r1) : "memory");
    return r0;
}

void sh_write0(const char *s)
{
    (void)sh_call(SYS_WRITE0, s);
}

size_t sh_cmdline(char *buf, size_t size)
{
    uintptr_t block[2];
    block[0] = (uintptr_t)buf;
    block[1] = size;
    if (size == 0 || sh_call(SYS_GET_CMDLINE, block) != 0)
        return 0;
    return block[1];
}

/* ---- the line buffer ------------------------------------------------------------------------ */

static char line[160];
static size_t used;

static void flush(void)
{
    line[used] = '\0';
    if (used > 0)
        sh_write0(line);
    used = 0;
}

static void out_char(char c)
{
    if (used + 1 >= sizeof line)
        flush();
    line[used++] = c;
}

void out_str(const char *s)
{
    while (*s != '\0')
        out_char(*s++);
}

void out_u32(uint32_t v)
{
    char digits[10];
    int n = 0;
    do {
        digits[n++] = (char)('0' + v % 10u);
        v /= 10u;
    } while (v != 0u);
    while (n > 0)
        out_char(digits[--n]);
}

void out_i32(int32_t v)
{
    if (v < 0) {
        out_char('-');
        out_u32(0u - (uint32_t)v);
    } else {
        out_u32((uint32_t)v);
    }
}

void out_hex(uint32_t v)
{
    int shift;
    out_str("0x");
    for (shift = 28; shift >= 0; shift -= 4)
        out_char("0123456789abcdef"[(v >> shift) & 0xFu]);
}

/* d.ddde[+-]XX from the float's bits and exact powers of ten in float steps: good to about
 * 1e-6 relative, plenty for messages (the tests compare numbers, never this text). */
void out_f32(float v)
{
    uint32_t bits, mant;
    int exp10 = 0, i;
    memcpy(&bits, &v, sizeof bits);
    if (bits >> 31) {
        out_char('-');
        v = -v;
        bits &= 0x7FFFFFFFu;
    }
    if (bits >= 0x7F800000u) {
        out_str(bits == 0x7F800000u ? "inf" : "nan");
        return;
    }
    if (bits == 0u) {
        out_char('0');
        return;
    }
    while (v >= 10.0f) {
        v /= 10.0f;
        exp10++;
    }
    while (v < 1.0f) {
        v *= 10.0f;
        exp10--;
    }
    mant = (uint32_t)(v * 1000.0f + 0.5f);      /* 1000..10000 */
    if (mant >= 10000u) {
        mant /= 10u;
        exp10++;
    }
    out_char((char)('0' + mant / 1000u));
    out_char('.');
    for (i = 100; i >= 1; i /= 10)
        out_char((char)('0' + mant / (uint32_t)i % 10u));
    out_char('e');
    out_char(exp10 < 0 ? '-' : '+');
    exp10 = exp10 < 0 ? -exp10 : exp10;
    out_char((char)('0' + exp10 / 10));
    out_char((char)('0' + exp10 % 10));
}

void out_nl(void)
{
    out_char('\n');
    flush();
}

void sh_exit(int ok)
{
    flush();
    for (;;)
        (void)sh_call(SYS_EXIT, (const void *)(uintptr_t)(ok ? ADP_STOPPED_APPLICATION_EXIT
                                                            : ADP_STOPPED_RUN_TIME_ERROR_UNKNOWN));
}
