// Image codecs against Pillow: every fixture in tests/fixtures/images (made by
// tools/golden/make_images.py) decodes to the RGB bytes Pillow's
// `Image.open(p).convert("RGB")` gives, our encoders round-trip, our PNG text chunks are
// byte-for-byte what Pillow's PngInfo.add_text writes, and bad files give a zflow::Error
// that names the file.
#include "io/image.h"

#include <nlohmann/json.hpp>

#include <array>
#include <cmath>
#include <cstring>
#include <fstream>
#include <iterator>

#include "core/error.h"
#include "core/memory_usage.h"
#include "test_util.h"

namespace zflow::io {
namespace {

std::vector<uint8_t> read_bytes(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  EXPECT_TRUE(in) << path;
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

std::filesystem::path image_fixture(const std::string& name) {
  return test::fixture("images/" + name);
}

nlohmann::json manifest() {
  std::ifstream in(image_fixture("manifest.json"));
  auto json = nlohmann::json::parse(in);
  EXPECT_EQ(json["_meta"]["zflow_fixture_format"], "1");
  return json;
}

// CRC-32 as in PNG (ISO 3309, reflected 0xEDB88320), written out so the test does not
// trust the library under test.
uint32_t crc32(const uint8_t* data, size_t size, uint32_t crc = 0) {
  crc = ~crc;
  for (size_t i = 0; i < size; ++i) {
    crc ^= data[i];
    for (int k = 0; k < 8; ++k) crc = (crc >> 1) ^ (0xedb88320u & (0u - (crc & 1u)));
  }
  return ~crc;
}

uint32_t be32(const uint8_t* p) {
  return (uint32_t{p[0]} << 24) | (uint32_t{p[1]} << 16) | (uint32_t{p[2]} << 8) | p[3];
}

struct Chunk {
  std::string type;
  std::string data;
};

// Walks a PNG's chunks per the spec (length, type, data, CRC over type + data) and fails
// the test on a bad signature, length or CRC.
std::vector<Chunk> png_chunks(const std::vector<uint8_t>& png) {
  static const uint8_t kSignature[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
  std::vector<Chunk> chunks;
  EXPECT_TRUE(png.size() >= 8 && std::memcmp(png.data(), kSignature, 8) == 0);
  size_t pos = 8;
  while (pos + 12 <= png.size()) {
    const uint32_t length = be32(&png[pos]);
    EXPECT_LE(pos + 12 + length, png.size());
    if (pos + 12 + length > png.size()) break;
    const uint8_t* type = &png[pos + 4];
    EXPECT_EQ(be32(type + 4 + length), crc32(type, 4 + length)) << "CRC of chunk " << chunks.size();
    chunks.push_back({std::string(type, type + 4), std::string(type + 4, type + 4 + length)});
    pos += 12 + length;
  }
  EXPECT_EQ(pos, png.size()) << "bytes after the last chunk";
  EXPECT_TRUE(!chunks.empty() && chunks.back().type == "IEND");
  return chunks;
}

std::vector<Chunk> text_chunks(const std::vector<uint8_t>& png) {
  std::vector<Chunk> out;
  for (auto& c : png_chunks(png))
    if (c.type == "tEXt" || c.type == "iTXt" || c.type == "zTXt") out.push_back(c);
  return out;
}

struct Diff {
  int max = 0;
  double mean = 0;
};

Diff diff(const std::vector<uint8_t>& a, const std::vector<uint8_t>& b) {
  Diff d;
  for (size_t i = 0; i < a.size() && i < b.size(); ++i) {
    const int e = std::abs(int{a[i]} - int{b[i]});
    d.max = std::max(d.max, e);
    d.mean += e;
  }
  if (!a.empty()) d.mean /= static_cast<double>(a.size());
  return d;
}

// A deterministic test image: gradients (no wrap-around) plus a 5x3-pixel checkerboard
// of +30 on every channel, so it has both smooth parts and sharp luma edges.
Image pattern(int width, int height) {
  Image image{width, height, std::vector<uint8_t>(size_t{3} * width * height)};
  for (int y = 0; y < height; ++y) {
    for (int x = 0; x < width; ++x) {
      const int check = ((x / 5 + y / 3) % 2) * 30;
      uint8_t* p = &image.rgb[3 * (size_t{1} * y * width + x)];
      p[0] = static_cast<uint8_t>(x * 200 / width + check);
      p[1] = static_cast<uint8_t>(y * 200 / height + check);
      p[2] = static_cast<uint8_t>((x + y) * 100 / (width + height) + check + 50);
    }
  }
  return image;
}

// Expects decode_image to throw a zflow::Error whose message names `source` and contains
// `what`.
void expect_decode_error(const std::vector<uint8_t>& bytes, const std::string& source,
                         const std::string& what) {
  try {
    decode_image(bytes, source);
    ADD_FAILURE() << source << ": decoded without an error, expected '" << what << "'";
  } catch (const Error& e) {
    const std::string message = e.what();
    EXPECT_NE(message.find("[image] " + source + ":"), std::string::npos) << message;
    EXPECT_NE(message.find(what), std::string::npos) << message;
  }
}

// ---- decoding against Pillow ----

// Tolerance: none, lossy formats included. Pillow 13 bundles libjpeg-turbo 3.2.0 and
// libwebp 1.6.0 (recorded in manifest.json); Debian 12 has 2.1.5 and 1.2.4, and the
// decodes were measured identical. Both libraries decode with fixed integer arithmetic
// (libjpeg-turbo's accurate islow IDCT and triangle upsampling; libwebp's 14-bit
// fixed-point YUV->RGB with fancy upsampling) whose SIMD paths are bit-exact with C, so a
// difference would mean a changed decoder default (fast IDCT, plain upsampling) that
// would make our init images differ from diffusers'. If a library update ever changes
// rounding on purpose, relax JPEG / lossy WebP to max abs diff 2 with that reason.
TEST(ImageDecode, MatchesPillowConvertRgb) {
  const auto json = manifest();
  ASSERT_GE(json["images"].size(), 20u);
  for (const auto& [name, entry] : json["images"].items()) {
    SCOPED_TRACE(name + " (Pillow mode " + entry["pillow_mode"].get<std::string>() + ")");
    const Image image = read_image(image_fixture(name));
    ASSERT_EQ(image.width, entry["width"].get<int>());
    ASSERT_EQ(image.height, entry["height"].get<int>());
    const auto expected = read_bytes(image_fixture(entry["rgb"].get<std::string>()));
    ASSERT_EQ(image.rgb.size(), expected.size());
    const Diff d = diff(image.rgb, expected);
    EXPECT_EQ(d.max, 0) << "mean abs diff " << d.mean;
  }
}

// A PNG's alpha plane equals Pillow's convert("RGBA") alpha (alpha channels 8- and 16-bit,
// grey+alpha, a palette's tRNS, interlaced); a PNG without alpha, JPEG and WebP give none.
TEST(ImageDecode, AlphaMatchesPillow) {
  const auto json = manifest();
  int with_alpha = 0;
  for (const auto& [name, entry] : json["images"].items()) {
    SCOPED_TRACE(name);
    const auto alpha = decode_alpha(read_bytes(image_fixture(name)), name);
    if (!entry.contains("alpha")) {
      EXPECT_FALSE(alpha.has_value());
      continue;
    }
    ++with_alpha;
    ASSERT_TRUE(alpha.has_value());
    EXPECT_EQ(*alpha, read_bytes(image_fixture(entry["alpha"].get<std::string>())));
  }
  EXPECT_GE(with_alpha, 5);
  EXPECT_THROW(decode_alpha(std::vector<uint8_t>{}, "empty"), Error);
  auto truncated = read_bytes(image_fixture("png_rgba.png"));
  truncated.resize(truncated.size() / 2);
  EXPECT_THROW(decode_alpha(truncated, "half"), Error);
}

TEST(ImageDecode, FormatComesFromMagicBytesNotTheName) {
  const auto bytes = read_bytes(image_fixture("jpeg_420.jpg"));
  EXPECT_EQ(detect_image_format(bytes), ImageFormat::JPEG);
  const Image image = decode_image(bytes, "misnamed.png");
  EXPECT_EQ(image.width, 37);
  EXPECT_EQ(detect_image_format(read_bytes(image_fixture("png_rgb.png"))), ImageFormat::PNG);
  EXPECT_EQ(detect_image_format(read_bytes(image_fixture("webp_lossy.webp"))), ImageFormat::WebP);
}

TEST(ImageDecode, AnimatedWebpIsRefused) {
  expect_decode_error(read_bytes(image_fixture("webp_animated.webp")), "anim.webp",
                      "animated WebP");
}

// ---- encoding ----

TEST(ImageEncode, PngRoundTripIsExact) {
  for (auto [w, h] : {std::pair{1, 1}, std::pair{37, 23}, std::pair{64, 3}}) {
    const Image image = pattern(w, h);
    const Image back = decode_image(encode_png(image), "roundtrip.png");
    EXPECT_EQ(back.width, w);
    EXPECT_EQ(back.height, h);
    EXPECT_EQ(back.rgb, image.rgb);
  }
}

TEST(ImageEncode, LosslessWebpRoundTripIsExact) {
  const Image image = pattern(37, 23);
  const Image back = decode_image(encode_webp(image, 90, /*lossless=*/true), "roundtrip.webp");
  EXPECT_EQ(back.rgb, image.rgb);
}

// Lossy codecs cannot be checked exactly; this catches gross mistakes (swapped channels,
// wrong stride or size). Pillow encoding the same 64x48 pattern at quality 95 and decoding
// it gives mean abs error 1.34 (JPEG) and 1.11 (WebP); a broken encoder is off by tens.
TEST(ImageEncode, LossyRoundTripsStayClose) {
  const Image image = pattern(64, 48);
  for (const auto& [name, bytes] :
       {std::pair{"jpeg", encode_jpeg(image, 95)}, std::pair{"webp", encode_webp(image, 95)}}) {
    SCOPED_TRACE(name);
    const Image back = decode_image(bytes, name);
    ASSERT_EQ(back.width, 64);
    ASSERT_EQ(back.height, 48);
    EXPECT_LT(diff(back.rgb, image.rgb).mean, 2.0);
  }
  EXPECT_EQ(detect_image_format(encode_jpeg(image)), ImageFormat::JPEG);
  EXPECT_EQ(detect_image_format(encode_webp(image)), ImageFormat::WebP);
}

TEST(ImageEncode, TextChunksAreThoseOfPillowPngInfo) {
  // The same two texts make_images.py gave Pillow's PngInfo.add_text: Latin-1 text (with
  // an e-acute, which tEXt stores as the single byte 0xE9) and a Chinese prompt (iTXt).
  const PngText text = {{"parameters", "a caf\u00e9 at dusk\nSteps: 8, Seed: 42"},
                        {"prompt", "\u4e00\u53ea\u732b\u5728\u6708\u5149\u4e0b"}};
  const auto ours = text_chunks(encode_png(pattern(5, 4), text));
  const auto pillow = text_chunks(read_bytes(image_fixture("png_text_pillow.png")));
  ASSERT_EQ(ours.size(), 2u);
  ASSERT_EQ(pillow.size(), 2u);
  for (size_t i = 0; i < 2; ++i) {
    EXPECT_EQ(ours[i].type, pillow[i].type);
    EXPECT_EQ(ours[i].data, pillow[i].data);
  }
  // And per the spec, independently of Pillow: keyword NUL text for tEXt; keyword NUL,
  // compression flag 0, method 0, empty language NUL, empty translated keyword NUL, text.
  EXPECT_EQ(ours[0].type, "tEXt");
  EXPECT_EQ(ours[0].data, std::string("parameters\0a caf\xe9 at dusk\nSteps: 8, Seed: 42", 44));
  EXPECT_EQ(ours[1].type, "iTXt");
  EXPECT_EQ(ours[1].data, std::string("prompt\0\0\0\0\0", 11) + text[1].second);
}

// decode_text reads back what Pillow wrote (make_images.py gave PngInfo.add_text these two
// texts): the Latin-1 tEXt as UTF-8, the iTXt as it is; JPEG and WebP carry none here.
TEST(ImageDecode, TextChunksReadBackAsPillowWroteThem) {
  const PngText want = {{"parameters", "a caf\u00e9 at dusk\nSteps: 8, Seed: 42"},
                        {"prompt", "\u4e00\u53ea\u732b\u5728\u6708\u5149\u4e0b"}};
  const auto pillow = read_bytes(image_fixture("png_text_pillow.png"));
  EXPECT_EQ(decode_text(pillow, "png_text_pillow.png"), want);
  EXPECT_EQ(decode_text(encode_png(pattern(5, 4), want), "ours"), want);
  EXPECT_TRUE(decode_text(encode_jpeg(pattern(5, 4)), "jpeg").empty());
  EXPECT_THROW(decode_text(std::vector<uint8_t>(pillow.begin(), pillow.begin() + 20), "cut"),
               Error);
}

TEST(ImageEncode, TextChunksComeBeforeImageData) {
  const auto chunks = png_chunks(encode_png(pattern(3, 3), {{"k", "v"}}));
  ASSERT_GE(chunks.size(), 4u);
  EXPECT_EQ(chunks[0].type, "IHDR");
  EXPECT_EQ(chunks[1].type, "tEXt");
}

TEST(ImageEncode, BadTextAndImagesAreErrors) {
  const Image image = pattern(4, 4);
  const std::string bad_keywords[] = {
      "", " lead", "trail ", "two  spaces", std::string(80, 'k'), "\u732b", "tab\there", "bad\xff"};
  for (const auto& keyword : bad_keywords)
    EXPECT_THROW(encode_png(image, {{keyword, "x"}}), Error) << keyword;
  EXPECT_THROW(encode_png(image, {{"k", std::string("a\0b", 3)}}), Error);
  EXPECT_THROW(encode_png(image, {{"k", "\xc3"}}), Error);  // truncated UTF-8
  EXPECT_NO_THROW(encode_png(image, {{std::string(79, 'k'), ""}}));

  Image bad = image;
  bad.rgb.pop_back();
  EXPECT_THROW(encode_png(bad), Error);
  EXPECT_THROW(encode_jpeg(bad), Error);
  EXPECT_THROW(encode_webp(bad), Error);
  EXPECT_THROW(encode_jpeg(image, 0), Error);
  EXPECT_THROW(encode_png(Image{}), Error);
}

TEST(ImageEncode, WriteImageChoosesByExtension) {
  const auto dir = std::filesystem::temp_directory_path() / "zflow_test_image";
  std::filesystem::create_directories(dir);
  const Image image = pattern(37, 23);
  const std::pair<const char*, ImageFormat> cases[] = {{"a.png", ImageFormat::PNG},
                                                       {"b.JPG", ImageFormat::JPEG},
                                                       {"c.jpeg", ImageFormat::JPEG},
                                                       {"d.webp", ImageFormat::WebP}};
  for (const auto& [name, format] : cases) {
    write_image(dir / name, image, {{"parameters", "p"}});
    EXPECT_EQ(detect_image_format(read_bytes(dir / name)), format) << name;
    EXPECT_EQ(read_image(dir / name).width, 37) << name;
  }
  EXPECT_EQ(read_image(dir / "a.png").rgb, image.rgb);
  EXPECT_EQ(text_chunks(read_bytes(dir / "a.png")).size(), 1u);
  try {
    write_image(dir / "e.bmp", image);
    ADD_FAILURE() << "wrote a .bmp";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("e.bmp"), std::string::npos) << e.what();
  }
  std::filesystem::remove_all(dir);
}

// ---- bad files ----

TEST(ImageBadFiles, EmptyAndUnknown) {
  expect_decode_error({}, "empty.png", "empty");
  expect_decode_error({'G', 'I', 'F', '8', '9', 'a', 0, 0}, "anim.gif", "not a PNG, JPEG or WebP");
  EXPECT_THROW(read_image(image_fixture("no_such_file.png")), Error);
}

TEST(ImageBadFiles, TruncatedFilesAreErrors) {
  for (const char* name : {"png_rgb.png", "png_rgb_interlaced.png", "jpeg_420.jpg",
                           "jpeg_progressive.jpg", "webp_lossy.webp", "webp_lossless.webp"}) {
    const auto bytes = read_bytes(image_fixture(name));
    // Cut inside the header, just after it, and in the middle of the pixel data. (Cuts in
    // the last few bytes may legitimately decode: the PNG IEND chunk, a JPEG's EOI.)
    for (size_t keep : {size_t{10}, size_t{40}, bytes.size() / 2, bytes.size() - 20}) {
      SCOPED_TRACE(std::string(name) + " cut to " + std::to_string(keep));
      std::vector<uint8_t> cut(bytes.begin(), bytes.begin() + keep);
      expect_decode_error(cut, name, "");
    }
  }
}

TEST(ImageBadFiles, GarbageAfterValidMagic) {
  uint32_t state = 12345;  // a fixed LCG: the same garbage every run
  auto garbage = [&](std::vector<uint8_t> magic) {
    for (int i = 0; i < 500; ++i)
      magic.push_back(static_cast<uint8_t>((state = state * 1664525u + 1013904223u) >> 24));
    return magic;
  };
  expect_decode_error(garbage({0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'}), "g.png", "PNG");
  expect_decode_error(garbage({0xff, 0xd8, 0xff}), "g.jpg", "JPEG");
  std::vector<uint8_t> riff = {'R', 'I', 'F', 'F', 0xf4, 1, 0, 0, 'W', 'E', 'B', 'P'};
  expect_decode_error(garbage(riff), "g.webp", "WebP");
}

TEST(ImageBadFiles, WrongCrcIsAnError) {
  const auto bytes = read_bytes(image_fixture("png_rgb.png"));
  // The IHDR CRC sits at bytes 29..32 (8 signature + 4 length + 4 type + 13 data).
  auto bad_ihdr = bytes;
  bad_ihdr[29] ^= 0x01;
  expect_decode_error(bad_ihdr, "crc.png", "CRC");
  // The first IDAT's CRC: the last 4 bytes before the next chunk.
  const auto chunks = png_chunks(bytes);
  size_t pos = 8;
  for (const auto& c : chunks) {
    if (c.type == "IDAT") break;
    pos += 12 + c.data.size();
  }
  auto bad_idat = bytes;
  bad_idat[pos + 8 + be32(&bytes[pos])] ^= 0x80;
  expect_decode_error(bad_idat, "crc_idat.png", "CRC");
}

// A PNG IHDR claiming width x height, with a correct CRC, then nothing else useful.
std::vector<uint8_t> png_with_size(uint32_t width, uint32_t height, size_t padding) {
  std::vector<uint8_t> png = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n',
                              0,    0,   0,   13,  'I',  'H',  'D',  'R'};
  for (uint32_t v : {width, height})
    for (int s = 24; s >= 0; s -= 8) png.push_back(static_cast<uint8_t>(v >> s));
  for (uint8_t b : {8, 2, 0, 0, 0}) png.push_back(b);  // 8-bit RGB, not interlaced
  const uint32_t crc = crc32(&png[12], 17);
  for (int s = 24; s >= 0; s -= 8) png.push_back(static_cast<uint8_t>(crc >> s));
  png.resize(png.size() + padding, 0);
  return png;
}

TEST(ImageBadFiles, DimensionBombsAreRefusedBeforeAllocating) {
  expect_decode_error(png_with_size(100000, 100000, 0), "bomb.png", "larger than the limit");
  expect_decode_error(png_with_size(16385, 1, 0), "wide.png", "larger than the limit");
  expect_decode_error(png_with_size(0, 5, 0), "zero.png", "PNG");
  // Within the limits but far too small a file to hold the pixels: refused up front.
  expect_decode_error(png_with_size(16384, 16384, 100), "small.png", "truncated PNG data");

  // A JPEG whose SOF0 frame header claims 60000 x 60000.
  auto jpeg = read_bytes(image_fixture("jpeg_420.jpg"));
  for (size_t i = 2; i + 9 < jpeg.size(); ++i) {
    if (jpeg[i] == 0xff && jpeg[i + 1] == 0xc0) {  // SOF0: length(2) precision(1) H(2) W(2)
      jpeg[i + 5] = jpeg[i + 7] = 0xea;
      jpeg[i + 6] = jpeg[i + 8] = 0x60;
      break;
    }
  }
  expect_decode_error(jpeg, "bomb.jpg", "larger than the limit");

  // Within the limits (16000 x 16000) but a few kB: refused up front as truncated.
  for (size_t i = 2; i + 9 < jpeg.size(); ++i) {
    if (jpeg[i] == 0xff && jpeg[i + 1] == 0xc0) {
      jpeg[i + 5] = jpeg[i + 7] = 0x3e;  // 0x3e80 = 16000
      jpeg[i + 6] = jpeg[i + 8] = 0x80;
      break;
    }
  }
  expect_decode_error(jpeg, "small.jpg", "needs at least 500000 bytes");
}

// A lossless WebP header claiming 16384 x 16384 (805 MB of RGB, within the limits) followed by a
// few bytes of garbage: no size bound can refuse it (lossless WebP codes a flat image of any size
// in a few bytes), so the decoder must fail without committing the pixels first. Checked by the
// peak resident memory (ctest runs each test in a process of its own).
TEST(ImageBadFiles, CraftedWebPFailsWithoutCommittingItsClaimedPixels) {
  std::vector<uint8_t> webp = {'R', 'I', 'F', 'F', 0,   0, 0, 0, 'W', 'E', 'B',
                               'P', 'V', 'P', '8', 'L', 0, 0, 0, 0,   0x2f};
  const uint32_t size_bits = (16384 - 1) | ((16384u - 1) << 14);  // width-1, height-1; no alpha
  for (int s = 0; s < 32; s += 8) webp.push_back(static_cast<uint8_t>(size_bits >> s));
  for (int i = 0; i < 64; ++i) webp.push_back(static_cast<uint8_t>(0x5a ^ (i * 37)));
  const uint32_t chunk = static_cast<uint32_t>(webp.size() - 20), riff = chunk + 12;
  for (int s = 0; s < 32; s += 8) {
    webp[16 + s / 8] = static_cast<uint8_t>(chunk >> s);
    webp[4 + s / 8] = static_cast<uint8_t>(riff >> s);
  }
  const size_t before = peak_rss_bytes();
  expect_decode_error(webp, "crafted.webp", "invalid or truncated WebP data");
  EXPECT_LT(peak_rss_bytes() - before, size_t{100} << 20) << "the claimed pixels were committed";
}

}  // namespace
}  // namespace zflow::io
