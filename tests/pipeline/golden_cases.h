// A pipeline golden's cases file as tools/golden writes it: {"_meta": {...}, "cases": [{"name":
// ...}, ...]}, with what every pipeline test reads from it.
#pragma once

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <stdexcept>
#include <string>

#include "core/rng.h"

namespace zflow::test {

class GoldenCases {
 public:
  explicit GoldenCases(const std::filesystem::path& file) {
    std::ifstream in(file);
    if (!in) throw std::runtime_error("cannot read golden cases " + file.string());
    json_ = nlohmann::json::parse(in);
  }

  // The case called `name`; throws when there is none.
  const nlohmann::json& find(const std::string& name) const {
    for (const auto& c : json_.at("cases"))
      if (c.at("name") == name) return c;
    throw std::runtime_error("no golden case " + name);
  }

  // The Gaussian math of the reference's torch.randn (its AVX2 kernels or libm), so that the
  // same seed draws the same noise here.
  NormalMath normal_math() const {
    return json_.at("_meta").at("torch_cpu_capability") == "AVX2" ? NormalMath::Avx2Cephes
                                                                  : NormalMath::Libm;
  }

 private:
  nlohmann::json json_;
};

}  // namespace zflow::test
