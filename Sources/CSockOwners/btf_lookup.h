/* What the task_file iterator program needs from the running kernel's BTF:
   the iterator's type id and the offsets it reads, so that one program
   works across kernel versions without a compiler. */
#ifndef TCPCHECK_BTF_LOOKUP_H
#define TCPCHECK_BTF_LOOKUP_H

#include <stdint.h>

struct btf_layout {
    uint32_t iter_func_id;                 /* FUNC bpf_iter_task_file */
    int ctx_meta, ctx_task, ctx_fd, ctx_file; /* byte offsets in the program's context */
    int meta_seq;                          /* struct bpf_iter_meta.seq */
    int file_inode;                        /* struct file.f_inode */
    int inode_mode, inode_mode_size;       /* struct inode.i_mode */
    int inode_ino, inode_ino_size;         /* struct inode.i_ino */
    int task_tgid, task_tgid_size;         /* struct task_struct.tgid */
};

/* Fills layout from /sys/kernel/btf/vmlinux. Returns 0, or an errno with
   a reason in why. */
int btf_task_file_layout(struct btf_layout *layout, char *why, int why_len);

#endif
