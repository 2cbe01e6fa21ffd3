#include "models/offload.h"

#include "core/error.h"
#include "core/log.h"

namespace zflow::models {

OffloadedBlocks::OffloadedBlocks(const io::WeightStore& weights,
                                 const std::vector<ParameterSpec>& params,
                                 std::vector<std::string> prefixes, const Placement& placement,
                                 std::string_view what)
    : prefixes_(std::move(prefixes)), names_(prefixes_.size()) {
  ZF_CHECK(placement.device != Device::CPU,
           "[offload] {}: --offload streams weights to a GPU; the model is placed on the CPU",
           what);
  std::vector<std::vector<Tensor>> blocks(prefixes_.size());
  for (const ParameterSpec& p : params) {
    size_t block = prefixes_.size();
    for (size_t i = 0; i < prefixes_.size() && block == prefixes_.size(); ++i)
      if (p.name.starts_with(prefixes_[i])) block = i;
    if (block == prefixes_.size()) {
      resident_.push_back(p);
      continue;
    }
    const Tensor t = weights.get(p.name);
    names_[block].push_back(p.name);
    blocks[block].push_back(
        t.dtype() == placed_dtype(t, placement) ? t : t.to(placed_dtype(t, placement)));
  }
  stream_ = std::make_unique<WeightStream>(blocks, std::string(what));
}

io::WeightStore OffloadedBlocks::place_resident(const io::WeightStore& weights,
                                                const Placement& placement, std::string_view what,
                                                std::span<const std::string> on_host) const {
  io::WeightStore placed = place_weights(weights, resident_, placement, what, on_host);
  for (const std::vector<std::string>& block : names_)
    for (const std::string& name : block)
      placed.add(name, weights.get(name), weights.source_of(name));
  return placed;
}

io::WeightStore OffloadedBlocks::acquire(size_t i) {
  const std::vector<Tensor> tensors = stream_->acquire(i);
  io::WeightStore store;
  for (size_t j = 0; j < tensors.size(); ++j) store.add(names_[i][j], tensors[j], "offload");
  return store;
}

BlockLease::~BlockLease() {
  try {
    blocks_.release(i_);
  } catch (const Error& e) {
    log::error("{}", e.what());  // a destructor must not throw; the next acquire will fail
  }
}

}  // namespace zflow::models
