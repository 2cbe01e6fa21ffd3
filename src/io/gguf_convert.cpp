#include "io/gguf_convert.h"

#include "core/error.h"
#include "core/quant_blocks.h"

namespace zflow::io {

namespace {

constexpr int64_t kSmallTensor = 1024;  // ComfyUI-GGUF's QUANTIZATION_THRESHOLD

// The float type a kept tensor is written in: its own when GGUF has it, else one that holds
// its values exactly (float8 in bfloat16) or nearly (float64 in float32).
DType kept_type(DType stored) {
  switch (stored) {
    case DType::F32:
    case DType::F16:
    case DType::BF16:
      return stored;
    case DType::F8_E4M3:
    case DType::F8_E5M2:
      return DType::BF16;
    default:
      return dtype_is_quantized(stored) ? stored : DType::F32;
  }
}

}  // namespace

const std::vector<std::string> kHighPrecisionParts = {
    "embedder",      // Z-Image x_embedder / cap_embedder / t_embedder
    "embed_tokens",  // Qwen3 / transformers token embeddings
    "token_embd",    // llama.cpp token embeddings
    "img_in.",      "txt_in.", "time_in.", "vector_in.", "guidance_in.",  // FLUX inputs
    "modulation",    // adaLN_modulation (Z-Image), img_mod / txt_mod / modulation (FLUX)
    "final_layer.",  // the last projection to latents
    "norm",          // RMSNorm / LayerNorm weights of any shape
    "pad_token",     // Z-Image x_pad_token / cap_pad_token
};

bool keeps_float_type(const std::string& name, const Tensor& t) {
  if (t.ndim() <= 1 || t.numel() <= kSmallTensor) return true;
  for (const std::string& part : kHighPrecisionParts)
    if (name.find(part) != std::string::npos) return true;
  return false;
}

DType gguf_convert_dtype(const std::string& name, const Tensor& t, DType target) {
  ZF_CHECK(target == DType::Q8_0 || target == DType::Q4_0 || target == DType::Q4_K ||
               target == DType::Q5_K || target == DType::Q6_K,
           "[convert] target {} is not one of q8_0, q4_0, q4_k, q5_k, q6_k", dtype_name(target));
  if (dtype_is_quantized(t.dtype())) return t.dtype();  // already quantised: keep it
  if (t.ndim() <= 1 || t.numel() <= kSmallTensor) return DType::F32;
  // A scaled float8 tensor's values (stored * scale) need float32's mantissa.
  if (keeps_float_type(name, t)) return t.scale() != 1.0f ? DType::F32 : kept_type(t.dtype());
  const int64_t row = t.size(-1);
  if (row % dtype_block_size(target) == 0) return target;
  if (row % dtype_block_size(DType::Q8_0) == 0) return DType::Q8_0;
  return t.scale() != 1.0f ? DType::F32 : kept_type(t.dtype());
}

void convert_to_gguf(const WeightStore& weights, const std::filesystem::path& out,
                     const GgufConvertOptions& options) {
  std::vector<std::pair<std::string, GgufValue>> metadata;
  if (!options.architecture.empty())
    metadata.emplace_back("general.architecture", GgufValue::of_string(options.architecture));
  metadata.emplace_back("general.quantization_version", GgufValue::of_uint32(2));
  for (const auto& kv : options.metadata) metadata.push_back(kv);
  // Each tensor is converted as the writer reaches it: one converted tensor in memory at a time.
  std::vector<GgufTensorSource> tensors;
  for (const std::string& name : weights.names()) {
    const Tensor t = weights.get(name);
    ZF_CHECK(t.ndim() <= 4, "[convert] {}: tensor '{}' has {} dims; GGUF holds at most 4",
             weights.source_of(name), name, t.ndim());
    const DType dtype = gguf_convert_dtype(name, t, options.target);
    tensors.push_back(
        {name, t.shape(), dtype, [&weights, name, dtype] { return weights.get(name).to(dtype); }});
  }
  write_gguf_streamed(out, metadata, tensors);
}

}  // namespace zflow::io
