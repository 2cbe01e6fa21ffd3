#include "pipeline/preview.h"

#include <algorithm>

#include "core/error.h"
#include "pipeline/image_tensor.h"

namespace zflow::pipeline {

Tensor shrink_latents(const Tensor& latents, int64_t max_cells) {
  ZF_CHECK(latents.ndim() == 4 && latents.dtype() == DType::F32,
           "[preview] latents must be float32 [B, C, h, w], got {} {}", dtype_name(latents.dtype()),
           shape_str(latents.shape()));
  const Tensor x = latents.contiguous();
  const int64_t n = x.size(0) * x.size(1), h = x.size(2), w = x.size(3);
  const int64_t k = std::max<int64_t>(1, (std::max(h, w) + max_cells - 1) / max_cells);
  if (k == 1) return x;
  const int64_t oh = (h + k - 1) / k, ow = (w + k - 1) / k;
  Tensor out = Tensor::empty({x.size(0), x.size(1), oh, ow}, DType::F32);
  const float* in = x.data<float>();
  float* o = out.data<float>();
  for (int64_t p = 0; p < n; ++p)
    for (int64_t i = 0; i < oh; ++i)
      for (int64_t j = 0; j < ow; ++j) {
        double sum = 0;
        int64_t count = 0;
        for (int64_t y = i * k; y < std::min(h, (i + 1) * k); ++y)
          for (int64_t z = j * k; z < std::min(w, (j + 1) * k); ++z, ++count)
            sum += in[(p * h + y) * w + z];
        o[(p * oh + i) * ow + j] = static_cast<float>(sum / double(count));
      }
  return out;
}

RunControl with_previews(const RunControl& control,
                         std::function<Tensor(const Tensor& latents)> decode) {
  RunControl run = control;
  if (!control.on_preview) return run;
  run.on_estimate = [decode = std::move(decode),
                     on_preview = control.on_preview](const Tensor& x0) {
    on_preview(tensor_to_images(decode(shrink_latents(x0, kPreviewCells))));
  };
  return run;
}

RunControl with_previews(const RunControl& control, const models::AutoencoderKL& vae) {
  return with_previews(control, [&vae](const Tensor& z) { return vae.decode(z); });
}

}  // namespace zflow::pipeline
