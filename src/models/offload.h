// --offload for a model built of repeated blocks: the parameters under each block's name prefix
// ("layers.3.") go into a WeightStream (backend/weight_stream.h), in the dtypes place_weights
// would give them; the rest are placed as usual. While it runs a block, the model binds it
// from the device copy acquire() returns, with the same binder code it binds resident
// weights with, so streamed and resident blocks cannot differ in what they compute.
#pragma once

#include <cstddef>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "backend/weight_stream.h"
#include "io/weight_store.h"
#include "models/parameters.h"
#include "models/placement.h"

namespace zflow::models {

class OffloadedBlocks {
 public:
  // prefixes[i] names block i, in the order the forward runs them (the stream prefetches in
  // that order). Every parameter whose name starts with one of them is streamed.
  OffloadedBlocks(const io::WeightStore& weights, const std::vector<ParameterSpec>& params,
                  std::vector<std::string> prefixes, const Placement& placement,
                  std::string_view what);

  // place_weights for the parameters that are not streamed; the streamed ones are left in the
  // store as `weights` holds them, so the model's binder still finds every name (it runs
  // those blocks from acquire()).
  // `on_host` as for place_weights.
  io::WeightStore place_resident(const io::WeightStore& weights, const Placement& placement,
                                 std::string_view what,
                                 std::span<const std::string> on_host = {}) const;
  size_t size() const { return prefixes_.size(); }
  const std::string& prefix(size_t i) const { return prefixes_[i]; }

  // Block i's weights on the device, by name, until release(i).
  io::WeightStore acquire(size_t i);
  void release(size_t i) { stream_->release(i); }

  // Held for a whole forward: blocks are acquired and released one after another.
  std::mutex& forward_mutex() { return mutex_; }

 private:
  std::vector<std::string> prefixes_;
  std::vector<std::vector<std::string>> names_;  // per block, in the stream's order
  std::vector<ParameterSpec> resident_;
  std::unique_ptr<WeightStream> stream_;
  std::mutex mutex_;
};

// Block i acquired for a scope: released when the scope ends, also by an exception.
class BlockLease {
 public:
  BlockLease(OffloadedBlocks& blocks, size_t i)
      : blocks_(blocks), i_(i), store_(blocks.acquire(i)) {}
  ~BlockLease();
  BlockLease(const BlockLease&) = delete;
  BlockLease& operator=(const BlockLease&) = delete;
  const io::WeightStore& weights() const { return store_; }

 private:
  OffloadedBlocks& blocks_;
  size_t i_;
  io::WeightStore store_;
};

// What a model's forward holds while it runs its blocks: nothing without offloading, else the
// stream's forward mutex.
inline std::unique_lock<std::mutex> lock_blocks(OffloadedBlocks* offload) {
  return offload ? std::unique_lock(offload->forward_mutex()) : std::unique_lock<std::mutex>();
}

// Block i as it is about to run: `resident` itself without offloading; with it, the block that
// `bind` binds from block i's device copy, which `lease` keeps valid for the caller's scope (the
// resident structs then hold the host weights). The same bind code as the resident weights.
template <typename Block, typename Bind>
Block block_to_run(OffloadedBlocks* offload, std::optional<BlockLease>& lease, size_t i,
                   const Block& resident, Bind&& bind) {
  if (offload == nullptr) return resident;
  lease.emplace(*offload, i);
  ParameterBinder binder(&lease->weights());
  return bind(binder);
}

// A model's parameters bound where the placement puts them: `bind` (ParameterBinder& -> the
// model's bound parts) runs on `weights`; for a device, or streamed blocks (--offload: the
// parameters under `prefixes` go to `offload`), it runs again on the placed copies. `used` gets
// the parameters bound, `config` goes into the binder's shape errors.
template <typename Bind>
auto bind_placed(const io::WeightStore& weights, const Placement& placement,
                 const std::string& config, const std::vector<std::string>& prefixes,
                 std::string_view what, std::shared_ptr<OffloadedBlocks>& offload,
                 std::vector<ParameterSpec>& used, Bind&& bind) {
  ParameterBinder binder(&weights, config);
  auto parts = bind(binder);
  used = binder.take_specs();
  if (!placement.offload && placement.device == Device::CPU) return parts;
  if (placement.offload)
    offload = std::make_shared<OffloadedBlocks>(weights, used, prefixes, placement, what);
  const io::WeightStore placed = placement.offload
                                     ? offload->place_resident(weights, placement, what)
                                     : place_weights(weights, used, placement, what);
  ParameterBinder placed_binder(&placed, config);
  return bind(placed_binder);
}

}  // namespace zflow::models
