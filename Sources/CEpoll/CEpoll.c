#define _GNU_SOURCE
#include "CEpoll.h"
#include <pthread.h>
#include <stddef.h>
#include <stdio.h>
#include <netinet/in.h>
#include <netinet/tcp.h>

int cepoll_accept(int listening) {
    int fd = accept4(listening, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd >= 0) {
        int one = 1;
        // Every response leaves in one write; nothing gains from waiting for an ACK.
        (void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    }
    return fd;
}

void cepoll_name_thread(const char *name) {
    char truncated[16];
    snprintf(truncated, sizeof truncated, "%s", name);
    (void)pthread_setname_np(pthread_self(), truncated);
}
