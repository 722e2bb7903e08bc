/*
 * Harness shared by the ping-pong programs of bin/bench (compiled at bench time with gcc -O2; never committed).
 *
 * The including file defines `struct channel` (a one-slot signal that lives in shared memory) and
 *   static void channel_init(struct channel *c);   // empty
 *   static void channel_post(struct channel *c);   // signal the other process
 *   static void channel_wait(struct channel *c);   // wait for (and consume) a signal
 * then includes this header, which supplies main().
 *
 * Usage: PROGRAM round_trips runs
 * For each run, a forked child answers every "ping" with a "pong"; the parent times `round_trips` round trips
 * (post ping, wait pong) after a warm-up, and prints one line: nanoseconds per round trip.
 */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <signal.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define WARMUP 1000L

struct pair {
    struct channel ping;
    char pad1[128 - sizeof(struct channel) % 128]; /* keep the two channels on different cache lines */
    struct channel pong;
    char pad2[128 - sizeof(struct channel) % 128];
};

static long long now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

int main(int argc, char **argv) {
    if (argc != 3) {
        fprintf(stderr, "usage: %s round_trips runs\n", argv[0]);
        return 2;
    }
    long n = atol(argv[1]);
    int runs = atoi(argv[2]);
    if (n < 1 || runs < 1) {
        fprintf(stderr, "%s: round_trips and runs must be positive\n", argv[0]);
        return 2;
    }
    struct pair *p = mmap(NULL, sizeof(struct pair), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) {
        perror("mmap");
        return 1;
    }
    pid_t parent = getpid();
    for (int run = 0; run < runs; run++) {
        channel_init(&p->ping);
        channel_init(&p->pong);
        pid_t pid = fork();
        if (pid < 0) {
            perror("fork");
            return 1;
        }
        if (pid == 0) {
            prctl(PR_SET_PDEATHSIG, SIGKILL); /* never outlive a parent killed by bin/bench's deadline */
            if (getppid() != parent) _exit(1);
            for (long i = 0; i < WARMUP + n; i++) {
                channel_wait(&p->ping);
                channel_post(&p->pong);
            }
            _exit(0);
        }
        for (long i = 0; i < WARMUP; i++) {
            channel_post(&p->ping);
            channel_wait(&p->pong);
        }
        long long start = now_ns();
        for (long i = 0; i < n; i++) {
            channel_post(&p->ping);
            channel_wait(&p->pong);
        }
        long long elapsed = now_ns() - start;
        int status;
        if (waitpid(pid, &status, 0) != pid || !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
            fprintf(stderr, "%s: child failed\n", argv[0]);
            return 1;
        }
        printf("%.1f\n", (double)elapsed / (double)n);
        fflush(stdout);
    }
    return 0;
}
