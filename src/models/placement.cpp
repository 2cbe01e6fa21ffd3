#include "models/placement.h"

#include <fmt/format.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>

#include "core/error.h"
#include "core/log.h"

namespace zflow::models {

Tensor Placement::activation(const Tensor& t) const {
  if (t.device() == device && t.dtype() == activations) return t;
  // copy_from converts on the host before an upload and after a download, so only the
  // smaller dtype crosses the bus.
  Tensor out = Tensor::empty(t.shape(), activations, device);
  out.copy_from(t);
  return out;
}

std::string Placement::summary() const {
  return fmt::format("{}, {} activations{}", device_name(device), dtype_name(activations),
                     offload ? ", blocks offloaded" : "");
}

Tensor float32_on(const Tensor& y, Device device) {
  if (y.device() == device && y.dtype() == DType::F32) return y;
  Tensor out = Tensor::empty(y.shape(), DType::F32, device);
  out.copy_from(y);
  return out;
}

namespace {

// "\r[what] weights to cuda: 45% (5.5 of 12.3 GB)" on a terminal, redrawn in place.
class UploadProgress {
 public:
  UploadProgress(std::string_view what, Device device, double total_bytes)
      : what_(what),
        device_(device_name(device)),
        total_(total_bytes),
        tty_(isatty(fileno(stderr)) != 0) {}

  void advance(double bytes) {
    done_ += bytes;
    if (!tty_ || total_ <= 0) return;
    const int percent = static_cast<int>(100.0 * done_ / total_);
    if (percent == shown_) return;
    shown_ = percent;
    fmt::print(stderr, "\r[{}] weights to {}: {:3d}% ({:.2f} of {:.2f} GB)", what_, device_,
               percent, done_ / 1e9, total_ / 1e9);
    std::fflush(stderr);
  }

  void finish() {
    if (tty_ && shown_ >= 0) fmt::print(stderr, "\n");
  }

 private:
  std::string what_;
  std::string_view device_;
  double total_ = 0, done_ = 0;
  bool tty_ = false;
  int shown_ = -1;
};

}  // namespace

// The dtype a weight takes on the device: scaled e4m3 weights stay float8 (with their scale)
// for the FP8 matmuls; GGML block-quantised matrices stay quantised (linear and embedding
// dequantise them on the device as they run), which is what lets a Q4 model fit a small GPU;
// other float weights take the activation dtype (a block-quantised vector or conv kernel,
// dequantised on the host), as do int8 weights with row scales (no GPU kernel runs ComfyUI's
// int8 matmul yet); integer tensors keep theirs.
DType placed_dtype(const Tensor& t, const Placement& placement) {
  const bool keep = t.dtype() == DType::F8_E4M3 ||
                    (!dtype_is_float(t.dtype()) && t.row_scales().empty()) ||
                    (dtype_is_quantized(t.dtype()) && t.ndim() == 2);
  return keep ? t.dtype() : placement.activations;
}

io::WeightStore place_weights(const io::WeightStore& weights,
                              const std::vector<ParameterSpec>& params, const Placement& placement,
                              std::string_view what, std::span<const std::string> on_host) {
  if (placement.device == Device::CPU) return weights;
  auto stays_on_host = [&](const std::string& name) {
    return std::find(on_host.begin(), on_host.end(), name) != on_host.end();
  };
  const auto t0 = std::chrono::steady_clock::now();
  double total = 0;
  for (const ParameterSpec& p : params)
    if (!stays_on_host(p.name))
      total += static_cast<double>(
          dtype_nbytes(placed_dtype(weights.get(p.name), placement), shape_numel(p.shape)));
  log::info("[{}] putting {} weights ({:.2f} GB, float weights as {}) on {}", what, params.size(),
            total / 1e9, dtype_name(placement.activations), device_name(placement.device));
  UploadProgress progress(what, placement.device, total);
  io::WeightStore placed;
  for (const ParameterSpec& p : params) {
    const Tensor t = weights.get(p.name);
    if (stays_on_host(p.name)) {
      placed.add(p.name, t.to(Device::CPU), weights.source_of(p.name));
      continue;
    }
    const DType dtype = placed_dtype(t, placement);
    Tensor on_device = t;
    if (t.device() != placement.device || t.dtype() != dtype) {
      on_device = Tensor::empty(t.shape(), dtype, placement.device)
                      .with_scale(t.dtype() == dtype ? t.scale() : 1.0f);
      on_device.copy_from(t);  // dequantised / converted on the host, then uploaded
    }
    placed.add(p.name, on_device, weights.source_of(p.name));
    progress.advance(static_cast<double>(on_device.nbytes()));
  }
  progress.finish();
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  log::info("[{}] weights on {} in {:.1f} s", what, device_name(placement.device), seconds);
  return placed;
}

void warn_unread_tensors(const io::WeightStore& weights, size_t bound, std::string_view what,
                         const std::string& config_summary) {
  if (bound == weights.size()) return;
  log::warn("[{}] {}: {} of its {} tensors are not part of the network ({})", what,
            weights.description(), weights.size() - bound, weights.size(), config_summary);
}

}  // namespace zflow::models
