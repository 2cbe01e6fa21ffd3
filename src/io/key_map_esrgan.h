// Checkpoint layouts of ESRGAN's RRDBNet (the upscalers: ESRGAN, Real-ESRGAN, BSRGAN / RealSR and
// the community models trained from them, e.g. 4x-UltraSharp) and the map to one naming, BasicSR's
// (Real-ESRGAN's own release):
//   original ESRGAN (old arch)             BSRGAN / RealSR                 BasicSR
//   model.0                                conv_first                      conv_first
//   model.1.sub.{i}.RDB{r}.conv{c}.0       RRDB_trunk.{i}.RDB{r}.conv{c}   body.{i}.rdb{r}.conv{c}
//   model.1.sub.{i}.RDB{r}.conv1x1         -                               body.{i}.rdb{r}.conv1x1
//   (ESRGAN+) model.1.sub.{blocks}                   trunk_conv                      conv_body
//   model.{3k}                             upconv{k}                       conv_up{k}   (k = 1..)
//   model.{last - 2}                       HRconv                          conv_hr
//   model.{last}                           conv_last                       conv_last
// (spandrel's ESRGAN architecture reads all three; Real-ESRGAN's .pth files nest theirs under
// `params_ema`, which a safetensors conversion leaves as a `params_ema.` prefix.)
#pragma once

#include <optional>
#include <string_view>

#include "io/weight_store.h"

namespace zflow::io {

// BasicSR's checkpoints (Real-ESRGAN's releases: ESRGAN and Compact networks) keep the weights
// under `params_ema` (the averaged ones, preferred as BasicSR's loader prefers them) or `params`;
// the tensors under the first of these a store has, without it, else the store as it is.
WeightStore without_basicsr_prefix(const WeightStore& store);

enum class EsrganLayout { BasicSR, Original, Bsrgan };
std::string_view esrgan_layout_name(EsrganLayout layout);

// Which layout the names are in (its first conv and first dense block's first conv are there);
// nullopt when they are not an RRDBNet's.
std::optional<EsrganLayout> detect_esrgan_layout(const WeightStore& store);

// The store in BasicSR's names. A tensor the table does not cover is an Error naming it and the
// file, as is an original-layout file whose numbered layers do not form the network.
WeightStore esrgan_to_basicsr(const WeightStore& store);

}  // namespace zflow::io
