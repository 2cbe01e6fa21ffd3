// Prometheus text format: cumulative histogram buckets, +Inf equal to the count, labelled
// counters. Values worked out by hand from the observations.
#include <gtest/gtest.h>

#include "server/metrics.h"

namespace zflow::server {
namespace {

TEST(Metrics, HistogramBucketsAreCumulative) {
  Histogram h({0.1, 1, 10});
  for (double v : {0.05, 0.1, 0.5, 5.0, 50.0}) h.observe(v);
  EXPECT_EQ(h.render("t"),
            "t_bucket{le=\"0.1\"} 2\n"
            "t_bucket{le=\"1\"} 3\n"
            "t_bucket{le=\"10\"} 4\n"
            "t_bucket{le=\"+Inf\"} 5\n"
            "t_sum 55.65\n"
            "t_count 5\n");
}

TEST(Metrics, RendersGaugesCountersAndHistograms) {
  Metrics m;
  m.job_finished("completed", 2.0);
  m.job_finished("failed", 0.5);
  m.job_rejected();
  m.step_finished(0.2);
  m.request_served(200);
  m.request_served(429);
  const std::string text = m.render({.queue_depth = 3, .models_loaded = 1, .resident_bytes = 42});
  for (const char* line :
       {"# TYPE zflow_queue_depth gauge\nzflow_queue_depth 3\n", "zflow_resident_memory_bytes 42\n",
        "zflow_jobs_total{state=\"completed\"} 1\n", "zflow_jobs_total{state=\"failed\"} 1\n",
        "zflow_jobs_total{state=\"rejected\"} 1\n", "zflow_jobs_total{state=\"cancelled\"} 0\n",
        "zflow_http_responses_total{code=\"429\"} 1\n", "# TYPE zflow_step_seconds histogram\n",
        "zflow_step_seconds_count 1\n", "zflow_job_seconds_bucket{le=\"2.5\"} 2\n",
        "zflow_job_seconds_sum 2.5\n"})
    EXPECT_NE(text.find(line), std::string::npos) << line << "\nin:\n" << text;
}

}  // namespace
}  // namespace zflow::server
