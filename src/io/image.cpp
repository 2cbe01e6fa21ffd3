// Format detection, file reading and writing, and the checks shared by the codecs.
#include "io/image.h"

#include <algorithm>
#include <cctype>
#include <cstring>
#include <fstream>
#include <iterator>

#include "core/error.h"
#include "io/image_codecs.h"

namespace zflow::io {

namespace detail {

void check_dimensions(int64_t width, int64_t height, const char* format,
                      const std::string& source) {
  if (width < 1 || height < 1)
    fail("[image] {}: {} header gives an empty image ({}x{})", source, format, width, height);
  if (width > kMaxImageSide || height > kMaxImageSide || width * height > kMaxImagePixels)
    fail("[image] {}: {} image is {}x{}, larger than the limit of {} per side and {} pixels",
         source, format, width, height, kMaxImageSide, kMaxImagePixels);
}

void check_image(const Image& image, const char* op) {
  check_dimensions(image.width, image.height, "in-memory", op);
  const size_t expected = size_t{3} * static_cast<size_t>(image.width) * image.height;
  if (image.rgb.size() != expected)
    fail("[image] {}: image is {}x{} but holds {} bytes of RGB, expected {}", op, image.width,
         image.height, image.rgb.size(), expected);
}

}  // namespace detail

ImageFormat detect_image_format(std::span<const uint8_t> bytes) {
  static constexpr uint8_t kPng[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
  if (bytes.size() >= 8 && std::memcmp(bytes.data(), kPng, 8) == 0) return ImageFormat::PNG;
  // SOI followed by the first byte of the next marker.
  if (bytes.size() >= 3 && bytes[0] == 0xff && bytes[1] == 0xd8 && bytes[2] == 0xff)
    return ImageFormat::JPEG;
  if (bytes.size() >= 12 && std::memcmp(bytes.data(), "RIFF", 4) == 0 &&
      std::memcmp(bytes.data() + 8, "WEBP", 4) == 0)
    return ImageFormat::WebP;
  return ImageFormat::Unknown;
}

std::optional<std::vector<uint8_t>> decode_alpha(std::span<const uint8_t> bytes,
                                                 const std::string& source) {
  if (bytes.empty()) fail("[image] {}: the file is empty", source);
  if (detect_image_format(bytes) != ImageFormat::PNG) return std::nullopt;
  return detail::decode_png_alpha(bytes, source);
}

PngText decode_text(std::span<const uint8_t> bytes, const std::string& source) {
  if (bytes.empty()) fail("[image] {}: the file is empty", source);
  if (detect_image_format(bytes) != ImageFormat::PNG) return {};
  return detail::decode_png_text(bytes, source);
}

Image decode_image(std::span<const uint8_t> bytes, const std::string& source) {
  if (bytes.empty()) fail("[image] {}: the file is empty", source);
  switch (detect_image_format(bytes)) {
    case ImageFormat::PNG:
      return detail::decode_png(bytes, source);
    case ImageFormat::JPEG:
      return detail::decode_jpeg(bytes, source);
    case ImageFormat::WebP:
      return detail::decode_webp(bytes, source);
    case ImageFormat::Unknown:
      break;
  }
  fail(
      "[image] {}: not a PNG, JPEG or WebP file (the first bytes match none of their "
      "signatures)",
      source);
}

Image read_image(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) fail("[image] {}: cannot open the file", path.string());
  std::vector<uint8_t> bytes((std::istreambuf_iterator<char>(in)),
                             std::istreambuf_iterator<char>());
  if (in.bad()) fail("[image] {}: read error", path.string());
  return decode_image(bytes, path.string());
}

namespace {

void write_bytes(const std::filesystem::path& path, const std::vector<uint8_t>& bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  if (!out) fail("[image] {}: cannot create the file", path.string());
  out.write(reinterpret_cast<const char*>(bytes.data()),
            static_cast<std::streamsize>(bytes.size()));
  out.close();
  if (!out) fail("[image] {}: write error", path.string());
}

}  // namespace

void write_png(const std::filesystem::path& path, const Image& image, const PngText& text) {
  write_bytes(path, encode_png(image, text));
}

void write_jpeg(const std::filesystem::path& path, const Image& image, int quality) {
  write_bytes(path, encode_jpeg(image, quality));
}

void write_webp(const std::filesystem::path& path, const Image& image, int quality, bool lossless) {
  write_bytes(path, encode_webp(image, quality, lossless));
}

void write_image(const std::filesystem::path& path, const Image& image, const PngText& text) {
  std::string ext = path.extension().string();
  std::transform(ext.begin(), ext.end(), ext.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  if (ext == ".png") return write_png(path, image, text);
  if (ext == ".jpg" || ext == ".jpeg") return write_jpeg(path, image);
  if (ext == ".webp") return write_webp(path, image);
  fail(
      "[image] {}: cannot tell the format from the extension '{}', expected .png, .jpg, .jpeg "
      "or .webp",
      path.string(), ext);
}

}  // namespace zflow::io
