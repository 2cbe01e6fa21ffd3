#include "models/upscaler.h"

#include "core/error.h"
#include "io/key_map_esrgan.h"
#include "models/esrgan.h"
#include "models/srvgg_compact.h"

namespace zflow::models {

std::optional<UpscalerArchitecture> detect_upscaler(const io::WeightStore& weights) {
  if (io::detect_esrgan_layout(weights)) return UpscalerArchitecture::Esrgan;
  // spandrel's test for Compact: a first conv and a PReLU after it in one module list.
  if (weights.contains("body.0.weight") && weights.contains("body.1.weight"))
    return UpscalerArchitecture::Compact;
  return std::nullopt;
}

std::unique_ptr<Upscaler> load_upscaler(const std::filesystem::path& path,
                                        const Placement& placement) {
  const io::WeightStore weights = io::without_basicsr_prefix(io::WeightStore::open(path));
  const std::optional<UpscalerArchitecture> arch = detect_upscaler(weights);
  ZF_CHECK(arch.has_value(),
           "[upscale] {}: not an upscaler zflow runs (ESRGAN / RRDBNet: conv_first, model.0 or "
           "RRDB_trunk weights; Real-ESRGAN Compact: body.0 and body.1)",
           path.string());
  if (*arch == UpscalerArchitecture::Compact)
    return std::make_unique<SrvggCompact>(CompactConfig::infer_from_weights(weights), weights,
                                          placement);
  const io::WeightStore basicsr = io::esrgan_to_basicsr(weights);
  return std::make_unique<Esrgan>(EsrganConfig::infer_from_weights(basicsr), basicsr, placement);
}

}  // namespace zflow::models
