/* Socket owners from the kernel in one pass: a BPF task_file iterator
   reports (inode, pid, fd) for every socket descriptor of every process.
   It replaces one readlink of /proc/PID/fd/N per descriptor (~3 us each),
   which dominates `ss -p` on a busy host. Nothing is attached to any hook:
   the program runs only while the iterator is read, then is unloaded.
   Needs CAP_BPF and CAP_PERFMON (root) and kernel BTF; callers fall back
   to the /proc scan on any failure. */
#ifndef TCPCHECK_CSOCKOWNERS_H
#define TCPCHECK_CSOCKOWNERS_H

#include <stdint.h>

struct cso_entry {
    uint64_t inode;
    uint32_t pid;   /* the thread group id as the kernel numbers it */
    uint32_t fd;
};

struct cso_result {
    struct cso_entry *entries; /* malloc'd; free with cso_free */
    long count;
    int error;                 /* 0, or the errno of the failing stage */
    const char *stage;         /* which stage failed: "btf", "load", "link", "iterate", "self-check" */
    char detail[160];          /* a short reason (BTF name missing, verifier's last line) */
};

/* Lists every socket descriptor of every process, at most max_entries of
   them. Returns 0 on success, -1 with result->error and stage set. */
int cso_socket_fds(struct cso_result *result, long max_entries);
void cso_free(struct cso_result *result);

#endif
