/*
 * Ping-pong between two processes over POSIX unnamed semaphores (sem_t, pshared = 1) in a
 * MAP_SHARED | MAP_ANONYMOUS mapping: the baseline of bin/bench's cross-process rows.
 */
#include <errno.h>
#include <semaphore.h>
#include <stdio.h>
#include <stdlib.h>

struct channel {
    sem_t sem;
};

static void channel_init(struct channel *c) {
    if (sem_init(&c->sem, 1, 0) != 0) {
        perror("sem_init");
        exit(1);
    }
}

static void channel_post(struct channel *c) {
    if (sem_post(&c->sem) != 0) {
        perror("sem_post");
        exit(1);
    }
}

static void channel_wait(struct channel *c) {
    while (sem_wait(&c->sem) != 0) {
        if (errno != EINTR) {
            perror("sem_wait");
            exit(1);
        }
    }
}

#include "pingpong.h"
