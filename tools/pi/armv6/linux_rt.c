/*
 * linux_rt.c - newlib on Linux for the ARMv6 (Pi 1 / Zero) test programs: the start, the system
 * calls newlib asks for, and the few POSIX functions the C tests use that newlib lacks.
 *
 * Debian's armhf glibc (and its libgcc) is ARMv7 Thumb-2 code, which an ARM1176 cannot run. The
 * bare-metal toolchain (gcc-arm-none-eabi) has newlib and libgcc built for ARMv5TE with VFP and
 * the hard-float ABI (multilib arm/v5te/hard), which an ARMv6 core runs. This file turns that into
 * a Linux program: a static ELF, linked with -nostartfiles, that talks to the kernel with EABI
 * system calls (`svc #0`, number in r7), so the same binary runs under qemu-arm -cpu arm1176 and
 * on a real Pi Zero. Built as ARM code (-marm); nothing here needs more than ARMv5.
 *
 * Files: open/read/lseek/close; directories: opendir/readdir over getdents64 (so 64-bit inode
 * numbers are no problem); memory: brk; time: clock_gettime (32-bit seconds). stdin, stdout and
 * stderr are what the kernel handed over. Debian's newlib is built without C99's printf length
 * modifiers: printf, vprintf, fprintf and snprintf are wrapped (link with
 * -Wl,--wrap=printf,--wrap=vprintf,--wrap=fprintf,--wrap=snprintf) to drop the `z` of `%zu`,
 * size_t being unsigned int on this ABI.
 */
#define _DEFAULT_SOURCE 1     /* POSIX and BSD names from newlib's headers under -std=c99 */

#include <errno.h>
#include <fcntl.h>
#include <malloc.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "dirent.h"

int main(int argc, char **argv);

/* ARM EABI system call numbers (arch/arm/tools/syscall.tbl) */
enum {
    NR_READ = 3,
    NR_WRITE = 4,
    NR_OPEN = 5,
    NR_CLOSE = 6,
    NR_LSEEK = 19,
    NR_GETPID = 20,
    NR_KILL = 37,
    NR_BRK = 45,
    NR_IOCTL = 54,
    NR_GETDENTS64 = 217,
    NR_EXIT_GROUP = 248,
    NR_CLOCK_GETTIME = 263
};

/* Linux's open flags on ARM (include/uapi/asm-generic/fcntl.h, arch/arm/include/uapi/asm/fcntl.h) */
enum {
    L_O_CREAT = 0100,
    L_O_EXCL = 0200,
    L_O_TRUNC = 01000,
    L_O_APPEND = 02000,
    L_O_DIRECTORY = 040000,
    L_O_LARGEFILE = 0400000,
    L_TCGETS = 0x5401
};

static long sys3(long nr, long a, long b, long c)
{
    register long r0 __asm__("r0") = a;
    register long r1 __asm__("r1") = b;
    register long r2 __asm__("r2") = c;
    register long r7 __asm__("r7") = nr;
    __asm__ volatile("svc #0" : "+r"(r0) : "r"(r1), "r"(r2), "r"(r7) : "memory");
    return r0;
}

/* a system call's result, or -1 with errno set (the kernel returns -4095..-1 for errors) */
static long checked(long rc)
{
    if (rc < 0 && rc > -4096) {
        errno = (int)-rc;
        return -1;
    }
    return rc;
}

/* ---- the start: argc at sp, then argv ------------------------------------------------------- */

void __libc_init_array(void);
void _init(void);
void _fini(void);
void rne__pi_start(uint32_t *sp) __attribute__((noreturn, used));

/* newlib runs the .init_array / .fini_array entries around these; without gcc's crti.o there is
 * nothing else to run */
void _init(void)
{
}

void _fini(void)
{
}

void rne__pi_start(uint32_t *sp)
{
    __libc_init_array();
    exit(main((int)sp[0], (char **)(void *)(sp + 1)));   /* exit flushes stdio, then _exit */
}

void _start(void) __attribute__((naked, noreturn));

void _start(void)
{
    __asm__ volatile(
        "mov r0, sp\n\t"
        "bic sp, sp, #7\n\t"          /* AAPCS: 8-byte aligned stack at calls */
        "bl rne__pi_start");
}

/* ---- what newlib calls ---------------------------------------------------------------------- */

void _exit(int status)
{
    for (;;)
        (void)sys3(NR_EXIT_GROUP, status, 0, 0);
}

int _write(int fd, const void *buf, size_t n)
{
    return (int)checked(sys3(NR_WRITE, fd, (long)(uintptr_t)buf, (long)n));
}

int _read(int fd, void *buf, size_t n)
{
    return (int)checked(sys3(NR_READ, fd, (long)(uintptr_t)buf, (long)n));
}

/* newlib's flag bits -> Linux's; always large-file, since the host file system may be 64-bit */
int _open(const char *path, int flags, int mode)
{
    long f = (flags & O_ACCMODE) | L_O_LARGEFILE;
    if (flags & O_CREAT)
        f |= L_O_CREAT;
    if (flags & O_EXCL)
        f |= L_O_EXCL;
    if (flags & O_TRUNC)
        f |= L_O_TRUNC;
    if (flags & O_APPEND)
        f |= L_O_APPEND;
    if (flags & O_DIRECTORY)
        f |= L_O_DIRECTORY;
    return (int)checked(sys3(NR_OPEN, (long)(uintptr_t)path, f, mode));
}

int _close(int fd)
{
    return (int)checked(sys3(NR_CLOSE, fd, 0, 0));
}

_off_t _lseek(int fd, _off_t offset, int whence)
{
    return (_off_t)checked(sys3(NR_LSEEK, fd, (long)offset, whence));
}

int _isatty(int fd)
{
    unsigned char termios[64];      /* struct termios is 60 bytes on ARM */
    return sys3(NR_IOCTL, fd, L_TCGETS, (long)(uintptr_t)termios) == 0;
}

/* newlib only asks for the file type (terminals are line-buffered) */
int _fstat(int fd, struct stat *st)
{
    memset(st, 0, sizeof *st);
    st->st_mode = _isatty(fd) ? S_IFCHR : S_IFREG;
    return 0;
}

void *_sbrk(ptrdiff_t incr)
{
    static uintptr_t brk;     /* the only static data; the library itself has none */
    uintptr_t old, want;
    if (brk == 0)
        brk = (uintptr_t)sys3(NR_BRK, 0, 0, 0);
    old = brk;
    want = old + (uintptr_t)incr;
    if ((uintptr_t)sys3(NR_BRK, (long)want, 0, 0) != want) {
        errno = ENOMEM;
        return (void *)-1;
    }
    brk = want;
    return (void *)old;
}

int _getpid(void)
{
    return (int)sys3(NR_GETPID, 0, 0, 0);
}

int _kill(int pid, int sig)
{
    return (int)checked(sys3(NR_KILL, pid, sig, 0));
}

/* newlib declares it (and numbers the clocks its own way) when built with -D_POSIX_TIMERS
 * -D_POSIX_MONOTONIC_CLOCK; only these two clocks are known here */
int clock_gettime(clockid_t clock, struct timespec *ts)
{
    int32_t t[2];             /* the 32-bit struct timespec of the original system call */
    long linux_clock;
    if (clock == CLOCK_REALTIME) {
        linux_clock = 0;
    } else if (clock == CLOCK_MONOTONIC) {
        linux_clock = 1;
    } else {
        errno = EINVAL;
        return -1;
    }
    if (checked(sys3(NR_CLOCK_GETTIME, linux_clock, (long)(uintptr_t)t, 0)) != 0)
        return -1;
    ts->tv_sec = t[0];
    ts->tv_nsec = t[1];
    return 0;
}

int _gettimeofday(struct timeval *tv, void *tz)
{
    struct timespec ts;
    (void)tz;
    if (clock_gettime(CLOCK_REALTIME, &ts) != 0)
        return -1;
    tv->tv_sec = ts.tv_sec;
    tv->tv_usec = (suseconds_t)(ts.tv_nsec / 1000);
    return 0;
}

/* newlib has memalign but not posix_memalign */
int posix_memalign(void **out, size_t align, size_t size)
{
    void *p;
    if (align < sizeof(void *) || (align & (align - 1u)) != 0)
        return EINVAL;
    p = memalign(align, size);
    if (p == NULL)
        return ENOMEM;
    *out = p;
    return 0;
}

/* ---- directories ---------------------------------------------------------------------------- */

struct rne_pi_dir {
    int fd;
    size_t pos, len;                      /* the unread part of buf */
    unsigned char buf[4096] __attribute__((aligned(8)));
    struct dirent entry;
};

DIR *opendir(const char *path)
{
    DIR *d;
    const int fd = _open(path, O_RDONLY | O_DIRECTORY, 0);
    if (fd < 0)
        return NULL;
    d = malloc(sizeof *d);
    if (d == NULL) {
        (void)_close(fd);
        errno = ENOMEM;
        return NULL;
    }
    d->fd = fd;
    d->pos = d->len = 0;
    return d;
}

/* a struct linux_dirent64: u64 d_ino, s64 d_off, u16 d_reclen, u8 d_type, char d_name[] */
struct dirent *readdir(DIR *d)
{
    const unsigned char *rec;
    uint16_t reclen;
    size_t name_len;
    if (d->pos >= d->len) {
        const long n = checked(sys3(NR_GETDENTS64, d->fd, (long)(uintptr_t)d->buf, sizeof d->buf));
        if (n <= 0)
            return NULL;          /* the end (errno unchanged), or an error (errno set) */
        d->pos = 0;
        d->len = (size_t)n;
    }
    rec = d->buf + d->pos;
    memcpy(&reclen, rec + 16, sizeof reclen);
    d->pos += reclen;
    d->entry.d_type = rec[18];
    name_len = strnlen((const char *)rec + 19, sizeof d->entry.d_name - 1u);
    memcpy(d->entry.d_name, rec + 19, name_len);
    d->entry.d_name[name_len] = '\0';
    return &d->entry;
}

int closedir(DIR *d)
{
    const int rc = _close(d->fd);
    free(d);
    return rc;
}

/* ---- printf without C99's z ----------------------------------------------------------------- */

int __real_vprintf(const char *fmt, va_list ap);
int __wrap_printf(const char *fmt, ...);
int __wrap_vprintf(const char *fmt, va_list ap);
int __wrap_fprintf(FILE *f, const char *fmt, ...);
int __wrap_snprintf(char *buf, size_t size, const char *fmt, ...);

/* fmt with the z of every conversion removed (%zu -> %u, %4zu -> %4u), in out; fmt itself if it
 * does not fit */
static const char *drop_z(const char *fmt, char *out, size_t size)
{
    size_t n = 0;
    const char *p = fmt;
    while (*p != '\0') {
        if (n + 1u >= size)
            return fmt;
        out[n++] = *p;
        if (*p++ != '%')
            continue;
        while (*p != '\0' && strchr("-+ #0123456789.*", *p) != NULL && n + 1u < size)
            out[n++] = *p++;
        if (*p == 'z')
            p++;
        else if (*p == '%' && n + 1u < size)
            out[n++] = *p++;
    }
    out[n] = '\0';
    return out;
}

int __wrap_vprintf(const char *fmt, va_list ap)
{
    char f[512];
    return __real_vprintf(drop_z(fmt, f, sizeof f), ap);
}

int __wrap_printf(const char *fmt, ...)
{
    va_list ap;
    int rc;
    va_start(ap, fmt);
    rc = __wrap_vprintf(fmt, ap);
    va_end(ap);
    return rc;
}

int __wrap_fprintf(FILE *f, const char *fmt, ...)
{
    char fixed[512];
    va_list ap;
    int rc;
    va_start(ap, fmt);
    rc = vfprintf(f, drop_z(fmt, fixed, sizeof fixed), ap);
    va_end(ap);
    return rc;
}

int __wrap_snprintf(char *buf, size_t size, const char *fmt, ...)
{
    char fixed[512];
    va_list ap;
    int rc;
    va_start(ap, fmt);
    rc = vsnprintf(buf, size, drop_z(fmt, fixed, sizeof fixed), ap);
    va_end(ap);
    return rc;
}
