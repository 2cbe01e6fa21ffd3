// Turning the JSON bodies of the three APIs (OpenAI images, AUTOMATIC1111, zflow's native jobs)
// into jobs. Every problem is an ApiError naming the field and what was expected, which the HTTP
// layer sends as a 4xx JSON error; nothing a client sends can crash or hang the server.
#pragma once

#include <nlohmann/json.hpp>

#include <optional>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "server/job.h"

namespace zflow::server {

class ApiError : public std::runtime_error {
 public:
  ApiError(int status, std::string param, const std::string& message)
      : std::runtime_error(message), status_(status), param_(std::move(param)) {}
  int status() const { return status_; }
  const std::string& param() const { return param_; }  // the offending field, or ""

 private:
  int status_;
  std::string param_;
};

// What a server accepts; requests beyond it get 400 naming the field and the limit.
struct RequestLimits {
  int max_side = 2048;  // pixels, width and height each
  int max_batch = 8;    // images per request
  int max_steps = 200;
  size_t max_prompt_bytes = 16384;
  int max_loras = 8;  // LoRAs per request
};

// The body as a JSON object, or ApiError 400.
nlohmann::json parse_json_object(const std::string& body);

// `default_model` is used when the body names none; the caller checks the name exists. Every API
// takes `loras`: [{"name": NAME, "scale": S (default 1)}], LoRAs of the server's LoRA folder by
// name (the caller checks they exist), merged into the model in order.
JobSpec parse_openai_generation(const nlohmann::json& body, const RequestLimits& limits,
                                const std::string& default_model);
// OpenAI's POST /v1/images/edits. `fields` are its other fields (a form's text fields, strings
// holding numbers where numbers are expected, or a JSON body's); `images` the bytes of its image
// files (`image` / `image[]`, 1 to 4), `mask` its mask file's. Without a mask the images are
// reference images to edit (FLUX.2, FLUX.1 Kontext, Z-Image Omni); with one the first image is
// inpainted where the mask is transparent (OpenAI's rule: alpha 0 = edit; a mask without alpha is
// read as zflow's grey mask, white = edit) and any others are its reference images.
struct OpenAiEdit {
  nlohmann::json fields = nlohmann::json::object();
  std::vector<std::string> images;
  std::optional<std::string> mask;
};
JobSpec parse_openai_edit(const OpenAiEdit& edit, const RequestLimits& limits,
                          const std::string& default_model);
// A form's text fields as parse_openai_edit reads them: numbers and booleans where the text is
// one, except in the fields that are text (prompt, model, size, formats).
nlohmann::json openai_form_fields(const std::vector<std::pair<std::string, std::string>>& fields);

// A1111 also takes LoRAs as its prompt tags, <lora:NAME> or <lora:NAME:SCALE>, which are cut out
// of the prompt (after any in the `loras` field).
JobSpec parse_a1111(const nlohmann::json& body, bool img2img, const RequestLimits& limits,
                    const std::string& default_model);
// A1111's POST /sdapi/v1/extra-single-image: `image` (base64) upscaled by `upscaler_1` (a name
// of GET /sdapi/v1/upscalers: None, Lanczos, Nearest or one of the server's upscaler models; the
// caller checks it exists), by `upscaling_resize` (resize_mode 0, default 2) or to
// `upscaling_resize_w` x `upscaling_resize_h` (resize_mode 1, covered and then centre-cropped
// unless `upscaling_crop` is false), A1111's sizes rounded down to multiples of 8. The output is
// held to 4 x the largest generation side. Face restoration and a second upscaler are refused.
JobSpec parse_a1111_extras(const nlohmann::json& body, const RequestLimits& limits,
                           const std::string& default_model);
// POST /sdapi/v1/extra-batch-images: the same for `imageList`, [{"data": base64, "name"}], at most
// the server's batch size of pictures.
JobSpec parse_a1111_extras_batch(const nlohmann::json& body, const RequestLimits& limits,
                                 const std::string& default_model);
// A1111's POST /sdapi/v1/png-info: the picture in `image` (base64) read for the text it carries:
// {"info": its A1111 `parameters` text, "items": every other text chunk, "parameters": the
// infotext taken apart as A1111's parse_generation_parameters does (Prompt, Negative prompt, each
// "Key: value" of the last line, Size-1 / Size-2)}.
nlohmann::json png_info(const nlohmann::json& body);

// The infotext's fields, as the "parameters" of png_info.
nlohmann::json parse_infotext(const std::string& infotext);

JobSpec parse_native_job(const nlohmann::json& body, const RequestLimits& limits,
                         const std::string& default_model);

}  // namespace zflow::server
