#include "pipeline/scheduler_config.h"

#include <fmt/format.h>

#include <cmath>
#include <string>

#include "core/error.h"
#include "pipeline/pipeline_files.h"

namespace zflow::pipeline {

namespace {

using nlohmann::json;

class ConfigReader {
 public:
  ConfigReader(const std::filesystem::path& path, const char* family)
      : family_(family), path_(path.string()), config_(read_json_file(path, family)) {
    if (!config_.is_object()) fail("[{}] {}: expected a JSON object", family_, path_);
  }

  const json* find(const char* field) const {
    const auto it = config_.find(field);
    return it == config_.end() ? nullptr : &*it;
  }

  [[noreturn]] void bad(const char* field, const std::string& what) const {
    fail("[{}] {}: {} {}", family_, path_, field, what);
  }

  void read_bool(const char* field, bool& out) const {
    if (const json* v = find(field)) {
      if (!v->is_boolean()) bad(field, "must be true or false, got " + v->dump());
      out = v->get<bool>();
    }
  }

  void read_number(const char* field, double& out) const {
    if (const json* v = find(field)) {
      if (!v->is_number()) bad(field, "must be a number, got " + v->dump());
      out = v->get<double>();
    }
  }

  void read_length(const char* field, int64_t& out) const {
    if (const json* v = find(field)) {
      const bool whole = v->is_number() && std::floor(v->get<double>()) == v->get<double>();
      if (!whole || v->get<double>() < 1.0 || v->get<double>() > 1e12)
        bad(field, "must be a whole number of tokens >= 1, got " + v->dump());
      out = static_cast<int64_t>(v->get<double>());
    }
  }

  // A setting zflow does not run must keep its default (absent, null, false, ...).
  void require_off(const char* field, const char* why) const {
    const json* v = find(field);
    if (!v || v->is_null() || *v == false || (v->is_number() && v->get<double>() == 0.0)) return;
    bad(field, std::string("is ") + v->dump() + ": " + why + " is not supported");
  }

  void require_value(const char* field, const json& expected, const char* why) const {
    const json* v = find(field);
    if (v && *v != expected)
      bad(field, "is " + v->dump() + ", expected " + expected.dump() + " (" + why + ")");
  }

 private:
  const char* family_;
  std::string path_;
  json config_;
};

}  // namespace

SchedulerConfig flux1_release_scheduler(bool dev) {
  SchedulerConfig c;
  if (dev) {
    c.use_dynamic_shifting = true;
    c.shift = 3.0;  // unused while dynamic, as in the release file
  }
  return c;
}

SchedulerConfig read_scheduler_config(const std::filesystem::path& path, const char* family) {
  const ConfigReader r(path, family);
  r.require_value("_class_name", "FlowMatchEulerDiscreteScheduler",
                  "the flow-matching scheduler the models ship with; pick samplers with --sampler");
  r.require_value("num_train_timesteps", 1000, "the timestep scale the models are trained with");
  r.require_value("time_shift_type", "exponential", "the linear time shift is not supported");
  r.require_off("shift_terminal", "stretching the schedule to a terminal sigma");
  r.require_off("invert_sigmas", "an inverted schedule");
  r.require_off("stochastic_sampling", "stochastic sampling");

  SchedulerConfig c;
  r.read_bool("use_dynamic_shifting", c.use_dynamic_shifting);
  r.read_number("shift", c.shift);
  r.read_number("base_shift", c.base_shift);
  r.read_number("max_shift", c.max_shift);
  r.read_length("base_image_seq_len", c.base_image_seq_len);
  r.read_length("max_image_seq_len", c.max_image_seq_len);
  int respacings = 0;
  for (const auto& [field, schedule] :
       {std::pair{"use_karras_sigmas", SigmaSchedule::kKarras},
        std::pair{"use_exponential_sigmas", SigmaSchedule::kExponential},
        std::pair{"use_beta_sigmas", SigmaSchedule::kBeta}}) {
    bool on = false;
    r.read_bool(field, on);
    if (!on) continue;
    c.respacing = schedule;
    if (++respacings > 1)
      r.bad(field,
            "is true beside another of use_karras_sigmas, use_exponential_sigmas and "
            "use_beta_sigmas: one at most, as diffusers requires");
  }
  if (!(c.shift > 0.0)) r.bad("shift", fmt::format("must be positive, got {}", c.shift));
  if (c.max_image_seq_len <= c.base_image_seq_len)
    r.bad("max_image_seq_len", fmt::format("({}) must be greater than base_image_seq_len ({})",
                                           c.max_image_seq_len, c.base_image_seq_len));
  return c;
}

FlowSchedule zimage_config_schedule(const SchedulerConfig& config, int steps,
                                    std::optional<double> shift, int64_t image_seq_len) {
  if (!config.use_dynamic_shifting || shift)
    return zimage_schedule(steps, shift.value_or(config.shift));
  const double mu = flux1_mu(image_seq_len, config.base_image_seq_len, config.max_image_seq_len,
                             config.base_shift, config.max_shift);
  return dynamic_shift(steps, mu, SigmaSpacing::kTorchF32);
}

FlowSchedule flux1_schedule(const SchedulerConfig& config, int steps, int64_t image_seq_len) {
  if (!config.use_dynamic_shifting)
    return static_shift(steps, config.shift, SigmaSpacing::kNumpyF64);
  const double mu = flux1_mu(image_seq_len, config.base_image_seq_len, config.max_image_seq_len,
                             config.base_shift, config.max_shift);
  return dynamic_shift(steps, mu, SigmaSpacing::kNumpyF64);
}

SchedulerConfig flux2_release_scheduler() {
  SchedulerConfig c;
  c.use_dynamic_shifting = true;
  c.shift = 3.0;
  return c;
}

FlowSchedule flux2_klein_schedule(const SchedulerConfig& config, int steps, int64_t image_seq_len) {
  if (!config.use_dynamic_shifting)
    return static_shift(steps, config.shift, SigmaSpacing::kNumpyF64);
  return flux2_schedule(steps, image_seq_len);
}

}  // namespace zflow::pipeline
