// What the checkpoint key maps (key_map_flux.h, key_map_zimage.h) tell other code about a
// layout: where each weight of a model's original layout lands among its diffusers-named
// weights. LoRA files name the modules they patch in either layout (io/lora.h).
#pragma once

#include <string>
#include <vector>

namespace zflow::io {

// The rows of one original-layout weight become, in order, the rows of `parts` (diffusers
// names; one part for a rename, several for a fused tensor split by rows). With swap_halves the
// single part holds the original's two row halves in the other order.
struct RowMapping {
  std::string original;
  std::vector<std::string> parts;
  bool swap_halves = false;
};

}  // namespace zflow::io
