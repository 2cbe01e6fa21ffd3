"""The web page at `/`, driven in headless Chromium (Debian's) by Playwright: the model list
loads, a generation shows live progress and lands in the gallery with its parameters and a
download link, a size the server refuses shows its error naming the field, a LoRA from the
server's --lora-dir, picked with its strength, changes the image and is recorded with it, a
ControlNet from --controlnet-dir with an uploaded control image sets the size and is recorded, an
uploaded init image (img2img, then inpaint with a mask) sets the size and is recorded with its
strength, and outpainting margins grow it.

Usage: web_page_test.py ZFLOW_BINARY   (run with the Python that has playwright installed)
"""
import json
import os
import shutil
import struct
import sys
import tempfile
import zlib

from playwright.sync_api import expect, sync_playwright

from serve_fixture import ROOT, zflow_server

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
# A tiny Z-Image ControlNet (Union 1.0 layout) made for the served tiny model.
STYLES = os.path.join(ROOT, "tests", "fixtures", "prompt_styles", "styles.csv")
CONTROLNET = os.path.join(ROOT, "tests", "fixtures", "zimage_controlnet_pipeline",
                          "zimage_controlnet_pipeline_tiny_v1.safetensors")


def write_lora(path):
    """A PEFT LoRA (rank 2, float32) on the tiny model's attention projections (dim 32), in the
    safetensors layout written by hand: a little-endian u64 header size, the JSON header, data."""
    tensors, data = {}, b""
    for i, module in enumerate(["to_q", "to_k", "to_v", "to_out.0"]):
        for part, shape in (("lora_A", [2, 32]), ("lora_B", [32, 2])):
            values = [((k * 7 + i * 13) % 17 - 8) / 8.0 for k in range(64)]
            name = f"transformer.layers.0.attention.{module}.{part}.weight"
            tensors[name] = {"dtype": "F32", "shape": shape,
                             "data_offsets": [len(data), len(data) + 256]}
            data += struct.pack("<64f", *values)
    header = json.dumps(tensors).encode()
    header += b" " * (-len(header) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(header)) + header + data)


def png(width, height, pixel):
    """An 8-bit RGB PNG written by hand (signature, IHDR, one zlib IDAT, IEND): pixel(x, y) -> (r, g, b)."""
    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    rows = b"".join(b"\0" + bytes(c for x in range(width) for c in pixel(x, y)) for y in range(height))
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(rows)) +
            chunk(b"IEND", b""))


def upload(page, selector, width, height, pixel):
    """Picks a width x height PNG of pixel(x, y) in the file input `selector`."""
    page.set_input_files(selector, files=[{
        "name": selector.lstrip("#") + ".png", "mimeType": "image/png",
        "buffer": png(width, height, pixel)}])


def newest_result(page, count):
    """Waits for `count` results; the newest one's image size and caption."""
    expect(page.locator("figure.result")).to_have_count(count, timeout=30000)
    newest = page.locator("figure.result").first
    size = newest.locator("img").evaluate("img => [img.naturalWidth, img.naturalHeight]")
    return size, newest.locator("figcaption").inner_text()


def main():
    loras = tempfile.mkdtemp(prefix="zflow_loras_")
    write_lora(os.path.join(loras, "sharp.safetensors"))
    controlnets = tempfile.mkdtemp(prefix="zflow_controlnets_")
    os.symlink(CONTROLNET, os.path.join(controlnets, "edges.safetensors"))
    with zflow_server(sys.argv[1], ["--lora-dir", loras, "--controlnet-dir", controlnets,
                                    "--styles", STYLES]) as base, \
            sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        page = browser.new_page()
        errors = []
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.goto(base + "/")

        expect(page.locator("#model option")).to_have_count(1)
        expect(page.locator("#model")).to_have_value("tiny")

        page.fill("#prompt", "a lighthouse at dusk")
        page.fill("#width", "48")
        page.fill("#height", "32")
        page.fill("#steps", "3")
        page.fill("#seed", "77")
        page.fill("#n", "2")
        page.select_option("#sampler", "dpm++2m")
        page.select_option("#scheduler", "karras")
        page.click("#generate")
        expect(page.locator("figure.result")).to_have_count(2, timeout=30000)
        expect(page.locator("#status")).to_contain_text("done in")
        expect(page.locator("#progress")).to_have_attribute("value", "1")

        first = page.locator("figure.result").first
        size = first.locator("img").evaluate("img => [img.naturalWidth, img.naturalHeight]")
        assert size == [48, 32], size
        caption = first.locator("figcaption").inner_text()
        assert "a lighthouse at dusk" in caption and "Steps: 3" in caption and "Seed: 77" in caption, caption
        assert "Sampler: DPM++ 2M, Schedule type: Karras" in caption, caption
        link = first.locator("a")
        assert link.get_attribute("download").endswith(".png"), link.get_attribute("download")
        assert link.get_attribute("href").startswith("data:image/png;base64,")

        # The server's refusal reaches the page, naming the field (4096 passes the form's own
        # checks, multiple of 16, but is over the server's --max-size).
        page.fill("#width", "4096")
        page.click("#generate")
        expect(page.locator("#error")).to_contain_text("width")
        expect(page.locator("figure.result")).to_have_count(2)

        # A LoRA from --lora-dir, picked at strength 2: another image for the same seed, and the
        # LoRA is in its parameters.
        expect(page.locator("#lora_box")).to_be_visible()
        expect(page.locator("#loras .lora")).to_have_count(1)
        page.fill("#width", "48")
        page.fill("#n", "1")
        page.click("#lora_box summary")
        page.locator("#loras .lora input[type=checkbox]").check()
        page.locator("#loras .lora input[type=number]").fill("2")
        page.click("#generate")
        expect(page.locator("figure.result")).to_have_count(3, timeout=30000)
        with_lora = page.locator("figure.result").first
        caption = with_lora.locator("figcaption").inner_text()
        assert "sharp" in caption, caption
        # The same seed's first image without the LoRA is the oldest one: compare the pixels (the
        # files differ in their parameters anyway).
        pixels = page.evaluate("""() => [...document.querySelectorAll("figure.result img")].map((img) => {
            const c = document.createElement("canvas");
            c.width = img.naturalWidth; c.height = img.naturalHeight;
            const g = c.getContext("2d");
            g.drawImage(img, 0, 0);
            return Array.from(g.getImageData(0, 0, c.width, c.height).data);
        })""")
        assert len(pixels) == 3 and len(pixels[0]) == len(pixels[2]) == 48 * 32 * 4
        assert pixels[0] != pixels[2], "the LoRA changed nothing"

        # A ControlNet from --controlnet-dir with a control image (48 x 32) picked on the page: the
        # size fields clear, the image has the control image's size and records the ControlNet.
        page.locator("#loras .lora input[type=checkbox]").uncheck()
        expect(page.locator("#controlnet_box")).to_be_visible()
        expect(page.locator("#controlnet option")).to_have_text(["edges", "none (FLUX.1 Canny / Depth)"])
        page.click("#controlnet_box summary")
        upload(page, "#control_image", 48, 32, lambda x, y: (255, 255, 255) if x % 8 == 0 else (0, 0, 0))
        expect(page.locator("#width")).to_have_value("")
        page.fill("#control_scale", "0.9")
        page.click("#generate")
        size, caption = newest_result(page, 4)
        assert size == [48, 32], size
        assert 'ControlNet 0: "Model: edges, Weight: 0.9"' in caption, caption
        page.set_input_files("#control_image", files=[])

        # An init image (64 x 48) picked on the page: the size fields clear, the server generates
        # at the image's size, and the strength is recorded; then a mask makes it an inpaint.
        page.click("#image_box summary")
        upload(page, "#init_image", 64, 48, lambda x, y: (4 * x, 5 * y, 128))
        expect(page.locator("#width")).to_have_value("")
        page.fill("#strength", "0.5")
        page.click("#generate")
        size, caption = newest_result(page, 5)
        assert size == [64, 48], size
        assert "Denoising strength: 0.5" in caption and "Size: 64x48" in caption, caption
        upload(page, "#mask", 64, 48, lambda x, y: (255, 255, 255) if x >= 32 else (0, 0, 0))
        page.click("#generate")
        _, caption = newest_result(page, 6)
        assert "Denoising strength: 0.5" in caption, caption
        # Only the masked area, padded: inpainted at the size asked for, pasted back at the picture's.
        page.fill("#mask_crop_padding", "8")
        page.click("#generate")
        size, caption = newest_result(page, 7)
        assert size == [64, 48], size
        assert "Inpaint area: Only masked, Masked area padding: 8" in caption, caption
        page.fill("#mask_crop_padding", "")
        # The masked area painted over with its surroundings first (A1111's masked content).
        page.select_option("#masked_content", "fill")
        page.click("#generate")
        _, caption = newest_result(page, 8)
        assert "Masked content: fill" in caption, caption
        page.select_option("#masked_content", "original")
        # A1111's overlay keeps the rest of the picture exactly, on unless unchecked.
        expect(page.locator("#overlay_original")).to_be_checked()
        # The mask inverted: what it leaves black is repainted.
        page.check("#invert_mask")
        page.click("#generate")
        _, caption = newest_result(page, 9)
        assert "Mask mode: Inpaint not masked" in caption, caption
        page.uncheck("#invert_mask")
        # Outpainting margins instead of the mask: the canvas, 16 pixels wider on the left.
        page.set_input_files("#mask", files=[])
        page.fill("#outpaint", "16,0,0,0")
        page.click("#generate")
        size, _ = newest_result(page, 10)
        assert size == [80, 48], size
        # A variation seed: the seed's noise bent towards seed 5's, recorded with A1111's keys.
        page.fill("#variation_strength", "0.1")
        page.fill("#variation_seed", "5")
        page.click("#generate")
        _, caption = newest_result(page, 11)
        assert "Variation seed: 5, Variation seed strength: 0.1" in caption, caption

        # The hires fix with one of A1111's latent upscalers, listed after the pixel ones.
        page.set_input_files("#init_image", files=[])
        for field in ("#outpaint", "#strength", "#variation_strength", "#variation_seed"):
            page.fill(field, "")
        page.fill("#width", "32")
        page.fill("#height", "32")
        page.fill("#hires_scale", "2")
        page.select_option("#hires_upscaler", "Latent (bicubic)")
        page.click("#generate")
        size, caption = newest_result(page, 12)
        assert size == [64, 64], size
        assert "Hires upscaler: Latent (bicubic)" in caption, caption
        # The hires model list holds the server's models; the job's own model repaints as itself.
        expect(page.locator("#hires_model option")).to_have_text(["the same model", "tiny"])
        page.select_option("#hires_model", "tiny")
        page.click("#generate")
        size, caption = newest_result(page, 13)
        assert size == [64, 64], size
        assert "Hires checkpoint" not in caption, caption

        # A prompt template made into every prompt it stands for, an image each.
        page.fill("#hires_scale", "")
        page.fill("#prompt", "a {red|blue} lighthouse")
        page.select_option("#dynamic_prompts", "combinatorial")
        page.click("#generate")
        newest_result(page, 15)
        captions = page.locator("figure.result figcaption").all_inner_texts()[:2]
        assert sorted(c.split("\n")[0] for c in captions) == ["a blue lighthouse", "a red lighthouse"], captions

        # Prompt styles from the server's styles.csv, added to the prompt as A1111 adds them.
        page.select_option("#dynamic_prompts", "")
        page.fill("#prompt", "a lighthouse")
        page.select_option("#styles", ["Cinematic", "Product"])
        page.click("#generate")
        _, caption = newest_result(page, 16)
        assert caption.startswith(
            "cinematic still of a lighthouse, shallow depth of field, film grain, studio lighting\n"), caption

        # The model is now loaded, and the list says so.
        page.reload()
        expect(page.locator("#model option")).to_have_text("tiny (loaded)")

        assert not errors, errors
        browser.close()
    shutil.rmtree(loras)
    shutil.rmtree(controlnets)
    print("web page test: model list, generation with progress, gallery, errors, LoRAs, ControlNets, "
          "init images, masked-area inpainting, masked content, inverted masks, outpainting, variation seeds, latent hires fix, hires model, prompt templates, styles: ok")


if __name__ == "__main__":
    main()
