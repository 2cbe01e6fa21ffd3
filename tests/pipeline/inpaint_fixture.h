// A small inpainting setup shared by the tests of A1111's inpainting details (masked content, the
// overlay): the tiny Z-Image generator, a 32x32 picture with its top-left quarter masked, and a
// 3-step inpaint request.
#pragma once

#include <utility>

#include "io/image.h"
#include "pipeline/generator.h"
#include "test_util.h"

namespace zflow::pipeline {

// A 32x32 picture with a square mask over its top-left quarter (and a grey ramp elsewhere).
inline std::pair<io::Image, io::Image> picture_and_mask() {
  io::Image picture{32, 32, std::vector<uint8_t>(32 * 32 * 3)};
  io::Image mask{32, 32, std::vector<uint8_t>(32 * 32 * 3, 0)};
  for (int y = 0; y < 32; ++y)
    for (int x = 0; x < 32; ++x)
      for (int c = 0; c < 3; ++c) {
        const size_t i = 3 * (static_cast<size_t>(y) * 32 + x) + c;
        picture.rgb[i] = static_cast<uint8_t>(7 * x + 5 * y + 40 * c);
        if (x < 16 && y < 16) mask.rgb[i] = 255;
      }
  return {picture, mask};
}

inline const ImageGenerator& tiny_zimage() {
  static const std::unique_ptr<ImageGenerator> gen =
      load_generator({.model_dir = test::fixture("zimage_pipeline/tiny"),
                      .tokenizer = test::shared_asset("qwen3_tokenizer")});
  return *gen;
}

// A 3-step inpaint of `picture` under `mask` at strength 0.7.
inline GenerationRequest inpaint_request(const io::Image& picture, const io::Image& mask) {
  GenerationRequest r;
  r.prompt = "a cat";
  r.steps = 3;
  r.seed = 4;
  r.strength = 0.7;
  r.init_image = picture;
  r.mask = mask;
  return r;
}

}  // namespace zflow::pipeline
