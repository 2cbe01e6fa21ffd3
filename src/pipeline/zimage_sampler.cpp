#include "pipeline/zimage_sampler.h"

#include "core/error.h"
#include "pipeline/flow_euler.h"

namespace zflow::pipeline {

Tensor zimage_denoise(const ZImageDenoiser& model, Tensor latents, const FlowSchedule& schedule,
                      const std::vector<ZImageCaption>& positive,
                      const std::vector<ZImageCaption>& negative, const ZImageGuidance& guidance,
                      const ZImageInpaint* inpaint, const RunControl& control, FlowSampler sampler,
                      const FlowNoise& noise) {
  ZF_CHECK(latents.ndim() == 4 && latents.dtype() == DType::F32,
           "[zimage] latents must be float32 [B, C, h, w], got {} {}", dtype_name(latents.dtype()),
           shape_str(latents.shape()));
  const int64_t batch = latents.size(0);
  ZF_CHECK(static_cast<int64_t>(positive.size()) == batch,
           "[zimage] {} positive captions for a batch of {}", positive.size(), batch);
  ZF_CHECK(!(guidance.scale > 0.0f) || negative.size() == positive.size(),
           "[zimage] CFG needs one negative caption per sample, got {} for {}", negative.size(),
           positive.size());
  ZF_CHECK(schedule.sigmas.size() == schedule.timesteps.size() + 1 && schedule.steps() > 0,
           "[zimage] malformed schedule: {} sigmas for {} steps", schedule.sigmas.size(),
           schedule.steps());
  std::vector<ZImageCaption> both = positive;
  both.insert(both.end(), negative.begin(), negative.end());
  const int64_t per_sample = latents.numel() / batch;

  const FlowVelocity velocity = [&](const Tensor& x, int i) {
    const float t = zimage_model_time(schedule.timesteps[static_cast<size_t>(i)]);
    const float g = guidance_for_step(guidance, t);
    const bool cfg = g > 0.0f;

    const int64_t n = cfg ? 2 * batch : batch;
    const std::vector<float> times(static_cast<size_t>(n), t);
    const Tensor out =
        model(cfg ? repeat_batch(x, 2) : x, times, cfg ? both : positive).contiguous();
    ZF_CHECK(out.dtype() == DType::F32 && out.numel() == n * per_sample,
             "[zimage] transformer returned {} {}, expected float32 with {} x {} values",
             dtype_name(out.dtype()), shape_str(out.shape()), n, per_sample);

    Tensor v = Tensor::empty(x.shape(), DType::F32);
    float* vel = v.data<float>();          // [B, per_sample]
    const float* raw = out.data<float>();  // [n, per_sample]
    for (int64_t j = 0; j < batch; ++j) {
      const std::span<float> dst(vel + j * per_sample, static_cast<size_t>(per_sample));
      const std::span<const float> pos(raw + j * per_sample, static_cast<size_t>(per_sample));
      if (cfg) {
        const std::span<const float> neg(raw + (batch + j) * per_sample,
                                         static_cast<size_t>(per_sample));
        apply_zimage_cfg(pos, neg, g, guidance.normalization, dst);
      } else {
        std::copy(pos.begin(), pos.end(), dst.begin());
      }
      for (float& value : dst) value = -value;  // the pipelines negate before the scheduler step
    }
    return v;
  };
  return flow_denoise(velocity, latents, schedule, inpaint, control, sampler, noise);
}

}  // namespace zflow::pipeline
