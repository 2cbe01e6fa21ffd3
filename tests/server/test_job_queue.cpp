// The job queue's promises: bounded (QueueFull past capacity), first in first out, every job ends
// in exactly one final state, cancellation before and during a run.
#include <gtest/gtest.h>

#include "fake_generator.h"
#include "server/job_queue.h"

namespace zflow::server {
namespace {

using namespace std::chrono_literals;

JobSpec spec(const std::string& prompt, int steps = 3) {
  JobSpec s;
  s.model = "fake";
  s.request.prompt = prompt;
  s.request.steps = steps;
  return s;
}

struct QueueFixture : ::testing::Test {
  test::FakeGate gate;
  test::FakeGenerator generator{"fake", gate};
  Metrics metrics;
  std::vector<std::string> ran;  // prompts, in the order they ran
  std::mutex ran_mu;

  JobQueue::Runner runner() {
    return [this](Job& job) {
      {
        std::lock_guard lock(ran_mu);
        ran.push_back(job.spec().request.prompt);
      }
      pipeline::RunControl control;
      control.stop = job.stop_token();
      control.on_step = [&](const pipeline::StepProgress& p) { job.set_progress(p.step, p.steps); };
      generator.generate(job.spec().request, control);
      return std::vector<JobImage>(1);
    };
  }
};

TEST_F(QueueFixture, RunsInOrderAndCompletesEveryJob) {
  JobQueue queue(8, runner(), metrics);
  std::vector<std::shared_ptr<Job>> jobs;
  for (int i = 0; i < 5; ++i) jobs.push_back(queue.submit(spec("p" + std::to_string(i))));
  for (auto& job : jobs) {
    const JobStatus st = job->wait_until_final();
    EXPECT_EQ(st.state, JobState::Completed);
    EXPECT_EQ(st.step, 3);
    EXPECT_EQ(st.images.size(), 1u);
  }
  EXPECT_EQ(ran, (std::vector<std::string>{"p0", "p1", "p2", "p3", "p4"}));
  EXPECT_NE(jobs[0]->id(), jobs[1]->id());
}

TEST_F(QueueFixture, RefusesPastCapacityAndCancelsQueuedAndRunningJobs) {
  gate.close();
  JobQueue queue(2, runner(), metrics);
  const auto running = queue.submit(spec("running"));
  gate.wait_for_holder();  // held at step 2 of 3
  EXPECT_EQ(queue.running(), running);
  EXPECT_EQ(running->status().state, JobState::Running);
  EXPECT_EQ(running->status().step, 1);

  const auto a = queue.submit(spec("a"));
  const auto b = queue.submit(spec("b"));
  EXPECT_EQ(queue.position(a->id()), 1u);
  EXPECT_EQ(queue.position(b->id()), 2u);
  EXPECT_THROW(queue.submit(spec("c")), QueueFull);
  EXPECT_EQ(queue.depth(), 2u);

  EXPECT_TRUE(queue.cancel(a->id()));
  EXPECT_EQ(a->status().state, JobState::Cancelled);  // at once: it never started
  EXPECT_EQ(queue.position(b->id()), 1u);
  EXPECT_TRUE(queue.cancel(running->id()));
  EXPECT_EQ(running->wait_until_final().state, JobState::Cancelled);
  gate.release();
  EXPECT_EQ(b->wait_until_final().state, JobState::Completed);
  EXPECT_EQ(ran, (std::vector<std::string>{"running", "b"}));
  EXPECT_FALSE(queue.cancel("job-none"));

  const std::string text = metrics.render({});
  EXPECT_NE(text.find("zflow_jobs_total{state=\"cancelled\"} 2"), std::string::npos) << text;
  EXPECT_NE(text.find("zflow_jobs_total{state=\"completed\"} 1"), std::string::npos) << text;
  EXPECT_NE(text.find("zflow_jobs_total{state=\"rejected\"} 1"), std::string::npos) << text;
}

TEST_F(QueueFixture, AFailingRunFailsOnlyItsJob) {
  JobQueue queue(
      4,
      [](Job& job) -> std::vector<JobImage> {
        if (job.spec().request.prompt == "bad") throw RejectedByModel("[fake] size: no");
        if (job.spec().request.prompt == "broken") throw std::runtime_error("disk on fire");
        return {};
      },
      metrics);
  const auto bad = queue.submit(spec("bad"));
  const auto broken = queue.submit(spec("broken"));
  const auto good = queue.submit(spec("good"));
  EXPECT_EQ(bad->wait_until_final().error_status, 422);
  EXPECT_EQ(broken->wait_until_final().error_status, 500);
  EXPECT_EQ(broken->status().error, "disk on fire");
  EXPECT_EQ(good->wait_until_final().state, JobState::Completed);
}

TEST_F(QueueFixture, ShutdownCancelsWhatWaitsAndForgetsNothingUnfinished) {
  gate.close();
  auto queue = std::make_unique<JobQueue>(4, runner(), metrics);
  const auto running = queue->submit(spec("r"));
  gate.wait_for_holder();
  const auto waiting = queue->submit(spec("w"));
  queue->forget(waiting->id());  // not final: kept
  EXPECT_EQ(queue->find(waiting->id()), waiting);
  queue.reset();
  EXPECT_EQ(running->status().state, JobState::Cancelled);
  EXPECT_EQ(waiting->status().state, JobState::Cancelled);
}

TEST_F(QueueFixture, KeepsOnlyTheNewestFinishedJobs) {
  JobQueue queue(8, runner(), metrics, /*keep_finished=*/2);
  std::vector<std::shared_ptr<Job>> jobs;
  for (int i = 0; i < 4; ++i) jobs.push_back(queue.submit(spec("p")));
  for (auto& j : jobs) j->wait_until_final();
  // The worker retires a job just after finishing it; wait for the last one to be retired.
  for (int i = 0; i < 200 && queue.running(); ++i) std::this_thread::sleep_for(1ms);
  EXPECT_EQ(queue.find(jobs[0]->id()), nullptr);
  EXPECT_EQ(queue.find(jobs[1]->id()), nullptr);
  EXPECT_EQ(queue.find(jobs[3]->id()), jobs[3]);
}

}  // namespace
}  // namespace zflow::server
