/* See parallel.h. */
#include "parallel.h"

#include <pthread.h>

static int configured_threads = 1;
static size_t work_per_thread = PARALLEL_DEFAULT_WORK_PER_THREAD;

void parallel_set_work_per_thread(size_t work) { work_per_thread = work < 1 ? 1 : work; }

void parallel_set_threads(int threads) {
  configured_threads = threads < 1 ? 1 : threads > PARALLEL_MAX_THREADS ? PARALLEL_MAX_THREADS : threads;
}

int parallel_threads(void) { return configured_threads; }

int parallel_workers(size_t count, size_t work) {
  size_t workers = (size_t)configured_threads;
  if (count < workers) workers = count;
  if (work / work_per_thread < workers) workers = work / work_per_thread;
  return workers < 1 ? 1 : (int)workers;
}

typedef struct {
  range_task task;
  void *context;
  size_t begin, end;
  int worker, status;
} range_job;

static void *run_job(void *argument) {
  range_job *job = (range_job *)argument;
  job->status = job->task(job->context, job->begin, job->end, job->worker);
  return NULL;
}

int parallel_ranges(size_t count, size_t work, range_task task, void *context) {
  const int workers = parallel_workers(count, work);
  range_job jobs[PARALLEL_MAX_THREADS];
  pthread_t threads[PARALLEL_MAX_THREADS];
  int started[PARALLEL_MAX_THREADS] = {0};
  for (int w = 0; w < workers; w++) {
    jobs[w] = (range_job){task, context, count * w / workers, count * (w + 1) / workers, w, 0};
  }
  for (int w = 1; w < workers; w++) started[w] = pthread_create(&threads[w], NULL, run_job, &jobs[w]) == 0;
  run_job(&jobs[0]);
  int status = jobs[0].status;
  for (int w = 1; w < workers; w++) {
    if (started[w]) {
      pthread_join(threads[w], NULL);
    } else {
      run_job(&jobs[w]);
    }
    if (jobs[w].status != 0) status = -1;
  }
  return status;
}
