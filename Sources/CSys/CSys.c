#define _GNU_SOURCE
#include "CSys.h"
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdlib.h>
#include <unistd.h>
#include <sys/fsuid.h>

int csys_setns_net(int fd) { return setns(fd, CLONE_NEWNET); }

int csys_setfsuid(unsigned int uid) { return setfsuid(uid); }

int csys_open_pty(int *slave) {
    int master = posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC);
    if (master < 0) return -1;
    const char *name = (grantpt(master) == 0 && unlockpt(master) == 0) ? ptsname(master) : NULL;
    *slave = name ? open(name, O_RDWR | O_NOCTTY | O_CLOEXEC) : -1;
    if (*slave < 0) {
        close(master);
        return -1;
    }
    return master;
}

#include <malloc.h>

int csys_tune_malloc(unsigned long pad) {
    int ok = mallopt(M_ARENA_MAX, 1) && mallopt(M_TOP_PAD, (int)pad);
    return ok ? 0 : -1;
}

#include <fcntl.h>
#include <linux/openat2.h>
#include <sys/syscall.h>

int csys_open_no_magiclinks(const char *path, int flags) {
#ifdef SYS_openat2
    struct open_how how = { .flags = (unsigned long long)flags, .mode = 0, .resolve = RESOLVE_NO_MAGICLINKS };
    return (int)syscall(SYS_openat2, AT_FDCWD, path, &how, sizeof how);
#else
    errno = ENOSYS;
    return -1;
#endif
}
