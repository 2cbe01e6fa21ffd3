// The diffusers names of the blocks FLUX.1 and FLUX.2 share: double-stream blocks
// "transformer_blocks.i", single-stream blocks "single_transformer_blocks.i".
#pragma once

#include <fmt/format.h>

#include <cstddef>
#include <string>
#include <vector>

namespace zflow::models {

inline std::string double_block_name(size_t i) {
  return fmt::format("transformer_blocks.{}", i);
}
inline std::string single_block_name(size_t i) {
  return fmt::format("single_transformer_blocks.{}", i);
}

// Every block's name with a trailing ".", in the order a forward runs them (as --offload streams
// them).
inline std::vector<std::string> flux_block_prefixes(int doubles, int singles) {
  std::vector<std::string> prefixes;
  for (int i = 0; i < doubles; ++i) prefixes.push_back(double_block_name(i) + ".");
  for (int i = 0; i < singles; ++i) prefixes.push_back(single_block_name(i) + ".");
  return prefixes;
}

}  // namespace zflow::models
