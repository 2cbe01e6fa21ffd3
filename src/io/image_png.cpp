// PNG through libpng's full API (the simplified png_image API cannot write text chunks).
//
// libpng reports errors by longjmp. A longjmp that skips a C++ destructor is undefined
// behaviour, so every libpng call that can fail runs inside a small function whose
// locals are all trivial (`*_frame` below) and which owns the setjmp; the error handler
// copies libpng's message into a fixed buffer and longjmps back there. Objects with
// destructors (the Image, row-pointer vectors, the libpng structs' guard) live in the
// callers, which the longjmp never crosses.
#include <png.h>

#include <cstdio>
#include <cstring>
#include <memory>
#include <optional>

#include "core/error.h"
#include "io/image.h"
#include "io/image_codecs.h"

namespace zflow::io {

namespace {

// Shared by the reader and writer: where libpng's last error message goes.
struct PngErrorState {
  char message[256];
  bool truncated;  // the reader ran out of input
};

void on_png_error(png_structp png, png_const_charp message) {
  auto* state = static_cast<PngErrorState*>(png_get_error_ptr(png));
  std::snprintf(state->message, sizeof state->message, "%s", message ? message : "unknown error");
  png_longjmp(png, 1);
}

void on_png_warning(png_structp, png_const_charp) {}  // benign: bad ancillary CRCs etc.

// ---- reading ----

struct PngInput {  // trivially destructible, like everything a longjmp may skip
  PngErrorState error;
  const uint8_t* data;
  size_t size;
  size_t pos;
};

void on_png_read(png_structp png, png_bytep out, size_t count) {
  auto* in = static_cast<PngInput*>(png_get_io_ptr(png));
  if (count > in->size - in->pos) {
    in->error.truncated = true;
    png_error(png, "read past the end of the data");
  }
  std::memcpy(out, in->data + in->pos, count);
  in->pos += count;
}

struct PngIhdr {
  png_uint_32 width, height;
  int bit_depth, color_type, interlace;
};

bool read_info_frame(png_structp png, png_infop info, PngIhdr* ihdr) {
  if (setjmp(png_jmpbuf(png))) return false;
  // The PNG maximum, so that our own size check (with its clearer message) decides.
  png_set_user_limits(png, 0x7fffffff, 0x7fffffff);
  png_read_info(png, info);
  png_get_IHDR(png, info, &ihdr->width, &ihdr->height, &ihdr->bit_depth, &ihdr->color_type,
               &ihdr->interlace, nullptr, nullptr);
  return true;
}

// Sets the transforms to 8-bit RGB (or raw 16-bit grey, see decode_png) and reads every
// row, de-interlacing Adam7. `channels` and `rowbytes` must match what the transforms give.
bool read_rows_frame(png_structp png, png_infop info, const PngIhdr* ihdr, bool raw_grey16,
                     png_bytepp rows, size_t rowbytes) {
  if (setjmp(png_jmpbuf(png))) return false;
  if (ihdr->color_type == PNG_COLOR_TYPE_PALETTE) png_set_palette_to_rgb(png);
  if (ihdr->color_type == PNG_COLOR_TYPE_GRAY && ihdr->bit_depth < 8)
    png_set_expand_gray_1_2_4_to_8(png);  // 0..1, 0..3, 0..15 scaled to 0..255, as Pillow
  if (!raw_grey16) {
    if (ihdr->bit_depth == 16) png_set_strip_16(png);  // keeps the high byte
    png_set_strip_alpha(png);                          // no-op when there is none
    png_set_gray_to_rgb(png);                          // no-op for colour
  }
  png_set_interlace_handling(png);
  png_read_update_info(png, info);
  const int expected_channels = raw_grey16 ? 1 : 3;
  const int expected_depth = raw_grey16 ? 16 : 8;
  if (png_get_channels(png, info) != expected_channels ||
      png_get_bit_depth(png, info) != expected_depth || png_get_rowbytes(png, info) != rowbytes)
    png_error(png, "unexpected row layout after the RGB transforms");
  png_read_image(png, rows);
  return true;
}

// The transforms to 8-bit RGBA for an image with alpha (an alpha channel or tRNS), then every row.
bool read_rgba_rows_frame(png_structp png, png_infop info, const PngIhdr* ihdr, png_bytepp rows,
                          size_t rowbytes) {
  if (setjmp(png_jmpbuf(png))) return false;
  if (ihdr->color_type == PNG_COLOR_TYPE_PALETTE) png_set_palette_to_rgb(png);
  if (ihdr->color_type == PNG_COLOR_TYPE_GRAY && ihdr->bit_depth < 8)
    png_set_expand_gray_1_2_4_to_8(png);
  if (png_get_valid(png, info, PNG_INFO_tRNS)) png_set_tRNS_to_alpha(png);
  if (ihdr->bit_depth == 16) png_set_strip_16(png);
  png_set_gray_to_rgb(png);
  png_set_interlace_handling(png);
  png_read_update_info(png, info);
  if (png_get_channels(png, info) != 4 || png_get_bit_depth(png, info) != 8 ||
      png_get_rowbytes(png, info) != rowbytes)
    png_error(png, "unexpected row layout after the RGBA transforms");
  png_read_image(png, rows);
  return true;
}

struct ReadStructs {
  png_structp png = nullptr;
  png_infop info = nullptr;
  ~ReadStructs() { png_destroy_read_struct(&png, info ? &info : nullptr, nullptr); }
};

[[noreturn]] void fail_png(const PngInput& in, const std::string& source) {
  if (in.error.truncated)
    fail("[image] {}: truncated PNG data (libpng: {})", source, in.error.message);
  fail("[image] {}: invalid PNG data (libpng: {})", source, in.error.message);
}

// png_read_info reads every chunk up to the first IDAT, so a bomb with a short body would
// fail there as "truncated". Check the size in the IHDR (the spec puts it first, at a
// fixed offset) before libpng reads anything; libpng validates the rest of it.
void check_ihdr_before_reading(std::span<const uint8_t> bytes, const std::string& source) {
  if (bytes.size() < 26 || std::memcmp(bytes.data() + 12, "IHDR", 4) != 0) return;
  auto be32 = [&](size_t i) {
    return (uint64_t{bytes[i]} << 24) | (uint64_t{bytes[i + 1]} << 16) |
           (uint64_t{bytes[i + 2]} << 8) | bytes[i + 3];
  };
  const uint64_t width = be32(16), height = be32(20);
  detail::check_dimensions(static_cast<int64_t>(width), static_cast<int64_t>(height), "PNG",
                           source);
  // Deflate compresses at most 1032:1 (a 258-byte match in two 1-bit codes), so a file too
  // small to hold the filtered scanlines is truncated: say so before allocating for them.
  const int bit_depth = bytes[24], color_type = bytes[25];
  const int channels = color_type == 2 ? 3 : color_type == 4 ? 2 : color_type == 6 ? 4 : 1;
  const uint64_t scanline_bytes = height * (1 + (width * channels * bit_depth + 7) / 8);
  if (uint64_t{bytes.size()} * 1032 < scanline_bytes)
    fail("[image] {}: truncated PNG data ({} bytes cannot hold a {}x{} image)", source,
         bytes.size(), width, height);
}

// Latin-1 bytes (tEXt, zTXt and every keyword) as UTF-8: each byte is its code point.
std::string latin1_to_utf8(std::string_view latin1) {
  std::string out;
  for (const unsigned char c : latin1) {
    if (c < 0x80) {
      out.push_back(static_cast<char>(c));
    } else {
      out.push_back(static_cast<char>(0xC0 | (c >> 6)));
      out.push_back(static_cast<char>(0x80 | (c & 0x3F)));
    }
  }
  return out;
}

// A libpng reader over `bytes` with the header read and the size checked: what the decoders
// start from. Not movable: libpng holds pointers into it.
struct PngReader {
  PngInput in{};
  ReadStructs s;
  PngIhdr ihdr{};

  PngReader(std::span<const uint8_t> bytes, const std::string& source) {
    in.data = bytes.data();
    in.size = bytes.size();
    s.png = png_create_read_struct(PNG_LIBPNG_VER_STRING, &in.error, on_png_error, on_png_warning);
    if (s.png) s.info = png_create_info_struct(s.png);
    if (!s.png || !s.info) fail("[image] {}: libpng could not allocate its reader", source);
    png_set_read_fn(s.png, &in, on_png_read);
    check_ihdr_before_reading(bytes, source);
    if (!read_info_frame(s.png, s.info, &ihdr)) fail_png(in, source);
    detail::check_dimensions(ihdr.width, ihdr.height, "PNG", source);
  }
  PngReader(const PngReader&) = delete;
  PngReader& operator=(const PngReader&) = delete;
};

}  // namespace

namespace detail {

Image decode_png(std::span<const uint8_t> bytes, const std::string& source) {
  PngReader r(bytes, source);
  const PngIhdr& ihdr = r.ihdr;

  // Pillow opens 16-bit grey as mode I;16, and its I;16 -> RGB conversion clamps each
  // sample to 255 (so 256..65535 all become white) instead of taking the high byte as it
  // does for 16-bit RGB, RGBA and grey+alpha. We match it: read 16-bit grey raw and clamp.
  const bool raw_grey16 = ihdr.color_type == PNG_COLOR_TYPE_GRAY && ihdr.bit_depth == 16;

  Image image;
  image.width = static_cast<int>(ihdr.width);
  image.height = static_cast<int>(ihdr.height);
  const size_t w = ihdr.width, h = ihdr.height;
  const size_t rowbytes = raw_grey16 ? 2 * w : 3 * w;
  std::vector<uint8_t> grey16(raw_grey16 ? rowbytes * h : 0);
  image.rgb.resize(3 * w * h);
  uint8_t* base = raw_grey16 ? grey16.data() : image.rgb.data();
  std::vector<png_bytep> rows(h);
  for (size_t y = 0; y < h; ++y) rows[y] = base + y * rowbytes;
  if (!read_rows_frame(r.s.png, r.s.info, &ihdr, raw_grey16, rows.data(), rowbytes))
    fail_png(r.in, source);

  if (raw_grey16) {
    for (size_t i = 0; i < w * h; ++i) {
      const unsigned v = (unsigned{grey16[2 * i]} << 8) | grey16[2 * i + 1];  // big-endian
      const uint8_t g = v > 255 ? 255 : static_cast<uint8_t>(v);
      image.rgb[3 * i] = image.rgb[3 * i + 1] = image.rgb[3 * i + 2] = g;
    }
  }
  return image;
}

std::optional<std::vector<uint8_t>> decode_png_alpha(std::span<const uint8_t> bytes,
                                                     const std::string& source) {
  PngReader r(bytes, source);
  const PngIhdr& ihdr = r.ihdr;
  if ((ihdr.color_type & PNG_COLOR_MASK_ALPHA) == 0 &&
      !png_get_valid(r.s.png, r.s.info, PNG_INFO_tRNS))
    return std::nullopt;
  const size_t w = ihdr.width, h = ihdr.height, rowbytes = 4 * w;
  std::vector<uint8_t> rgba(rowbytes * h);
  std::vector<png_bytep> rows(h);
  for (size_t y = 0; y < h; ++y) rows[y] = rgba.data() + y * rowbytes;
  if (!read_rgba_rows_frame(r.s.png, r.s.info, &ihdr, rows.data(), rowbytes))
    fail_png(r.in, source);
  std::vector<uint8_t> alpha(w * h);
  for (size_t i = 0; i < w * h; ++i) alpha[i] = rgba[4 * i + 3];
  return alpha;
}

PngText decode_png_text(std::span<const uint8_t> bytes, const std::string& source) {
  // png_read_info (in the reader) has read every chunk before the first IDAT, texts included.
  PngReader r(bytes, source);
  png_textp texts = nullptr;
  const int count = png_get_text(r.s.png, r.s.info, &texts, nullptr);
  PngText out;
  for (int i = 0; i < count; ++i) {
    const png_text& t = texts[i];
    const bool utf8 =
        t.compression == PNG_ITXT_COMPRESSION_NONE || t.compression == PNG_ITXT_COMPRESSION_zTXt;
    const size_t length = utf8 ? t.itxt_length : t.text_length;
    const std::string text(t.text ? t.text : "", t.text ? length : 0);
    out.emplace_back(latin1_to_utf8(t.key), utf8 ? text : latin1_to_utf8(text));
  }
  return out;
}

}  // namespace detail

// ---- writing ----

namespace {

struct PngOutput {
  PngErrorState error;
  std::vector<uint8_t>* bytes;
};

void on_png_write(png_structp png, png_bytep data, size_t count) {
  auto* out = static_cast<PngOutput*>(png_get_io_ptr(png));
  try {
    out->bytes->insert(out->bytes->end(), data, data + count);
  } catch (...) {  // an exception must not unwind through libpng's C frames
    png_error(png, "out of memory while writing");
  }
}

void on_png_flush(png_structp) {}

bool write_frame(png_structp png, png_infop info, png_uint_32 width, png_uint_32 height,
                 png_textp text, int text_count, png_bytepp rows) {
  if (setjmp(png_jmpbuf(png))) return false;
  png_set_IHDR(png, info, width, height, 8, PNG_COLOR_TYPE_RGB, PNG_INTERLACE_NONE,
               PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
  if (text_count > 0) png_set_text(png, info, text, text_count);  // written before IDAT
  png_write_info(png, info);
  png_write_image(png, rows);
  png_write_end(png, nullptr);
  return true;
}

struct WriteStructs {
  png_structp png = nullptr;
  png_infop info = nullptr;
  ~WriteStructs() { png_destroy_write_struct(&png, info ? &info : nullptr); }
};

// Decodes UTF-8 into code points; fails on malformed input.
std::vector<char32_t> utf8_code_points(const std::string& s, const char* what,
                                       const std::string& keyword) {
  std::vector<char32_t> out;
  for (size_t i = 0; i < s.size();) {
    const auto b = static_cast<unsigned char>(s[i]);
    const int n = b < 0x80 ? 1 : (b >> 5) == 6 ? 2 : (b >> 4) == 14 ? 3 : (b >> 3) == 30 ? 4 : 0;
    if (n == 0 || i + n > s.size())
      fail("[image] PNG text '{}': the {} is not valid UTF-8 (byte {})", keyword, what, i);
    char32_t c = n == 1 ? b : b & (0x7f >> n);
    for (int k = 1; k < n; ++k) {
      const auto cont = static_cast<unsigned char>(s[i + k]);
      if ((cont & 0xc0) != 0x80)
        fail("[image] PNG text '{}': the {} is not valid UTF-8 (byte {})", keyword, what, i + k);
      c = (c << 6) | (cont & 0x3f);
    }
    static constexpr char32_t kMinForLength[5] = {0, 0, 0x80, 0x800, 0x10000};
    if (c < kMinForLength[n] || c > 0x10ffff || (c >= 0xd800 && c <= 0xdfff))
      fail("[image] PNG text '{}': the {} is not valid UTF-8 (byte {})", keyword, what, i);
    out.push_back(c);
    i += n;
  }
  return out;
}

// The Latin-1 bytes of `code_points`, or nothing if one of them is above U+00FF.
std::optional<std::string> to_latin1(const std::vector<char32_t>& code_points) {
  std::string out;
  for (char32_t c : code_points) {
    if (c > 0xff) return std::nullopt;
    out.push_back(static_cast<char>(c));
  }
  return out;
}

// PNG spec 11.3.4.2: 1-79 printable Latin-1 characters (32-126, 161-255), no leading,
// trailing or consecutive spaces. libpng would silently rewrite a bad keyword; we refuse it.
std::string latin1_keyword(const std::string& keyword) {
  const auto latin1 = to_latin1(utf8_code_points(keyword, "keyword", keyword));
  bool ok = latin1 && !latin1->empty() && latin1->size() <= 79 && latin1->front() != ' ' &&
            latin1->back() != ' ' && latin1->find("  ") == std::string::npos;
  if (ok) {
    for (unsigned char c : *latin1) ok = ok && ((c >= 32 && c <= 126) || c >= 161);
  }
  if (!ok)
    fail(
        "[image] PNG text keyword '{}' is invalid: expected 1-79 printable Latin-1 characters "
        "without leading, trailing or double spaces",
        keyword);
  return *latin1;
}

}  // namespace

std::vector<uint8_t> encode_png(const Image& image, const PngText& text) {
  detail::check_image(image, "encode_png");

  // Owned copies of the chunk strings, which png_text points into (png_set_text copies them).
  struct Chunk {
    std::string keyword, text;
    bool itxt;
  };
  std::vector<Chunk> chunks;
  for (const auto& [keyword, value] : text) {
    if (value.find('\0') != std::string::npos)
      fail("[image] PNG text '{}': the text holds a NUL byte, which PNG text cannot carry",
           keyword);
    // Pillow's PngInfo.add_text: tEXt if the text encodes as Latin-1, else iTXt in UTF-8.
    auto latin1 = to_latin1(utf8_code_points(value, "text", keyword));
    chunks.push_back({latin1_keyword(keyword), latin1 ? *latin1 : value, !latin1});
  }
  std::vector<png_text> png_chunks(chunks.size());
  for (size_t i = 0; i < chunks.size(); ++i) {
    png_text& t = png_chunks[i];
    std::memset(&t, 0, sizeof t);
    t.compression = chunks[i].itxt ? PNG_ITXT_COMPRESSION_NONE : PNG_TEXT_COMPRESSION_NONE;
    t.key = chunks[i].keyword.data();
    t.text = chunks[i].text.data();
    t.text_length = chunks[i].text.size();
    t.lang = nullptr;  // iTXt: empty language tag and translated keyword, as Pillow writes
    t.lang_key = nullptr;
  }

  std::vector<uint8_t> bytes;
  PngOutput out{};
  out.bytes = &bytes;
  WriteStructs s;
  s.png = png_create_write_struct(PNG_LIBPNG_VER_STRING, &out.error, on_png_error, on_png_warning);
  if (s.png) s.info = png_create_info_struct(s.png);
  if (!s.png || !s.info) fail("[image] encode_png: libpng could not allocate its writer");
  png_set_write_fn(s.png, &out, on_png_write, on_png_flush);

  const size_t rowbytes = size_t{3} * image.width;
  std::vector<png_bytep> rows(image.height);
  for (int y = 0; y < image.height; ++y)
    rows[y] = const_cast<png_bytep>(image.rgb.data() + y * rowbytes);  // libpng only reads
  if (!write_frame(s.png, s.info, image.width, image.height, png_chunks.data(),
                   static_cast<int>(png_chunks.size()), rows.data()))
    fail("[image] encode_png: libpng failed: {}", out.error.message);
  return bytes;
}

}  // namespace zflow::io
