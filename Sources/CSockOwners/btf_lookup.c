/* A minimal reader of the kernel's BTF (/sys/kernel/btf/vmlinux): it finds
   a few named types and member offsets, nothing more. The format is in the
   kernel's Documentation/bpf/btf.rst. */
#include "btf_lookup.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/btf.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

struct btf {
    uint8_t *data;
    size_t size;
    const uint8_t *types, *strings;
    uint32_t types_len, strings_len;
    const struct btf_type **by_id; /* by_id[id]; id 0 is void */
    uint32_t count;
};

static const char *name_of(const struct btf *b, uint32_t off) {
    return off < b->strings_len ? (const char *)b->strings + off : "";
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

static int btf_open(struct btf *b, char *why, int why_len) {
    memset(b, 0, sizeof *b);
    int fd = open("/sys/kernel/btf/vmlinux", O_RDONLY | O_CLOEXEC);
    if (fd < 0) { int e = errno; snprintf(why, why_len, "/sys/kernel/btf/vmlinux: %s", strerror(e)); return e; }
    struct stat st;
    if (fstat(fd, &st) != 0 || st.st_size < (off_t)sizeof(struct btf_header) || st.st_size > (64 << 20)) {
        close(fd); snprintf(why, why_len, "/sys/kernel/btf/vmlinux has an unexpected size"); return EINVAL;
    }
    b->data = malloc((size_t)st.st_size);
    if (!b->data) { close(fd); return ENOMEM; }
    size_t got = 0;
    while (got < (size_t)st.st_size) {
        ssize_t n = read(fd, b->data + got, (size_t)st.st_size - got);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) break;
        got += (size_t)n;
    }
    close(fd);
    b->size = got;
    const struct btf_header *h = (const void *)b->data;
    if (got < sizeof *h || h->magic != BTF_MAGIC || h->hdr_len > got ||
        (uint64_t)h->hdr_len + h->type_off + h->type_len > got ||
        (uint64_t)h->hdr_len + h->str_off + h->str_len > got) {
        snprintf(why, why_len, "/sys/kernel/btf/vmlinux is not BTF this reader understands"); return EINVAL;
    }
    b->types = b->data + h->hdr_len + h->type_off;
    b->types_len = h->type_len;
    b->strings = b->data + h->hdr_len + h->str_off;
    b->strings_len = h->str_len;
    if (b->strings_len == 0 || b->strings[b->strings_len - 1] != 0) {
        snprintf(why, why_len, "BTF string section is not terminated"); return EINVAL;
    }
    /* Index the types: each record is a btf_type plus kind-dependent data. */
    uint32_t cap = 1 << 16;
    b->by_id = malloc(cap * sizeof *b->by_id);
    if (!b->by_id) return ENOMEM;
    b->by_id[0] = NULL;
    b->count = 1;
    for (uint32_t at = 0; at + sizeof(struct btf_type) <= b->types_len;) {
        const struct btf_type *t = (const void *)(b->types + at);
        long extra = trailing(t);
        if (extra < 0) { snprintf(why, why_len, "BTF kind %u is unknown to this reader", BTF_INFO_KIND(t->info)); return EINVAL; }
        if (b->count == cap) {
            if (cap >= (1u << 24)) return E2BIG;
            cap *= 2;
            const struct btf_type **grown = realloc(b->by_id, cap * sizeof *b->by_id);
            if (!grown) return ENOMEM;
            b->by_id = grown;
        }
        b->by_id[b->count++] = t;
        at += sizeof(struct btf_type) + (uint32_t)extra;
    }
    return 0;
}

static void btf_close(struct btf *b) { free(b->by_id); free(b->data); }

static const struct btf_type *type_at(const struct btf *b, uint32_t id) {
    return id > 0 && id < b->count ? b->by_id[id] : NULL;
}

/* The first type of each kind and name asked for, in one pass over all
   types (there are over 100,000): ids[i] stays 0 for a name not found. */
struct wanted { uint32_t kind; const char *name; uint32_t id; };

static void find_all(const struct btf *b, struct wanted *w, int count) {
    for (uint32_t id = 1; id < b->count; id++) {
        const struct btf_type *t = b->by_id[id];
        uint32_t kind = BTF_INFO_KIND(t->info);
        if (t->name_off == 0 || (kind != BTF_KIND_STRUCT && kind != BTF_KIND_FUNC)) continue;
        const char *n = name_of(b, t->name_off);
        for (int i = 0; i < count; i++)
            if (!w[i].id && w[i].kind == kind && strcmp(n, w[i].name) == 0) w[i].id = id;
    }
}

/* Follows typedefs and qualifiers to the type that has a size. */
static const struct btf_type *resolve(const struct btf *b, uint32_t id) {
    for (int hops = 0; hops < 32; hops++) {
        const struct btf_type *t = type_at(b, id);
        if (!t) return NULL;
        switch (BTF_INFO_KIND(t->info)) {
        case BTF_KIND_TYPEDEF: case BTF_KIND_VOLATILE: case BTF_KIND_CONST: case BTF_KIND_RESTRICT: case 18:
            id = t->type; continue;
        default: return t;
        }
    }
    return NULL;
}

static int size_of(const struct btf *b, uint32_t id) {
    const struct btf_type *t = resolve(b, id);
    if (!t) return -1;
    switch (BTF_INFO_KIND(t->info)) {
    case BTF_KIND_PTR: return 8;
    case BTF_KIND_INT: case BTF_KIND_ENUM: case 19: case BTF_KIND_STRUCT: case BTF_KIND_UNION: return (int)t->size;
    default: return -1;
    }
}

/* The byte offset and size of member `name` of struct/union `id`, looking
   inside anonymous structs and unions as C does. Bitfields are refused. */
static int member(const struct btf *b, uint32_t id, const char *name, int depth, int *offset, int *size) {
    const struct btf_type *t = resolve(b, id);
    if (!t || depth > 8) return -1;
    uint32_t kind = BTF_INFO_KIND(t->info);
    if (kind != BTF_KIND_STRUCT && kind != BTF_KIND_UNION) return -1;
    const struct btf_member *m = (const void *)(t + 1);
    int bitfields = BTF_INFO_KFLAG(t->info);
    for (uint32_t i = 0; i < BTF_INFO_VLEN(t->info); i++) {
        uint32_t bits = bitfields ? BTF_MEMBER_BIT_OFFSET(m[i].offset) : m[i].offset;
        const char *n = name_of(b, m[i].name_off);
        if (*n == 0) {
            int inner;
            if (member(b, m[i].type, name, depth + 1, &inner, size) == 0 && bits % 8 == 0) {
                *offset = (int)(bits / 8) + inner;
                return 0;
            }
        } else if (strcmp(n, name) == 0) {
            if (bits % 8 != 0 || (bitfields && BTF_MEMBER_BITFIELD_SIZE(m[i].offset) != 0)) return -1;
            *offset = (int)(bits / 8);
            *size = size_of(b, m[i].type);
            return *size > 0 ? 0 : -1;
        }
    }
    return -1;
}

int btf_task_file_layout(struct btf_layout *l, char *why, int why_len) {
    struct btf b;
    int rc = btf_open(&b, why, why_len);
    if (rc != 0) { btf_close(&b); return rc; }
    rc = ENOENT;
    memset(l, 0, sizeof *l);
    struct wanted w[] = {
        { BTF_KIND_FUNC, "bpf_iter_task_file", 0 }, { BTF_KIND_STRUCT, "bpf_iter_meta", 0 },
        { BTF_KIND_STRUCT, "file", 0 }, { BTF_KIND_STRUCT, "inode", 0 }, { BTF_KIND_STRUCT, "task_struct", 0 },
    };
    find_all(&b, w, 5);
    l->iter_func_id = w[0].id;
    const struct btf_type *fn = type_at(&b, l->iter_func_id);
    const struct btf_type *proto = fn ? type_at(&b, fn->type) : NULL;
    if (!proto || BTF_INFO_KIND(proto->info) != BTF_KIND_FUNC_PROTO) {
        snprintf(why, why_len, "the kernel has no task_file BPF iterator (bpf_iter_task_file)");
        goto out;
    }
    /* The context is the iterator function's arguments, 8 bytes each. */
    l->ctx_meta = l->ctx_task = l->ctx_fd = l->ctx_file = -1;
    const struct btf_param *p = (const void *)(proto + 1);
    for (uint32_t i = 0; i < BTF_INFO_VLEN(proto->info); i++) {
        const char *n = name_of(&b, p[i].name_off);
        if (strcmp(n, "meta") == 0) l->ctx_meta = (int)i * 8;
        else if (strcmp(n, "task") == 0) l->ctx_task = (int)i * 8;
        else if (strcmp(n, "fd") == 0) l->ctx_fd = (int)i * 8;
        else if (strcmp(n, "file") == 0) l->ctx_file = (int)i * 8;
    }
    if (l->ctx_meta < 0 || l->ctx_task < 0 || l->ctx_fd < 0 || l->ctx_file < 0) {
        snprintf(why, why_len, "bpf_iter_task_file has unexpected arguments");
        goto out;
    }
    struct { const struct wanted *type; const char *field; int *offset, *size; int want_size; } need[] = {
        { &w[1], "seq", &l->meta_seq, NULL, 8 },
        { &w[2], "f_inode", &l->file_inode, NULL, 8 },
        { &w[3], "i_mode", &l->inode_mode, &l->inode_mode_size, 0 },
        { &w[3], "i_ino", &l->inode_ino, &l->inode_ino_size, 0 },
        { &w[4], "tgid", &l->task_tgid, &l->task_tgid_size, 4 },
    };
    for (size_t i = 0; i < sizeof need / sizeof need[0]; i++) {
        int offset = 0, size = 0;
        uint32_t id = need[i].type->id;
        if (!id || member(&b, id, need[i].field, 0, &offset, &size) != 0 ||
            (need[i].want_size && size != need[i].want_size) || (size != 1 && size != 2 && size != 4 && size != 8) ||
            offset > 32767) {
            snprintf(why, why_len, "BTF: struct %s has no usable member %s", need[i].type->name, need[i].field);
            goto out;
        }
        *need[i].offset = offset;
        if (need[i].size) *need[i].size = size;
    }
    rc = 0;
out:
    btf_close(&b);
    return rc;
}
