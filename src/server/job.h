// One image-generation job as the server tracks it: what was asked, where it stands, and what it
// made. A job is shared between the queue's worker (which runs it) and any number of HTTP
// handlers (which read it, wait on it, or cancel it), so its changing state sits behind a mutex
// and every change bumps `version` and wakes the waiters.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <optional>
#include <stop_token>
#include <string>
#include <vector>

#include "core/error.h"
#include "pipeline/generator.h"
#include "server/model_registry.h"

namespace zflow::server {

// A request the chosen model cannot run (a size or field it refuses); the job fails with the
// model's message and HTTP callers get 422 rather than 500.
class RejectedByModel : public Error {
 public:
  explicit RejectedByModel(const std::string& message) : Error(message) {}
};

enum class JobState { Queued, Running, Completed, Failed, Cancelled };
const char* job_state_name(JobState state);  // "queued", "running", ...
inline bool is_final(JobState s) {
  return s == JobState::Completed || s == JobState::Failed || s == JobState::Cancelled;
}

enum class OutputFormat { Png, Jpeg, Webp };
const char* output_format_name(OutputFormat format);  // "png", "jpeg", "webp"
const char* output_format_mime(OutputFormat format);

// A1111's extras (POST /sdapi/v1/extra-single-image, extra-batch-images): pictures made larger,
// queued like a generation so they never share the device with one.
struct UpscaleSpec {
  struct Picture {
    io::Image image;
    int width = 0, height = 0;  // the size it is brought to
  };
  // How a picture is brought to its size: an upscaler model, else a filter alone.
  struct Upscaler {
    std::string model;  // a registry upscaler name, or "" for the filter
    io::ResampleFilter filter = io::ResampleFilter::Lanczos;
    std::string label;  // as the infotext names it
  };
  std::vector<Picture> pictures;
  Upscaler first;
  // A1111's upscaler_2: a second upscale of each picture blended into the first with this weight
  // (Pillow's Image.blend); 0 for none.
  Upscaler second;
  float second_visibility = 0.0f;
  // The canvas each is then centred on (A1111's upscaling_crop), or 0 x 0 for none.
  int crop_width = 0, crop_height = 0;
};

// A job's prompt and negative prompt read as Dynamic Prompts templates (text/dynamic_prompt.h),
// expanded when the job is submitted into each image's own prompts (expand_prompt_templates).
struct PromptTemplates {
  // Off: the prompts as they are (a client that said so, where the server's default is on).
  // Random: the extension's default, image k's prompts drawn from its seed + k. Combinatorial:
  // every prompt with every negative prompt, an image each, seeds from seed + k.
  enum class Mode { Off, Random, Combinatorial } mode = Mode::Random;
  size_t max_prompts = 0;  // combinatorial: at most this many (0: what a request may hold)
  int repeats = 1;         // combinatorial: the whole list this many times (its "batches")
};

// What a job is asked to do.
struct JobSpec {
  std::string model;              // a registry name, never a path
  std::vector<LoraChoice> loras;  // registry LoRA names, merged into the model in order
  // Registry ControlNet names: none, one (reading every control), or several side by side
  // (FLUX.1: control k read by ControlNet k).
  std::vector<std::string> controlnets;
  std::string upscaler;     // the hires fix's: a registry upscaler name, or "" for a filter
  std::string hires_model;  // the hires fix's second pass on another registry model, or ""
  pipeline::GenerationRequest request;
  std::optional<PromptTemplates> templates;  // unset: the server's default
  OutputFormat format = OutputFormat::Png;
  bool preview = false;                // small preview images with the progress (native jobs)
  bool send_images = true;             // A1111's send_images: false answers without the pictures
  std::optional<UpscaleSpec> upscale;  // set: this job upscales a picture instead of generating
};

// One finished image, already encoded in the job's format.
struct JobImage {
  std::string encoded;
  std::string parameters;  // A1111 infotext
  nlohmann::json record;   // the request as it ran
};

// A consistent copy of a job's changing state.
struct JobStatus {
  JobState state = JobState::Queued;
  int step = 0;
  int steps = 0;
  std::string error;
  int error_status = 0;  // for failed jobs: 422 when the model refused the request, else 500
  std::vector<JobImage> images;
  std::string preview_png;    // the newest preview of the first image, when asked for
  double queued_seconds = 0;  // from submission to start (or to now)
  double run_seconds = 0;     // from start to finish (or to now)
  uint64_t version = 0;
};

class Job {
 public:
  using Clock = std::chrono::steady_clock;

  Job(std::string id, JobSpec spec) : id_(std::move(id)), spec_(std::move(spec)) {}

  const std::string& id() const { return id_; }
  const JobSpec& spec() const { return spec_; }
  std::stop_token stop_token() const { return stop_.get_token(); }
  void request_stop() { stop_.request_stop(); }

  JobStatus status() const;
  // Blocks until the job's version passes `seen` or `timeout` elapses; returns the status.
  JobStatus wait_for_change(uint64_t seen, std::chrono::milliseconds timeout) const;
  JobStatus wait_until_final() const;

  // Changes, made by the queue and the runner.
  void set_running(int steps);
  void set_progress(int step, int steps);
  void set_preview(std::string png);
  void finish(JobState state, std::vector<JobImage> images, std::string error,
              int error_status = 0);

 private:
  void touch();  // bump the version and wake waiters; mu_ held

  const std::string id_;
  const JobSpec spec_;
  std::stop_source stop_;
  const Clock::time_point created_ = Clock::now();
  mutable std::mutex mu_;
  mutable std::condition_variable changed_;
  JobStatus status_;
  std::optional<Clock::time_point> started_, finished_;
};

}  // namespace zflow::server
