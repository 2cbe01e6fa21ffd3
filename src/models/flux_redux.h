// FLUX.1 Redux's image embedder (BFL's ReduxImageEncoder; diffusers
// pipelines/flux/modeling_flux.py): SigLIP's last hidden state [N, S] becomes N tokens as wide
// as T5's states, which the FLUX.1 transformer reads after the prompt's:
//   redux_down(silu(redux_up(x))), redux_up {weight [3 T, S], bias [3 T]},
//   redux_down {weight [T, 3 T], bias [T]}
// (the release: S = 1152, T = 4096; flux1-redux-dev.safetensors and a diffusers folder's
// image_embedder/ use these names).
#pragma once

#include <filesystem>

#include "core/tensor.h"
#include "io/weight_store.h"
#include "models/placement.h"

namespace zflow::models {

class ReduxImageEncoder {
 public:
  // Missing or wrong-shaped tensors are errors naming the tensor and its file.
  explicit ReduxImageEncoder(const io::WeightStore& weights, const Placement& placement = {});

  int64_t image_dim() const { return up_w_.size(1); }   // S: SigLIP's width
  int64_t text_dim() const { return down_w_.size(0); }  // T: T5's width

  // siglip_states [N, S] -> tokens [N, T], float32 on the CPU.
  Tensor embed(const Tensor& siglip_states) const;

 private:
  Placement placement_;
  Tensor up_w_, up_b_, down_w_, down_b_;
};

// From a file (flux1-redux-dev.safetensors) or a diffusers image_embedder/ folder.
ReduxImageEncoder load_redux_image_encoder(const std::filesystem::path& path,
                                           const Placement& placement = {});

}  // namespace zflow::models
