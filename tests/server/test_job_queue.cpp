// The job queue's promises: bounded (QueueFull past capacity), first in first out, every job ends
// in exactly one final state, cancellation before and during a run, and joint runs: waiting jobs
// that can share a run join it up to the image limit, each still getting its own images.
#include <gtest/gtest.h>

#include "fake_generator.h"
#include "server/job_queue.h"

namespace zflow::server {
namespace {

using namespace std::chrono_literals;

JobSpec spec(const std::string& prompt, int steps = 3, int batch = 1, uint64_t seed = 0) {
  JobSpec s;
  s.model = "fake";
  s.request.prompt = prompt;
  s.request.steps = steps;
  s.request.batch = batch;
  s.request.seed = seed;
  return s;
}

struct QueueFixture : ::testing::Test {
  test::FakeGate gate;
  test::FakeGenerator generator{"fake", gate};
  Metrics metrics;
  std::vector<std::string> ran;  // prompts, in the order they ran
  std::mutex ran_mu;

  // Runs the jobs with the fake generator; each image's `encoded` is its shade (its job's seed).
  JobQueue::Runner runner() {
    return [this](std::span<Job* const> jobs, std::stop_token stop) {
      std::vector<pipeline::GenerationRequest> requests;
      std::string prompts;
      for (Job* job : jobs) {
        requests.push_back(job->spec().request);
        prompts += (prompts.empty() ? "" : "+") + job->spec().request.prompt;
      }
      {
        std::lock_guard lock(ran_mu);
        ran.push_back(prompts);
      }
      pipeline::RunControl control;
      control.stop = std::move(stop);
      control.on_step = [&](const pipeline::StepProgress& p) {
        for (Job* job : jobs) job->set_progress(p.step, p.steps);
      };
      std::vector<std::vector<JobImage>> out;
      for (const auto& images : generator.generate_together(requests, control)) {
        out.emplace_back();
        for (const auto& image : images) out.back().push_back({std::string(1, char(image.rgb[0]))});
      }
      return out;
    };
  }

  // Lets waiting jobs join a run when the fake generator can share it.
  JobJoining joining(int max_images) {
    return {.joiner =
                [this](const Job& first) {
                  return [this, &first](const Job& other) {
                    return generator.can_share_forwards(first.spec().request, other.spec().request);
                  };
                },
            .max_images = max_images};
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
      [](std::span<Job* const> jobs, std::stop_token) -> std::vector<std::vector<JobImage>> {
        const std::string& prompt = jobs.front()->spec().request.prompt;
        if (prompt == "bad") throw RejectedByModel("[fake] size: no");
        if (prompt == "broken") throw std::runtime_error("disk on fire");
        return {{}};
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
  for (int i = 0; i < 200 && queue.running_count() > 0; ++i) std::this_thread::sleep_for(1ms);
  EXPECT_EQ(queue.find(jobs[0]->id()), nullptr);
  EXPECT_EQ(queue.find(jobs[1]->id()), nullptr);
  EXPECT_EQ(queue.find(jobs[3]->id()), jobs[3]);
}

TEST_F(QueueFixture, WaitingJobsThatCanShareARunJoinItUpToTheImageLimit) {
  gate.close();
  JobQueue queue(8, runner(), metrics, 1000, joining(4));
  const auto first = queue.submit(spec("first", 3, 1, 1));
  gate.wait_for_holder();  // runs alone: nothing waited when it started
  const auto a = queue.submit(spec("a", 3, 1, 10));
  const auto other_steps = queue.submit(spec("b", 4, 1, 11));
  const auto c = queue.submit(spec("c", 3, 2, 12));
  const auto d = queue.submit(spec("d", 3, 1, 13));
  const auto too_many = queue.submit(spec("e", 3, 1, 14));  // a + c + d already hold 4 images
  gate.release();
  for (const auto& job : {first, a, other_steps, c, d, too_many})
    ASSERT_EQ(job->wait_until_final().state, JobState::Completed) << job->spec().request.prompt;
  EXPECT_EQ(ran, (std::vector<std::string>{"first", "a+c+d", "b", "e"}));
  // Each job gets its own images: as many as it asked for, made from its own seed.
  for (const auto& job : {a, other_steps, c, d, too_many}) {
    const JobStatus st = job->status();
    ASSERT_EQ(st.images.size(), static_cast<size_t>(job->spec().request.batch));
    for (const JobImage& image : st.images)
      EXPECT_EQ(image.encoded, std::string(1, char(job->spec().request.seed)));
  }
}

TEST_F(QueueFixture, AJobCancelledInAJointRunEndsCancelledWhileTheOthersFinish) {
  gate.close();
  JobQueue queue(8, runner(), metrics, 1000, joining(4));
  const auto first = queue.submit(spec("first"));
  gate.wait_for_holder();
  const auto a = queue.submit(spec("a", 3, 1, 20));
  const auto b = queue.submit(spec("b", 3, 1, 21));
  queue.cancel(first->id());
  EXPECT_EQ(first->wait_until_final().state, JobState::Cancelled);
  gate.wait_for_holder();  // a and b, together, held at step 2
  EXPECT_EQ(queue.running_count(), 2u);
  EXPECT_TRUE(queue.cancel(a->id()));
  EXPECT_EQ(a->status().state, JobState::Running);  // its run goes on for b
  gate.release();
  EXPECT_EQ(b->wait_until_final().state, JobState::Completed);
  EXPECT_EQ(b->status().images.size(), 1u);
  const JobStatus cancelled = a->wait_until_final();
  EXPECT_EQ(cancelled.state, JobState::Cancelled);
  EXPECT_TRUE(cancelled.images.empty());
  EXPECT_EQ(ran, (std::vector<std::string>{"first", "a+b"}));
}

TEST_F(QueueFixture, CancellingEveryJobOfAJointRunStopsIt) {
  gate.close();
  JobQueue queue(8, runner(), metrics, 1000, joining(4));
  const auto first = queue.submit(spec("first"));
  gate.wait_for_holder();
  const auto a = queue.submit(spec("a"));
  const auto b = queue.submit(spec("b"));
  queue.cancel(first->id());
  first->wait_until_final();
  gate.wait_for_holder();
  queue.cancel(a->id());
  queue.cancel(b->id());  // the gate stays closed: only the stop ends the run
  EXPECT_EQ(a->wait_until_final().state, JobState::Cancelled);
  EXPECT_EQ(b->wait_until_final().state, JobState::Cancelled);
  const std::string text = metrics.render({});
  EXPECT_NE(text.find("zflow_jobs_total{state=\"cancelled\"} 3"), std::string::npos) << text;
}

}  // namespace
}  // namespace zflow::server
