/*
 * Ping-pong between two processes over a bounded spin on an atomic word, then FUTEX_WAIT / FUTEX_WAKE
 * (shared futexes: the word lives in a MAP_SHARED | MAP_ANONYMOUS mapping). With both processes on their own
 * cores, a signal is seen while spinning and no system call is made: bin/bench's "hardware limit" row.
 *
 * The word: 0 = empty, 1 = posted, 2 = empty and the waiter sleeps (or is about to) in FUTEX_WAIT.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <linux/futex.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <unistd.h>

#define SPIN 1000

struct channel {
    atomic_int word;
};

static inline void cpu_relax(void) {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    __asm__ __volatile__("yield");
#endif
}

static void channel_init(struct channel *c) { atomic_store(&c->word, 0); }

static void channel_post(struct channel *c) {
    if (atomic_exchange(&c->word, 1) == 2 &&
        syscall(SYS_futex, &c->word, FUTEX_WAKE, 1, NULL, NULL, 0) < 0) {
        perror("FUTEX_WAKE");
        exit(1);
    }
}

static void channel_wait(struct channel *c) {
    for (int i = 0; i < SPIN; i++) {
        if (atomic_load_explicit(&c->word, memory_order_relaxed) == 1) {
            int posted = 1;
            if (atomic_compare_exchange_strong(&c->word, &posted, 0)) return;
        }
        cpu_relax();
    }
    for (;;) {
        int seen = 1;
        if (atomic_compare_exchange_strong(&c->word, &seen, 0)) return;
        if (seen == 0 && !atomic_compare_exchange_strong(&c->word, &seen, 2)) continue; /* posted meanwhile */
        if (syscall(SYS_futex, &c->word, FUTEX_WAIT, 2, NULL, NULL, 0) < 0 && errno != EAGAIN && errno != EINTR) {
            perror("FUTEX_WAIT");
            exit(1);
        }
    }
}

#include "pingpong.h"
