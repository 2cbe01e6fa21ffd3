#include "server/job.h"

namespace zflow::server {

const char* job_state_name(JobState state) {
  switch (state) {
    case JobState::Queued:
      return "queued";
    case JobState::Running:
      return "running";
    case JobState::Completed:
      return "completed";
    case JobState::Failed:
      return "failed";
    case JobState::Cancelled:
      return "cancelled";
  }
  return "unknown";
}

const char* output_format_name(OutputFormat format) {
  switch (format) {
    case OutputFormat::Png:
      return "png";
    case OutputFormat::Jpeg:
      return "jpeg";
    case OutputFormat::Webp:
      return "webp";
  }
  return "png";
}

const char* output_format_mime(OutputFormat format) {
  switch (format) {
    case OutputFormat::Png:
      return "image/png";
    case OutputFormat::Jpeg:
      return "image/jpeg";
    case OutputFormat::Webp:
      return "image/webp";
  }
  return "image/png";
}

JobStatus Job::status() const {
  std::lock_guard lock(mu_);
  JobStatus s = status_;
  const auto now = Clock::now();
  const auto seconds = [](auto d) { return std::chrono::duration<double>(d).count(); };
  s.queued_seconds = seconds(started_.value_or(now) - created_);
  s.run_seconds = started_ ? seconds(finished_.value_or(now) - *started_) : 0.0;
  return s;
}

JobStatus Job::wait_for_change(uint64_t seen, std::chrono::milliseconds timeout) const {
  {
    std::unique_lock lock(mu_);
    changed_.wait_for(lock, timeout, [&] { return status_.version > seen; });
  }
  return status();
}

JobStatus Job::wait_until_final() const {
  {
    std::unique_lock lock(mu_);
    changed_.wait(lock, [&] { return is_final(status_.state); });
  }
  return status();
}

void Job::set_running(int steps) {
  std::lock_guard lock(mu_);
  status_.state = JobState::Running;
  status_.steps = steps;
  started_ = Clock::now();
  touch();
}

void Job::set_progress(int step, int steps) {
  std::lock_guard lock(mu_);
  status_.step = step;
  status_.steps = steps;
  touch();
}

void Job::set_preview(std::string png) {
  std::lock_guard lock(mu_);
  status_.preview_png = std::move(png);
  touch();
}

void Job::finish(JobState state, std::vector<JobImage> images, std::string error,
                 int error_status) {
  std::lock_guard lock(mu_);
  if (is_final(status_.state)) return;
  status_.state = state;
  status_.images = std::move(images);
  status_.error = std::move(error);
  status_.error_status = error_status;
  const auto now = Clock::now();
  if (!started_) started_ = now;
  finished_ = now;
  touch();
}

void Job::touch() {
  ++status_.version;
  changed_.notify_all();
}

}  // namespace zflow::server
