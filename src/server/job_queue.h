// A bounded first-in-first-out queue of jobs with one worker thread that runs them in turn. The
// engine already spreads each forward over every core, so running two jobs at once would only
// make both slower; one worker keeps latency predictable and memory bounded.
//
// Joint runs: when a run starts, waiting jobs that can share its batched forwards (a Joiner says
// which) join it, up to a number of images. On a GPU a batch of four costs far less than four
// runs, so a busy server answers more requests; each job still gets exactly its own images. A
// joined job may overtake jobs that could not join, by at most the run it joins.
//
// Every submitted job ends in exactly one final state: completed, failed (the runner threw) or
// cancelled (before it started, or between steps). A full queue refuses the job instead
// (QueueFull, HTTP 429), so nothing is ever dropped silently.
#pragma once

#include <condition_variable>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <span>
#include <stop_token>
#include <string>
#include <thread>
#include <vector>

#include "core/error.h"
#include "server/job.h"
#include "server/metrics.h"

namespace zflow::server {

class QueueFull : public Error {
 public:
  explicit QueueFull(size_t capacity)
      : Error("[server] the queue is full (" + std::to_string(capacity) +
              " jobs waiting); retry later") {}
};

// Given the first job of a run, which waiting jobs may join it. Called by the queue's worker
// without the queue's lock (it may load a model); the predicate it returns is called with the
// lock held and must be quick. An exception means no job joins.
using JobJoiner = std::function<std::function<bool(const Job& other)>(const Job& first)>;
struct JobJoining {
  JobJoiner joiner;    // unset: every job runs alone
  int max_images = 1;  // the images (request.batch summed) one run may hold
};

class JobQueue {
 public:
  // Runs jobs to their images, one list per job in order, in one run, throwing
  // pipeline::Cancelled once `stop` is requested: when every job of the run has asked to stop (a
  // job that asked while others did not ends cancelled when the run ends). Anything else thrown
  // fails every job of the run.
  using Runner = std::function<std::vector<std::vector<JobImage>>(std::span<Job* const> jobs,
                                                                  std::stop_token stop)>;
  // capacity: how many jobs may wait (the running ones not counted). keep_finished: how many
  // finished jobs stay queryable by id before the oldest are forgotten.
  JobQueue(size_t capacity, Runner runner, Metrics& metrics, size_t keep_finished = 1000,
           JobJoining joining = {});
  ~JobQueue();  // cancels what waits, stops the running job, joins the worker

  // Cancels what waits and stops the running job; later submissions are refused.
  void shutdown();

  std::shared_ptr<Job> submit(JobSpec spec);  // throws QueueFull
  std::shared_ptr<Job> find(const std::string& id) const;
  // Queued: cancelled at once. Running: stopped before its next step (in a joint run with jobs
  // that go on, it ends cancelled when the run ends). False when unknown.
  bool cancel(const std::string& id);
  // Stops the running jobs, if any (A1111's interrupt).
  void cancel_running();
  // Drops a finished job (one whose result was already handed over).
  void forget(const std::string& id);

  // 1 for the next job to run, 0 when not waiting.
  size_t position(const std::string& id) const;
  size_t depth() const;
  // The first job of the run still running: a job that has finished (its waiter may already have
  // answered) while the worker has yet to retire it does not count.
  std::shared_ptr<Job> running() const;
  size_t running_count() const;  // the jobs of the run

 private:
  void work();
  // Adds to `run` (its first job already there) the waiting jobs the joiner lets join.
  void join(std::vector<std::shared_ptr<Job>>& run);
  void run_together(const std::vector<std::shared_ptr<Job>>& run);
  void retire(const std::shared_ptr<Job>& job);  // mu_ held

  const size_t capacity_;
  const size_t keep_finished_;
  Runner runner_;
  JobJoining joining_;
  Metrics& metrics_;
  mutable std::mutex mu_;
  std::condition_variable wake_;
  std::deque<std::shared_ptr<Job>> waiting_;
  std::vector<std::shared_ptr<Job>> running_;
  std::map<std::string, std::shared_ptr<Job>> jobs_;
  std::deque<std::string> finished_order_;
  uint64_t next_id_ = 1;
  bool stopping_ = false;
  std::thread worker_;
};

}  // namespace zflow::server
