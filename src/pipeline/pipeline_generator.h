// The part of a family's ImageGenerator that only forwards to its pipeline: a family implements
// to_request (the common request in its pipeline's terms, an Error for what it does not take),
// resolve, architecture and record; generate, can_share_forwards and generate_together map the
// requests and call the pipeline's own.
#pragma once

#include <span>
#include <utility>
#include <vector>

#include "core/error.h"
#include "pipeline/generator.h"

namespace zflow::pipeline {

template <typename Pipeline, typename Request>
class PipelineGenerator : public ImageGenerator {
 public:
  explicit PipelineGenerator(Pipeline pipe) : pipe_(std::move(pipe)) {}

  const std::string& model_name() const override { return pipe_.model_name(); }

  std::vector<io::Image> generate(const GenerationRequest& request,
                                  const RunControl& control) const override {
    return pipe_.generate(to_request(request), control);
  }

  bool can_share_forwards(const GenerationRequest& a, const GenerationRequest& b) const override {
    Request ra, rb;
    try {
      ra = to_request(a);
      rb = to_request(b);
    } catch (const Error&) {
      return false;  // refused: each fails alone
    }
    return pipe_.can_share_forwards(ra, rb);
  }

  std::vector<std::vector<io::Image>> generate_together(std::span<const GenerationRequest> requests,
                                                        const RunControl& control) const override {
    std::vector<Request> mapped;
    for (const GenerationRequest& r : requests) mapped.push_back(to_request(r));
    return pipe_.generate_together(mapped, control);
  }

  std::optional<LatentSpace> latent_space() const override {
    if constexpr (kHandsOverLatents)
      return pipe_.latent_space();
    else
      return std::nullopt;
  }

  std::vector<Tensor> generate_latents_together(std::span<const GenerationRequest> requests,
                                                const RunControl& control) const override {
    if constexpr (kHandsOverLatents) {
      std::vector<Request> mapped;
      for (const GenerationRequest& r : requests) mapped.push_back(to_request(r));
      return pipe_.generate_latents_together(mapped, control);
    } else {
      return ImageGenerator::generate_latents_together(requests, control);
    }
  }

 protected:
  static constexpr bool kHandsOverLatents =
      requires(const Pipeline& pipe, std::span<const Request> r) {
    pipe.generate_latents_together(r, RunControl{});
  };

  virtual Request to_request(const GenerationRequest& request) const = 0;

  Pipeline pipe_;
};

}  // namespace zflow::pipeline
