// How Z-Image turns latents into tokens and back (diffusers ZImageTransformer2DModel
// _patchify_image / unpatchify / _pad_with_ids):
//  - a latent [C, H, W] becomes (H/p)(W/p) tokens in row-major (h, w) order, each holding its
//    p x p patch with features in (ph, pw, c) order, c fastest (not FLUX's (c, ph, pw)):
//    ops::patchify and ops::unpatchify;
//  - caption and image runs are each padded to a multiple of 32 tokens with learned pad
//    tokens, which are real tokens (attended to, not masked).
#pragma once

#include <cstdint>

namespace zflow::models {

inline constexpr int64_t kZImageSeqMultiple = 32;

// n rounded up to a multiple of 32.
inline int64_t zimage_padded_length(int64_t n) {
  return n + (kZImageSeqMultiple - n % kZImageSeqMultiple) % kZImageSeqMultiple;
}

}  // namespace zflow::models
