// The server's counters in Prometheus' text exposition format (version 0.0.4): queue depth, jobs
// by final state, runs (jobs per run: how much joining saves), step and job latency histograms,
// and memory in use.
#pragma once

#include <cstdint>
#include <map>
#include <mutex>
#include <string>
#include <vector>

namespace zflow::server {

// A cumulative histogram with fixed upper bounds (seconds), as Prometheus expects.
class Histogram {
 public:
  explicit Histogram(std::vector<double> upper_bounds);
  void observe(double value);
  // The metric's _bucket, _sum and _count lines.
  std::string render(const std::string& name) const;

 private:
  std::vector<double> bounds_;
  std::vector<uint64_t> counts_;  // per bucket, not cumulative; one more for +Inf
  double sum_ = 0;
  uint64_t count_ = 0;
};

// What /metrics reads at scrape time rather than counting.
struct Gauges {
  size_t queue_depth = 0;
  size_t jobs_running = 0;
  size_t models_loaded = 0;
  uint64_t resident_bytes = 0;
};

class Metrics {
 public:
  Metrics();
  void job_finished(const std::string& state, double seconds);  // completed/failed/cancelled
  void job_rejected();                                          // queue full (HTTP 429)
  void run_started();  // a run of the model, for one job or several joined
  void step_finished(double seconds);
  void request_served(int status);

  std::string render(const Gauges& gauges) const;

 private:
  mutable std::mutex mu_;
  std::map<std::string, uint64_t> jobs_by_state_;
  std::map<int, uint64_t> responses_by_status_;
  uint64_t runs_ = 0;
  Histogram step_seconds_;
  Histogram job_seconds_;
};

}  // namespace zflow::server
