// `zflow tokenize -m MODEL "text"`: the token ids a model's tokenizer gives, on one line,
// space-separated (a debugging aid, as llama.cpp's tokenize). --zimage-prompt wraps the
// text in Z-Image's chat template first and prints the ids the text encoder sees.
#include <fmt/format.h>
#include <fmt/ranges.h>

#include "cli/commands.h"
#include "text/bpe_tokenizer.h"
#include "text/chat_template.h"

namespace zflow::cli {

Run add_tokenize_command(CLI::App& app) {
  auto* cmd = app.add_subcommand("tokenize", "print the token ids of a text");
  struct Options {
    std::string model;
    std::string text;
    bool zimage_prompt = false;
  };
  auto o = std::make_shared<Options>();
  cmd->add_option("-m,--model", o->model,
                  "a tokenizer.json, a tokenizer folder, or a model folder with tokenizer/")
      ->required();
  cmd->add_option("text", o->text, "the text (UTF-8)")->required();
  cmd->add_flag("--zimage-prompt", o->zimage_prompt,
                "wrap in Z-Image's chat template and show the ids the text encoder sees");
  return [o] {
    const text::BpeTokenizer tokenizer = text::load_bpe_tokenizer(o->model);
    if (o->zimage_prompt) {
      const text::PromptTokens tokens = text::encode_zimage_prompt(tokenizer, o->text);
      fmt::print("{}\n", fmt::join(tokens.real_ids(), " "));
    } else {
      fmt::print("{}\n", fmt::join(tokenizer.encode(o->text), " "));
    }
    return 0;
  };
}

}  // namespace zflow::cli
