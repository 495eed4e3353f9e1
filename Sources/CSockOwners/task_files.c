/* The BPF task_file iterator behind cso_socket_fds. The program is built
   here, instruction by instruction, from offsets read in the kernel's BTF;
   see btf_lookup.c. */
#include "CSockOwners.h"
#include "btf_lookup.h"

#include <errno.h>
#include <linux/bpf.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

static long sys_bpf(int cmd, union bpf_attr *attr) {
    return syscall(SYS_bpf, cmd, attr, sizeof *attr);
}

#define INSN(c, d, s, o, i) ((struct bpf_insn){ .code = (c), .dst_reg = (d), .src_reg = (s), .off = (o), .imm = (i) })
#define LDX(size, dst, src, off) INSN(BPF_LDX | BPF_MEM | (size), dst, src, off, 0)
#define STX(size, dst, src, off) INSN(BPF_STX | BPF_MEM | (size), dst, src, off, 0)
#define MOV_REG(dst, src) INSN(BPF_ALU64 | BPF_MOV | BPF_X, dst, src, 0, 0)
#define MOV_IMM(dst, imm) INSN(BPF_ALU64 | BPF_MOV | BPF_K, dst, 0, 0, imm)
#define AND_IMM(dst, imm) INSN(BPF_ALU64 | BPF_AND | BPF_K, dst, 0, 0, imm)
#define ADD_IMM(dst, imm) INSN(BPF_ALU64 | BPF_ADD | BPF_K, dst, 0, 0, imm)
#define JEQ_IMM(dst, imm, to) INSN(BPF_JMP | BPF_JEQ | BPF_K, dst, 0, to, imm)
#define JNE_IMM(dst, imm, to) INSN(BPF_JMP | BPF_JNE | BPF_K, dst, 0, to, imm)
#define CALL(helper) INSN(BPF_JMP | BPF_CALL, 0, 0, 0, helper)
#define EXIT() INSN(BPF_JMP | BPF_EXIT, 0, 0, 0, 0)

static int load_size(int bytes) {
    return bytes == 8 ? BPF_DW : bytes == 4 ? BPF_W : bytes == 2 ? BPF_H : BPF_B;
}

/* For each (task, fd, file) the iterator visits: when the file is a socket,
   write {u64 inode, u32 tgid, u32 fd} to the iterator's output. */
static int build_program(const struct btf_layout *l, struct bpf_insn *p) {
    int n = 0;
    enum { OUT = 22 }; /* index of the "return 0" below */
    p[n++] = MOV_REG(6, 1);                                    /* r6 = ctx */
    p[n++] = LDX(BPF_DW, 7, 6, l->ctx_file);                   /* r7 = ctx->file */
    p[n] = JEQ_IMM(7, 0, OUT - (n + 1)); n++;                  /* the last call has no file */
    p[n++] = LDX(BPF_DW, 8, 6, l->ctx_task);                   /* r8 = ctx->task */
    p[n] = JEQ_IMM(8, 0, OUT - (n + 1)); n++;
    p[n++] = LDX(BPF_DW, 2, 7, l->file_inode);                 /* r2 = file->f_inode */
    p[n] = JEQ_IMM(2, 0, OUT - (n + 1)); n++;
    p[n++] = LDX(load_size(l->inode_mode_size), 3, 2, l->inode_mode);
    p[n++] = AND_IMM(3, S_IFMT);
    p[n] = JNE_IMM(3, S_IFSOCK, OUT - (n + 1)); n++;           /* sockets only */
    p[n++] = LDX(load_size(l->inode_ino_size), 4, 2, l->inode_ino);
    p[n++] = LDX(BPF_W, 5, 8, l->task_tgid);
    p[n++] = LDX(BPF_W, 0, 6, l->ctx_fd);
    p[n++] = STX(BPF_DW, 10, 4, -16);
    p[n++] = STX(BPF_W, 10, 5, -8);
    p[n++] = STX(BPF_W, 10, 0, -4);
    p[n++] = LDX(BPF_DW, 1, 6, l->ctx_meta);                   /* r1 = ctx->meta->seq */
    p[n++] = LDX(BPF_DW, 1, 1, l->meta_seq);
    p[n++] = MOV_REG(2, 10);
    p[n++] = ADD_IMM(2, -16);
    p[n++] = MOV_IMM(3, 16);
    p[n++] = CALL(BPF_FUNC_seq_write);
    if (n != OUT) return -1;
    p[n++] = MOV_IMM(0, 0);
    p[n++] = EXIT();
    return n;
}

static int fail(struct cso_result *r, const char *stage, int error) {
    r->stage = stage;
    r->error = error ? error : EINVAL;
    return -1;
}

/* The verifier's last non-empty line: the reason it gave. */
static void last_line(const char *log, char *out, size_t out_len) {
    size_t len = strnlen(log, 65536);
    while (len > 0 && (log[len - 1] == '\n' || log[len - 1] == ' ')) len--;
    size_t start = len;
    while (start > 0 && log[start - 1] != '\n') start--;
    snprintf(out, out_len, "verifier: %.*s", (int)(len - start), log + start);
}

static int load_program(const struct btf_layout *l, struct cso_result *r) {
    struct bpf_insn insns[32];
    int count = build_program(l, insns);
    if (count < 0) { snprintf(r->detail, sizeof r->detail, "program layout"); return -EINVAL; }
    static const char license[] = "Dual MIT/GPL"; /* bpf_seq_write is a GPL-only helper */
    for (int attempt = 0; attempt < 2; attempt++) {
        /* The second attempt only collects the verifier's reason. */
        char *log = attempt ? calloc(1, 65536) : NULL;
        union bpf_attr a;
        memset(&a, 0, sizeof a);
        a.prog_type = BPF_PROG_TYPE_TRACING;
        a.expected_attach_type = BPF_TRACE_ITER;
        a.attach_btf_id = l->iter_func_id;
        a.insn_cnt = (uint32_t)count;
        a.insns = (uint64_t)(uintptr_t)insns;
        a.license = (uint64_t)(uintptr_t)license;
        memcpy(a.prog_name, "tcpcheck_owners", 15);
        if (log) { a.log_level = 1; a.log_buf = (uint64_t)(uintptr_t)log; a.log_size = 65536; }
        long fd = sys_bpf(BPF_PROG_LOAD, &a);
        int e = errno;
        if (fd >= 0 && !attempt) return (int)fd;
        if (fd >= 0) close((int)fd);
        if (log) { if (log[0]) last_line(log, r->detail, sizeof r->detail); free(log); }
        if (attempt || (e != EINVAL && e != EACCES)) return -e;
    }
    return -EINVAL;
}

/* The layout does not change while the kernel runs: read the BTF once per
   process (a run may list owners several times). */
static int cached_layout(struct btf_layout *out, char *why, int why_len) {
    static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
    static struct btf_layout layout;
    static int have;
    pthread_mutex_lock(&lock);
    int e = 0;
    if (!have) {
        e = btf_task_file_layout(&layout, why, why_len);
        have = e == 0;
    }
    if (have) *out = layout;
    pthread_mutex_unlock(&lock);
    return e;
}

int cso_socket_fds(struct cso_result *r, long max_entries) {
    memset(r, 0, sizeof *r);
    struct btf_layout layout;
    int e = cached_layout(&layout, r->detail, sizeof r->detail);
    if (e) return fail(r, "btf", e);

    int prog = load_program(&layout, r);
    if (prog < 0) return fail(r, "load", -prog);

    union bpf_attr a;
    memset(&a, 0, sizeof a);
    a.link_create.prog_fd = (uint32_t)prog;
    a.link_create.attach_type = BPF_TRACE_ITER;
    int link = (int)sys_bpf(BPF_LINK_CREATE, &a);
    e = errno;
    close(prog);
    if (link < 0) return fail(r, "link", e);

    memset(&a, 0, sizeof a);
    a.iter_create.link_fd = (uint32_t)link;
    int iter = (int)sys_bpf(BPF_ITER_CREATE, &a);
    e = errno;
    close(link);
    if (iter < 0) return fail(r, "iterate", e);

    /* A socket of our own, to check that the program read the right fields. */
    int probe = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    struct stat probe_stat;
    if (probe < 0 || fstat(probe, &probe_stat) != 0) { e = errno; close(iter); if (probe >= 0) close(probe); return fail(r, "self-check", e); }

    size_t cap = 4096, used = 0; /* in bytes */
    uint8_t *buf = malloc(cap);
    e = buf ? 0 : ENOMEM;
    size_t limit = (size_t)(max_entries > 0 ? max_entries : 1) * sizeof(struct cso_entry);
    for (int reads = 0; !e && reads < 1000000; reads++) {
        if (cap - used < 65536) {
            if (cap >= limit + 65536) { e = E2BIG; snprintf(r->detail, sizeof r->detail, "more than %ld socket descriptors", max_entries); break; }
            size_t grown_cap = cap * 2;
            uint8_t *grown = realloc(buf, grown_cap);
            if (!grown) { e = ENOMEM; break; }
            buf = grown; cap = grown_cap;
        }
        ssize_t n = read(iter, buf + used, cap - used);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) { e = errno; break; }
        if (n == 0) break;
        used += (size_t)n;
    }
    close(iter);
    if (!e && used % sizeof(struct cso_entry) != 0) { e = EPROTO; snprintf(r->detail, sizeof r->detail, "output of %zu bytes is not whole records", used); }
    if (e) { free(buf); close(probe); return fail(r, "iterate", e); }

    struct cso_entry *entries = (struct cso_entry *)buf;
    long count = (long)(used / sizeof *entries), kept = 0;
    int seen_probe = 0;
    uint32_t self = (uint32_t)getpid();
    for (long i = 0; i < count; i++) {
        if (entries[i].pid == self && entries[i].fd == (uint32_t)probe) {
            seen_probe = entries[i].inode == (uint64_t)probe_stat.st_ino;
            continue;
        }
        entries[kept++] = entries[i];
    }
    close(probe);
    if (!seen_probe) {
        free(buf);
        /* In a child pid namespace tgid is the host's number: /proc is right there. */
        snprintf(r->detail, sizeof r->detail, "the iterator did not report this process's own socket as expected");
        return fail(r, "self-check", EPROTO);
    }
    r->entries = entries;
    r->count = kept;
    return 0;
}

void cso_free(struct cso_result *r) {
    free(r->entries);
    r->entries = NULL;
    r->count = 0;
}
