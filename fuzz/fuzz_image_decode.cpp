// libFuzzer target: decode_image, decode_alpha and decode_text on arbitrary bytes. A zflow::Error
// is the expected answer to a bad file; anything else (a crash, a sanitizer report, another
// exception) is a bug. Seeds: fuzz/corpus/image_decode/ (small PNG, JPEG and WebP files from
// make_images.py).
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>

#include "core/error.h"
#include "io/image.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::optional<zflow::io::Image> image;
  try {
    image = zflow::io::decode_image(std::span(data, size), "fuzz-input");
    if (image->rgb.size() != size_t{3} * image->width * image->height) __builtin_trap();
  } catch (const zflow::Error&) {
  }
  try {
    const auto alpha = zflow::io::decode_alpha(std::span(data, size), "fuzz-input");
    if (alpha && image && alpha->size() != size_t{1} * image->width * image->height)
      __builtin_trap();
  } catch (const zflow::Error&) {
  }
  try {
    zflow::io::decode_text(std::span(data, size), "fuzz-input");
  } catch (const zflow::Error&) {
  }
  return 0;
}
