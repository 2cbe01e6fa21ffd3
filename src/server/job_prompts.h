// What a job's prompts become before it runs, in A1111's order: the prompt styles it names added
// (text/prompt_styles.h), then Dynamic Prompts templates expanded into the request's own prompts
// for each image (GenerationRequest::image_prompts), each image with its seed + k, as the A1111
// extension does for a batch, __name__ read from the server's wildcard folder.
#pragma once

#include <vector>

#include "text/dynamic_prompt.h"
#include "text/prompt_styles.h"

#include "server/api_request.h"
#include "server/job.h"

namespace zflow::server {

// The body's "styles" (A1111's: a list of style names) added to the prompt, negative prompt and
// hires prompts, in order; an ApiError 400 names "styles" for a name the server does not have.
void apply_prompt_styles(const nlohmann::json& body, JobSpec& spec,
                         const std::vector<text::PromptStyle>& styles);

// Expands spec.templates (or `server_default` where the job says nothing) and sets it to Off, so a
// second call changes nothing; the prompt stays the template, as A1111 keeps it. An ApiError 400
// names the prompt field that goes wrong, or the batch limit a combinatorial template goes past.
void expand_prompt_templates(JobSpec& spec, const std::optional<PromptTemplates>& server_default,
                             const text::Wildcards& wildcards, const RequestLimits& limits);

}  // namespace zflow::server
