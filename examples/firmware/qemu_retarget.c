/*
 * qemu_retarget.c - the few system calls newlib's printf needs, for running the example under
 * qemu-system-arm: stdout and stderr go to the host through semihosting (tools/cortexm/
 * semihost.h); a small static heap for stdio's buffers. On a board, your SDK's retargeting
 * (UART, SWO, RTT) takes this file's place.
 */
#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>

#include "semihost.h"

int _write(int fd, const char *buf, int len);
int _read(int fd, char *buf, int len);
int _close(int fd);
int _fstat(int fd, struct stat *st);
int _isatty(int fd);
int _lseek(int fd, int offset, int whence);
void *_sbrk(ptrdiff_t incr);
int _kill(int pid, int sig);
int _getpid(void);
void _exit(int status) __attribute__((noreturn));

int _write(int fd, const char *buf, int len)
{
    char chunk[65];
    int done = 0;
    if (fd != 1 && fd != 2) {
        errno = EBADF;
        return -1;
    }
    while (done < len) {
        int n = 0;
        while (n < 64 && done + n < len && buf[done + n] != '\0') {
            chunk[n] = buf[done + n];
            n++;
        }
        chunk[n] = '\0';
        sh_write0(chunk);
        done += n > 0 ? n : 1;      /* a NUL byte cannot go through SYS_WRITE0: dropped */
    }
    return len;
}

int _read(int fd, char *buf, int len)
{
    (void)fd;
    (void)buf;
    (void)len;
    return 0;
}

int _close(int fd)
{
    (void)fd;
    return -1;
}

int _fstat(int fd, struct stat *st)
{
    (void)fd;
    st->st_mode = S_IFCHR;
    return 0;
}

int _isatty(int fd)
{
    return fd >= 0 && fd <= 2;
}

int _lseek(int fd, int offset, int whence)
{
    (void)fd;
    (void)offset;
    (void)whence;
    return 0;
}

static unsigned char heap[2048] __attribute__((aligned(8)));
static size_t heap_used;

void *_sbrk(ptrdiff_t incr)
{
    void *p = heap + heap_used;
    if (incr < 0 || (size_t)incr > sizeof heap - heap_used) {
        errno = ENOMEM;
        return (void *)-1;
    }
    heap_used += (size_t)incr;
    return p;
}

int _kill(int pid, int sig)
{
    (void)pid;
    (void)sig;
    errno = EINVAL;
    return -1;
}

int _getpid(void)
{
    return 1;
}

void _exit(int status)
{
    sh_exit(status == 0);
}
