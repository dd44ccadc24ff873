#define _GNU_SOURCE
#include "CEpoll.h"
#include <pthread.h>
#include <stddef.h>
#include <stdio.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/uio.h>

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

ssize_t cepoll_send_two(int fd, const void *first, size_t first_length, const void *second, size_t second_length) {
    struct iovec parts[2] = {
        { .iov_base = (void *)first, .iov_len = first_length },
        { .iov_base = (void *)second, .iov_len = second_length },
    };
    struct msghdr message = { .msg_iov = parts, .msg_iovlen = 2 };
    return sendmsg(fd, &message, MSG_NOSIGNAL);
}
