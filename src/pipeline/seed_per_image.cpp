#include "pipeline/seed_per_image.h"

#include <fmt/format.h>

#include <algorithm>
#include <numeric>
#include <utility>

namespace zflow::pipeline {

namespace {

bool per_image(const GenerationRequest& r) {
  return r.seed_per_image &&
         (r.batch > 1 || !r.image_prompts.empty() || !r.image_negative_prompts.empty());
}

// Image prompts come one per image, and only where each image is a request of its own.
void check_image_prompts(const GenerationRequest& r) {
  for (const auto& [field, prompts] :
       {std::pair{"image_prompts", &r.image_prompts},
        std::pair{"image_negative_prompts", &r.image_negative_prompts}}) {
    if (prompts->empty()) continue;
    ZF_CHECK(r.seed_per_image, "[request] {}: prompts of each image's own need seeds per image",
             field);
    ZF_CHECK(prompts->size() == static_cast<size_t>(r.batch),
             "[request] {}: {} prompts for a batch of {}", field, prompts->size(), r.batch);
  }
}

// The request as the inner generator sees it: its first image's where it runs per image.
GenerationRequest first_image(const GenerationRequest& r) {
  return per_image(r) ? image_request(r, 0) : r;
}

class SeedPerImage final : public ImageGenerator {
 public:
  explicit SeedPerImage(std::unique_ptr<ImageGenerator> inner) : inner_(std::move(inner)) {}

  const std::string& model_name() const override { return inner_->model_name(); }
  std::string architecture() const override { return inner_->architecture(); }

  GenerationSettings resolve(const GenerationRequest& request) const override {
    check_image_prompts(request);
    if (!per_image(request)) return inner_->resolve(request);
    GenerationSettings s = inner_->resolve(image_request(request, 0));
    if (request.batch > 1 &&
        !inner_->can_share_forwards(image_request(request, 0), image_request(request, 1)))
      s.steps_run *= request.batch;  // one run per image
    return s;
  }

  std::vector<io::Image> generate(const GenerationRequest& request,
                                  const RunControl& control) const override {
    return std::move(generate_together({&request, 1}, control).front());
  }

  bool can_share_forwards(const GenerationRequest& a, const GenerationRequest& b) const override {
    return inner_->can_share_forwards(first_image(a), first_image(b));
  }

  std::vector<std::vector<io::Image>> generate_together(std::span<const GenerationRequest> requests,
                                                        const RunControl& control) const override {
    const Flat flat = flattened(requests);
    if (flat.runs.size() == requests.size()) return inner_->generate_together(requests, control);
    std::vector<std::vector<io::Image>> made;
    if (shareable(flat.runs)) {
      made = inner_->generate_together(flat.runs, control);
    } else {
      one_after_another(flat.runs, control, [&](const GenerationRequest& r, const RunControl& c) {
        made.push_back(inner_->generate(r, c));
      });
    }
    // Back to one list per request: request i's are the next counts[i] runs' images.
    std::vector<std::vector<io::Image>> out;
    auto next = made.begin();
    for (const size_t n : flat.counts) {
      std::vector<io::Image>& images = out.emplace_back();
      for (size_t i = 0; i < n; ++i, ++next)
        for (io::Image& image : *next) images.push_back(std::move(image));
    }
    return out;
  }

  std::optional<LatentSpace> latent_space() const override { return inner_->latent_space(); }
  std::vector<Tensor> generate_latents_together(std::span<const GenerationRequest> requests,
                                                const RunControl& control) const override {
    const Flat flat = flattened(requests);
    if (flat.runs.size() == requests.size() || shareable(flat.runs))
      return inner_->generate_latents_together(flat.runs, control);
    std::vector<Tensor> out;
    one_after_another(flat.runs, control, [&](const GenerationRequest& r, const RunControl& c) {
      for (Tensor& t : inner_->generate_latents(r, c)) out.push_back(std::move(t));
    });
    return out;
  }

  ImageRecord record(const GenerationRequest& request, const ImageSources& sources,
                     int batch_index) const override {
    if (!per_image(request)) return inner_->record(request, sources, batch_index);
    ImageRecord r = inner_->record(image_request(request, batch_index), sources, 0);
    // A1111's keys for an image's place in its batch.
    r.parameters += fmt::format(", Batch size: {}, Batch pos: {}", request.batch, batch_index);
    r.request["batch"] = request.batch;
    r.request["batch_index"] = batch_index;
    r.request["seed_per_image"] = true;
    return r;
  }

 private:
  // The requests as the inner generator runs them: each image a request of its own where its
  // request runs per image; counts[i] is how many runs request i became.
  struct Flat {
    std::vector<GenerationRequest> runs;
    std::vector<size_t> counts;
  };
  static Flat flattened(std::span<const GenerationRequest> requests) {
    Flat flat;
    for (const GenerationRequest& r : requests) {
      const int n = per_image(r) ? r.batch : 1;
      for (int k = 0; k < n; ++k) flat.runs.push_back(per_image(r) ? image_request(r, k) : r);
      flat.counts.push_back(static_cast<size_t>(n));
    }
    return flat;
  }

  // `each(run, control)` for run after run, progress counted over all of them.
  template <typename Each>
  void one_after_another(const std::vector<GenerationRequest>& runs, const RunControl& control,
                         Each each) const {
    std::vector<int> steps;
    for (const GenerationRequest& r : runs) steps.push_back(inner_->resolve(r).steps_run);
    const int total = std::accumulate(steps.begin(), steps.end(), 0);
    for (size_t i = 0, done = 0; i < runs.size(); done += steps[i++])
      each(runs[i], counted(control, static_cast<int>(done), total));
  }

  bool shareable(const std::vector<GenerationRequest>& runs) const {
    for (size_t i = 1; i < runs.size(); ++i)
      if (!inner_->can_share_forwards(runs.front(), runs[i])) return false;
    return true;
  }

  std::unique_ptr<ImageGenerator> inner_;
};

}  // namespace

GenerationRequest image_request(const GenerationRequest& request, int k) {
  GenerationRequest r = request;
  r.batch = 1;
  r.seed_per_image = false;
  // A1111 counts the variation seed where there is one (its subseed + k) and keeps the seed, so
  // a batch of variations varies one picture; the seed otherwise.
  if (r.variation)
    r.variation->seed += static_cast<uint64_t>(k);
  else
    r.seed += static_cast<uint64_t>(k);
  const auto take = [k](std::vector<std::string>& own, std::string& prompt) {
    if (static_cast<size_t>(k) < own.size()) prompt = std::move(own[static_cast<size_t>(k)]);
    own.clear();
  };
  take(r.image_prompts, r.prompt);
  take(r.image_negative_prompts, r.negative_prompt);
  return r;
}

std::unique_ptr<ImageGenerator> with_seed_per_image(std::unique_ptr<ImageGenerator> inner) {
  return std::make_unique<SeedPerImage>(std::move(inner));
}

}  // namespace zflow::pipeline
