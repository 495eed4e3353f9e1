/* A minimal reader of the kernel's BTF (/sys/kernel/btf/vmlinux): it finds
   a few named types and member offsets, nothing more. The format is in the
   kernel's Documentation/bpf/btf.rst.

   The file is 5 MB or more and sysfs hands it out 4 KiB per read, so it is
   streamed, never held whole: one pass over the string section finds the
   offsets of the names we want (types then compare integers, not strings),
   one pass over the type section records where each type starts (4 bytes
   per type), and the few types we follow are read back with pread. */
#include "btf_lookup.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/btf.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* The names looked up, and where each sits in the string section. */
enum {
    N_ITER_FUNC, N_ITER_META, N_FILE, N_INODE, N_TASK, /* types */
    N_SEQ, N_F_INODE, N_I_MODE, N_I_INO, N_TGID,      /* members */
    N_META, N_TASK_ARG, N_FD, N_FILE_ARG,             /* the iterator's arguments */
    N_COUNT
};
static const char *const wanted_names[N_COUNT] = {
    "bpf_iter_task_file", "bpf_iter_meta", "file", "inode", "task_struct",
    "seq", "f_inode", "i_mode", "i_ino", "tgid",
    "meta", "task", "fd", "file",
};

struct btf {
    int fd;
    uint64_t types_at, strings_at; /* file offsets of the sections */
    uint32_t types_len, strings_len;
    uint32_t *type_offset;         /* by id, within the type section; [0] unused (void) */
    uint32_t count;
    uint32_t name_at[N_COUNT];     /* UINT32_MAX: not found */
};

static int read_at(int fd, void *dst, size_t n, uint64_t at) {
    size_t got = 0;
    while (got < n) {
        ssize_t r = pread(fd, (char *)dst + got, n - got, (off_t)(at + got));
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) return -1;
        got += (size_t)r;
    }
    return 0;
}

/* Bytes after struct btf_type for each kind, or -1 for a kind this reader does not know. */
static long trailing(const struct btf_type *t) {
    uint32_t vlen = BTF_INFO_VLEN(t->info);
    switch (BTF_INFO_KIND(t->info)) {
    case BTF_KIND_INT: return 4;
    case BTF_KIND_PTR: case BTF_KIND_FWD: case BTF_KIND_TYPEDEF: case BTF_KIND_VOLATILE:
    case BTF_KIND_CONST: case BTF_KIND_RESTRICT: case BTF_KIND_FUNC: case BTF_KIND_FLOAT:
    case 18 /* TYPE_TAG */: return 0;
    case BTF_KIND_ARRAY: return sizeof(struct btf_array);
    case BTF_KIND_STRUCT: case BTF_KIND_UNION: return (long)vlen * sizeof(struct btf_member);
    case BTF_KIND_ENUM: return (long)vlen * sizeof(struct btf_enum);
    case BTF_KIND_FUNC_PROTO: return (long)vlen * sizeof(struct btf_param);
    case BTF_KIND_VAR: return sizeof(struct btf_var);
    case BTF_KIND_DATASEC: return (long)vlen * sizeof(struct btf_var_secinfo);
    case 17 /* DECL_TAG */: return 4;
    case 19 /* ENUM64 */: return (long)vlen * 12;
    default: return -1;
    }
}

/* Pass 1: the offset of each wanted name, a whole NUL-terminated string.
   memchr finds the ends (over 100,000 strings); only strings of a wanted
   length are compared. */
static int find_names(struct btf *b, uint8_t *buf, size_t cap) {
    uint32_t by_length[32] = {0};     /* bit i: wanted_names[i] has this length */
    for (int i = 0; i < N_COUNT; i++) {
        b->name_at[i] = UINT32_MAX;
        by_length[strlen(wanted_names[i])] |= 1u << i;
    }
    size_t carry = 0;                 /* bytes of an unfinished string kept at buf[0] */
    uint32_t base = 0;                /* section offset of buf[0] */
    while (base + carry < b->strings_len) {
        size_t n = b->strings_len - (base + carry);
        if (n > cap - carry) n = cap - carry;
        if (read_at(b->fd, buf + carry, n, b->strings_at + base + carry) != 0) return EIO;
        size_t have = carry + n, k = 0;
        for (;;) {
            uint8_t *end = memchr(buf + k, 0, have - k);
            if (!end) break;
            size_t len = (size_t)(end - (buf + k));
            for (uint32_t m = len < 32 ? by_length[len] : 0; m; m &= m - 1) {
                int i = __builtin_ctz(m);
                if (b->name_at[i] == UINT32_MAX && memcmp(buf + k, wanted_names[i], len) == 0) b->name_at[i] = base + (uint32_t)k;
            }
            k += len + 1;
        }
        /* Keep the unfinished string for the next read (BTF names are short). */
        size_t rest = have - k;
        if (rest > cap / 2) return EINVAL;
        memmove(buf, buf + k, rest);
        base += (uint32_t)k;
        carry = rest;
    }
    return 0;
}

/* Pass 2: where each type starts, and the ids of the wanted types. */
static int index_types(struct btf *b, uint8_t *buf, size_t cap, uint32_t ids[5], char *why, int why_len) {
    uint32_t alloc = 1 << 16;
    b->type_offset = malloc(alloc * sizeof *b->type_offset);
    if (!b->type_offset) return ENOMEM;
    b->count = 1;
    size_t have = 0, used = 0; /* bytes in buf, and how many of them are parsed */
    uint32_t base = 0;         /* section offset of buf[0] */
    uint32_t at = 0;           /* section offset of the next type */
    while (at + sizeof(struct btf_type) <= b->types_len) {
        if (have - used < sizeof(struct btf_type) + 4096 && base + have < b->types_len) {
            /* Refill: keep the unparsed tail, read as much as fits. */
            memmove(buf, buf + used, have - used);
            base += (uint32_t)used;
            have -= used;
            used = 0;
            size_t want = b->types_len - (base + have);
            if (want > cap - have) want = cap - have;
            if (read_at(b->fd, buf + have, want, b->types_at + base + have) != 0) return EIO;
            have += want;
        }
        if (have - used < sizeof(struct btf_type)) return EINVAL;
        struct btf_type t;
        memcpy(&t, buf + used, sizeof t);
        long extra = trailing(&t);
        if (extra < 0) { snprintf(why, why_len, "BTF kind %u is unknown to this reader", BTF_INFO_KIND(t.info)); return EINVAL; }
        if (b->count == alloc) {
            if (alloc >= (1u << 24)) return E2BIG;
            alloc *= 2;
            uint32_t *grown = realloc(b->type_offset, alloc * sizeof *grown);
            if (!grown) return ENOMEM;
            b->type_offset = grown;
        }
        uint32_t kind = BTF_INFO_KIND(t.info);
        if (t.name_off != 0 && (kind == BTF_KIND_FUNC || kind == BTF_KIND_STRUCT)) {
            for (int i = 0; i < 5; i++)
                if (!ids[i] && t.name_off == b->name_at[i] && (kind == BTF_KIND_FUNC) == (i == N_ITER_FUNC)) ids[i] = b->count;
        }
        b->type_offset[b->count++] = at;
        size_t size = sizeof t + (size_t)extra;
        at += (uint32_t)size;
        /* A record longer than what is buffered (a huge enum) is skipped by position. */
        if (used + size <= have) used += size;
        else { base = at; have = used = 0; }
    }
    return 0;
}

/* Reads type id (its btf_type and up to max_extra bytes after it). */
static int type_at(const struct btf *b, uint32_t id, struct btf_type *t, void *extra, size_t max_extra, size_t *extra_len) {
    if (id == 0 || id >= b->count) return -1;
    uint64_t at = b->types_at + b->type_offset[id];
    if (read_at(b->fd, t, sizeof *t, at) != 0) return -1;
    long n = trailing(t);
    if (n < 0) return -1;
    size_t len = (size_t)n < max_extra ? (size_t)n : max_extra;
    if (extra && len && read_at(b->fd, extra, len, at + sizeof *t) != 0) return -1;
    if (extra_len) *extra_len = len;
    return 0;
}

/* Follows typedefs and qualifiers to the type that has a size; *final is its id. */
static int resolve(const struct btf *b, uint32_t id, struct btf_type *t, uint32_t *final) {
    for (int hops = 0; hops < 32; hops++) {
        if (type_at(b, id, t, NULL, 0, NULL) != 0) return -1;
        switch (BTF_INFO_KIND(t->info)) {
        case BTF_KIND_TYPEDEF: case BTF_KIND_VOLATILE: case BTF_KIND_CONST: case BTF_KIND_RESTRICT: case 18:
            id = t->type; continue;
        default:
            if (final) *final = id;
            return 0;
        }
    }
    return -1;
}

static int size_of(const struct btf *b, uint32_t id) {
    struct btf_type t;
    if (resolve(b, id, &t, NULL) != 0) return -1;
    switch (BTF_INFO_KIND(t.info)) {
    case BTF_KIND_PTR: return 8;
    case BTF_KIND_INT: case BTF_KIND_ENUM: case 19: case BTF_KIND_STRUCT: case BTF_KIND_UNION: return (int)t.size;
    default: return -1;
    }
}

/* The byte offset and size of member `name` (a string offset) of struct or
   union `id`, looking inside anonymous structs and unions as C does.
   Bitfields are refused. */
static int member(const struct btf *b, uint32_t id, uint32_t name, int depth, int *offset, int *size) {
    struct btf_type t;
    uint32_t real;
    if (depth > 8 || resolve(b, id, &t, &real) != 0) return -1;
    uint32_t kind = BTF_INFO_KIND(t.info);
    if (kind != BTF_KIND_STRUCT && kind != BTF_KIND_UNION) return -1;
    uint32_t vlen = BTF_INFO_VLEN(t.info);
    struct btf_member *members = malloc((vlen ? vlen : 1) * sizeof *members);
    if (!members) return -1;
    int rc = -1;
    if (type_at(b, real, &t, members, vlen * sizeof *members, NULL) != 0) goto out;
    int bitfields = BTF_INFO_KFLAG(t.info);
    for (uint32_t i = 0; i < vlen && rc != 0; i++) {
        uint32_t bits = bitfields ? BTF_MEMBER_BIT_OFFSET(members[i].offset) : members[i].offset;
        if (members[i].name_off == 0) {
            int inner;
            if (bits % 8 == 0 && member(b, members[i].type, name, depth + 1, &inner, size) == 0) {
                *offset = (int)(bits / 8) + inner;
                rc = 0;
            }
        } else if (members[i].name_off == name) {
            if (bits % 8 != 0 || (bitfields && BTF_MEMBER_BITFIELD_SIZE(members[i].offset) != 0)) break;
            *offset = (int)(bits / 8);
            *size = size_of(b, members[i].type);
            rc = *size > 0 ? 0 : -1;
            break;
        }
    }
out:
    free(members);
    return rc;
}

int btf_task_file_layout(struct btf_layout *l, char *why, int why_len) {
    struct btf b;
    memset(&b, 0, sizeof b);
    memset(l, 0, sizeof l[0]);
    b.fd = open("/sys/kernel/btf/vmlinux", O_RDONLY | O_CLOEXEC);
    if (b.fd < 0) { int e = errno; snprintf(why, why_len, "/sys/kernel/btf/vmlinux: %s", strerror(e)); return e; }
    int rc = EINVAL;
    size_t cap = 256 << 10;
    uint8_t *buf = malloc(cap);
    struct btf_header h;
    if (!buf) { rc = ENOMEM; goto out; }
    if (read_at(b.fd, &h, sizeof h, 0) != 0 || h.magic != BTF_MAGIC || h.hdr_len < sizeof h) {
        snprintf(why, why_len, "/sys/kernel/btf/vmlinux is not BTF this reader understands");
        goto out;
    }
    b.types_at = (uint64_t)h.hdr_len + h.type_off;
    b.types_len = h.type_len;
    b.strings_at = (uint64_t)h.hdr_len + h.str_off;
    b.strings_len = h.str_len;
    if ((rc = find_names(&b, buf, cap)) != 0) { snprintf(why, why_len, "reading the BTF strings failed"); goto out; }
    uint32_t ids[5] = {0};
    if ((rc = index_types(&b, buf, cap, ids, why, why_len)) != 0) {
        if (!why[0]) snprintf(why, why_len, "reading the BTF types failed");
        goto out;
    }
    rc = ENOENT;
    l->iter_func_id = ids[N_ITER_FUNC];
    /* The context is the iterator function's arguments, 8 bytes each. */
    struct btf_type fn, proto;
    struct btf_param params[16];
    size_t plen = 0;
    if (!l->iter_func_id || type_at(&b, l->iter_func_id, &fn, NULL, 0, NULL) != 0 ||
        type_at(&b, fn.type, &proto, params, sizeof params, &plen) != 0 || BTF_INFO_KIND(proto.info) != BTF_KIND_FUNC_PROTO) {
        snprintf(why, why_len, "the kernel has no task_file BPF iterator (bpf_iter_task_file)");
        goto out;
    }
    l->ctx_meta = l->ctx_task = l->ctx_fd = l->ctx_file = -1;
    for (uint32_t i = 0; i < plen / sizeof params[0]; i++) {
        uint32_t n = params[i].name_off;
        if (n == b.name_at[N_META]) l->ctx_meta = (int)i * 8;
        else if (n == b.name_at[N_TASK_ARG]) l->ctx_task = (int)i * 8;
        else if (n == b.name_at[N_FD]) l->ctx_fd = (int)i * 8;
        else if (n == b.name_at[N_FILE_ARG]) l->ctx_file = (int)i * 8;
    }
    if (l->ctx_meta < 0 || l->ctx_task < 0 || l->ctx_fd < 0 || l->ctx_file < 0) {
        snprintf(why, why_len, "bpf_iter_task_file has unexpected arguments");
        goto out;
    }
    struct { int type, field; int *offset, *size; int want_size; } need[] = {
        { N_ITER_META, N_SEQ, &l->meta_seq, NULL, 8 },
        { N_FILE, N_F_INODE, &l->file_inode, NULL, 8 },
        { N_INODE, N_I_MODE, &l->inode_mode, &l->inode_mode_size, 0 },
        { N_INODE, N_I_INO, &l->inode_ino, &l->inode_ino_size, 0 },
        { N_TASK, N_TGID, &l->task_tgid, &l->task_tgid_size, 4 },
    };
    for (size_t i = 0; i < sizeof need / sizeof need[0]; i++) {
        int offset = 0, size = 0;
        uint32_t id = ids[need[i].type], name = b.name_at[need[i].field];
        if (!id || name == UINT32_MAX || member(&b, id, name, 0, &offset, &size) != 0 ||
            (need[i].want_size && size != need[i].want_size) || (size != 1 && size != 2 && size != 4 && size != 8) ||
            offset > 32767) {
            snprintf(why, why_len, "BTF: struct %s has no usable member %s", wanted_names[need[i].type], wanted_names[need[i].field]);
            goto out;
        }
        *need[i].offset = offset;
        if (need[i].size) *need[i].size = size;
    }
    rc = 0;
out:
    free(buf);
    free(b.type_offset);
    close(b.fd);
    return rc;
}
