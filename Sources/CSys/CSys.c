#define _GNU_SOURCE
#include "CSys.h"
#include <sched.h>

int csys_setns_net(int fd) { return setns(fd, CLONE_NEWNET); }
