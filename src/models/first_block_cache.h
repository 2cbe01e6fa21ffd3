// First Block Cache (ParaAttention's FBCache, after TeaCache; diffusers 0.42.1
// hooks/first_block_cache.py): a transformer step runs its first block and compares that block's
// residual (output - input) with the one of the last step that ran in full,
//   diff = mean|r - r_prev| / mean|r_prev|   (over every value of the context's rows),
// and when diff <= threshold skips every later block, taking the first block's output plus the
// residual the later blocks added on that last full step (output of the last block - output of
// the first). Steps where the image changes slowly cost one block instead of all of them.
//
// A cache lives for one sampling run. Its contexts are equal runs of batch rows with their own
// state, as diffusers keys its state by the pipeline's cache_context: FLUX's pipelines run the
// conditional and unconditional passes as "cond" and "uncond", which zflow batches as
// [positives; negatives], so such a run has two contexts. A context that skips while another
// runs takes its rows from the cache all the same.
#pragma once

#include <cstdint>
#include <vector>

#include "core/tensor.h"

namespace zflow::models {

class FirstBlockCache {
 public:
  // threshold > 0; contexts >= 1 (the batch splits into that many equal runs of rows).
  FirstBlockCache(double threshold, int contexts);

  // After the first block: `input` and `output` are its hidden states [B, ...] (B a multiple of
  // the contexts). Decides per context and returns whether any runs the later blocks.
  bool first_block_done(const Tensor& input, const Tensor& output);

  // The hidden states after the last block: `computed` is what the later blocks made (undefined
  // when none ran); contexts that ran store their new tail residual, the others take the first
  // block's output plus their stored one.
  Tensor last_block_done(const Tensor& computed);

  // Steps (calls) so far, and the calls where every context skipped the later blocks.
  int calls() const { return calls_; }
  int skipped_calls() const { return skipped_calls_; }

 private:
  struct Context {
    Tensor head_residual;  // the first block's residual on the last step that ran in full
    Tensor tail_residual;  // what the later blocks added then
    bool compute = true;
  };
  double threshold_;
  std::vector<Context> contexts_;
  Tensor head_output_;  // this call's first-block output
  int calls_ = 0, skipped_calls_ = 0;
};

}  // namespace zflow::models
