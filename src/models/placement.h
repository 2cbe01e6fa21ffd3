// Where a model runs: the device its weights live on and the dtype its activations take there
// (float32 on the CPU; bfloat16 by default on the GPU, or float32 there to tell a kernel bug
// from bf16 rounding). Models accept inputs on any device and in any float dtype, move them
// to their placement once at the start of a call, and return float32 results on the device
// their (tensor) input came from, so callers such as the pipelines keep their latents and
// schedule math in float32 on the CPU whatever the model runs on.
#pragma once

#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "core/tensor.h"
#include "io/weight_store.h"
#include "models/parameters.h"

namespace zflow::models {

struct Placement {
  Device device = Device::CPU;
  DType activations = DType::F32;
  // --offload: the repeated blocks (transformer layers) stay in host memory and are streamed
  // to the GPU one block ahead of use (models/offload.h); GPU placements only.
  bool offload = false;

  static Placement cpu() { return {}; }
  static Placement cuda(DType activations = DType::BF16) { return {Device::CUDA, activations}; }
  // The placement the CLI means by --device: bf16 activations on the GPU.
  static Placement on(Device device) { return device == Device::CPU ? cpu() : cuda(); }

  // `t` on this device in the activation dtype (`t` itself, no copy, when it already is).
  Tensor activation(const Tensor& t) const;
  std::string summary() const;  // "cpu, f32 activations"
};

// The dtype `t` takes on the device of a GPU placement (place_weights).
DType placed_dtype(const Tensor& t, const Placement& placement);

// `y` as float32 on `device` (`y` itself, no copy, when it already is): a GPU result comes back
// in its own dtype and is widened on the host.
Tensor float32_on(const Tensor& y, Device device);

// The tensors `params` names, taken from `weights` and put where `placement` says. On the CPU
// that is `weights` unchanged (memory-mapped, in the stored dtype). On the GPU each tensor is
// uploaded once, with a progress line on stderr: GGML block-quantised matrices as they are
// (the GPU's linear and embedding dequantise them as they run), scaled e4m3 weights as float8,
// other float weights in the activation dtype (bf16 by default; converted on the host one
// tensor at a time, so no float32 copy of the model is ever made). Models bind once on
// `weights` first (names and shapes checked, errors naming the file), then place what they
// bound: `params` is that binder's list. `what` names the model in logs. The tensors named in
// `on_host` stay in host memory whatever the placement (token embeddings: a lookup reads a few
// rows of a table that would take most of a gigabyte of GPU memory).
io::WeightStore place_weights(const io::WeightStore& weights,
                              const std::vector<ParameterSpec>& params, const Placement& placement,
                              std::string_view what, std::span<const std::string> on_host = {});

// What `bind_all(ParameterBinder&)` binds from `weights` (its errors naming `config_summary`), and
// off the CPU bound again from those parameters placed on the device: the bind, place, rebind
// the models without streamed blocks share. `count`, when given, receives how many tensors were
// bound.
template <typename BindAll>
auto bind_placed(const io::WeightStore& weights, const Placement& placement, std::string_view what,
                 std::string config_summary, BindAll&& bind_all, size_t* count = nullptr) {
  ParameterBinder bind(&weights, std::move(config_summary));
  auto bound = bind_all(bind);
  const std::vector<ParameterSpec> specs = bind.take_specs();
  if (count) *count = specs.size();
  if (placement.device != Device::CPU) {
    const io::WeightStore placed = place_weights(weights, specs, placement, what);
    ParameterBinder bind_on_device(&placed);
    bound = bind_all(bind_on_device);
  }
  return bound;
}

// A warning that `weights` holds tensors the network did not read (`bound` of them it did): a
// file for a larger or different network of the same family, worth telling the user about.
void warn_unread_tensors(const io::WeightStore& weights, size_t bound, std::string_view what,
                         const std::string& config_summary);

}  // namespace zflow::models
