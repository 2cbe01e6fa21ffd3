#include "sampling/flow_sampler.h"

#include <array>
#include <cctype>
#include <string>

namespace zflow {
namespace {

struct NamedSampler {
  std::string_view name;  // lower case, without spaces, '_' or '-'
  FlowSampler sampler;
};

constexpr std::array<NamedSampler, 8> kNames{{
    {"euler", FlowSampler::kEuler},
    {"heun", FlowSampler::kHeun},
    {"dpm++2m", FlowSampler::kDpmPP2M},
    {"dpmpp2m", FlowSampler::kDpmPP2M},
    {"resmultistep", FlowSampler::kResMultistep},
    {"eulera", FlowSampler::kEulerAncestral},
    {"eulerancestral", FlowSampler::kEulerAncestral},
    {"lcm", FlowSampler::kLcm},
}};

}  // namespace

std::string_view flow_sampler_name(FlowSampler sampler) {
  switch (sampler) {
    case FlowSampler::kEuler:
      return "euler";
    case FlowSampler::kHeun:
      return "heun";
    case FlowSampler::kDpmPP2M:
      return "dpm++2m";
    case FlowSampler::kResMultistep:
      return "res_multistep";
    case FlowSampler::kEulerAncestral:
      return "euler_a";
    case FlowSampler::kLcm:
      return "lcm";
  }
  return "euler";
}

std::string_view flow_sampler_display_name(FlowSampler sampler) {
  switch (sampler) {
    case FlowSampler::kEuler:
      return "Euler";
    case FlowSampler::kHeun:
      return "Heun";
    case FlowSampler::kDpmPP2M:
      return "DPM++ 2M";
    case FlowSampler::kResMultistep:
      return "RES multistep";
    case FlowSampler::kEulerAncestral:
      return "Euler a";
    case FlowSampler::kLcm:
      return "LCM";
  }
  return "Euler";
}

std::optional<FlowSampler> parse_flow_sampler(std::string_view name) {
  std::string key;
  for (const char c : name) {
    if (c == ' ' || c == '_' || c == '-') continue;
    key.push_back(static_cast<char>(std::tolower(static_cast<unsigned char>(c))));
  }
  for (const NamedSampler& named : kNames)
    if (named.name == key) return named.sampler;
  return std::nullopt;
}

std::string_view flow_sampler_choices() {
  return "euler, heun, dpm++2m, res_multistep, euler_a, lcm";
}

std::string a1111_sampling_fields(const SamplingChoice& choice) {
  std::string fields = "Sampler: ";
  fields += flow_sampler_display_name(choice.sampler);
  if (choice.schedule != SigmaSchedule::kSimple) {
    fields += ", Schedule type: ";
    fields += sigma_schedule_label(choice.schedule);
  }
  return fields;
}

}  // namespace zflow
