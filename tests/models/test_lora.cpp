// LoRA files merged into the tiny Z-Image and FLUX.1 transformers, against PEFT running the same
// adapter unfused and diffusers reading the files (tools/golden/make_lora.py). One update is
// written in each layout trainers use (PEFT / diffusers names, kohya's lora_unet_ names with
// alpha, original BFL / ComfyUI names with fused q/k/v); every file must give the golden output.
// Tolerance 1e-4 relative, the float32 model goldens' own (DESIGN.md): merging computes
// W + s B A once in float32 where PEFT adds s B (A x) per call, a difference of rounding only. The
// LoRA moves the outputs by 30-70%, so a wrong row split, a missed module or alpha would show.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cstring>
#include <filesystem>

#include "io/fp8_weights.h"
#include "io/int8_weights.h"
#include "io/key_map_zimage.h"
#include "io/safetensors.h"
#include "models/flux2_dit.h"
#include "models/flux_dit.h"
#include "models/lora.h"
#include "models/zimage_dit.h"
#include "test_util.h"

namespace zflow::models {
namespace {

namespace fs = std::filesystem;

constexpr double kTolerance = 1e-4;
const fs::path kLoraDir = test::fixture("lora");

Tensor golden(const std::string& name) {
  static const io::SafetensorsFile file =
      io::SafetensorsFile::open(kLoraDir / "lora_tiny_outputs.safetensors");
  return file.tensor(name);
}

std::string scale_key(float scale) {
  return scale == 1.0f ? "scale1.0" : "scale0.75";
}

// ---- Z-Image ----------------------------------------------------------------------------------

const fs::path kZImageFolder = test::fixture("zimage_dit/tiny_diffusers/transformer");

Tensor run_zimage(const ZImageTransformer& model, const std::string& name) {
  static const io::SafetensorsFile io = io::SafetensorsFile::open(
      test::fixture("zimage_dit/zimage_dit_tiny_diffusers_io.safetensors"));
  const std::vector<float> t = io.tensor(name + ".t").to_f32_vector();
  std::vector<Tensor> captions;
  for (size_t i = 0; i < t.size(); ++i)
    captions.push_back(io.tensor(name + ".caption" + std::to_string(i)));
  return model.forward(io.tensor(name + ".latents"), t, captions);
}

TEST(Lora, ZImageEveryLayoutMatchesPeft) {
  for (const char* file : {"zimage_lora_peft", "zimage_lora_kohya", "zimage_lora_comfy"})
    for (float scale : {1.0f, 0.75f}) {
      const LoraFile lora{kLoraDir / (std::string(file) + ".safetensors"), scale};
      const ZImageTransformer model =
          load_zimage_transformer(kZImageFolder, std::nullopt, Placement::cpu(), {}, {&lora, 1});
      for (const char* name : {"h6w10_cap31_t03", "batch_h6w10_cap5_cap20"}) {
        const double err = test::relative_error(
            run_zimage(model, name), golden(fmt::format("zimage.{}.{}", name, scale_key(scale))));
        EXPECT_LE(err, kTolerance) << file << " scale " << scale << " " << name;
      }
    }
}

// Two files apply in turn: half of the update twice is the whole of it.
TEST(Lora, ZImageLorasAddUp) {
  const std::vector<LoraFile> halves = {{kLoraDir / "zimage_lora_peft.safetensors", 0.5f},
                                        {kLoraDir / "zimage_lora_comfy.safetensors", 0.5f}};
  const ZImageTransformer model =
      load_zimage_transformer(kZImageFolder, std::nullopt, Placement::cpu(), {}, halves);
  EXPECT_LE(test::relative_error(run_zimage(model, "h6w10_cap31_t03"),
                                 golden("zimage.h6w10_cap31_t03.scale1.0")),
            kTolerance);
}

// ---- FLUX.1 -----------------------------------------------------------------------------------

const fs::path kFluxFolder = test::fixture("flux_dit/tiny_dev_diffusers/transformer");

Tensor run_flux(const FluxTransformer& model, const std::string& name) {
  static const io::SafetensorsFile io =
      io::SafetensorsFile::open(test::fixture("flux_dit/flux_dit_tiny_diffusers_io.safetensors"));
  const std::vector<float> flat = io.tensor(name + ".img_ids").to_f32_vector();
  std::vector<FluxPosition> ids;
  for (size_t i = 0; i + 2 < flat.size(); i += 3)
    ids.push_back({flat[i], flat[i + 1], flat[i + 2]});
  return model.forward(
      io.tensor(name + ".hidden_states"), ids, io.tensor(name + ".encoder_hidden_states"),
      io.tensor(name + ".pooled_projections"), io.tensor(name + ".timestep").to_f32_vector(),
      io.tensor(name + ".guidance").to_f32_vector());
}

TEST(Lora, FluxPeftAndBflLayoutsMatchPeft) {
  for (const char* file : {"flux_lora_peft", "flux_lora_bfl"})
    for (float scale : {1.0f, 0.75f}) {
      const LoraFile lora{kLoraDir / (std::string(file) + ".safetensors"), scale};
      const FluxTransformer model =
          load_flux_transformer(kFluxFolder, {}, {}, Placement::cpu(), {&lora, 1});
      for (const char* name : {"h3w5_txt5_t1", "batch_h2w3_txt6"}) {
        const double err = test::relative_error(
            run_flux(model, name), golden(fmt::format("flux.{}.{}", name, scale_key(scale))));
        EXPECT_LE(err, kTolerance) << file << " scale " << scale << " " << name;
      }
    }
}

// ---- FLUX.2 -----------------------------------------------------------------------------------

Tensor run_flux2(const Flux2Transformer& model, const std::string& name) {
  static const io::SafetensorsFile io =
      io::SafetensorsFile::open(test::fixture("flux2_dit/flux2_dit_tiny_diffusers_io.safetensors"));
  const std::vector<float> flat = io.tensor(name + ".img_ids").to_f32_vector();
  std::vector<Flux2Position> ids;
  for (size_t i = 0; i + 3 < flat.size(); i += 4)
    ids.push_back({flat[i], flat[i + 1], flat[i + 2], flat[i + 3]});
  return model.forward(
      io.tensor(name + ".hidden_states"), ids, io.tensor(name + ".encoder_hidden_states"),
      io.tensor(name + ".timestep").to_f32_vector(), io.tensor(name + ".guidance").to_f32_vector());
}

// PEFT names and BFL names (fused qkv, the final modulation's halves in BFL order, the fused
// single-block projections, the shared modulations and embedders).
TEST(Lora, Flux2PeftAndBflLayoutsMatchPeft) {
  static const io::SafetensorsFile outputs =
      io::SafetensorsFile::open(kLoraDir / "lora_tiny_flux2_outputs.safetensors");
  for (const char* file : {"flux2_lora_peft", "flux2_lora_bfl"})
    for (float scale : {1.0f, 0.75f}) {
      const LoraFile lora{kLoraDir / (std::string(file) + ".safetensors"), scale};
      const Flux2Transformer model =
          load_flux2_transformer(test::fixture("flux2_dit/tiny_dev_diffusers/transformer"), {}, {},
                                 Placement::cpu(), {&lora, 1});
      for (const char* name : {"h3w5_txt5_t1", "ref_h2w3_r3x2_txt4"}) {
        const double err = test::relative_error(
            run_flux2(model, name),
            outputs.tensor(fmt::format("flux2.{}.{}", name, scale_key(scale))));
        EXPECT_LE(err, kTolerance) << file << " scale " << scale << " " << name;
      }
    }
}

// kohya's BFL names (fused qkv, the final layer's halves swapped) as diffusers reads them.
TEST(Lora, FluxKohyaLayoutMatchesDiffusers) {
  const LoraFile lora{kLoraDir / "flux_lora_kohya.safetensors", 1.0f};
  const FluxTransformer model =
      load_flux_transformer(kFluxFolder, {}, {}, Placement::cpu(), {&lora, 1});
  for (const char* name : {"h3w5_txt5_t1", "batch_h2w3_txt6"})
    EXPECT_LE(
        test::relative_error(run_flux(model, name), golden(fmt::format("flux.kohya.{}", name))),
        kTolerance)
        << name;
}

// ---- Stored dtypes and errors -------------------------------------------------------------------

// A patched bf16 weight stays bf16; a patched block-quantised one is requantised to its type, as
// are a scaled float8 one and an int8 one (in its ConvRot basis); weights the LoRA does not touch
// are the same tensors.
TEST(Lora, MergedWeightsKeepOrWidenTheirDtype) {
  const io::WeightStore folder = io::WeightStore::open(kZImageFolder);
  io::WeightStore mixed;
  for (const std::string& name : folder.names()) {
    const Tensor t = folder.get(name);
    const bool q8 = name.find("feed_forward") != std::string::npos && t.ndim() == 2 &&
                    t.size(1) % dtype_block_size(DType::Q8_0) == 0;
    const bool fp8 = name == "layers.0.attention.to_k.weight";
    const bool int8 = name == "layers.0.attention.to_v.weight";
    mixed.add(name, q8     ? t.to(DType::Q8_0)
                    : fp8  ? io::quantize_fp8_e4m3(t)
                    : int8 ? io::quantize_int8_rows(t, 16)
                           : (t.ndim() == 2 ? t.to(DType::BF16) : t));
  }
  const LoraFile lora{kLoraDir / "zimage_lora_peft.safetensors", 1.0f};
  const io::WeightStore merged = merge_loras(mixed, {&lora, 1}, {}, "Z-Image transformer");
  EXPECT_EQ(merged.get("layers.0.attention.to_q.weight").dtype(), DType::BF16);
  // Q8_0: the float32 merge of its dequantised values, quantised again (the merge of a float32
  // copy of the same values, then Q8_0's quantiser, which equals gguf-py's).
  const std::string w1 = "layers.0.feed_forward.w1.weight";
  const Tensor patched = merged.get(w1);
  ASSERT_EQ(patched.dtype(), DType::Q8_0);
  io::WeightStore widened;
  for (const std::string& name : mixed.names())
    widened.add(name, name == w1 ? mixed.get(name).to(DType::F32) : mixed.get(name));
  const std::string v = "layers.0.attention.to_v.weight";
  widened.replace(v, mixed.get(v).to(DType::F32));
  const io::WeightStore merged_widened =
      merge_loras(widened, {&lora, 1}, {}, "Z-Image transformer");
  const Tensor want = merged_widened.get(w1).to(DType::Q8_0);
  ASSERT_EQ(patched.nbytes(), want.nbytes());
  EXPECT_EQ(std::memcmp(patched.raw(), want.raw(), want.nbytes()), 0);
  // Int8: the float32 merge of its dequantised values, quantised again with its ConvRot group.
  const Tensor patched_v = merged.get(v);
  ASSERT_EQ(patched_v.dtype(), DType::I8);
  EXPECT_EQ(patched_v.hadamard_group(), 16);
  const Tensor want_v = io::quantize_int8_rows(merged_widened.get(v), 16);
  EXPECT_EQ(std::memcmp(patched_v.raw(), want_v.raw(), want_v.nbytes()), 0);
  EXPECT_TRUE(std::ranges::equal(patched_v.row_scales(), want_v.row_scales()));
  // A scaled float8 weight is requantised: float8 again, with the scale of its new values.
  const Tensor k = merged.get("layers.0.attention.to_k.weight");
  EXPECT_EQ(k.dtype(), DType::F8_E4M3);
  EXPECT_NE(k.scale(), mixed.get("layers.0.attention.to_k.weight").scale());
  // cap_embedder is not patched: the very same storage.
  EXPECT_EQ(merged.get("cap_embedder.1.weight").raw(), mixed.get("cap_embedder.1.weight").raw());
  // The patched weight is W + the update, W being the bf16 one.
  const std::vector<float> before = mixed.get("layers.0.attention.to_q.weight").to_f32_vector();
  const std::vector<float> after = merged.get("layers.0.attention.to_q.weight").to_f32_vector();
  double moved = 0;
  for (size_t i = 0; i < before.size(); ++i)
    moved = std::max(moved, double(std::abs(after[i] - before[i])));
  EXPECT_GT(moved, 1e-3);
}

// LyCORIS LoKr and LoHa files (tools/golden/make_lycoris.py), in kohya's names and in ComfyUI's
// original ones (a LoKr on the fused noise_refiner qkv, split by rows), against the updates
// LyCORIS's functional API makes: every patched weight must be W + strength * update. The
// updates cover a LoKr with one half whole, with both factorised (alpha / rank), with both whole
// (alpha not applied), and LoHa. Tolerance 1e-5 of the update's scale: both sides compute the
// same float32 products (Kronecker, Hadamard) and differ in summation order only.
TEST(Lora, LyCorisLoKrAndLoHaMatchLyCoris) {
  const io::WeightStore folder = io::WeightStore::open(kZImageFolder);
  const std::vector<io::RowMapping> original =
      io::zimage_weight_row_mappings(io::count_zimage_blocks(folder));
  const io::SafetensorsFile updates =
      io::SafetensorsFile::open(kLoraDir / "lycoris_tiny_updates.safetensors");
  for (const std::string file : {"kohya", "comfy"})
    for (float strength : {1.0f, 0.6f}) {
      const LoraFile lora{kLoraDir / ("zimage_lycoris_" + file + ".safetensors"), strength};
      const io::WeightStore merged =
          merge_loras(folder, {&lora, 1}, original, "Z-Image transformer");
      int checked = 0;
      for (const auto& info : updates.tensors()) {
        if (!info.name.starts_with(file + ".")) continue;
        const std::string weight = info.name.substr(file.size() + 1);
        const std::vector<float> before = folder.get(weight).to_f32_vector(),
                                 after = merged.get(weight).to_f32_vector(),
                                 want = updates.tensor(info.name).to_f32_vector();
        ASSERT_EQ(after.size(), want.size()) << weight;
        double err = 0, scale = 0;
        for (size_t i = 0; i < want.size(); ++i) {
          err = std::max(err, std::abs(double(after[i]) - before[i] - strength * want[i]));
          scale = std::max(scale, std::abs(double(strength * want[i])));
        }
        EXPECT_LE(err / scale, 1e-5) << file << " " << weight << " at " << strength;
        ++checked;
      }
      EXPECT_EQ(checked, file == "kohya" ? 5 : 7);
    }
  // What `zflow info` says of them.
  const auto contents =
      inspect_lora(io::WeightStore::open(kLoraDir / "zimage_lycoris_comfy.safetensors"));
  ASSERT_TRUE(contents.has_value());
  EXPECT_EQ(contents->modules, 5);
  EXPECT_EQ(contents->model, "Z-Image");
}

// Two files patching the same weights add up: the same LoRA twice at 0.5 is the LoRA once at 1
// (each weight is finished only after its last update, whichever file it comes from).
TEST(Lora, UpdatesFromSeveralFilesAddUp) {
  const io::WeightStore folder = io::WeightStore::open(kZImageFolder);
  const fs::path file = kLoraDir / "zimage_lora_peft.safetensors";
  const LoraFile once{file, 1.0f}, halves[] = {{file, 0.5f}, {file, 0.5f}};
  const io::WeightStore a = merge_loras(folder, {&once, 1}, {}, "Z-Image transformer");
  const io::WeightStore b = merge_loras(folder, halves, {}, "Z-Image transformer");
  for (const char* name : {"layers.0.attention.to_q.weight", "layers.0.feed_forward.w2.weight"}) {
    const std::vector<float> x = a.get(name).to_f32_vector(), y = b.get(name).to_f32_vector(),
                             w = folder.get(name).to_f32_vector();
    ASSERT_EQ(x.size(), y.size());
    double moved = 0, differ = 0;
    for (size_t i = 0; i < x.size(); ++i) {
      moved = std::max(moved, double(std::abs(x[i] - w[i])));
      differ = std::max(differ, double(std::abs(x[i] - y[i])));
    }
    EXPECT_GT(moved, 1e-3) << name;   // the LoRA moves the weight
    EXPECT_LT(differ, 1e-6) << name;  // float32 rounding of one more addition
  }
}

// The error loading the tiny Z-Image transformer with `file` gives.
std::string zimage_error(const fs::path& file) {
  const LoraFile lora{file, 1.0f};
  return test::error_of([&] {
    load_zimage_transformer(kZImageFolder, std::nullopt, Placement::cpu(), {}, {&lora, 1});
  });
}

TEST(Lora, ErrorsNameTheFileAndModule) {
  using ::testing::AllOf;
  using ::testing::HasSubstr;
  EXPECT_THAT(zimage_error(kLoraDir / "flux_lora_peft.safetensors"),
              AllOf(HasSubstr("flux_lora_peft.safetensors"), HasSubstr("none of its"),
                    HasSubstr("Z-Image transformer")));

  const fs::path dir = fs::temp_directory_path() / "zflow_lora_test";
  fs::create_directories(dir);
  const std::string q = "transformer.layers.0.attention.to_q";
  const Tensor down = Tensor::zeros({4, 64}, DType::F32);
  io::write_safetensors(
      dir / "bad_rank.safetensors",
      {{q + ".lora_A.weight", down}, {q + ".lora_B.weight", Tensor::zeros({64, 3}, DType::F32)}});
  EXPECT_THAT(zimage_error(dir / "bad_rank.safetensors"),
              AllOf(HasSubstr("bad_rank.safetensors"), HasSubstr(q), HasSubstr("do not multiply")));
  io::write_safetensors(dir / "no_up.safetensors", {{q + ".lora_A.weight", down}});
  EXPECT_THAT(zimage_error(dir / "no_up.safetensors"), HasSubstr("has no up"));
  const std::string k = "lora_unet_layers_0_attention_to_q";
  io::write_safetensors(dir / "loha.safetensors", {{k + ".hada_w1_a", down}});
  EXPECT_THAT(zimage_error(dir / "loha.safetensors"), AllOf(HasSubstr(k), HasSubstr("hada_w1_b")));
  // kron([4, 4], [8, 8]) is [32, 32], not to_q's [64, 64].
  io::write_safetensors(dir / "lokr.safetensors",
                        {{k + ".lokr_w1", Tensor::zeros({4, 4}, DType::F32)},
                         {k + ".lokr_w2", Tensor::zeros({8, 8}, DType::F32)}});
  EXPECT_THAT(zimage_error(dir / "lokr.safetensors"),
              AllOf(HasSubstr(k), HasSubstr("[32, 32] update"), HasSubstr("[64, 64]")));
  io::write_safetensors(dir / "tucker.safetensors",
                        {{k + ".lokr_w1", Tensor::zeros({8, 8}, DType::F32)},
                         {k + ".lokr_w2", Tensor::zeros({8, 8}, DType::F32)},
                         {k + ".lokr_t2", Tensor::zeros({2, 2}, DType::F32)}});
  EXPECT_THAT(zimage_error(dir / "tucker.safetensors"),
              AllOf(HasSubstr("lokr_t2"), HasSubstr("Tucker")));
  fs::remove_all(dir);
}

// BFL's Canny / Depth LoRAs, from first principles on a 2 x 2 model: lora_B's bias is added
// (times the scale) to the module's bias, a down matrix with more columns widens the weight
// (zero-padded, then updated), and a norm scale replaces the model's outright, whatever the scale;
// by diffusers' names or the original ones. A bias update of the wrong length is refused.
TEST(Lora, BiasesWideningAndNormScales) {
  io::WeightStore model;
  model.add("x_embedder.weight", Tensor::from_f32({2, 2}, std::vector<float>{1, 2, 3, 4}));
  model.add("x_embedder.bias", Tensor::from_f32({2}, std::vector<float>{10, 20}));
  model.add("blocks.0.attn.norm_q.weight", Tensor::from_f32({2}, std::vector<float>{1, 1}));
  const std::vector<io::RowMapping> original = {
      {"img_in.weight", {"x_embedder.weight"}},
      {"double_blocks.0.img_attn.norm.query_norm.scale", {"blocks.0.attn.norm_q.weight"}}};
  const fs::path dir = fs::temp_directory_path() / "zflow_lora_control_test";
  fs::create_directories(dir);
  // down [1, 3] = (1, 0, 2), up [2, 1] = (1, -1): B A = [[1, 0, 2], [-1, 0, -2]].
  io::write_safetensors(
      dir / "control.safetensors",
      {{"img_in.lora_A.weight", Tensor::from_f32({1, 3}, std::vector<float>{1.0f, 0.0f, 2.0f})},
       {"img_in.lora_B.weight", Tensor::from_f32({2, 1}, std::vector<float>{1.0f, -1.0f})},
       {"img_in.lora_B.bias", Tensor::from_f32({2}, std::vector<float>{0.5f, 1.0f})},
       {"double_blocks.0.img_attn.norm.query_norm.scale",
        Tensor::from_f32({2}, std::vector<float>{3.0f, 4.0f})}});
  const LoraFile half{dir / "control.safetensors", 0.5f};
  const io::WeightStore merged = merge_loras(model, {&half, 1}, original, "test model");
  EXPECT_EQ(merged.get("x_embedder.weight").shape(), (Shape{2, 3}));
  EXPECT_EQ(merged.get("x_embedder.weight").to_f32_vector(),
            (std::vector<float>{1.5f, 2, 1, 2.5f, 4, -1}));
  EXPECT_EQ(merged.get("x_embedder.bias").to_f32_vector(), (std::vector<float>{10.25f, 20.5f}));
  EXPECT_EQ(merged.get("blocks.0.attn.norm_q.weight").to_f32_vector(), (std::vector<float>{3, 4}));

  io::write_safetensors(dir / "bad_bias.safetensors",
                        {{"img_in.lora_A.weight", Tensor::zeros({1, 2}, DType::F32)},
                         {"img_in.lora_B.weight", Tensor::zeros({2, 1}, DType::F32)},
                         {"img_in.lora_B.bias", Tensor::zeros({3}, DType::F32)}});
  const LoraFile bad{dir / "bad_bias.safetensors", 1.0f};
  EXPECT_THAT(test::error_of([&] {
                merge_loras(model, {&bad, 1}, original, "test model");
              }),
              ::testing::HasSubstr("is no bias update"));
  fs::remove_all(dir);
}

TEST(Lora, ParsesTheCommandLineArgument) {
  EXPECT_EQ(parse_lora_argument("style.safetensors").path, "style.safetensors");
  EXPECT_EQ(parse_lora_argument("style.safetensors").scale, 1.0f);
  const LoraFile half = parse_lora_argument("dir/style.safetensors:0.5");
  EXPECT_EQ(half.path, "dir/style.safetensors");
  EXPECT_EQ(half.scale, 0.5f);
  EXPECT_EQ(parse_lora_argument("a:b/style.safetensors").path, "a:b/style.safetensors");
  EXPECT_EQ(parse_lora_argument("style.safetensors:-1.25").scale, -1.25f);
  EXPECT_THAT(test::error_of([] { parse_lora_argument("style.safetensors:inf"); }),
              ::testing::HasSubstr("not a finite number"));
}

}  // namespace
}  // namespace zflow::models
