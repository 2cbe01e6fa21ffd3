#include "server/job_queue.h"

#include <fmt/format.h>

#include <algorithm>
#include <atomic>
#include <memory>
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

JobQueue::JobQueue(size_t capacity, Runner runner, Metrics& metrics, size_t keep_finished,
                   JobJoining joining)
    : capacity_(capacity),
      keep_finished_(keep_finished),
      runner_(std::move(runner)),
      joining_(std::move(joining)),
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
    for (auto& job : running_) job->request_stop();
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
  for (auto& job : running_) job->request_stop();
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
  for (const auto& job : running_)
    if (!is_final(job->status().state)) return job;
  return nullptr;
}

size_t JobQueue::running_count() const {
  std::lock_guard lock(mu_);
  return running_.size();
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
    std::vector<std::shared_ptr<Job>> run;
    {
      std::unique_lock lock(mu_);
      wake_.wait(lock, [&] { return stopping_ || !waiting_.empty(); });
      if (stopping_) return;
      run.push_back(waiting_.front());
      waiting_.pop_front();
      running_ = run;
    }
    run.front()->set_running(0);
    join(run);
    run_together(run);
    std::lock_guard lock(mu_);
    running_.clear();
    for (const auto& job : run) retire(job);
  }
}

void JobQueue::join(std::vector<std::shared_ptr<Job>>& run) {
  const Job& first = *run.front();
  int images = first.spec().request.batch;
  if (!joining_.joiner || images >= joining_.max_images) return;
  std::function<bool(const Job&)> fits;
  try {
    fits = joining_.joiner(first);
  } catch (const std::exception& e) {
    log::warn("[server] job {}: no job can join it: {}", first.id(), e.what());
    return;
  }
  if (!fits) return;
  std::lock_guard lock(mu_);
  for (auto it = waiting_.begin(); it != waiting_.end() && images < joining_.max_images;) {
    const int n = (*it)->spec().request.batch;
    if (images + n > joining_.max_images || !fits(**it)) {
      ++it;
      continue;
    }
    images += n;
    (*it)->set_running(0);
    run.push_back(*it);
    running_.push_back(*it);
    it = waiting_.erase(it);
  }
  if (run.size() > 1) log::info("[server] job {}: {} jobs run together", first.id(), run.size());
}

void JobQueue::run_together(const std::vector<std::shared_ptr<Job>>& run) {
  std::vector<Job*> jobs;
  for (const auto& job : run) jobs.push_back(job.get());
  JobState state = JobState::Completed;
  std::vector<std::vector<JobImage>> images;
  std::string error;
  int error_status = 0;
  // The run stops once every job has asked to.
  std::stop_source run_stop;
  std::atomic<size_t> stopped{0};
  using OnStop = std::stop_callback<std::function<void()>>;
  std::vector<std::unique_ptr<OnStop>> on_stop;
  for (Job* job : jobs)
    on_stop.push_back(std::make_unique<OnStop>(job->stop_token(), [&] {
      if (++stopped == jobs.size()) run_stop.request_stop();
    }));
  try {
    if (run_stop.stop_requested()) throw pipeline::Cancelled();
    metrics_.run_started();
    images = runner_(jobs, run_stop.get_token());
    if (images.size() != jobs.size())
      fail("[server] the runner returned images for {} jobs, not {}", images.size(), jobs.size());
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
    log::warn("[server] job {} failed: {}", run.front()->id(), error);
  }
  for (size_t i = 0; i < run.size(); ++i) {
    Job& job = *run[i];
    // A job of a joint run that asked to stop while the others went on.
    const bool dropped = state == JobState::Completed && job.stop_token().stop_requested();
    const JobState final_state = dropped ? JobState::Cancelled : state;
    // Counted before the job is seen to end, so whoever waits on it finds the metrics current.
    metrics_.job_finished(job_state_name(final_state), job.status().run_seconds);
    if (final_state == JobState::Completed)
      job.finish(final_state, std::move(images[i]), "");
    else
      job.finish(final_state, {}, dropped ? "cancelled" : error, error_status);
  }
}

}  // namespace zflow::server
