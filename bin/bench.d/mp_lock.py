"""Python's multiprocessing.Lock, for comparison in bin/bench (run as: python3 mp_lock.py N K RUNS).

Prints one JSON object: "lock_ns", RUNS samples of nanoseconds per uncontended acquire() + release()
(N iterations each), and "increment_ns", RUNS samples of nanoseconds per increment when 4 forked processes
each do K times `with lock: value.value += 1` on a shared Value (wall time from their common start until the
last one is done, over 4 * K increments), plus the Python version.
"""

import json
import multiprocessing as mp
import platform
import sys
import time

PROCESSES = 4


def uncontended(lock, n):
    start = time.perf_counter_ns()
    for _ in range(n):
        lock.acquire()
        lock.release()
    return (time.perf_counter_ns() - start) / n


def worker(index, k, lock, value, ready, go, ends):
    ready.release()
    go.wait()
    for _ in range(k):
        with lock:
            value.value += 1
    ends[index] = time.monotonic_ns()


def contended(ctx, k):
    lock = ctx.Lock()
    value = ctx.Value("q", 0, lock=False)
    ready = ctx.Semaphore(0)
    go = ctx.Event()
    ends = ctx.Array("q", PROCESSES, lock=False)
    procs = [ctx.Process(target=worker, args=(i, k, lock, value, ready, go, ends)) for i in range(PROCESSES)]
    for p in procs:
        p.start()
    for _ in procs:
        ready.acquire()
    start = time.monotonic_ns()
    go.set()
    for p in procs:
        p.join()
    if value.value != PROCESSES * k:
        sys.exit(f"lost updates: {value.value} != {PROCESSES * k}")
    return (max(ends) - start) / (PROCESSES * k)


def main():
    n, k, runs = (int(arg) for arg in sys.argv[1:4])
    ctx = mp.get_context("fork")
    lock = ctx.Lock()
    result = {
        "python": platform.python_version(),
        "lock_ns": [uncontended(lock, n) for _ in range(runs)],
        "increment_ns": [contended(ctx, k) for _ in range(runs)],
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
