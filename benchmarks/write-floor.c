/*
 * The kernel's floor under a fan-out: CPU time the sender pays for one
 * write() of a small response to each of N loopback TCP connections whose
 * client end waits in epoll in another process (as parked long-poll clients
 * do). No server can answer N parked polls for less than N of these.
 *
 * Usage: write-floor N BYTES   (prints three rounds)
 */
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

enum { ROUNDS = 3, PORT = 18777 };

static double cpu_seconds(void) {
    struct rusage usage;
    getrusage(RUSAGE_SELF, &usage);
    return usage.ru_utime.tv_sec + usage.ru_utime.tv_usec / 1e6 + usage.ru_stime.tv_sec + usage.ru_stime.tv_usec / 1e6;
}

static double wall_seconds(void) {
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return now.tv_sec + now.tv_nsec / 1e9;
}

/* The clients: every connection in one epoll set, each response read as it arrives. */
static void run_clients(const int *clients, int count, int ready_fd) {
    int epoll = epoll_create1(0);
    for (int i = 0; i < count; i++) {
        struct epoll_event event = {.events = EPOLLIN, .data.fd = clients[i]};
        epoll_ctl(epoll, EPOLL_CTL_ADD, clients[i], &event);
    }
    if (write(ready_fd, "r", 1) != 1) _exit(1);
    struct epoll_event events[256];
    char response[4096];
    for (long received = 0; received < (long)ROUNDS * count;) {
        int ready = epoll_wait(epoll, events, 256, 10000);
        if (ready <= 0) break;
        for (int i = 0; i < ready; i++)
            if (read(events[i].data.fd, response, sizeof response) > 0) received++;
    }
    _exit(0);
}

int main(int argc, char **argv) {
    if (argc != 3) {
        fprintf(stderr, "usage: %s CONNECTIONS BYTES\n", argv[0]);
        return 2;
    }
    int count = atoi(argv[1]), size = atoi(argv[2]), one = 1;
    int listener = socket(AF_INET, SOCK_STREAM, 0);
    setsockopt(listener, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in address = {.sin_family = AF_INET, .sin_port = htons(PORT), .sin_addr.s_addr = htonl(0x7f000001)};
    if (bind(listener, (struct sockaddr *)&address, sizeof address) || listen(listener, 4096)) {
        perror("listen");
        return 1;
    }
    int *clients = malloc(count * sizeof(int)), *servers = malloc(count * sizeof(int));
    for (int i = 0; i < count; i++) {
        clients[i] = socket(AF_INET, SOCK_STREAM, 0);
        /* Spread over 127.0.0.2.. so one address's ephemeral ports do not run out. */
        struct sockaddr_in source = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(0x7f000002 + i % 8)};
        bind(clients[i], (struct sockaddr *)&source, sizeof source);
        if (connect(clients[i], (struct sockaddr *)&address, sizeof address)) {
            perror("connect");
            return 1;
        }
        servers[i] = accept(listener, NULL, NULL);
        setsockopt(servers[i], IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    }
    int ready[2];
    if (pipe(ready)) return 1;
    pid_t child = fork();
    if (child == 0) run_clients(clients, count, ready[1]);
    char signal;
    if (read(ready[0], &signal, 1) != 1) return 1;

    char *response = malloc(size);
    memset(response, 'x', size);
    for (int round = 1; round <= ROUNDS; round++) {
        usleep(300000); /* the clients are back in epoll_wait */
        double cpu = cpu_seconds(), wall = wall_seconds();
        for (int i = 0; i < count; i++)
            if (write(servers[i], response, size) != size) {
                perror("write");
                return 1;
            }
        cpu = cpu_seconds() - cpu;
        wall = wall_seconds() - wall;
        printf("write-floor round %d: %.2f us CPU per write (%d writes of %d bytes in %.1f ms)\n",
               round, cpu / count * 1e6, count, size, wall * 1e3);
    }
    fflush(stdout);
    waitpid(child, NULL, 0);
    return 0;
}
