// Outpainting: a picture on a larger canvas, drawn further by inpainting the margins. The canvas
// and its mask are built here, once, for every family that inpaints (Z-Image, FLUX.1, FLUX.2
// klein, and Z-Image's ControlNet inpainting); the pipelines then inpaint them as any other.
//
// As ComfyUI's "Pad Image for Outpainting" node: margins in pixels (left, top, right, bottom),
// a mask that is white over the margins and reaches a little into the picture, so the model
// redraws the seam instead of butting new content against old. Unlike that node the margins
// repeat the picture's edge pixels rather than holding grey: the inpaint pipelines binarise the
// mask, so a feathered edge would only widen it, and the VAE, whose receptive field crosses the
// seam, encodes the kept border closer to what it is when its neighbours continue it.
#pragma once

#include <string_view>

#include "io/image.h"
#include "pipeline/generator.h"

namespace zflow::pipeline {

struct OutpaintMargins {
  int left = 0, top = 0, right = 0, bottom = 0;
  bool operator==(const OutpaintMargins&) const = default;
};

// "N" (every side) or "L,T,R,B", pixels, each 0..kMaxOutpaintMargin and not all zero. `flag`
// names the option in errors ("--outpaint", "outpaint").
inline constexpr int kMaxOutpaintMargin = 4096;
OutpaintMargins parse_outpaint_margins(std::string_view text, std::string_view flag);
std::string format_outpaint_margins(const OutpaintMargins& margins);  // "L,T,R,B"

// How far the mask reaches into the picture on each side that grows: one 16-pixel token, the
// model's unit, capped at a quarter of the picture's side.
inline constexpr int kOutpaintSeam = 16;

struct OutpaintCanvas {
  io::Image image;          // the picture at (left, top), margins repeating its edges
  io::Image mask;           // white: draw; black: keep
  OutpaintMargins margins;  // as used: widened on a growing side to whole 16-pixel tokens
};

// The canvas for `picture` grown by `margins`. An axis that grows is widened to a multiple of
// 16 pixels (the extra goes to the right, else left; the bottom, else top margin), so the models
// draw it at its own size instead of resampling it.
OutpaintCanvas outpaint_canvas(const io::Image& picture, const OutpaintMargins& margins);

// Turns a request with an init image into the outpainting of it: the canvas becomes the init
// image and its mask the mask; the strength defaults to 1 (the margins hold nothing to keep).
// An Error when the request has no init image or already has a mask. Returns the margins used.
OutpaintMargins apply_outpaint(GenerationRequest& request, const OutpaintMargins& margins);

}  // namespace zflow::pipeline
