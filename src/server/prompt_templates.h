// Dynamic Prompts templates in a job's prompts, expanded when it is submitted: the request's own
// prompts for each image (GenerationRequest::image_prompts), each image with its seed + k, as the
// A1111 extension does for a batch. The server's wildcard folder holds the __name__ files.
#pragma once

#include <filesystem>

#include "server/api_request.h"
#include "server/job.h"

namespace zflow::server {

// Expands spec.templates (or `server_default` where the job says nothing) and sets it to Off, so a
// second call changes nothing; the prompt stays the template, as A1111 keeps it. An ApiError 400
// names the prompt field that goes wrong, or the batch limit a combinatorial template goes past.
void expand_prompt_templates(JobSpec& spec, const std::optional<PromptTemplates>& server_default,
                             const std::filesystem::path& wildcard_folder,
                             const RequestLimits& limits);

}  // namespace zflow::server
