// Scaled dot-product attention by cuDNN's fused SDPA (flash attention on the tensor cores),
// through the cuDNN frontend's graph API, for bf16 activations: the kernel the flash_attention
// SIMT kernel (attention.cu) stands in for where cuDNN is missing.
//
// The frontend is header-only (the nvidia-cudnn-frontend wheel's include/, fetched by
// scripts/fetch-cudnn-frontend; CMake defines ZFLOW_CUDNN_SDPA when it finds it) and is built
// with dynamic loading: libcudnn.so.9 is opened at the first call, so a binary built with it runs
// on machines without cuDNN, falling back to the built-in kernel. So does any shape cuDNN's
// heuristics cannot plan (head dims not a multiple of 8 or above 256, float32 activations).
// ZFLOW_CUDNN_SDPA=0 in the environment turns it off.
//
// Masks map onto cuDNN's: key_lengths is a padding mask (seq_len_kv per sample, seq_len_q the
// whole query length, so no query row is dropped); causal is the top-left diagonal band with
// right bound 0 (query i sees keys j <= i). Grouped-query attention passes K and V with their
// own head count. Q, K and V are read through their strides (the models pass [B, L, H, D] tensors
// permuted to [B, H, L, D]: no copies), and the output is written as [B, Lq, H, Dv] and returned
// as its [B, H, Lq, Dv] view, which is what the models permute back to. One graph per shape,
// layout and mask, built on first use and kept.
#include "backend/cuda/kernels.h"
#include "backend/device.h"

#ifdef ZFLOW_CUDNN_SDPA

#include <dlfcn.h>

#include <bit>
#include <cstdlib>
#include <map>
#include <memory>
#include <mutex>
#include <vector>

#define NV_CUDNN_FRONTEND_USE_DYNAMIC_LOADING
#include <cudnn_frontend.h>

#include "backend/cuda/context.h"
#include "core/error.h"
#include "core/log.h"

namespace cudnn_frontend {
// The frontend's dynamic loading reads the library through this handle (cudnn_frontend_shim.h).
void* cudnn_dlhandle = nullptr;
}  // namespace cudnn_frontend

namespace zflow::cuda {
namespace {

namespace fe = cudnn_frontend;

enum Uid : int64_t { kQ = 1, kK, kV, kO, kSeqQ, kSeqKv };

// What a graph is built for: sizes, strides, scale and the mask's form (not its lengths, which
// are inputs).
struct Problem {
  int64_t b, h, hkv, lq, lk, d, dv;
  bool causal, padded;
  float scale;
  std::vector<int64_t> q_strides, k_strides, v_strides;
};

using ShapeKey = std::vector<int64_t>;

ShapeKey key_of(const Problem& p) {
  ShapeKey key = {p.b, p.h,  p.hkv,    p.lq,     p.lk,
                  p.d, p.dv, p.causal, p.padded, std::bit_cast<int32_t>(p.scale)};
  for (const auto* s : {&p.q_strides, &p.k_strides, &p.v_strides})
    key.insert(key.end(), s->begin(), s->end());
  return key;
}

struct Plan {
  std::shared_ptr<fe::graph::Graph> graph;
  int64_t workspace = 0;
};

// The strides, in [B, H, L, D] order, of the [B, L, H, D] buffer the output is written to.
std::vector<int64_t> output_strides(int64_t h, int64_t l, int64_t d) {
  return {l * h * d, d, h * d, 1};
}

class Sdpa {
 public:
  // The process's SDPA, or nullptr when cuDNN is off or cannot be loaded (said once).
  static Sdpa* get() {
    static Sdpa* instance = []() -> Sdpa* {
      const char* env = std::getenv("ZFLOW_CUDNN_SDPA");
      if (env != nullptr && std::string_view(env) == "0") return nullptr;
      fe::cudnn_dlhandle = dlopen("libcudnn.so.9", RTLD_NOW | RTLD_GLOBAL);
      if (fe::cudnn_dlhandle == nullptr) {
        log::warn(
            "[attention] cuDNN (libcudnn.so.9) is not loadable ({}): attention uses the "
            "built-in kernel",
            dlerror());
        return nullptr;
      }
      cudnnHandle_t handle = nullptr;
      if (fe::detail::create_handle(&handle) != CUDNN_STATUS_SUCCESS ||
          fe::detail::set_stream(handle, context().stream) != CUDNN_STATUS_SUCCESS) {
        log::warn("[attention] cuDNN did not start: attention uses the built-in kernel");
        return nullptr;
      }
      log::info("[attention] cuDNN {} fused attention", fe::detail::get_backend_version());
      return new Sdpa(handle);  // kept for the life of the process, as the context is
    }();
    return instance;
  }

  // The plan for `key`, built on first use; nullptr when cuDNN cannot run that shape.
  const Plan* plan(const Problem& p) {
    const ShapeKey key = key_of(p);
    std::lock_guard<std::mutex> lock(mutex_);
    auto it = plans_.find(key);
    if (it == plans_.end()) it = plans_.emplace(key, build(p)).first;
    return it->second.get();
  }

  cudnnHandle_t handle() const { return handle_; }

 private:
  explicit Sdpa(cudnnHandle_t handle) : handle_(handle) {}

  std::unique_ptr<Plan> build(const Problem& p) const {
    const int64_t b = p.b, h = p.h, hkv = p.hkv, lq = p.lq, lk = p.lk, d = p.d, dv = p.dv;
    auto graph = std::make_shared<fe::graph::Graph>();
    graph->set_io_data_type(fe::DataType_t::BFLOAT16)
        .set_intermediate_data_type(fe::DataType_t::FLOAT)
        .set_compute_data_type(fe::DataType_t::FLOAT);
    auto tensor = [&](const char* name, Uid uid, std::vector<int64_t> dims,
                      std::vector<int64_t> strides) {
      return graph->tensor(fe::graph::Tensor_attributes()
                               .set_name(name)
                               .set_uid(uid)
                               .set_dim(std::move(dims))
                               .set_stride(std::move(strides)));
    };
    const auto q = tensor("Q", kQ, {b, h, lq, d}, p.q_strides);
    const auto k = tensor("K", kK, {b, hkv, lk, d}, p.k_strides);
    const auto v = tensor("V", kV, {b, hkv, lk, dv}, p.v_strides);
    auto options = fe::graph::SDPA_attributes()
                       .set_name("sdpa")
                       .set_generate_stats(false)
                       .set_attn_scale(p.scale)
                       .set_causal_mask(p.causal);
    if (p.padded) {
      auto lengths = [&](const char* name, Uid uid) {
        return graph->tensor(fe::graph::Tensor_attributes()
                                 .set_name(name)
                                 .set_uid(uid)
                                 .set_dim({b, 1, 1, 1})
                                 .set_stride({1, 1, 1, 1})
                                 .set_data_type(fe::DataType_t::INT32));
      };
      options.set_padding_mask(true)
          .set_seq_len_q(lengths("seq_q", kSeqQ))
          .set_seq_len_kv(lengths("seq_kv", kSeqKv));
    }
    auto [o, stats] = graph->sdpa(q, k, v, options);
    (void)stats;
    o->set_output(true).set_uid(kO).set_dim({b, h, lq, dv}).set_stride(output_strides(h, lq, dv));

    auto plan = std::make_unique<Plan>();
    plan->graph = graph;
    fe::error_t status = graph->validate();
    if (status.is_good()) status = graph->build_operation_graph(handle_);
    if (status.is_good()) status = graph->create_execution_plans({fe::HeurMode_t::A});
    if (status.is_good()) status = graph->check_support(handle_);
    if (status.is_good()) status = graph->build_plans(handle_);
    if (status.is_good()) status = graph->get_workspace_size(plan->workspace);
    if (status.is_bad()) {
      log::info(
          "[attention] cuDNN has no plan for B {} H {}/{} Lq {} Lk {} D {}/{} ({}): the "
          "built-in kernel runs it",
          b, h, hkv, lq, lk, d, dv, status.get_message());
      return nullptr;
    }
    return plan;
  }

  cudnnHandle_t handle_;
  std::mutex mutex_;
  std::map<ShapeKey, std::unique_ptr<Plan>> plans_;
};

// `t` itself when cuDNN can read it through its strides (unit stride along the head dim, 16-byte
// aligned), else a contiguous copy.
Tensor readable(const Tensor& t) {
  const bool aligned = reinterpret_cast<uintptr_t>(t.raw()) % 16 == 0;
  return t.strides().back() == 1 && aligned ? t : t.contiguous();
}

}  // namespace

Tensor attention_by_cudnn(const Tensor& q_in, const Tensor& k_in, const Tensor& v_in, float scale,
                          const ops::AttentionMask& mask) {
  if (q_in.dtype() != DType::BF16 || q_in.numel() == 0) return {};
  Sdpa* sdpa = Sdpa::get();
  if (sdpa == nullptr) return {};
  const Tensor q = readable(q_in), k = readable(k_in), v = readable(v_in);
  const int64_t b = q.size(0), h = q.size(1), lq = q.size(2), lk = k.size(2), dv = v.size(3);
  const bool padded = !mask.key_lengths.empty();
  const Plan* plan = sdpa->plan({b, h, k.size(1), lq, lk, q.size(3), dv, mask.causal, padded, scale,
                                 q.strides(), k.strides(), v.strides()});
  if (plan == nullptr) return {};
  Tensor out = Tensor::empty({b, lq, h, dv}, DType::BF16, Device::CUDA);
  Tensor workspace =
      Tensor::empty({std::max<int64_t>(plan->workspace, 1)}, DType::U8, Device::CUDA);
  std::unordered_map<int64_t, void*> pointers = {
      {kQ, q.raw()}, {kK, k.raw()}, {kV, v.raw()}, {kO, out.raw()}};
  Tensor seq_q, seq_kv;
  if (padded) {
    const std::vector<int32_t> q_lengths(static_cast<size_t>(b), static_cast<int32_t>(lq));
    const std::vector<int32_t> kv_lengths(mask.key_lengths.begin(), mask.key_lengths.end());
    seq_q = upload_i32(q_lengths.data(), b);
    seq_kv = upload_i32(kv_lengths.data(), b);
    pointers[kSeqQ] = seq_q.raw();
    pointers[kSeqKv] = seq_kv.raw();
  }
  fe::error_t status = plan->graph->execute(sdpa->handle(), pointers, workspace.raw());
  ZF_CHECK(status.is_good(), "[attention] cuDNN SDPA failed: {}", status.get_message());
  return out.permute({0, 2, 1, 3});
}

}  // namespace zflow::cuda

std::string zflow::cuda_attention_kernel() {
  return cuda::Sdpa::get() != nullptr ? "cudnn" : "built-in";
}

#else  // built without the cuDNN frontend

namespace zflow::cuda {

Tensor attention_by_cudnn(const Tensor&, const Tensor&, const Tensor&, float,
                          const ops::AttentionMask&) {
  return {};
}

}  // namespace zflow::cuda

std::string zflow::cuda_attention_kernel() {
  return "built-in";
}

#endif
