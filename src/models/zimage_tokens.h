// How Z-Image turns latents into tokens and back (diffusers ZImageTransformer2DModel
// _patchify_image / unpatchify / _pad_with_ids):
//  - a latent [C, H, W] becomes (H/p)(W/p) tokens in row-major (h, w) order, each holding its
//    p x p patch with features in (ph, pw, c) order, c fastest (not FLUX's (c, ph, pw));
//  - caption and image runs are each padded to a multiple of 32 tokens with learned pad
//    tokens, which are real tokens (attended to, not masked).
#pragma once

#include <cstdint>

#include "core/tensor.h"

namespace zflow::models {

inline constexpr int64_t kZImageSeqMultiple = 32;

// n rounded up to a multiple of 32.
inline int64_t zimage_padded_length(int64_t n) {
  return n + (kZImageSeqMultiple - n % kZImageSeqMultiple) % kZImageSeqMultiple;
}

// latents[B, C, H, W] (f32, H and W multiples of p) -> tokens [B, length, p*p*C]; rows past
// the (H/p)(W/p) image tokens are 0.
Tensor zimage_patchify(const Tensor& latents, int64_t patch, int64_t length);

// The inverse for the first (H/p)(W/p) rows of tokens[B, L, p*p*C] -> [B, C, H, W].
Tensor zimage_unpatchify(const Tensor& tokens, int64_t channels, int64_t height, int64_t width,
                         int64_t patch);

}  // namespace zflow::models
