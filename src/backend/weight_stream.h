// Weights that live in host memory and visit the GPU a block at a time (--offload): the
// transformer layers of a model too large for the card. Every block is copied once into pinned
// host memory; on the device there are two slots the size of the largest block. While block i
// runs out of one slot, block i + 1 is uploaded into the other on a copy stream of its own, so
// the transfer hides behind the compute whenever a block's kernels take longer than its bytes
// take to cross the bus. The GPU, not the host, waits for an upload (a stream-ordered event),
// and a slot is only refilled after the kernels that read it have run.
//
// Quantised blocks cross the bus quantised (GGML blocks and float8 as they are placed,
// models/placement.h), which is what makes streaming pay: a Q4 layer is a quarter of the bf16
// bytes. One forward at a time: acquire a block, queue its kernels, release it, then the next.
// A CPU-only build refuses to make one, naming --offload.
#pragma once

#include <cstddef>
#include <memory>
#include <string>
#include <vector>

#include "core/tensor.h"

namespace zflow {

class WeightStream {
 public:
  // blocks[i]: the tensors of block i, on the host, in the dtypes they take on the device.
  // They are copied (the sources, often memory-mapped files, are not kept). `what` names the
  // model in errors and logs.
  WeightStream(const std::vector<std::vector<Tensor>>& blocks, std::string what);
  ~WeightStream();
  WeightStream(const WeightStream&) = delete;
  WeightStream& operator=(const WeightStream&) = delete;

  size_t size() const;
  // Block i's tensors on the GPU, in the order given: views into a slot, valid until
  // release(i). Work queued after this call sees the uploaded values. Starts uploading the
  // next block (i + 1, or 0 after the last) into the other slot.
  std::vector<Tensor> acquire(size_t i);
  // Every kernel reading block i has been queued: its slot may be refilled after them.
  void release(size_t i);

  size_t device_bytes() const;  // both slots
  size_t host_bytes() const;    // the pinned copy of every block

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace zflow
