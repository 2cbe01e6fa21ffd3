// The tensors a PyTorch checkpoint's pickle (data.pkl of torch.save's archive) describes, read
// without running it: a small pickle machine that knows the handful of calls torch.save emits for
// tensors and dicts (collections.OrderedDict, torch._utils._rebuild_tensor_v2 and
// _rebuild_parameter, torch.*Storage as persistent ids) and treats every other call as an opaque
// value it never executes, the safety torch.load(weights_only=True) gives. Nested dicts and lists
// become dotted names ("params_ema.conv_first.weight"); a top-level "state_dict" (Lightning's
// checkpoints) is descended into, as ComfyUI's load_torch_file does.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "core/dtype.h"
#include "core/tensor.h"

namespace zflow::io {

struct TorchTensorRecord {
  std::string name;
  std::string storage_key;  // its bytes are the archive's data/<storage_key>
  DType dtype = DType::F32;
  int64_t storage_offset = 0;  // in elements
  Shape shape;
  std::vector<int64_t> strides;  // in elements
};

// Every tensor the pickle holds, in the order it names them. Malformed pickles, opcodes outside
// the protocol-2-to-5 set torch writes, and tensors that are not torch.save's are Errors naming
// `source` and the byte; tensors of a storage type zflow has no dtype for (bool, complex) are
// skipped with a warning.
std::vector<TorchTensorRecord> read_torch_pickle(std::span<const uint8_t> pickle,
                                                 const std::string& source);

}  // namespace zflow::io
