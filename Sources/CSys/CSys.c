#define _GNU_SOURCE
#include "CSys.h"
#include <sched.h>
#include <sys/fsuid.h>

int csys_setns_net(int fd) { return setns(fd, CLONE_NEWNET); }

int csys_setfsuid(unsigned int uid) { return setfsuid(uid); }
