// A bounded first-in-first-out queue of jobs with one worker thread that runs them in turn. The
// engine already spreads each forward over every core, so running two jobs at once would only
// make both slower; one worker keeps latency predictable and memory bounded.
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
#include <string>
#include <thread>

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

class JobQueue {
 public:
  // Runs a job to its images; throws pipeline::Cancelled when stopped, anything else to fail it.
  using Runner = std::function<std::vector<JobImage>(Job& job)>;

  // capacity: how many jobs may wait (the running one not counted). keep_finished: how many
  // finished jobs stay queryable by id before the oldest are forgotten.
  JobQueue(size_t capacity, Runner runner, Metrics& metrics, size_t keep_finished = 1000);
  ~JobQueue();  // cancels what waits, stops the running job, joins the worker

  // Cancels what waits and stops the running job; later submissions are refused.
  void shutdown();

  std::shared_ptr<Job> submit(JobSpec spec);  // throws QueueFull
  std::shared_ptr<Job> find(const std::string& id) const;
  // Queued: cancelled at once. Running: stopped before its next step. False when unknown.
  bool cancel(const std::string& id);
  // Stops the running job, if any (A1111's interrupt).
  void cancel_running();
  // Drops a finished job (one whose result was already handed over).
  void forget(const std::string& id);

  // 1 for the next job to run, 0 when not waiting.
  size_t position(const std::string& id) const;
  size_t depth() const;
  std::shared_ptr<Job> running() const;

 private:
  void work();
  void retire(const std::shared_ptr<Job>& job);  // mu_ held

  const size_t capacity_;
  const size_t keep_finished_;
  Runner runner_;
  Metrics& metrics_;
  mutable std::mutex mu_;
  std::condition_variable wake_;
  std::deque<std::shared_ptr<Job>> waiting_;
  std::shared_ptr<Job> running_;
  std::map<std::string, std::shared_ptr<Job>> jobs_;
  std::deque<std::string> finished_order_;
  uint64_t next_id_ = 1;
  bool stopping_ = false;
  std::thread worker_;
};

}  // namespace zflow::server
