#include "server/metrics.h"

#include <fmt/format.h>

#include <algorithm>

namespace zflow::server {

Histogram::Histogram(std::vector<double> upper_bounds)
    : bounds_(std::move(upper_bounds)), counts_(bounds_.size() + 1, 0) {}

void Histogram::observe(double value) {
  const size_t bucket = static_cast<size_t>(
      std::lower_bound(bounds_.begin(), bounds_.end(), value) - bounds_.begin());
  ++counts_[bucket];
  sum_ += value;
  ++count_;
}

std::string Histogram::render(const std::string& name) const {
  std::string out;
  uint64_t cumulative = 0;
  for (size_t i = 0; i < bounds_.size(); ++i) {
    cumulative += counts_[i];
    out += fmt::format("{}_bucket{{le=\"{}\"}} {}\n", name, bounds_[i], cumulative);
  }
  out += fmt::format("{}_bucket{{le=\"+Inf\"}} {}\n", name, count_);
  out += fmt::format("{}_sum {}\n{}_count {}\n", name, sum_, name, count_);
  return out;
}

// Steps take milliseconds on a GPU with a small model and minutes on a CPU with a large one.
Metrics::Metrics()
    : step_seconds_({0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120}),
      job_seconds_({0.1, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800}) {
  for (const char* s : {"completed", "failed", "cancelled", "rejected"}) jobs_by_state_[s] = 0;
}

void Metrics::job_finished(const std::string& state, double seconds) {
  std::lock_guard lock(mu_);
  ++jobs_by_state_[state];
  job_seconds_.observe(seconds);
}

void Metrics::job_rejected() {
  std::lock_guard lock(mu_);
  ++jobs_by_state_["rejected"];
}

void Metrics::run_started() {
  std::lock_guard lock(mu_);
  ++runs_;
}

void Metrics::step_finished(double seconds) {
  std::lock_guard lock(mu_);
  step_seconds_.observe(seconds);
}

void Metrics::request_served(int status) {
  std::lock_guard lock(mu_);
  ++responses_by_status_[status];
}

std::string Metrics::render(const Gauges& g) const {
  std::lock_guard lock(mu_);
  std::string out;
  const auto gauge = [&](const char* name, const char* help, uint64_t value) {
    out += fmt::format("# HELP {0} {1}\n# TYPE {0} gauge\n{0} {2}\n", name, help, value);
  };
  gauge("zflow_queue_depth", "Jobs waiting to run.", g.queue_depth);
  gauge("zflow_jobs_running", "Jobs running now.", g.jobs_running);
  gauge("zflow_models_loaded", "Models held in memory.", g.models_loaded);
  gauge("zflow_resident_memory_bytes", "Resident memory of the server process.", g.resident_bytes);
  out += "# HELP zflow_jobs_total Jobs by final state (rejected: refused with 429).\n";
  out += "# TYPE zflow_jobs_total counter\n";
  for (const auto& [state, n] : jobs_by_state_)
    out += fmt::format("zflow_jobs_total{{state=\"{}\"}} {}\n", state, n);
  out += "# HELP zflow_runs_total Runs of a model; jobs joined into one run count once.\n";
  out += fmt::format("# TYPE zflow_runs_total counter\nzflow_runs_total {}\n", runs_);
  out += "# HELP zflow_http_responses_total HTTP responses by status code.\n";
  out += "# TYPE zflow_http_responses_total counter\n";
  for (const auto& [status, n] : responses_by_status_)
    out += fmt::format("zflow_http_responses_total{{code=\"{}\"}} {}\n", status, n);
  out += "# HELP zflow_step_seconds Time of one denoising step.\n";
  out += "# TYPE zflow_step_seconds histogram\n";
  out += step_seconds_.render("zflow_step_seconds");
  out += "# HELP zflow_job_seconds Time from a job's start to its end.\n";
  out += "# TYPE zflow_job_seconds histogram\n";
  out += job_seconds_.render("zflow_job_seconds");
  return out;
}

}  // namespace zflow::server
