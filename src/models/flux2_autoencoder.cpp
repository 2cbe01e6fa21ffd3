#include "models/flux2_autoencoder.h"

#include <cmath>
#include <nlohmann/json.hpp>

#include "core/error.h"
#include "core/file_io.h"
#include "io/key_map_autoencoder.h"
#include "models/vae_tiling.h"

namespace zflow::models {
namespace {

constexpr const char* kMean = "bn.running_mean";
constexpr const char* kVar = "bn.running_var";

// batch_norm_eps and patch_size of a diffusers AutoencoderKLFlux2 config.json.
float batch_norm_eps_of(const std::filesystem::path& json_path) {
  const std::string source = json_path.string();
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(read_text_file(json_path, "vae"));
  } catch (const nlohmann::json::exception& e) {
    fail("[vae] {}: not valid JSON: {}", source, e.what());
  }
  float eps = kFlux2BatchNormEps;
  std::vector<int64_t> patch = {2, 2};
  try {
    if (j.contains("batch_norm_eps")) j["batch_norm_eps"].get_to(eps);
    if (j.contains("patch_size")) j["patch_size"].get_to(patch);
  } catch (const nlohmann::json::exception&) {
    fail("[vae] {}: batch_norm_eps must be a number and patch_size a list of two integers", source);
  }
  ZF_CHECK(patch == std::vector<int64_t>({2, 2}),
           "[vae] {}: patch_size {} is not supported (FLUX.2 patchifies 2x2)", source,
           j["patch_size"].dump());
  ZF_CHECK(eps > 0, "[vae] {}: batch_norm_eps {} must be positive", source, eps);
  return eps;
}

}  // namespace

Tensor flux2_patchify_latents(const Tensor& latents) {
  ZF_CHECK(latents.ndim() == 4 && latents.size(2) % 2 == 0 && latents.size(3) % 2 == 0,
           "[flux2] patchify: latents {} must be [B, C, H, W] with even H and W",
           shape_str(latents.shape()));
  const int64_t b = latents.size(0), c = latents.size(1), h = latents.size(2) / 2,
                w = latents.size(3) / 2;
  // view(B, C, h, 2, w, 2).permute(0, 1, 3, 5, 2, 4) -> [B, C, 2, 2, h, w]
  return latents.contiguous()
      .view({b, c, h, 2, w, 2})
      .permute({0, 1, 3, 5, 2, 4})
      .contiguous()
      .view({b, c * 4, h, w});
}

Tensor flux2_unpatchify_latents(const Tensor& latents) {
  ZF_CHECK(latents.ndim() == 4 && latents.size(1) % 4 == 0,
           "[flux2] unpatchify: latents {} must be [B, 4C, h, w]", shape_str(latents.shape()));
  const int64_t b = latents.size(0), c = latents.size(1) / 4, h = latents.size(2),
                w = latents.size(3);
  // view(B, C, 2, 2, h, w).permute(0, 1, 4, 2, 5, 3) -> [B, C, h, 2, w, 2]
  return latents.contiguous()
      .view({b, c, 2, 2, h, w})
      .permute({0, 1, 4, 2, 5, 3})
      .contiguous()
      .view({b, c, h * 2, w * 2});
}

Flux2Autoencoder::Flux2Autoencoder(AutoencoderKL vae, const Tensor& running_mean,
                                   const Tensor& running_var, float eps)
    : vae_(std::move(vae)) {
  const int64_t channels = latent_channels();
  ZF_CHECK(running_mean.numel() == channels && running_var.numel() == channels,
           "[vae] FLUX.2 BatchNorm statistics hold {} and {} values, expected {} (4 x {} latent "
           "channels)",
           running_mean.numel(), running_var.numel(), channels, vae_.config().latent_channels);
  mean_ = running_mean.to(Device::CPU).to_f32_vector();
  const std::vector<float> var = running_var.to(Device::CPU).to_f32_vector();
  for (size_t i = 0; i < var.size(); ++i) {
    ZF_CHECK(var[i] >= 0.0f, "[vae] FLUX.2 BatchNorm running_var[{}] is {}, negative", i, var[i]);
    std_.push_back(std::sqrt(var[i] + eps));  // torch.sqrt(var + eps), both float32
  }
}

int64_t Flux2Autoencoder::scale_factor() const {
  return int64_t{2} << (vae_.config().levels() - 1);
}

Tensor Flux2Autoencoder::normalize(const Tensor& patchified) const {
  ZF_CHECK(patchified.ndim() == 4 && patchified.size(1) == latent_channels() &&
               patchified.dtype() == DType::F32 && patchified.device() == Device::CPU,
           "[flux2] normalize: latents {} {}, expected float32 [B, {}, h, w] on the CPU",
           shape_str(patchified.shape()), dtype_name(patchified.dtype()), latent_channels());
  Tensor out = patchified.contiguous().clone();
  float* x = out.data<float>();
  const int64_t plane = out.size(2) * out.size(3);
  for (int64_t bc = 0; bc < out.size(0) * out.size(1); ++bc) {
    const size_t c = static_cast<size_t>(bc % out.size(1));
    for (int64_t i = 0; i < plane; ++i)
      x[bc * plane + i] = (x[bc * plane + i] - mean_[c]) / std_[c];
  }
  return out;
}

Tensor Flux2Autoencoder::denormalize(const Tensor& z) const {
  ZF_CHECK(z.ndim() == 4 && z.size(1) == latent_channels() && z.dtype() == DType::F32 &&
               z.device() == Device::CPU,
           "[flux2] denormalize: latents {} {}, expected float32 [B, {}, h, w] on the CPU",
           shape_str(z.shape()), dtype_name(z.dtype()), latent_channels());
  Tensor out = z.contiguous().clone();
  float* x = out.data<float>();
  const int64_t plane = out.size(2) * out.size(3);
  for (int64_t bc = 0; bc < out.size(0) * out.size(1); ++bc) {
    const size_t c = static_cast<size_t>(bc % out.size(1));
    for (int64_t i = 0; i < plane; ++i) x[bc * plane + i] = x[bc * plane + i] * std_[c] + mean_[c];
  }
  return out;
}

Tensor Flux2Autoencoder::encode(const Tensor& image) const {
  const int64_t f = scale_factor();
  ZF_CHECK(image.ndim() == 4 && image.size(2) % f == 0 && image.size(3) % f == 0,
           "[flux2] encode: image {} must be [B, C, H, W] with H and W multiples of {}",
           shape_str(image.shape()), f);
  const Tensor mean = vae_.encode(image.to(Device::CPU)).mean;
  return normalize(flux2_patchify_latents(mean.to(Device::CPU)));
}

Tensor Flux2Autoencoder::decode(const Tensor& z, bool tiled) const {
  const Tensor raw = flux2_unpatchify_latents(denormalize(z.to(Device::CPU)));
  return (tiled ? decode_raw_tiled(vae_, raw, kDefaultVaeTile) : vae_.decode_raw(raw))
      .to(Device::CPU);
}

Flux2Autoencoder load_flux2_autoencoder(const io::WeightStore& weights,
                                        const std::optional<AutoencoderKLConfig>& config, float eps,
                                        const Placement& placement) {
  const io::WeightStore stripped = io::strip_autoencoder_prefix(weights);
  ZF_CHECK(stripped.contains(kMean) && stripped.contains(kVar),
           "[vae] {}: no '{}' / '{}': a FLUX.1 or other KL autoencoder, not FLUX.2's (whose "
           "latents are normalised with these BatchNorm statistics)",
           weights.description(), kMean, kVar);
  const Tensor mean = stripped.get(kMean), var = stripped.get(kVar);
  // The statistics are the pipelines', not the network's: the autoencoder binds the rest.
  const io::WeightStore network =
      stripped.renamed([](const std::string& name) -> std::optional<std::string> {
        if (name.starts_with("bn.")) return std::nullopt;
        return name;
      });
  return Flux2Autoencoder(load_autoencoder_kl(network, config, placement), mean, var, eps);
}

Flux2Autoencoder load_flux2_autoencoder(const std::filesystem::path& path,
                                        const Placement& placement) {
  const std::filesystem::path where = io::component_folder(path, "vae");
  const io::WeightStore weights = io::WeightStore::open(where);
  if (const auto json = io::component_config_json(where))
    return load_flux2_autoencoder(weights, AutoencoderKLConfig::from_json_file(*json),
                                  batch_norm_eps_of(*json), placement);
  return load_flux2_autoencoder(weights, std::nullopt, kFlux2BatchNormEps, placement);
}

}  // namespace zflow::models
