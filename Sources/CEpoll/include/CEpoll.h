#ifndef PLEXOR_CEPOLL_H
#define PLEXOR_CEPOLL_H

// The Linux calls Swift's Glibc module leaves out: epoll, eventfd, accept4.
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/types.h>

/// Accepts one connection as a non-blocking, close-on-exec socket with
/// Nagle's algorithm off. Returns the descriptor, or -1 with errno set.
int cepoll_accept(int listening);

/// Sends two byte ranges as one (a response's head and its body, neither
/// copied), without SIGPIPE if the peer left. Returns the bytes sent, or -1
/// with errno set.
ssize_t cepoll_send_two(int fd, const void *first, size_t first_length, const void *second, size_t second_length);

/// Names the calling thread (as `top -H` and `perf` show it; 15 bytes kept).
void cepoll_name_thread(const char *name);

/// The epoll event flags as plain integers (Swift imports them as an enum).
static const unsigned int cepoll_in = EPOLLIN;
static const unsigned int cepoll_out = EPOLLOUT;
static const unsigned int cepoll_err = EPOLLERR;
static const unsigned int cepoll_hup = EPOLLHUP;
static const unsigned int cepoll_exclusive = EPOLLEXCLUSIVE;

#endif
