#define _GNU_SOURCE
#include "CSys.h"
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdlib.h>
#include <unistd.h>
#include <pthread.h>
#include <signal.h>
#include <string.h>
#include <time.h>
#include <sys/fsuid.h>
#include <sys/resource.h>

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

/* 256 slots: tcpcheck runs a handful of programs at a time. A slot holds
   the group and the thread that started it; pgid 0 is free. */
#define CHILD_SLOTS 256
static volatile int child_groups[CHILD_SLOTS];
static volatile int child_threads[CHILD_SLOTS];

int csys_children_add(int pgid) {
    for (int i = 0; i < CHILD_SLOTS; i++)
        if (__sync_bool_compare_and_swap(&child_groups[i], 0, pgid)) {
            child_threads[i] = (int)syscall(SYS_gettid);
            return 0;
        }
    return -1;
}

void csys_children_remove(int pgid) {
    for (int i = 0; i < CHILD_SLOTS; i++)
        if (__sync_bool_compare_and_swap(&child_groups[i], pgid, 0)) return;
}

void csys_children_kill(int sig) {
    for (int i = 0; i < CHILD_SLOTS; i++) {
        int g = child_groups[i];
        if (g > 0) kill(-g, sig);
    }
}

static volatile int spawning;

static void stop_signals(sigset_t *set) {
    sigemptyset(set);
    sigaddset(set, SIGINT);
    sigaddset(set, SIGTERM);
    sigaddset(set, SIGHUP);
}

void csys_spawn_begin(sigset_t *saved) {
    sigset_t stops;
    stop_signals(&stops);
    pthread_sigmask(SIG_BLOCK, &stops, saved);
    __sync_fetch_and_add(&spawning, 1);
}

void csys_spawn_end(const sigset_t *saved) {
    __sync_fetch_and_sub(&spawning, 1);
    pthread_sigmask(SIG_SETMASK, saved, NULL);
}

/* Kills the table, then again once no program is being started (bounded):
   one whose start was under way is in the table by then. */
static void kill_children_settled(void) {
    csys_children_kill(SIGKILL);
    struct timespec ms = { 0, 1000000 };
    for (int i = 0; i < 200 && __sync_fetch_and_add(&spawning, 0) > 0; i++) nanosleep(&ms, NULL);
    csys_children_kill(SIGKILL);
}

void csys_children_kill_thread(int tid, int sig) {
    for (int i = 0; i < CHILD_SLOTS; i++) {
        int g = child_groups[i];
        if (g > 0 && child_threads[i] == tid) kill(-g, sig);
    }
}

int csys_gettid(void) { return (int)syscall(SYS_gettid); }

int csys_thread_make_idle(int tid) {
    struct sched_param none = { 0 };
    setpriority(PRIO_PROCESS, (id_t)tid, 19);
    return sched_setscheduler(tid, SCHED_IDLE, &none);
}

static const char *crash_message;

static void on_stop(int sig) {
    kill_children_settled();
    signal(sig, SIG_DFL);
    raise(sig);
}

static void on_crash(int sig) {
    (void)sig;
    kill_children_settled();
    if (crash_message) {
        ssize_t unused = write(2, crash_message, strlen(crash_message));
        (void)unused;
    }
    _exit(70);
}

void csys_install_exit_handlers(const char *message) {
    crash_message = message;
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sigemptyset(&sa.sa_mask);
    sa.sa_handler = on_stop;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGHUP, &sa, NULL);
    sa.sa_handler = on_crash;
    sa.sa_flags = SA_ONSTACK;
    int crashes[] = { SIGILL, SIGABRT, SIGSEGV, SIGBUS, SIGFPE };
    for (unsigned i = 0; i < sizeof crashes / sizeof crashes[0]; i++) sigaction(crashes[i], &sa, NULL);
    /* A parent may have started tcpcheck with these blocked (a blocked mask
       is inherited): they must reach the handlers. */
    sigset_t stops;
    sigemptyset(&stops);
    sigaddset(&stops, SIGINT);
    sigaddset(&stops, SIGTERM);
    sigaddset(&stops, SIGHUP);
    pthread_sigmask(SIG_UNBLOCK, &stops, NULL);
}
