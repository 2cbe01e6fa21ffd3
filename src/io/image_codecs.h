// Internal to the image codecs (image*.cpp): per-format decoders and shared checks.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "io/image.h"

namespace zflow::io::detail {

Image decode_png(std::span<const uint8_t> bytes, const std::string& source);
// The alpha plane of a PNG with an alpha channel or a tRNS chunk; nullopt for one without.
std::optional<std::vector<uint8_t>> decode_png_alpha(std::span<const uint8_t> bytes,
                                                     const std::string& source);
PngText decode_png_text(std::span<const uint8_t> bytes, const std::string& source);
Image decode_jpeg(std::span<const uint8_t> bytes, const std::string& source);
Image decode_webp(std::span<const uint8_t> bytes, const std::string& source);

// Throws unless 1 <= width, height <= kMaxImageSide and width * height <= kMaxImagePixels.
// `format` ("PNG", ...) goes into the message. Call it on the header, before allocating.
void check_dimensions(int64_t width, int64_t height, const char* format, const std::string& source);

// Throws unless image.rgb holds exactly 3 * width * height bytes of a size we accept.
void check_image(const Image& image, const char* op);

}  // namespace zflow::io::detail
