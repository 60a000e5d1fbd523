/*
 * Fork-join over contiguous ranges with POSIX threads: [0, count) is cut into at most `threads` ranges of equal
 * size (to within one), the first runs on the calling thread, the others on threads started for this call and
 * joined before it returns. Kernels take milliseconds; starting a thread takes tens of microseconds.
 * The kernels using it give the same bits for any thread count: every output element is computed by one worker,
 * and sums that cross units (filter gradients, bias sums) keep one partial per fixed unit, added in unit order.
 */
#ifndef FBTS_PARALLEL_H
#define FBTS_PARALLEL_H

#include <stddef.h>

/* Work on [begin, end) as worker `worker`; returns 0, or -1 when it could not allocate its scratch memory. */
typedef int (*range_task)(void *context, size_t begin, size_t end, int worker);

/* Threads the kernels may use (1 .. PARALLEL_MAX_THREADS); 1 until set. */
#define PARALLEL_MAX_THREADS 64
void parallel_set_threads(int threads);
int parallel_threads(void);

/* Work (multiply-adds or elements touched) that pays for one more thread: starting and joining a thread costs tens
 * of microseconds, about 2M multiply-adds. Small tensors (e.g. a 20x20 demo model) stay on the calling thread.
 * Tests lower it to 1 to split even tiny problems. */
#define PARALLEL_DEFAULT_WORK_PER_THREAD ((size_t)2 << 20)
void parallel_set_work_per_thread(size_t work);

/* How many workers parallel_ranges will use for `count` units of `work` in all: never more than the units, the
 * configured threads, or one per PARALLEL_WORK_PER_THREAD of work. */
int parallel_workers(size_t count, size_t work);

/* Returns -1 when any range returned -1. A thread that cannot be started has its range run on the caller. */
int parallel_ranges(size_t count, size_t work, range_task task, void *context);

#endif
