// `zflow info PATH`: what a model file or folder holds — per component, the tensor
// count, the dtypes, the size, and (with --tensors) every tensor — or, for a picture, its size
// and the text it carries (how zflow, A1111 or ComfyUI made it).
#include <fmt/format.h>

#include <algorithm>
#include <cctype>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <span>

#include "cli/commands.h"
#include "core/error.h"
#include "core/file_io.h"
#include "io/image.h"
#include "io/weight_store.h"
#include "models/detect.h"

namespace zflow::cli {

namespace {

namespace fs = std::filesystem;

std::string human_bytes(double bytes) {
  const char* units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  int u = 0;
  while (bytes >= 1024.0 && u < 4) {
    bytes /= 1024.0;
    ++u;
  }
  return fmt::format("{:.1f} {}", bytes, units[u]);
}

bool holds_weights(const fs::path& folder) {
  for (const auto& entry : fs::directory_iterator(folder)) {
    const std::string name = entry.path().filename().string();
    if (name.ends_with(".safetensors") || name.ends_with(".safetensors.index.json") ||
        name.ends_with(".pth") || name.ends_with(".ckpt"))
      return true;
  }
  return false;
}

// 4920, 16.7 M, 6.15 B: an upscaler's parameters read as plainly as a transformer's.
std::string human_count(int64_t n) {
  if (n < 1'000'000) return std::to_string(n);
  if (n < 1'000'000'000) return fmt::format("{:.1f} M", static_cast<double>(n) / 1e6);
  return fmt::format("{:.2f} B", static_cast<double>(n) / 1e9);
}

void describe(const std::string& label, const fs::path& path, bool list_tensors) {
  const io::WeightStore store = io::WeightStore::open(path);
  std::map<std::string_view, int64_t> by_dtype;
  double bytes = 0;
  int64_t params = 0;
  for (const auto& name : store.names()) {
    const Tensor t = store.get(name);
    by_dtype[dtype_name(t.dtype())] += t.numel();
    bytes += static_cast<double>(t.nbytes());
    params += t.numel();
  }
  std::string dtypes;
  for (const auto& [d, n] : by_dtype)
    dtypes += fmt::format("{}{} ({} params)", dtypes.empty() ? "" : ", ", d, n);
  fmt::print("{}: {} tensors, {} params, {}, {}\n", label, store.size(), human_count(params),
             human_bytes(bytes), dtypes);
  if (const auto found = models::detect_component(store, io::component_config_json(path))) {
    fmt::print("  architecture: {} ({} layout)\n  config: {}\n", found->architecture, found->layout,
               found->config);
  } else {
    fmt::print("  architecture: not recognised\n");
  }
  if (list_tensors) {
    for (const auto& name : store.names()) {
      const Tensor t = store.get(name);
      fmt::print("  {} {} {}\n", name, dtype_name(t.dtype()), shape_str(t.shape()));
    }
  }
}

// A diffusers folder's pipeline class (model_index.json's _class_name: which FLUX.1 tool, or
// Z-Image's or FLUX.2's pipeline, a folder is); nothing when there is none to read.
bool is_picture(const fs::path& path) {
  std::string ext = path.extension().string();
  std::ranges::transform(ext, ext.begin(), [](unsigned char c) { return std::tolower(c); });
  return ext == ".png" || ext == ".jpg" || ext == ".jpeg" || ext == ".webp";
}

// A picture's size and its text chunks, the request JSON zflow writes pretty-printed.
void describe_picture(const fs::path& path) {
  const std::string file = read_text_file(path, "info");
  const std::span bytes(reinterpret_cast<const uint8_t*>(file.data()), file.size());
  const io::Image image = io::decode_image(bytes, path.string());
  fmt::print("{}: {}x{}\n", path.filename().string(), image.width, image.height);
  const io::PngText text = io::decode_text(bytes, path.string());
  if (text.empty()) fmt::print("  no text chunks (how it was made is not recorded)\n");
  for (const auto& [key, value] : text) {
    const nlohmann::json parsed = nlohmann::json::parse(value, nullptr, false);
    const bool object = !parsed.is_discarded() && parsed.is_object();
    fmt::print("{}:\n{}\n", key, object ? parsed.dump(2) : value);
  }
}

void describe_pipeline(const fs::path& folder) {
  const fs::path index = folder / "model_index.json";
  if (!fs::is_regular_file(index)) return;
  std::ifstream in(index);
  const nlohmann::json j = nlohmann::json::parse(in, nullptr, /*allow_exceptions=*/false);
  if (j.is_object() && j.contains("_class_name") && j["_class_name"].is_string())
    fmt::print("pipeline: {} ({})\n", j["_class_name"].get<std::string>(), index.string());
  else
    fmt::print("pipeline: {} has no _class_name string\n", index.string());
}

}  // namespace

Run add_info_command(CLI::App& app) {
  auto* cmd = app.add_subcommand("info", "show what a model file or folder holds");
  struct Options {
    std::string path;
    bool tensors = false;
  };
  auto opt = std::make_shared<Options>();
  cmd->add_option("path", opt->path,
                  "a .safetensors or .gguf file, a sharded index, a model folder, or a picture "
                  "(.png, .jpg, .webp: its size and recorded parameters)")
      ->required();
  cmd->add_flag("--tensors", opt->tensors, "list every tensor");
  return [opt] {
    fs::path path = fs::path(opt->path).lexically_normal();
    if (path.filename().empty()) path = path.parent_path();  // "folder/" names the folder
    if (!fs::exists(path)) fail("[info] {}: no such file or folder", opt->path);
    if (fs::is_regular_file(path) && is_picture(path)) {
      describe_picture(path);
      return 0;
    }
    if (fs::is_directory(path) && !holds_weights(path)) {
      // A diffusers pipeline folder (model_index.json) or any folder of components: one
      // component per sub-folder with weights (tokenizer and scheduler folders hold none).
      describe_pipeline(path);
      int found = 0;
      for (const auto& entry : fs::directory_iterator(path)) {
        if (!entry.is_directory() || !holds_weights(entry.path())) continue;
        describe(entry.path().filename().string(), entry.path(), opt->tensors);
        ++found;
      }
      if (found == 0 && !fs::is_regular_file(path / "model_index.json"))
        fail("[info] {}: no .safetensors files here or in its sub-folders", opt->path);
      return 0;
    }
    describe(path.filename().string(), path, opt->tensors);
    return 0;
  };
}

}  // namespace zflow::cli
