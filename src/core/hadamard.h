// ConvRot's rotation (comfy-kitchen's regular Hadamard, the one ComfyUI's int8 "convrot" weights
// are stored under): for a group size G = 4^n, the matrix H_G = (H4 ⊗ H4 ⊗ ... ⊗ H4) / 2^n with
//        [ 1  1  1 -1 ]
//   H4 = [ 1  1 -1  1 ]
//        [ 1 -1  1  1 ]
//        [-1  1  1  1 ]
// applied to every run of G consecutive values of a row. H_G is symmetric and orthogonal, so it
// is its own inverse: the same call rotates a row into the stored basis and back out of it.
#pragma once

#include <cstdint>

namespace zflow {

// Whether `group` is a ConvRot group size: a power of four, 4 or more.
bool is_hadamard_group(int64_t group);

// x[0 .. n) := each run of `group` values times H_group, in place, with the fast transform
// (n log4(group) butterflies of four). `group` must be a ConvRot size dividing n.
void rotate_hadamard_groups(float* x, int64_t n, int64_t group);

}  // namespace zflow
