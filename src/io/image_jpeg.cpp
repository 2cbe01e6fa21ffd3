// JPEG through TurboJPEG, which catches libjpeg's errors itself (no longjmp reaches us).
//
// Decoding matches Pillow's defaults: accurate integer IDCT and fancy (triangle-filter)
// chroma upsampling; TurboJPEG's defaults are the same. Pillow refuses a truncated JPEG
// ("image file is truncated") where libjpeg would only warn and fill the rest with grey,
// so libjpeg's premature-end warning is an error here; other warnings (stray bytes before
// a marker, say) are tolerated, as by Pillow.
#include <turbojpeg.h>

#include <cstring>
#include <memory>

#include "core/error.h"
#include "io/image.h"
#include "io/image_codecs.h"

namespace zflow::io {

namespace {

struct TjHandle {
  tjhandle handle;
  explicit TjHandle(tjhandle h) : handle(h) {}
  ~TjHandle() {
    if (handle) tjDestroy(handle);
  }
  TjHandle(const TjHandle&) = delete;
  TjHandle& operator=(const TjHandle&) = delete;
};

// Pillow reads every CMYK JPEG as Adobe-inverted ("CMYK;I"), then converts CMYK -> RGB
// as R = (255 - K') - round(C' * (255 - K') / 255) with C' = 255 - C_raw, K' = 255 - K_raw
// (Convert.c cmyk2rgb with MULDIV255). We reproduce that on the raw CMYK samples.
uint8_t pillow_cmyk_channel(uint8_t raw_c, uint8_t raw_k) {
  const int nk = raw_k;       // 255 - K'
  const int c = 255 - raw_c;  // C'
  const int tmp = c * nk + 128;
  const int v = nk - (((tmp >> 8) + tmp) >> 8);
  return static_cast<uint8_t>(v < 0 ? 0 : v);
}

// Whether the frame header (the first SOFn marker before the scan data) says Huffman coding
// (SOF0-3, 5-7) rather than arithmetic coding (SOF9-11, 13-15). Unknown layouts count as
// arithmetic, which only skips the size check below.
bool huffman_coded(std::span<const uint8_t> bytes) {
  size_t at = 2;  // after SOI
  while (at + 4 <= bytes.size() && bytes[at] == 0xFF) {
    const uint8_t marker = bytes[at + 1];
    if (marker >= 0xC0 && marker <= 0xCF && marker != 0xC4 && marker != 0xC8 && marker != 0xCC)
      return marker < 0xC8;
    if (marker == 0xDA) return false;  // scan data before any frame header
    at += 2 + ((size_t{bytes[at + 2]} << 8) | bytes[at + 3]);
  }
  return false;
}

}  // namespace

namespace detail {

Image decode_jpeg(std::span<const uint8_t> bytes, const std::string& source) {
  TjHandle tj(tjInitDecompress());
  if (!tj.handle) fail("[image] {}: TurboJPEG could not allocate its decoder", source);
  int width = 0, height = 0, subsamp = 0, colorspace = 0;
  if (tjDecompressHeader3(tj.handle, bytes.data(), static_cast<unsigned long>(bytes.size()), &width,
                          &height, &subsamp, &colorspace) != 0)
    fail("[image] {}: invalid JPEG header (libjpeg: {})", source, tjGetErrorStr2(tj.handle));
  check_dimensions(width, height, "JPEG", source);
  // Every 8x8 luma block of a Huffman-coded JPEG costs at least one bit (its DC code), so a
  // file far smaller than that is truncated: refused before the pixels are allocated (a
  // few hundred bytes could otherwise claim 16384 x 16384, 805 MB of RGB).
  const size_t min_bytes = static_cast<size_t>((width + 7) / 8) * ((height + 7) / 8) / 8;
  if (bytes.size() < min_bytes && huffman_coded(bytes))
    fail("[image] {}: truncated JPEG data: a {}x{} JPEG needs at least {} bytes, the file has {}",
         source, width, height, min_bytes, bytes.size());

  const bool cmyk = colorspace == TJCS_CMYK || colorspace == TJCS_YCCK;
  const size_t pixels = static_cast<size_t>(width) * height;
  Image image;
  image.width = width;
  image.height = height;
  image.rgb.resize(3 * pixels);
  std::vector<uint8_t> cmyk_pixels(cmyk ? 4 * pixels : 0);
  uint8_t* out = cmyk ? cmyk_pixels.data() : image.rgb.data();
  const int format = cmyk ? TJPF_CMYK : TJPF_RGB;
  // A crafted progressive JPEG can hold thousands of scans and take minutes to decode;
  // real ones have about ten. LIMITSCANS makes libjpeg-turbo refuse more than 500.
  const int flags = TJFLAG_LIMITSCANS;
  if (tjDecompress2(tj.handle, bytes.data(), static_cast<unsigned long>(bytes.size()), out, width,
                    0, height, format, flags) != 0) {
    const char* message = tjGetErrorStr2(tj.handle);
    const bool truncated = std::strstr(message, "Premature end of JPEG file") != nullptr;
    if (tjGetErrorCode(tj.handle) == TJERR_FATAL || truncated)
      fail("[image] {}: {} JPEG data (libjpeg: {})", source, truncated ? "truncated" : "invalid",
           message);
  }
  if (cmyk) {
    for (size_t i = 0; i < pixels; ++i) {
      const uint8_t* p = &cmyk_pixels[4 * i];
      for (int c = 0; c < 3; ++c) image.rgb[3 * i + c] = pillow_cmyk_channel(p[c], p[3]);
    }
  }
  return image;
}

}  // namespace detail

std::vector<uint8_t> encode_jpeg(const Image& image, int quality) {
  detail::check_image(image, "encode_jpeg");
  if (quality < 1 || quality > 100)
    fail("[image] encode_jpeg: quality is {}, expected 1..100", quality);
  TjHandle tj(tjInitCompress());
  if (!tj.handle) fail("[image] encode_jpeg: TurboJPEG could not allocate its encoder");
  unsigned char* buffer = nullptr;  // allocated by TurboJPEG
  unsigned long size = 0;
  // 4:2:0 chroma subsampling, Pillow's (and so A1111's) default for JPEG.
  const int rc = tjCompress2(tj.handle, image.rgb.data(), image.width, 0, image.height, TJPF_RGB,
                             &buffer, &size, TJSAMP_420, quality, 0);
  std::unique_ptr<unsigned char, void (*)(unsigned char*)> owned(buffer, tjFree);
  if (rc != 0) fail("[image] encode_jpeg: TurboJPEG failed: {}", tjGetErrorStr2(tj.handle));
  return std::vector<uint8_t>(buffer, buffer + size);
}

}  // namespace zflow::io
