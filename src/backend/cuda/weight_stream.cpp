// WeightStream on CUDA: the pinned copy, two device slots, a copy stream and per-slot events
// (uploaded: recorded on the copy stream, waited for by the compute stream; released: recorded
// on the compute stream, waited for by the copy stream before the slot is overwritten).
#include "backend/weight_stream.h"

#include <algorithm>
#include <cstring>

#include "backend/cuda/context.h"
#include "core/error.h"
#include "core/log.h"

namespace zflow {
namespace {

constexpr size_t kAlign = 256;  // every tensor of a slot starts on a 256-byte boundary

size_t aligned(size_t n) {
  return (n + kAlign - 1) / kAlign * kAlign;
}

struct Entry {
  size_t offset;  // within the block
  Shape shape;
  DType dtype;
  float scale;
};

struct Block {
  size_t host_offset = 0, bytes = 0;
  std::vector<Entry> entries;
};

constexpr int kNone = -1;

}  // namespace

struct WeightStream::Impl {
  std::string what;
  std::vector<Block> blocks;
  std::shared_ptr<Storage> host;     // pinned, every block back to back
  std::shared_ptr<Storage> slot[2];  // device
  int holds[2] = {kNone, kNone};     // the block each slot holds (or is receiving)
  bool in_use[2] = {false, false};   // acquired and not yet released
  cudaStream_t copy_stream = nullptr;
  cudaEvent_t uploaded[2] = {nullptr, nullptr}, released[2] = {nullptr, nullptr};

  int slot_of(size_t i) const {
    for (int s = 0; s < 2; ++s)
      if (holds[s] == static_cast<int>(i)) return s;
    return kNone;
  }

  // Queues block i's upload into slot s, after the kernels that last read the slot.
  void upload(size_t i, int s) {
    ZF_CHECK(!in_use[s], "[offload] {}: block {} is still in use; release it first", what,
             holds[s]);
    const Block& b = blocks[i];
    ZF_CUDA(cudaStreamWaitEvent(copy_stream, released[s]));
    ZF_CUDA(cudaMemcpyAsync(slot[s]->data, static_cast<char*>(host->data) + b.host_offset, b.bytes,
                            cudaMemcpyHostToDevice, copy_stream));
    ZF_CUDA(cudaEventRecord(uploaded[s], copy_stream));
    holds[s] = static_cast<int>(i);
  }
};

WeightStream::WeightStream(const std::vector<std::vector<Tensor>>& blocks, std::string what)
    : impl_(std::make_unique<Impl>()) {
  Impl& m = *impl_;
  m.what = std::move(what);
  ZF_CHECK(!blocks.empty(), "[offload] {}: no blocks to stream", m.what);
  size_t host_bytes = 0, slot_bytes = 0;
  for (const std::vector<Tensor>& tensors : blocks) {
    Block b;
    b.host_offset = host_bytes;
    for (const Tensor& t : tensors) {
      b.entries.push_back({b.bytes, t.shape(), t.dtype(), t.scale()});
      b.bytes += aligned(t.nbytes());
    }
    host_bytes += b.bytes;
    slot_bytes = std::max(slot_bytes, b.bytes);
    m.blocks.push_back(std::move(b));
  }
  void* pinned = nullptr;
  const cudaError_t status = cudaMallocHost(&pinned, std::max<size_t>(host_bytes, 1));
  if (status != cudaSuccess) {
    cudaGetLastError();
    fail("[offload] {}: cannot pin {:.2f} GB of host memory for the streamed blocks ({})", m.what,
         static_cast<double>(host_bytes) / 1e9, cudaGetErrorString(status));
  }
  m.host = Storage::borrow(pinned, host_bytes, std::shared_ptr<void>(pinned, cudaFreeHost));
  for (size_t i = 0; i < blocks.size(); ++i)
    for (size_t j = 0; j < blocks[i].size(); ++j) {
      const Entry& e = m.blocks[i].entries[j];
      Tensor::over(m.host, m.blocks[i].host_offset + e.offset, e.shape, e.dtype)
          .with_scale(e.scale)
          .copy_from(blocks[i][j]);
    }
  for (int s = 0; s < 2; ++s) {
    m.slot[s] =
        Tensor::empty({static_cast<int64_t>(slot_bytes)}, DType::U8, Device::CUDA).storage();
    ZF_CUDA(cudaEventCreateWithFlags(&m.uploaded[s], cudaEventDisableTiming));
    ZF_CUDA(cudaEventCreateWithFlags(&m.released[s], cudaEventDisableTiming));
  }
  ZF_CUDA(cudaStreamCreateWithFlags(&m.copy_stream, cudaStreamNonBlocking));
  // The slots come from the stream-ordered pool: they may reuse memory that kernels queued
  // on the compute stream still read. Each is free for the copy stream once the compute stream
  // reaches its allocation, which is what a slot's `released` event says.
  for (int s = 0; s < 2; ++s) ZF_CUDA(cudaEventRecord(m.released[s], cuda::context().stream));
  log::info("[offload] {}: {} blocks in {:.2f} GB of pinned host memory, two {:.2f} GB slots on {}",
            m.what, blocks.size(), static_cast<double>(host_bytes) / 1e9,
            static_cast<double>(slot_bytes) / 1e9, device_name(Device::CUDA));
}

WeightStream::~WeightStream() {
  Impl& m = *impl_;
  // The slots go back to the pool on the compute stream; the copies into them must be over.
  if (m.copy_stream != nullptr) cudaStreamSynchronize(m.copy_stream);
  for (int s = 0; s < 2; ++s) {
    if (m.uploaded[s] != nullptr) cudaEventDestroy(m.uploaded[s]);
    if (m.released[s] != nullptr) cudaEventDestroy(m.released[s]);
  }
  if (m.copy_stream != nullptr) cudaStreamDestroy(m.copy_stream);
}

size_t WeightStream::size() const {
  return impl_->blocks.size();
}

std::vector<Tensor> WeightStream::acquire(size_t i) {
  Impl& m = *impl_;
  ZF_CHECK(i < m.blocks.size(), "[offload] {}: block {} of {}", m.what, i, m.blocks.size());
  int s = m.slot_of(i);
  if (s == kNone) {
    s = m.in_use[0] ? 1 : 0;
    m.upload(i, s);
  }
  ZF_CHECK(!m.in_use[s], "[offload] {}: block {} acquired twice", m.what, i);
  m.in_use[s] = true;
  ZF_CUDA(cudaStreamWaitEvent(cuda::context().stream, m.uploaded[s]));
  const size_t next = (i + 1) % m.blocks.size();
  if (m.slot_of(next) == kNone) m.upload(next, 1 - s);
  std::vector<Tensor> views;
  for (const Entry& e : m.blocks[i].entries)
    views.push_back(Tensor::over(m.slot[s], e.offset, e.shape, e.dtype).with_scale(e.scale));
  return views;
}

void WeightStream::release(size_t i) {
  Impl& m = *impl_;
  const int s = m.slot_of(i);
  ZF_CHECK(s != kNone && m.in_use[s], "[offload] {}: block {} released but not acquired", m.what,
           i);
  ZF_CUDA(cudaEventRecord(m.released[s], cuda::context().stream));
  m.in_use[s] = false;
}

size_t WeightStream::device_bytes() const {
  return 2 * impl_->slot[0]->bytes;
}

size_t WeightStream::host_bytes() const {
  return impl_->host->bytes;
}

}  // namespace zflow
