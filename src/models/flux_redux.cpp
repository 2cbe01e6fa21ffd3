#include "models/flux_redux.h"

#include "backend/ops.h"
#include "core/error.h"
#include "models/parameters.h"

namespace zflow::models {

ReduxImageEncoder::ReduxImageEncoder(const io::WeightStore& weights, const Placement& placement)
    : placement_(placement) {
  for (const char* name : {"redux_up.weight", "redux_down.weight"})
    ZF_CHECK(weights.contains(name) && weights.get(name).ndim() == 2,
             "[redux] {}: no matrix '{}' (expected a FLUX.1 Redux image embedder)",
             weights.description(), name);
  const int64_t image = weights.get("redux_up.weight").size(1);
  const int64_t text = weights.get("redux_down.weight").size(0);
  ParameterBinder bind(&weights, fmt::format("image width {}, text width {}", image, text));
  up_w_ = bind("redux_up.weight", {3 * text, image});
  up_b_ = bind("redux_up.bias", {3 * text});
  down_w_ = bind("redux_down.weight", {text, 3 * text});
  down_b_ = bind("redux_down.bias", {text});
  if (placement_.device == Device::CPU) return;
  const io::WeightStore placed = place_weights(weights, bind.take_specs(), placement_, "redux");
  up_w_ = placed.get("redux_up.weight");
  up_b_ = placed.get("redux_up.bias");
  down_w_ = placed.get("redux_down.weight");
  down_b_ = placed.get("redux_down.bias");
}

Tensor ReduxImageEncoder::embed(const Tensor& siglip_states) const {
  ZF_CHECK(siglip_states.ndim() == 2 && siglip_states.size(1) == image_dim(),
           "[redux] embed: states of shape {}, expected [tokens, {}]",
           shape_str(siglip_states.shape()), image_dim());
  const Tensor x = placement_.activation(siglip_states);
  const Tensor hidden = ops::silu(ops::linear(x, up_w_, up_b_));
  return float32_on(ops::linear(hidden, down_w_, down_b_), Device::CPU).contiguous();
}

ReduxImageEncoder load_redux_image_encoder(const std::filesystem::path& path,
                                           const Placement& placement) {
  return ReduxImageEncoder(io::WeightStore::open(path), placement);
}

}  // namespace zflow::models
