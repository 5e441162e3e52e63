/*
 * dirent.h - opendir/readdir/closedir for the ARMv6 test programs (tools/pi/armv6/linux_rt.c).
 *
 * newlib, the C library of the ARMv6 build (Debian's armhf glibc is ARMv7 code), has no
 * <dirent.h>; the C tests list tests/data/c with these three, over Linux's getdents64.
 * Only d_name and d_type are filled.
 */
#ifndef RNE_PI_DIRENT_H
#define RNE_PI_DIRENT_H

typedef struct rne_pi_dir DIR;

struct dirent {
    unsigned char d_type;
    char d_name[256];
};

DIR *opendir(const char *path);
struct dirent *readdir(DIR *dir);
int closedir(DIR *dir);

#endif /* RNE_PI_DIRENT_H */
