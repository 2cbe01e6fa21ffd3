// What the pipelines share for requests run together (generate_together): which requests may
// share batched forwards, the check that they do, and the split of the images back per request.
#pragma once

#include <iterator>
#include <optional>
#include <span>
#include <string_view>
#include <utility>
#include <vector>

#include "core/error.h"
#include "core/tensor.h"
#include "io/image.h"

namespace zflow::pipeline {

// Whether r starts from a picture, or from latents handed over (img2img), not from noise alone.
template <typename Request>
bool starts_from_picture(const Request& r) {
  if constexpr (requires { r.init_latents; })
    if (r.init_latents) return true;
  return r.init_image.has_value();
}

// The resolved settings of a and b, or nothing where what they start from keeps them apart:
// inpainting runs alone (its mask blends into every step), text-to-image and img2img do not mix,
// and img2img requests share one strength (their schedules then start at the same step, each
// from its own picture); or where either is refused by the model (it then runs, and fails, on its
// own).
template <typename Pipeline, typename Request>
auto resolved_shareable(const Pipeline& pipe, const Request& a, const Request& b)
    -> std::optional<std::pair<decltype(pipe.resolve(a)), decltype(pipe.resolve(a))>> {
  if (a.mask || b.mask || starts_from_picture(a) != starts_from_picture(b)) return std::nullopt;
  try {
    auto settings = std::pair{pipe.resolve(a), pipe.resolve(b)};
    if (settings.first.strength != settings.second.strength) return std::nullopt;
    return settings;
  } catch (const Error&) {
    return std::nullopt;
  }
}

// Throws unless there are requests and each can share forwards with the first.
template <typename Pipeline, typename Request>
void require_shareable(std::string_view family, const Pipeline& pipe,
                       std::span<const Request> requests) {
  ZF_CHECK(!requests.empty(), "[{}] generate_together: no requests", family);
  for (const Request& r : requests.subspan(1))
    ZF_CHECK(pipe.can_share_forwards(requests.front(), r),
             "[{}] generate_together: a request's settings differ from the first's (only "
             "requests that differ in prompts, seeds, batch sizes and init pictures share "
             "forwards)",
             family);
}

// The images of requests run together, back in one list per request: request r's are the next
// r.batch.
template <typename Request>
std::vector<std::vector<io::Image>> split_by_request(std::vector<io::Image> images,
                                                     std::span<const Request> requests) {
  std::vector<std::vector<io::Image>> per_request;
  auto next = images.begin();
  for (const Request& r : requests) {
    per_request.emplace_back(std::make_move_iterator(next),
                             std::make_move_iterator(next + r.batch));
    next += r.batch;
  }
  return per_request;
}

// A batch [N, ...] as N tensors [1, ...], each its own copy.
inline std::vector<Tensor> split_batch(const Tensor& batch) {
  std::vector<Tensor> out;
  for (int64_t i = 0; i < batch.size(0); ++i) out.push_back(batch.slice(0, i, i + 1).clone());
  return out;
}

}  // namespace zflow::pipeline
