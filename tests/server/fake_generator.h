// A stand-in model for server tests: solid-colour images, a step loop that honours RunControl
// exactly as the real pipelines do, and a gate that can hold a run mid-way so tests can observe
// a running job, fill the queue or cancel.
#pragma once

#include <atomic>
#include <condition_variable>
#include <mutex>

#include "core/error.h"
#include "pipeline/generator.h"

namespace zflow::server::test {

// Shared by a test and the generators it hands out.
struct FakeGate {
  std::mutex mu;
  std::condition_variable cv;
  bool open = true;
  int waiting = 0;  // runs held at the gate now

  void close() {
    std::lock_guard lock(mu);
    open = false;
  }
  void release() {
    {
      std::lock_guard lock(mu);
      open = true;
    }
    cv.notify_all();
  }
  // Blocks until a run is held at the gate.
  void wait_for_holder() {
    std::unique_lock lock(mu);
    cv.wait(lock, [&] { return waiting > 0; });
  }
};

class FakeGenerator final : public pipeline::ImageGenerator {
 public:
  FakeGenerator(std::string name, FakeGate& gate) : name_(std::move(name)), gate_(gate) {}

  const std::string& model_name() const override { return name_; }
  std::string architecture() const override { return "fake"; }

  pipeline::GenerationSettings resolve(const pipeline::GenerationRequest& r) const override {
    if (r.guidance) fail("[fake] guidance: not supported");
    pipeline::GenerationSettings s;
    s.mode = r.mask ? "inpaint" : r.init_image ? "img2img" : "txt2img";
    // As the real pipelines: the init image's size unless the request gives one.
    s.width = r.width.value_or(r.init_image ? r.init_image->width : 32);
    s.height = r.height.value_or(r.init_image ? r.init_image->height : 32);
    s.steps = s.steps_run = r.steps.value_or(3);
    s.cfg_scale = r.cfg_scale.value_or(0.0f);
    return s;
  }

  std::vector<io::Image> generate(const pipeline::GenerationRequest& r,
                                  const pipeline::RunControl& control) const override {
    return std::move(generate_together({&r, 1}, control).front());
  }

  // Text-to-image requests of one size and step count share runs.
  bool can_share_forwards(const pipeline::GenerationRequest& a,
                          const pipeline::GenerationRequest& b) const override {
    if (a.init_image || b.init_image || a.guidance || b.guidance) return false;
    const auto sa = resolve(a), sb = resolve(b);
    return sa.width == sb.width && sa.height == sb.height && sa.steps == sb.steps;
  }

  // One step loop for all requests; each image a solid shade of its request's seed.
  std::vector<std::vector<io::Image>> generate_together(
      std::span<const pipeline::GenerationRequest> requests,
      const pipeline::RunControl& control) const override {
    for (const auto& r : requests.subspan(1))
      if (!can_share_forwards(requests.front(), r))
        fail("[fake] these requests cannot share a run");
    const auto s = resolve(requests.front());
    int images = 0;
    for (const auto& r : requests) images += r.batch;
    for (int step = 0; step < s.steps; ++step) {
      if (control.stop.stop_requested()) throw pipeline::Cancelled();
      if (step == 1) hold(control);
      if (control.on_preview)
        control.on_preview(std::vector<io::Image>(
            static_cast<size_t>(images),
            io::Image{4, 4, std::vector<uint8_t>(4 * 4 * 3, uint8_t(step))}));
      if (control.on_step) control.on_step({step + 1, s.steps, 0.001 * (step + 1)});
    }
    std::vector<std::vector<io::Image>> out;
    for (const auto& r : requests) {
      const auto shade = static_cast<uint8_t>(r.seed % 251);
      out.emplace_back(static_cast<size_t>(r.batch),
                       io::Image{s.width, s.height,
                                 std::vector<uint8_t>(size_t(s.width) * s.height * 3, shade)});
    }
    return out;
  }

  pipeline::ImageRecord record(const pipeline::GenerationRequest& r, const pipeline::ImageSources&,
                               int batch_index) const override {
    const auto s = resolve(r);
    return {r.prompt + "\nSteps: " + std::to_string(s.steps) + ", Seed: " + std::to_string(r.seed),
            {{"prompt", r.prompt},
             {"seed", r.seed},
             {"width", s.width},
             {"height", s.height},
             {"steps", s.steps},
             {"guidance", s.cfg_scale},
             {"batch_index", batch_index}}};
  }

 private:
  // Waits at the gate (if closed) until released or stopped.
  void hold(const pipeline::RunControl& control) const {
    std::unique_lock lock(gate_.mu);
    ++gate_.waiting;
    gate_.cv.notify_all();
    while (!gate_.open && !control.stop.stop_requested())
      gate_.cv.wait_for(lock, std::chrono::milliseconds(5));
    --gate_.waiting;
  }

  std::string name_;
  FakeGate& gate_;
};

}  // namespace zflow::server::test
