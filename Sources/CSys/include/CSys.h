/* Small system calls that Swift's Glibc module does not expose. */
#ifndef TCPCHECK_CSYS_H
#define TCPCHECK_CSYS_H

/* Moves the calling thread into the network namespace open at fd. */
int csys_setns_net(int fd);

#endif
