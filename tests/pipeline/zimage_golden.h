// A Z-Image text-to-image golden case (as tools/golden's Z-Image scripts write them) read as a
// request.
#pragma once

#include <nlohmann/json.hpp>

#include "core/rng.h"
#include "pipeline/zimage_pipeline.h"

namespace zflow::test {

inline pipeline::ZImageRequest zimage_txt2img_request(const nlohmann::json& c,
                                                      NormalMath normal_math) {
  pipeline::ZImageRequest r;
  r.prompt = c["prompt"];
  r.negative_prompt = c.value("negative_prompt", "");
  r.width = c["width"].get<int>();
  r.height = c["height"].get<int>();
  r.steps = c["steps"].get<int>();
  r.guidance = c["guidance"].get<float>();
  r.cfg_truncation = c.value("cfg_truncation", 1.0);
  r.seed = c["seed"].get<uint64_t>();
  r.batch = c.value("num_images", 1);
  // torch.randn's float log/sin/cos follow the CPU kernel the fixture was made with.
  r.normal_math = normal_math;
  return r;
}

}  // namespace zflow::test
