// WebP through libwebp's simple API. Still images only: Pillow shows an animated WebP as
// its composited first frame, which would need libwebpdemux's animation decoder; we
// refuse animations with a clear error instead.
#include <webp/decode.h>
#include <webp/encode.h>

#include <memory>

#include "core/error.h"
#include "io/image.h"
#include "io/image_codecs.h"

namespace zflow::io {

namespace {

const char* vp8_status_name(VP8StatusCode status) {
  switch (status) {
    case VP8_STATUS_OK:
      return "ok";
    case VP8_STATUS_OUT_OF_MEMORY:
      return "out of memory";
    case VP8_STATUS_INVALID_PARAM:
      return "invalid parameter";
    case VP8_STATUS_BITSTREAM_ERROR:
      return "bitstream error";
    case VP8_STATUS_UNSUPPORTED_FEATURE:
      return "unsupported feature";
    case VP8_STATUS_SUSPENDED:
      return "suspended";
    case VP8_STATUS_USER_ABORT:
      return "user abort";
    case VP8_STATUS_NOT_ENOUGH_DATA:
      return "not enough data";
  }
  return "unknown status";
}

}  // namespace

namespace detail {

Image decode_webp(std::span<const uint8_t> bytes, const std::string& source) {
  WebPBitstreamFeatures features;
  const VP8StatusCode status = WebPGetFeatures(bytes.data(), bytes.size(), &features);
  if (status == VP8_STATUS_NOT_ENOUGH_DATA)
    fail("[image] {}: truncated WebP data (libwebp: {})", source, vp8_status_name(status));
  if (status != VP8_STATUS_OK)
    fail("[image] {}: invalid WebP header (libwebp: {})", source, vp8_status_name(status));
  if (features.has_animation)
    fail("[image] {}: animated WebP is not supported; extract a frame first", source);
  check_dimensions(features.width, features.height, "WebP", source);

  // libwebp allocates the pixels itself (malloc: a page is only committed when a row is written),
  // so a few hundred crafted bytes that claim 16384 x 16384 fail after touching a few rows, not
  // after zero-filling 805 MB as a std::vector would. No size bound can refuse them up front:
  // lossless WebP codes a flat image of any size in a few bytes. Alpha, if any, is dropped: the
  // RGB samples are those of an RGBA decode.
  int width = 0, height = 0;
  const std::unique_ptr<uint8_t, void (*)(void*)> rgb(
      WebPDecodeRGB(bytes.data(), bytes.size(), &width, &height), WebPFree);
  if (!rgb || width != features.width || height != features.height)
    fail(
        "[image] {}: invalid or truncated WebP data (libwebp could not decode the {}x{} "
        "bitstream)",
        source, features.width, features.height);
  Image image;
  image.width = width;
  image.height = height;
  image.rgb.assign(rgb.get(), rgb.get() + size_t{3} * width * height);
  return image;
}

}  // namespace detail

std::vector<uint8_t> encode_webp(const Image& image, int quality, bool lossless) {
  detail::check_image(image, "encode_webp");
  if (image.width > WEBP_MAX_DIMENSION || image.height > WEBP_MAX_DIMENSION)
    fail("[image] encode_webp: image is {}x{}, WebP allows at most {} per side", image.width,
         image.height, WEBP_MAX_DIMENSION);
  if (quality < 0 || quality > 100)
    fail("[image] encode_webp: quality is {}, expected 0..100", quality);
  uint8_t* buffer = nullptr;  // allocated by libwebp
  const int stride = 3 * image.width;
  const size_t size =
      lossless ? WebPEncodeLosslessRGB(image.rgb.data(), image.width, image.height, stride, &buffer)
               : WebPEncodeRGB(image.rgb.data(), image.width, image.height, stride,
                               static_cast<float>(quality), &buffer);
  if (size == 0 || !buffer) {
    WebPFree(buffer);
    fail("[image] encode_webp: libwebp failed to encode a {}x{} image", image.width, image.height);
  }
  std::vector<uint8_t> bytes(buffer, buffer + size);
  WebPFree(buffer);
  return bytes;
}

}  // namespace zflow::io
