#include "pipeline/mask_crop.h"

#include <fmt/format.h>

#include <algorithm>
#include <vector>

#include "core/error.h"
#include "io/image_blur.h"
#include "io/image_paste.h"
#include "io/image_resize.h"
#include "pipeline/image_rgba.h"
#include "pipeline/image_tensor.h"
#include "pipeline/masked_content.h"
#include "pipeline/start_latents.h"

namespace zflow::pipeline {

namespace {

constexpr auto kLanczos = io::ResampleFilter::Lanczos;  // VaeImageProcessor's resample
constexpr int kMultiple = 16;  // every zflow model's pixels per latent token

uint8_t grey_at(const io::Image& image, size_t i) {
  return pillow_luma(image.rgb[3 * i], image.rgb[3 * i + 1], image.rgb[3 * i + 2]);
}

// The mask's grey with `f` applied to each value, as grey RGB.
template <typename F>
io::Image map_grey(const io::Image& mask, F f) {
  io::Image out = mask;
  for (size_t i = 0; i < out.rgb.size() / 3; ++i)
    std::fill_n(&out.rgb[3 * i], 3, static_cast<uint8_t>(f(grey_at(mask, i))));
  return out;
}

// ImageOps.invert of the mask's grey: 255 - grey.
io::Image inverted(const io::Image& mask) {
  return map_grey(mask, [](int grey) { return 255 - grey; });
}

// `original` where the mask is not white, over `base`: pasted into transparent RGBa through the
// inverted mask, back to RGBA, then alpha-composited (diffusers' and A1111's apply_overlay).
io::Image composite_outside_mask(const io::Image& mask, const io::Image& original,
                                 const io::Image& base) {
  RgbaImage composite = opaque(base);
  RgbaImage kept = paste_outside_mask(original, mask);
  unpremultiply(kept);
  alpha_composite(composite, kept);
  return drop_alpha(composite);
}

io::Image black(int width, int height) {
  return {width, height, std::vector<uint8_t>(static_cast<size_t>(width) * height * 3, 0)};
}

// _resize_and_crop: scaled to cover width x height, centred, the excess cut.
io::Image resize_and_crop(const io::Image& image, int width, int height) {
  const double ratio = static_cast<double>(width) / height;
  const double src_ratio = static_cast<double>(image.width) / image.height;
  const int src_w = ratio > src_ratio ? width : image.width * height / image.height;
  const int src_h = ratio <= src_ratio ? height : image.height * width / image.width;
  io::Image out = black(width, height);
  io::paste_image(out, io::resize_image(image, src_w, src_h, kLanczos), width / 2 - src_w / 2,
                  height / 2 - src_h / 2);
  return out;
}

}  // namespace

CropBox mask_crop_box(const io::Image& mask, int width, int height, int padding) {
  ZF_CHECK(width > 0 && height > 0 && padding >= 0,
           "[mask crop] output {}x{} and padding {} must be positive (padding may be 0)", width,
           height, padding);
  const int w = mask.width, h = mask.height;
  int left = w, right = -1, top = h, bottom = -1;
  for (int y = 0; y < h; ++y)
    for (int x = 0; x < w; ++x)
      if (grey_at(mask, static_cast<size_t>(y) * w + x) != 0) {
        left = std::min(left, x);
        right = std::max(right, x);
        top = std::min(top, y);
        bottom = std::max(bottom, y);
      }
  ZF_CHECK(right >= 0, "[mask crop] the mask is black everywhere: there is nothing to inpaint");
  int x1 = std::max(left - padding, 0), y1 = std::max(top - padding, 0);
  int x2 = std::min(right + 1 + padding, w), y2 = std::min(bottom + 1 + padding, h);
  // Widen the shorter side to the output's ratio, centred, pushed back inside the picture.
  const double ratio_crop = static_cast<double>(x2 - x1) / (y2 - y1);
  const double ratio = static_cast<double>(width) / height;
  auto widen = [](int& lo, int& hi, int diff, int limit) {
    lo -= diff / 2;
    hi += diff - diff / 2;
    if (hi >= limit) {
      const int over = hi - limit;
      hi -= over;
      lo -= over;
    }
    if (lo < 0) {
      hi -= lo;
      lo = 0;
    }
    if (hi >= limit) hi = limit;
  };
  if (ratio_crop > ratio)
    widen(y1, y2, static_cast<int>((x2 - x1) / ratio - (y2 - y1)), h);
  else
    widen(x1, x2, static_cast<int>((y2 - y1) * ratio - (x2 - x1)), w);
  return {x1, y1, x2, y2};
}

io::Image crop_and_fill(const io::Image& image, const CropBox& box, int width, int height) {
  const io::Image part = io::crop_image(image, box.x1, box.y1, box.width(), box.height());
  const double ratio = static_cast<double>(width) / height;
  const double src_ratio = static_cast<double>(part.width) / part.height;
  const int src_w = ratio < src_ratio ? width : part.width * height / part.height;
  const int src_h = ratio >= src_ratio ? height : part.height * width / part.width;
  const io::Image resized = io::resize_image(part, src_w, src_h, kLanczos);
  io::Image out = black(width, height);
  io::paste_image(out, resized, width / 2 - src_w / 2, height / 2 - src_h / 2);
  // The bands left over repeat the resized picture's edge: Pillow resizes a zero-height (or
  // zero-width) box at the edge, which blends the rows (columns) next to it, with Image.resize's
  // default filter, bicubic (diffusers passes none there).
  constexpr auto kBicubic = io::ResampleFilter::Bicubic;
  const double rw = resized.width, rh = resized.height;
  if (ratio < src_ratio) {
    const int fill = height / 2 - src_h / 2;
    if (fill > 0) {
      io::paste_image(out, io::resize_image_box(resized, width, fill, kBicubic, {0, 0, rw, 0}), 0,
                      0);
      io::paste_image(out, io::resize_image_box(resized, width, fill, kBicubic, {0, rh, rw, rh}), 0,
                      fill + src_h);
    }
  } else if (ratio > src_ratio) {
    const int fill = width / 2 - src_w / 2;
    if (fill > 0) {
      io::paste_image(out, io::resize_image_box(resized, fill, height, kBicubic, {0, 0, 0, rh}), 0,
                      0);
      io::paste_image(out, io::resize_image_box(resized, fill, height, kBicubic, {rw, 0, rw, rh}),
                      fill + src_w, 0);
    }
  }
  return out;
}

io::Image resize_to(const io::Image& image, int width, int height, ResizeMode mode) {
  switch (mode) {
    case ResizeMode::Stretch:
      return io::resize_image(image, width, height, kLanczos);
    case ResizeMode::Crop:
      return resize_and_crop(image, width, height);
    case ResizeMode::Fill:
      return crop_and_fill(image, {0, 0, image.width, image.height}, width, height);
  }
  fail("[image] unknown resize mode");
}

io::Image paste_through_mask(const io::Image& mask, const io::Image& original,
                             const io::Image& generated, const CropBox& box) {
  ZF_CHECK(mask.width == original.width && mask.height == original.height,
           "[mask crop] the mask is {}x{} but the picture {}x{}", mask.width, mask.height,
           original.width, original.height);
  // The generated crop on black, at the box.
  io::Image out = black(original.width, original.height);
  io::paste_image(out, resize_and_crop(generated, box.width(), box.height()), box.x1, box.y1);
  return composite_outside_mask(mask, original, out);
}

io::Image rounded_mask(const io::Image& mask) {
  return map_grey(mask, [](int grey) { return grey > 128 ? 255 : 0; });
}

io::Image overlay_original(const io::Image& mask, const io::Image& original,
                           const io::Image& generated) {
  ZF_CHECK(mask.width == original.width && mask.height == original.height &&
               generated.width == original.width && generated.height == original.height,
           "[inpaint] the overlay needs the mask ({}x{}), the picture ({}x{}) and the result "
           "({}x{}) at one size",
           mask.width, mask.height, original.width, original.height, generated.width,
           generated.height);
  const io::Image doubled = map_grey(mask, [](int grey) { return std::min(2 * grey, 255); });
  return composite_outside_mask(doubled, original, generated);
}

namespace {

class MaskPreparation final : public ImageGenerator {
 public:
  explicit MaskPreparation(std::unique_ptr<ImageGenerator> inner) : inner_(std::move(inner)) {}

  const std::string& model_name() const override { return inner_->model_name(); }
  std::string architecture() const override { return inner_->architecture(); }

  GenerationSettings resolve(const GenerationRequest& request) const override {
    // The fill changes pixels only: checking needs the cut-out alone.
    GenerationSettings s = inner_->resolve(cut_out(request).request);
    if (request.mask_crop_padding) {
      s.mode += " (masked area)";
      s.width = request.init_image->width;
      s.height = request.init_image->height;
    }
    return s;
  }

  std::vector<io::Image> generate(const GenerationRequest& request,
                                  const RunControl& control) const override {
    return std::move(generate_together({&request, 1}, control).front());
  }

  bool can_share_forwards(const GenerationRequest& a, const GenerationRequest& b) const override {
    return !prepares(a) && !prepares(b) && inner_->can_share_forwards(a, b);
  }

  std::vector<std::vector<io::Image>> generate_together(std::span<const GenerationRequest> requests,
                                                        const RunControl& control) const override {
    std::vector<Cropped> runs;
    std::vector<GenerationRequest> inner_requests;
    for (const GenerationRequest& r : requests) {
      runs.push_back(cropped(r));
      inner_requests.push_back(runs.back().request);
    }
    std::vector<std::vector<io::Image>> images = inner_->generate_together(inner_requests, control);
    for (size_t i = 0; i < requests.size(); ++i) {
      if (requests[i].mask_crop_padding) {
        for (io::Image& image : images[i])
          image = paste_through_mask(runs[i].mask, *requests[i].init_image, image, runs[i].box);
      } else if (overlays(requests[i]) && !images[i].empty()) {
        // The mask and picture at the results' size (every image of a request has it), as A1111
        // brings them to the output size first.
        const int w = images[i].front().width, h = images[i].front().height;
        const io::Image mask = fit_image(*runs[i].request.mask, w, h);
        const io::Image original = fit_image(runs[i].original, w, h);
        for (io::Image& image : images[i]) image = overlay_original(mask, original, image);
      }
    }
    return images;
  }

  std::optional<LatentSpace> latent_space() const override { return inner_->latent_space(); }
  std::vector<Tensor> generate_latents_together(std::span<const GenerationRequest> requests,
                                                const RunControl& control) const override {
    ZF_CHECK(std::none_of(requests.begin(), requests.end(), prepares),
             "[mask crop] a run with a mask to prepare hands over pictures, not latents");
    return inner_->generate_latents_together(requests, control);
  }

  ImageRecord record(const GenerationRequest& request, const ImageSources& sources,
                     int batch_index) const override {
    ImageRecord r = inner_->record(cut_out(request).request, sources, batch_index);
    if (resizes(request))
      r.request["resize_mode"] = request.resize_mode == ResizeMode::Crop ? "crop" : "fill";
    if (request.invert_mask && request.mask) {
      r.parameters += ", Mask mode: Inpaint not masked";  // A1111's key
      r.request["invert_mask"] = true;
    }
    if (request.round_mask && request.mask) r.request["round_mask"] = true;
    if (overlays(request)) r.request["overlay_original"] = true;
    if (request.mask_blur && request.mask) {
      r.parameters += fmt::format(", Mask blur: {}", *request.mask_blur);  // A1111's key
      r.request["mask_blur"] = *request.mask_blur;
    }
    if (request.mask && request.masked_content != MaskedContent::Original) {
      const std::string_view name = masked_content_name(request.masked_content);
      r.parameters += fmt::format(", Masked content: {}", name);  // A1111's key
      r.request["masked_content"] = name;
    }
    if (request.mask_crop_padding) {
      // A1111's infotext keys for "Only masked".
      r.parameters += fmt::format(", Inpaint area: Only masked, Masked area padding: {}",
                                  *request.mask_crop_padding);
      r.request["mask_crop_padding"] = *request.mask_crop_padding;
    }
    return r;
  }

 private:
  static bool prepares(const GenerationRequest& r) {
    return r.mask_crop_padding || resizes(r) ||
           (r.mask && (r.mask_blur || r.invert_mask || r.round_mask || fills(r))) || overlays(r);
  }

  // The whole picture inpainted, then the original laid back over it (A1111's overlay; with a
  // padding, the paste-back does it).
  static bool overlays(const GenerationRequest& r) {
    return r.overlay_original && r.init_image && r.mask && !r.mask_crop_padding;
  }

  static bool resizes(const GenerationRequest& r) {
    return r.init_image && r.resize_mode != ResizeMode::Stretch && !r.mask_crop_padding;
  }

  // Every masked content but the original paints the masked area over first (A1111's fill).
  static bool fills(const GenerationRequest& r) {
    return r.init_image && r.mask && r.masked_content != MaskedContent::Original;
  }

  struct Cropped {
    GenerationRequest request;
    CropBox box;
    io::Image mask;      // the whole picture's mask, blurred: what the result is pasted through
    io::Image original;  // the picture before the masked content fill, for the overlay
  };

  // The request the model runs: the mask blurred; with a padding, the picture and mask cut
  // around the mask at the output size (the request's, else the picture's rounded down to
  // whole tokens); then the masked area filled as the masked content says, with the mask the
  // model reads (fitted to the picture's size as the pipelines fit it).
  static Cropped cropped(const GenerationRequest& r) {
    Cropped c = cut_out(r);
    if (overlays(r)) c.original = *c.request.init_image;
    if (fills(r))
      c.request.init_image = fill_masked_area(
          *c.request.init_image,
          fit_image(*c.request.mask, c.request.init_image->width, c.request.init_image->height));
    return c;
  }

  // The request brought to the output size, its mask inverted, blurred and cut around: all but
  // the fill.
  static Cropped cut_out(const GenerationRequest& r) {
    Cropped c{r, {}, {}, {}};
    c.request.resize_mode = ResizeMode::Stretch;
    if (resizes(r)) {
      const int width = r.width.value_or(r.init_image->width / kMultiple * kMultiple);
      const int height = r.height.value_or(r.init_image->height / kMultiple * kMultiple);
      ZF_CHECK(width > 0 && height > 0,
               "[image] the picture {}x{} is smaller than one {}-pixel token; give a size",
               r.init_image->width, r.init_image->height, kMultiple);
      c.request.init_image = resize_to(*r.init_image, width, height, r.resize_mode);
      if (r.mask) c.request.mask = resize_to(*r.mask, width, height, r.resize_mode);
      c.request.width = width;
      c.request.height = height;
    }
    if (r.round_mask && r.mask) c.request.mask = rounded_mask(*c.request.mask);
    if (r.invert_mask && r.mask) c.request.mask = inverted(*c.request.mask);
    if (r.mask_blur && r.mask) c.request.mask = io::gaussian_blur(*c.request.mask, *r.mask_blur);
    c.request.invert_mask = false;
    c.request.round_mask = false;
    c.request.overlay_original = false;
    c.request.mask_blur.reset();
    if (!r.mask_crop_padding) return c;
    ZF_CHECK(r.init_image && r.mask,
             "[mask crop] inpainting only the masked area needs a picture and a mask");
    c.mask = *c.request.mask;
    const int width = r.width.value_or(r.init_image->width / kMultiple * kMultiple);
    const int height = r.height.value_or(r.init_image->height / kMultiple * kMultiple);
    ZF_CHECK(width > 0 && height > 0,
             "[mask crop] the picture {}x{} is smaller than one {}-pixel token; give a size",
             r.init_image->width, r.init_image->height, kMultiple);
    ZF_CHECK(r.mask->width == r.init_image->width && r.mask->height == r.init_image->height,
             "[mask crop] the mask is {}x{} but the picture {}x{}: they must match", r.mask->width,
             r.mask->height, r.init_image->width, r.init_image->height);
    c.box = mask_crop_box(c.mask, width, height, *r.mask_crop_padding);
    c.request.init_image = crop_and_fill(*r.init_image, c.box, width, height);
    c.request.mask = crop_and_fill(c.mask, c.box, width, height);
    c.request.width = width;
    c.request.height = height;
    c.request.mask_crop_padding.reset();
    return c;
  }

  std::unique_ptr<ImageGenerator> inner_;
};

}  // namespace

std::unique_ptr<ImageGenerator> with_mask_preparation(std::unique_ptr<ImageGenerator> inner) {
  return std::make_unique<MaskPreparation>(std::move(inner));
}

}  // namespace zflow::pipeline
