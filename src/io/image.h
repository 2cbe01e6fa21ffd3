// Image files: decode PNG, JPEG and WebP into 8-bit RGB, and encode RGB into them.
//
// Decoding matches what diffusers and A1111 get from Pillow with
// `Image.open(path).convert("RGB")`, so an init image or a ControlNet hint reads the same
// pixels here as there (tests/io/test_image.cpp checks this against Pillow's output):
//   - the format comes from the magic bytes, never the file name;
//   - grey becomes R=G=B, palettes are looked up, and alpha is dropped without compositing
//     (Pillow's RGBA->RGB and LA->RGB conversions discard the alpha channel; so does a
//     tRNS chunk, which only sets transparency);
//   - 16-bit PNG samples keep their high byte (Pillow loads 16-bit RGB/RGBA as 8-bit by
//     taking the most significant byte) except 16-bit grey, which Pillow clamps at 255;
//   - CMYK/YCCK JPEGs are converted with Pillow's formula (image_jpeg.cpp);
//   - animated WebP is refused (Pillow would composite the first frame);
//   - gamma, colour profiles and EXIF orientation are ignored, as convert("RGB") ignores them.
// Every error is a zflow::Error naming the file: "[image] photo.png: truncated PNG data".
#pragma once

#include <cstdint>
#include <filesystem>
#include <optional>
#include <span>
#include <string>
#include <utility>
#include <vector>

namespace zflow::io {

// 8-bit RGB, row-major, interleaved: pixel (x, y) is rgb[3 * (y * width + x) + c].
struct Image {
  int width = 0;
  int height = 0;
  std::vector<uint8_t> rgb;
};

// Limits checked on the header, before any pixel memory is allocated.
inline constexpr int kMaxImageSide = 16384;
inline constexpr int64_t kMaxImagePixels = int64_t{1} << 28;

enum class ImageFormat { Unknown, PNG, JPEG, WebP };

// The format the leading bytes announce (PNG signature, JPEG SOI marker, RIFF....WEBP).
ImageFormat detect_image_format(std::span<const uint8_t> bytes);

// Decodes PNG, JPEG or WebP bytes into RGB. `source` names the file in errors.
Image decode_image(std::span<const uint8_t> bytes, const std::string& source);
Image read_image(const std::filesystem::path& path);
// The alpha channel decode_image drops: width * height bytes, row-major, for a PNG with an alpha
// channel or a tRNS chunk (16-bit alpha keeps its high byte); nullopt for a PNG without alpha and
// for JPEG and WebP. Malformed data is an Error as for decode_image.
std::optional<std::vector<uint8_t>> decode_alpha(std::span<const uint8_t> bytes,
                                                 const std::string& source);

// PNG text chunks as (keyword, text) pairs, both UTF-8. A keyword must be 1-79 Latin-1
// characters (PNG spec 11.3.4.2); the text may be anything.
using PngText = std::vector<std::pair<std::string, std::string>>;

// The text chunks (tEXt, zTXt, iTXt) before a PNG's image data, in file order, Latin-1 ones
// converted to UTF-8: where zflow, A1111 and ComfyUI keep how a picture was made. Empty for
// JPEG and WebP; malformed data is an Error as for decode_image.
PngText decode_text(std::span<const uint8_t> bytes, const std::string& source);

// Encoders. Each checks that `image` is well formed (rgb.size() == 3 * width * height).
// PNG text goes out the way Pillow's PngInfo.add_text (used by A1111 for `parameters`)
// writes it: a tEXt chunk in Latin-1 when every character fits, otherwise an
// uncompressed iTXt chunk in UTF-8 with empty language tag and translated keyword.
std::vector<uint8_t> encode_png(const Image& image, const PngText& text = {});
std::vector<uint8_t> encode_jpeg(const Image& image, int quality = 90);
std::vector<uint8_t> encode_webp(const Image& image, int quality = 90, bool lossless = false);

void write_png(const std::filesystem::path& path, const Image& image, const PngText& text = {});
void write_jpeg(const std::filesystem::path& path, const Image& image, int quality = 90);
void write_webp(const std::filesystem::path& path, const Image& image, int quality = 90,
                bool lossless = false);
// Chooses the format by extension (.png, .jpg/.jpeg, .webp, any case); text chunks go
// into PNGs only (JPEG and WebP get none). Other extensions are an Error.
void write_image(const std::filesystem::path& path, const Image& image, const PngText& text = {});

}  // namespace zflow::io
