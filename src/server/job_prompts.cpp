#include "server/job_prompts.h"

#include <fmt/format.h>

#include <algorithm>
#include <span>

namespace zflow::server {

namespace {

// `expand()`, its zflow::Error an ApiError 400 naming `field`.
template <typename Expand>
std::vector<std::string> expanded(const char* field, Expand&& expand) {
  try {
    return expand();
  } catch (const Error& e) {
    throw ApiError(400, field, fmt::format("{}: {}", field, e.what()));
  }
}

// The styles added to every prompt the request holds: A1111 styles its hires prompts too.
void add_styles(pipeline::GenerationRequest& r, std::span<const text::PromptStyle> styles) {
  const auto positive = &text::PromptStyle::prompt, negative = &text::PromptStyle::negative_prompt;
  r.prompt = text::with_styles(r.prompt, styles, positive);
  r.negative_prompt = text::with_styles(r.negative_prompt, styles, negative);
  if (r.hires && r.hires->prompt)
    r.hires->prompt = text::with_styles(*r.hires->prompt, styles, positive);
  if (r.hires && r.hires->negative_prompt)
    r.hires->negative_prompt = text::with_styles(*r.hires->negative_prompt, styles, negative);
}

}  // namespace

void apply_prompt_styles(const nlohmann::json& body, JobSpec& spec,
                         const std::vector<text::PromptStyle>& styles) {
  const auto it = body.find("styles");
  if (it == body.end() || it->is_null()) return;
  if (!it->is_array()) throw ApiError(400, "styles", "styles: expected a list of style names");
  std::vector<text::PromptStyle> chosen;
  for (const nlohmann::json& name : *it) {
    if (!name.is_string()) throw ApiError(400, "styles", "styles: expected a list of style names");
    const text::PromptStyle* style = text::find_prompt_style(styles, name.get<std::string>());
    if (!style)
      throw ApiError(400, "styles",
                     fmt::format("styles: '{}' is not one of this server's styles (GET "
                                 "/sdapi/v1/prompt-styles)",
                                 name.get<std::string>()));
    chosen.push_back(*style);
  }
  add_styles(spec.request, chosen);
}

void expand_prompt_templates(JobSpec& spec, const std::optional<PromptTemplates>& server_default,
                             const text::Wildcards& wildcards, const RequestLimits& limits) {
  const std::optional<PromptTemplates> t = spec.templates ? spec.templates : server_default;
  spec.templates = PromptTemplates{.mode = PromptTemplates::Mode::Off};  // expanded once only
  if (!t || t->mode == PromptTemplates::Mode::Off || spec.upscale) return;
  pipeline::GenerationRequest& r = spec.request;
  r.seed_per_image = true;
  if (t->mode == PromptTemplates::Mode::Random) {
    // A batch of variations (one seed, variation seeds + k) keeps one prompt, drawn from the
    // seed: the extension freezes it there.
    const auto count = static_cast<size_t>(r.batch);
    const auto draw = [&](const char* field, const std::string& text) {
      std::vector<std::string> drawn = expanded(field, [&] {
        return text::sample_dynamic_prompts(text, wildcards, r.seed, r.variation ? 1 : count);
      });
      return r.variation ? std::vector<std::string>(count, drawn.front()) : drawn;
    };
    r.image_prompts = draw("prompt", r.prompt);
    r.image_negative_prompts = draw("negative_prompt", r.negative_prompt);
    return;
  }
  // Combinatorial: one more than a request may hold, to tell a list that is too long.
  const auto cap = static_cast<size_t>(limits.max_batch) + 1;
  const size_t max_prompts = t->max_prompts > 0 ? t->max_prompts : cap;
  const std::vector<std::string> prompts = expanded("prompt", [&] {
    return text::expand_dynamic_prompt(r.prompt, wildcards, std::min(max_prompts, cap));
  });
  const std::vector<std::string> negatives = expanded("negative_prompt", [&] {
    return text::expand_dynamic_prompt(r.negative_prompt, wildcards, std::min(max_prompts, cap));
  });
  // Every prompt with every negative prompt, the positive varying slowest, at most max_prompts.
  std::vector<std::string> own, own_negative;
  for (const std::string& prompt : prompts)
    for (const std::string& negative : negatives)
      if (own.size() < max_prompts) {
        own.push_back(prompt);
        own_negative.push_back(negative);
      }
  if (own.size() * static_cast<size_t>(t->repeats) > static_cast<size_t>(limits.max_batch))
    throw ApiError(
        400, "prompt",
        fmt::format("prompt: the templates stand for {}{} images{}, over this "
                    "server's {} a request",
                    own.size() >= cap ? "more than " : "",
                    own.size() >= cap ? limits.max_batch : own.size(),
                    t->repeats > 1 ? fmt::format(" {} times", t->repeats) : "", limits.max_batch));
  r.image_prompts.clear();
  r.image_negative_prompts.clear();
  for (int pass = 0; pass < t->repeats; ++pass) {
    r.image_prompts.insert(r.image_prompts.end(), own.begin(), own.end());
    r.image_negative_prompts.insert(r.image_negative_prompts.end(), own_negative.begin(),
                                    own_negative.end());
  }
  r.batch = static_cast<int>(r.image_prompts.size());
}

}  // namespace zflow::server
