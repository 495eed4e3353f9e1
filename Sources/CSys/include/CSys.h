/* Small system calls that Swift's Glibc module does not expose. */
#ifndef TCPCHECK_CSYS_H
#define TCPCHECK_CSYS_H

/* Moves the calling thread into the network namespace open at fd. */
int csys_setns_net(int fd);

/* Sets the calling thread's filesystem uid (setfsuid(2) is per thread);
   returns the previous one. Moving it away from 0 drops CAP_DAC_OVERRIDE
   for that thread: tests use it to see files as an unprivileged user. */
int csys_setfsuid(unsigned int uid);

/* Opens a pseudo-terminal pair (tests run the CLI "on a terminal").
   Returns the master fd and sets *slave, or -1 with errno set. */
int csys_open_pty(int *slave);

/* One malloc arena, grown `pad` bytes at a time (mallopt M_ARENA_MAX,
   M_TOP_PAD): see TCPCheck.tuneMemory. Returns 0 when both were taken. */
int csys_tune_malloc(unsigned long pad);

/* open(2) that refuses to pass through a "magic" link (/proc/PID/root,
   /proc/PID/cwd, /proc/PID/fd/N ...) anywhere in the path, so a path under
   /proc cannot lead out of it (openat2 RESOLVE_NO_MAGICLINKS). Where the
   kernel lacks openat2 (before 5.6), -1 with errno ENOSYS. */
int csys_open_no_magiclinks(const char *path, int flags);

#endif
