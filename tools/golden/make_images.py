"""Image-file fixtures: small odd-sized PNG, JPEG and WebP files written by Pillow (or by
the raw PNG writer below, for the PNG kinds Pillow cannot write), each with the RGB pixels
Pillow decodes from it (`Image.open(p).convert("RGB")`, what diffusers and A1111 do) as a
raw .rgb file beside it, and for PNGs with alpha the alpha plane Pillow reads (`convert("RGBA")`) as
a raw .alpha file. tests/io/test_image.cpp decodes each file and compares.

Writes tests/fixtures/images/*.{png,jpg,webp,rgb}, tests/fixtures/images/manifest.json and
a seed corpus fuzz/corpus/image_decode/. Run: /work/venv-golden/bin/python tools/golden/make_images.py
"""

from __future__ import annotations

import shutil
import struct
import zlib

import numpy as np
from PIL import Image, PngImagePlugin, features

from common import FIXTURES, REPO, save_json_fixture

SEED = 0
WIDTH, HEIGHT = 37, 23  # odd, non-square, not a multiple of the 8x8/16x16 JPEG blocks
OUT = FIXTURES / "images"
CORPUS = REPO / "fuzz" / "corpus" / "image_decode"


def test_pattern(rng: np.random.Generator, channels: int, maxval: int = 255) -> np.ndarray:
    """Smooth gradients plus noise: JPEG has edges and flat parts to work on."""
    y, x = np.mgrid[0:HEIGHT, 0:WIDTH]
    planes = [
        (x / (WIDTH - 1)),
        (y / (HEIGHT - 1)),
        (0.5 + 0.5 * np.sin(x / 3.0 + y / 5.0)),
        ((x + y) % 7) / 6.0,
    ]
    out = np.stack(planes[:channels], axis=-1) * 0.85 + rng.random((HEIGHT, WIDTH, channels)) * 0.15
    out = np.round(out * maxval).clip(0, maxval)
    return out.astype(np.uint16 if maxval > 255 else np.uint8)


def raw_png(path, pixels: np.ndarray, color_type: int, bit_depth: int, interlace: bool = False) -> None:
    """A minimal PNG writer (filter 0, optional Adam7) for 16-bit colour and interlacing."""
    if pixels.ndim == 2:
        pixels = pixels[..., None]
    h, w, _ = pixels.shape
    sample = ">u2" if bit_depth == 16 else "u1"

    def scanlines(img: np.ndarray) -> bytes:
        if img.shape[0] == 0 or img.shape[1] == 0:
            return b""  # empty Adam7 passes have no scanlines at all
        return b"".join(b"\x00" + row.astype(sample).tobytes() for row in img)

    if interlace:
        passes = [(0, 0, 8, 8), (4, 0, 8, 8), (0, 4, 4, 8), (2, 0, 4, 4), (0, 2, 2, 4), (1, 0, 2, 2), (0, 1, 1, 2)]
        raw = b"".join(scanlines(pixels[y0::dy, x0::dx]) for x0, y0, dx, dy in passes)
    else:
        raw = scanlines(pixels)

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", w, h, bit_depth, color_type, 0, 0, 1 if interlace else 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(raw, 9)) + chunk(b"IEND", b""))


def main() -> None:
    rng = np.random.default_rng(SEED)
    OUT.mkdir(parents=True, exist_ok=True)
    rgb = test_pattern(rng, 3)
    rgba = test_pattern(rng, 4)
    rgba[0, :4, 3] = 0  # fully transparent pixels keep their colour under convert("RGB")
    grey = test_pattern(rng, 1)[..., 0]
    files: dict[str, dict] = {}

    def pillow(name: str, image: Image.Image, **save_args) -> None:
        image.save(OUT / name, **save_args)
        files[name] = {}

    # PNG, written by Pillow.
    pillow("png_grey.png", Image.fromarray(grey))
    pillow("png_grey1.png", Image.fromarray(grey > 128).convert("1"))
    la = Image.merge("LA", [Image.fromarray(grey), Image.fromarray(rgba[..., 3])])
    pillow("png_greyalpha.png", la)
    pillow("png_rgb.png", Image.fromarray(rgb))
    pillow("png_rgba.png", Image.fromarray(rgba))
    pillow("png_palette.png", Image.fromarray(rgb).quantize(colors=200, dither=Image.Dither.NONE))
    palette16 = Image.fromarray(rgb).quantize(colors=12, dither=Image.Dither.NONE)
    pillow("png_palette4_trns.png", palette16, bits=4, transparency=3)
    # 16-bit grey: Pillow's I;16 -> RGB clamps at 255, so keep values around that edge.
    grey16 = (test_pattern(rng, 1, maxval=65535)[..., 0] // 100).astype(np.uint16)
    pillow("png_grey16.png", Image.fromarray(grey16))
    # PNG kinds Pillow cannot write: 16-bit colour, 16-bit grey+alpha, Adam7 interlacing.
    for name, pixels, color_type, depth, interlace in [
        ("png_rgb16.png", test_pattern(rng, 3, 65535), 2, 16, False),
        ("png_rgba16.png", test_pattern(rng, 4, 65535), 6, 16, False),
        ("png_greyalpha16.png", test_pattern(rng, 2, 65535), 4, 16, False),
        ("png_rgb_interlaced.png", rgb, 2, 8, True),
        ("png_rgba16_interlaced.png", test_pattern(rng, 4, 65535), 6, 16, True),
    ]:
        raw_png(OUT / name, pixels, color_type, depth, interlace)
        files[name] = {}

    # JPEG: Pillow's encoder; subsampling 2 = 4:2:0, 1 = 4:2:2, 0 = 4:4:4.
    pillow("jpeg_420.jpg", Image.fromarray(rgb), quality=90, subsampling=2)
    pillow("jpeg_422.jpg", Image.fromarray(rgb), quality=90, subsampling=1)
    pillow("jpeg_444.jpg", Image.fromarray(rgb), quality=90, subsampling=0)
    pillow("jpeg_progressive.jpg", Image.fromarray(rgb), quality=85, subsampling=2, progressive=True)
    pillow("jpeg_grey.jpg", Image.fromarray(grey), quality=90)
    pillow("jpeg_cmyk.jpg", Image.frombytes("CMYK", (WIDTH, HEIGHT), rgba.tobytes()), quality=95)

    # WebP.
    pillow("webp_lossy.webp", Image.fromarray(rgb), quality=80)
    pillow("webp_lossless.webp", Image.fromarray(rgb), lossless=True)
    pillow("webp_lossy_alpha.webp", Image.fromarray(rgba), quality=80)
    pillow("webp_lossless_alpha.webp", Image.fromarray(rgba), lossless=True, exact=True)
    frames = [Image.fromarray(rgb), Image.fromarray(255 - rgb)]
    frames[0].save(OUT / "webp_animated.webp", save_all=True, append_images=frames[1:], duration=100, lossless=True)

    for name, entry in files.items():
        with Image.open(OUT / name) as im:
            entry.update(pillow_mode=im.mode, format=im.format, width=im.width, height=im.height)
            expected = im.convert("RGB")
            # A PNG's alpha as Pillow gives it (an alpha channel, or a palette's tRNS): what an
            # OpenAI-style edit mask is read from.
            has_alpha = im.mode in ("RGBA", "LA") or (im.mode == "P" and "transparency" in im.info)
            alpha = im.convert("RGBA").getchannel("A") if name.endswith(".png") and has_alpha else None
        rgb_name = name.rsplit(".", 1)[0] + ".rgb"
        (OUT / rgb_name).write_bytes(expected.tobytes())
        entry["rgb"] = rgb_name
        if alpha is not None:
            alpha_name = name.rsplit(".", 1)[0] + ".alpha"
            (OUT / alpha_name).write_bytes(alpha.tobytes())
            entry["alpha"] = alpha_name

    # Text chunks as A1111 writes them (PngInfo.add_text): tEXt when Latin-1 fits, else iTXt.
    info = PngImagePlugin.PngInfo()
    info.add_text("parameters", "a caf\u00e9 at dusk\nSteps: 8, Seed: 42")
    info.add_text("prompt", "\u4e00\u53ea\u732b\u5728\u6708\u5149\u4e0b")
    Image.fromarray(rgb).save(OUT / "png_text_pillow.png", pnginfo=info)

    save_json_fixture(
        "images/manifest.json",
        {
            "seed": SEED,
            "images": files,
            "animated": "webp_animated.webp",
            "text_png": "png_text_pillow.png",
            "pillow_libraries": {k: features.version(k) for k in ("libjpeg_turbo", "webp", "zlib")},
        },
        __file__,
    )

    CORPUS.mkdir(parents=True, exist_ok=True)
    for name in ("png_palette4_trns.png", "png_rgb_interlaced.png", "png_grey16.png", "jpeg_progressive.jpg",
                 "jpeg_grey.jpg", "webp_lossy_alpha.webp", "webp_lossless.webp"):
        shutil.copy(OUT / name, CORPUS / name)


if __name__ == "__main__":
    main()
