/* Small system calls that Swift's Glibc module does not expose. */
#ifndef TCPCHECK_CSYS_H
#define TCPCHECK_CSYS_H

#include <signal.h>

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

/* The process groups of the programs tcpcheck started and has not reaped,
   in a fixed table a signal handler can read. add returns -1 when full. */
int csys_children_add(int pgid);
void csys_children_remove(int pgid);
/* Sends sig to every group in the table (async-signal-safe). */
void csys_children_kill(int sig);
/* Around starting a program and adding it to the table: the stop signals
   are held off this thread, and a stop handler running on another thread
   waits (at most 200 ms) for the program to be in the table before it kills
   the table, so none started at that moment outlives tcpcheck. `saved`
   keeps the thread's signal mask for csys_spawn_end. */
void csys_spawn_begin(sigset_t *saved);
void csys_spawn_end(const sigset_t *saved);
/* Sends sig to the groups that thread `tid` started (a check abandoned at
   its deadline takes its programs with it). */
void csys_children_kill_thread(int tid, int sig);

/* The calling thread's id (gettid). */
int csys_gettid(void);
/* Gives thread `tid` the lowest priority (nice 19, SCHED_IDLE): a check
   stuck in a C function keeps its thread, but no longer slows the rest. */
int csys_thread_make_idle(int tid);

/* Installs the handlers that keep tcpcheck's promises when it is stopped:
   SIGINT, SIGTERM, SIGHUP kill the child groups, then end tcpcheck with the
   signal's usual status; a crash (SIGILL, SIGABRT, SIGSEGV, SIGBUS, SIGFPE),
   which a limit set too low can cause, kills the children, writes
   `message` (one line) to stderr and exits with status 70, without the
   runtime's backtrace. `message` must stay valid for the process's life. */
void csys_install_exit_handlers(const char *message);

#endif
