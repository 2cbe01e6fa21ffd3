// WebP through libwebp's simple API. Still images only: Pillow shows an animated WebP as
// its composited first frame, which would need libwebpdemux's animation decoder; we
// refuse animations with a clear error instead.
#include <webp/decode.h>
#include <webp/encode.h>

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

  Image image;
  image.width = features.width;
  image.height = features.height;
  image.rgb.resize(size_t{3} * image.width * image.height);
  // Alpha, if any, is dropped: the RGB samples are those of an RGBA decode.
  if (!WebPDecodeRGBInto(bytes.data(), bytes.size(), image.rgb.data(), image.rgb.size(),
                         3 * image.width))
    fail(
        "[image] {}: invalid or truncated WebP data (libwebp could not decode the {}x{} "
        "bitstream)",
        source, image.width, image.height);
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
