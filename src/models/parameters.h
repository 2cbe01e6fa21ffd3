// A model's parameters as data: every name and shape for a config. The same list
// checks a checkpoint at load time and builds full-size random weights for
// benchmarks (speed does not depend on the values).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "core/tensor.h"
#include "io/weight_store.h"

namespace zflow::models {

struct ParameterSpec {
  std::string name;
  Shape shape;
};

// Hands out parameters by name: from a WeightStore, shape-checked (a wrong shape names the
// file, the tensor and the config the expected shape came from, since a wrong config is the
// likely cause), or, with no store, only records each name and shape. So a model's
// parameter list and its constructor share one description of the module tree.
class ParameterBinder {
 public:
  explicit ParameterBinder(const io::WeightStore* store, std::string config_summary = {})
      : store_(store), config_summary_(std::move(config_summary)) {}

  Tensor operator()(const std::string& name, const Shape& shape);
  std::vector<ParameterSpec> take_specs() { return std::move(specs_); }

 private:
  const io::WeightStore* store_;
  std::string config_summary_;
  std::vector<ParameterSpec> specs_;
};

// Random values in `dtype`: matrices and conv kernels uniform in +-1/sqrt(fan_in)
// (PyTorch's default init scale, so activations stay finite through deep networks),
// biases 0, 1-D norm weights (a name with "norm" ending in ".weight") 1, other 1-D
// tensors uniform in +-1. A GGML block `dtype` (one with a quantiser: Q8_0, Q4_0, Q4_K, ...)
// quantises the matrices whose rows are whole blocks and leaves the rest bf16, as a GGUF
// file stores a model. Generated in parallel chunks whose values do not depend on the thread
// count, one tensor at a time (no float32 copy of the whole model). On the GPU (`device`) each
// tensor is made on the host in `dtype` and uploaded before the next, so neither a float32 nor
// a host copy of the whole model is ever made.
io::WeightStore random_weights(const std::vector<ParameterSpec>& params, DType dtype, uint64_t seed,
                               Device device = Device::CPU);

}  // namespace zflow::models
