#include "server/job_queue.h"

#include <fmt/format.h>

#include <algorithm>
#include <random>

#include "core/log.h"
#include "pipeline/run_control.h"

namespace zflow::server {

namespace {

// Ids are unguessable, so one client cannot enumerate or cancel another's jobs by counting.
std::string new_job_id(uint64_t serial) {
  static thread_local std::mt19937_64 rng{std::random_device{}()};
  return fmt::format("job-{}-{:016x}", serial, rng());
}

}  // namespace

JobQueue::JobQueue(size_t capacity, Runner runner, Metrics& metrics, size_t keep_finished)
    : capacity_(capacity),
      keep_finished_(keep_finished),
      runner_(std::move(runner)),
      metrics_(metrics),
      worker_([this] { work(); }) {}

JobQueue::~JobQueue() {
  shutdown();
  worker_.join();
}

void JobQueue::shutdown() {
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
    for (auto& job : waiting_) job->finish(JobState::Cancelled, {}, "server shutting down");
    waiting_.clear();
    if (running_) running_->request_stop();
  }
  wake_.notify_all();
}

std::shared_ptr<Job> JobQueue::submit(JobSpec spec) {
  std::lock_guard lock(mu_);
  if (stopping_) fail("[server] shutting down; no new jobs");
  if (waiting_.size() >= capacity_) {
    metrics_.job_rejected();
    throw QueueFull(capacity_);
  }
  auto job = std::make_shared<Job>(new_job_id(next_id_++), std::move(spec));
  jobs_[job->id()] = job;
  waiting_.push_back(job);
  wake_.notify_one();
  return job;
}

std::shared_ptr<Job> JobQueue::find(const std::string& id) const {
  std::lock_guard lock(mu_);
  const auto it = jobs_.find(id);
  return it == jobs_.end() ? nullptr : it->second;
}

bool JobQueue::cancel(const std::string& id) {
  std::lock_guard lock(mu_);
  const auto it = jobs_.find(id);
  if (it == jobs_.end()) return false;
  const auto job = it->second;
  const auto queued = std::find(waiting_.begin(), waiting_.end(), job);
  if (queued != waiting_.end()) {
    waiting_.erase(queued);
    metrics_.job_finished("cancelled", 0.0);
    job->finish(JobState::Cancelled, {}, "cancelled before it started");
    retire(job);
  } else {
    job->request_stop();
  }
  return true;
}

void JobQueue::cancel_running() {
  std::lock_guard lock(mu_);
  if (running_) running_->request_stop();
}

void JobQueue::forget(const std::string& id) {
  std::lock_guard lock(mu_);
  const auto it = jobs_.find(id);
  if (it != jobs_.end() && is_final(it->second->status().state)) jobs_.erase(it);
}

size_t JobQueue::position(const std::string& id) const {
  std::lock_guard lock(mu_);
  for (size_t i = 0; i < waiting_.size(); ++i)
    if (waiting_[i]->id() == id) return i + 1;
  return 0;
}

size_t JobQueue::depth() const {
  std::lock_guard lock(mu_);
  return waiting_.size();
}

std::shared_ptr<Job> JobQueue::running() const {
  std::lock_guard lock(mu_);
  return running_;
}

void JobQueue::retire(const std::shared_ptr<Job>& job) {
  finished_order_.push_back(job->id());
  while (finished_order_.size() > keep_finished_) {
    jobs_.erase(finished_order_.front());
    finished_order_.pop_front();
  }
}

void JobQueue::work() {
  for (;;) {
    std::shared_ptr<Job> job;
    {
      std::unique_lock lock(mu_);
      wake_.wait(lock, [&] { return stopping_ || !waiting_.empty(); });
      if (stopping_) return;
      job = waiting_.front();
      waiting_.pop_front();
      running_ = job;
    }
    JobState state = JobState::Completed;
    std::vector<JobImage> images;
    std::string error;
    int error_status = 0;
    job->set_running(0);
    try {
      if (job->stop_token().stop_requested()) throw pipeline::Cancelled();
      images = runner_(*job);
    } catch (const pipeline::Cancelled&) {
      state = JobState::Cancelled;
      error = "cancelled";
    } catch (const RejectedByModel& e) {
      state = JobState::Failed;
      error = e.what();
      error_status = 422;
    } catch (const std::exception& e) {
      state = JobState::Failed;
      error = e.what();
      error_status = 500;
      log::warn("[server] job {} failed: {}", job->id(), error);
    }
    // Counted before the job is seen to end, so whoever waits on it finds the metrics current.
    metrics_.job_finished(job_state_name(state), job->status().run_seconds);
    job->finish(state, std::move(images), std::move(error), error_status);
    std::lock_guard lock(mu_);
    running_.reset();
    retire(job);
  }
}

}  // namespace zflow::server
