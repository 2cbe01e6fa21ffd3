"""Golden fixtures for the GGUF reader and GGML block (de)quantisation, from gguf-py.

  /work/venv-golden/bin/python tools/golden/make_gguf.py

Outputs under tests/fixtures/gguf/:
  gguf_blocks_every_type_values.safetensors
      For every block type zflow reads (Q4_0 Q4_1 Q5_0 Q5_1 Q8_0 Q2_K Q3_K Q4_K Q5_K Q6_K):
        {T}.random_blocks  U8   random block bytes with sane fp16 scales (finite, both signs)
        {T}.random_values  F32  gguf.quants.dequantize of them
      and for the types gguf-py can quantise (Q4_0 Q4_1 Q5_0 Q5_1 Q8_0):
        {T}.source     F32  rows of random values at scales from 1e-3 to 1e2, plus an all-zero
                            block, a constant block and a block with one non-zero value
        {T}.quantized  U8   gguf.quants.quantize(source)
        {T}.dequantized F32 gguf.quants.dequantize(quantized)
  gguf_writer_every_kv_type.gguf
      Written by gguf.GGUFWriter: one key of every metadata type (all integer widths, both
      floats, bool, string, arrays of ints / floats / strings / bools, an array of arrays),
      a 64-byte custom alignment, and tensors of F32, F16, BF16, Q8_0, Q4_K, I32 with 1-D to
      4-D shapes (rows of 256 so every block type fits).
  gguf_writer_every_kv_type.json
      The oracle: gguf.GGUFReader's view of that file: each key's type, element type and
      value; each tensor's GGML type name, torch-order shape, data offset.
  gguf_writer_every_kv_type_values.safetensors
      Each tensor of that file as float32 (gguf.quants.dequantize), torch-order shape.
  qwen3_tiny_llamacpp_weights.gguf
      The tiny Qwen3 encoder weights of qwen3/qwen3_tiny_comfy_weights.safetensors (the
      make_qwen3.py model), renamed to llama.cpp's names by gguf.TensorNameMap for
      MODEL_ARCH.QWEN3 (token_embd, blk.N.attn_q, ...), general.architecture "qwen3" and
      the qwen3.* hyper-parameters llama.cpp's converter writes; projections in F16 and BF16,
      norms and the embedding in F32, plus a small byte-level BPE tokenizer in the
      tokenizer.ggml.* keys (the first 300 tokens and 50 merges of a Qwen-style vocab).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import gguf
import numpy as np
import torch
from gguf import GGMLQuantizationType as Q
from gguf import GGUFValueType as V
from safetensors import safe_open

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import FIXTURES, fixture_metadata, save_fixture, save_json_fixture  # noqa: E402

SEED = 20260101
AREA = "gguf"
SCRIPT = __file__

QUANTISABLE = [Q.Q4_0, Q.Q4_1, Q.Q5_0, Q.Q5_1, Q.Q8_0]
READ_ONLY = [Q.Q2_K, Q.Q3_K, Q.Q4_K, Q.Q5_K, Q.Q6_K]
# Byte offsets of each block's fp16 scale fields (d, m / dmin): random bytes there could be
# infinities or NaN, which no real file holds.
HALF_FIELDS = {
    Q.Q4_0: [0], Q.Q4_1: [0, 2], Q.Q5_0: [0], Q.Q5_1: [0, 2], Q.Q8_0: [0],
    Q.Q2_K: [80, 82], Q.Q3_K: [108], Q.Q4_K: [0, 2], Q.Q5_K: [0, 2], Q.Q6_K: [208],
}


def random_blocks(rng: np.random.Generator, qtype: Q, n_blocks: int) -> np.ndarray:
    _, type_size = gguf.GGML_QUANT_SIZES[qtype]
    blocks = rng.integers(0, 256, size=(n_blocks, type_size), dtype=np.uint8)
    for offset in HALF_FIELDS[qtype]:
        scale = (rng.uniform(1e-3, 1.0, n_blocks) * rng.choice([-1.0, 1.0], n_blocks)).astype(np.float16)
        blocks[:, offset : offset + 2] = scale.view(np.uint8).reshape(n_blocks, 2)
    return blocks


def block_source(rng: np.random.Generator) -> np.ndarray:
    rows = []
    for _ in range(16):
        rows.append(rng.standard_normal(32) * 10.0 ** rng.uniform(-3, 2))
    rows.append(np.zeros(32))
    rows.append(np.full(32, 0.75))
    one = np.zeros(32)
    one[5] = -2.5
    rows.append(one)
    rows.append(rng.uniform(0.1, 4.0, 32))  # all positive: the Q4_1 / Q5_1 min is not 0
    return np.concatenate(rows).astype(np.float32).reshape(4, -1)  # 4 rows of 5 blocks


def make_blocks() -> None:
    rng = np.random.default_rng(SEED)
    tensors = {}
    for qtype in QUANTISABLE + READ_ONLY:
        name = qtype.name
        block_size, _ = gguf.GGML_QUANT_SIZES[qtype]
        blocks = random_blocks(rng, qtype, 12 if block_size == 256 else 40)
        tensors[f"{name}.random_blocks"] = torch.from_numpy(blocks.reshape(-1).copy())
        values = gguf.quants.dequantize(blocks.reshape(-1), qtype)
        tensors[f"{name}.random_values"] = torch.from_numpy(values.reshape(-1).copy())
        if qtype in QUANTISABLE:
            source = block_source(rng)
            quantized = gguf.quants.quantize(source, qtype)
            tensors[f"{name}.source"] = torch.from_numpy(source.reshape(-1).copy())
            tensors[f"{name}.quantized"] = torch.from_numpy(quantized.reshape(-1).copy())
            tensors[f"{name}.dequantized"] = torch.from_numpy(
                gguf.quants.dequantize(quantized, qtype).reshape(-1).copy())
    save_fixture(f"{AREA}/gguf_blocks_every_type_values.safetensors", tensors, SCRIPT, SEED)


def reader_value(field: gguf.ReaderField):
    """A field's value from gguf.GGUFReader, arrays of arrays included."""
    return field.contents()


def make_writer_file() -> None:
    rng = np.random.default_rng(SEED + 1)
    path = FIXTURES / AREA / "gguf_writer_every_kv_type.gguf"
    writer = gguf.GGUFWriter(path, arch="zflowtest")
    writer.add_custom_alignment(64)
    writer.add_uint8("test.u8", 200)
    writer.add_int8("test.i8", -100)
    writer.add_uint16("test.u16", 60000)
    writer.add_int16("test.i16", -30000)
    writer.add_uint32("test.u32", 4000000000)
    writer.add_int32("test.i32", -2000000000)
    writer.add_float32("test.f32", 0.1)
    writer.add_uint64("test.u64", 18000000000000000000)
    writer.add_int64("test.i64", -9000000000000000000)
    writer.add_float64("test.f64", 1e-300)
    writer.add_bool("test.bool_true", True)
    writer.add_bool("test.bool_false", False)
    writer.add_string("test.string", "Grüße, 世界")
    writer.add_array("test.array_i32", [1, -2, 3])
    writer.add_key_value("test.array_u8", [0, 255, 7], V.ARRAY, sub_type=V.UINT8)
    writer.add_array("test.array_f32", [0.5, -1.25])
    writer.add_array("test.array_str", ["a", "", "ünï"])
    writer.add_array("test.array_bool", [True, False, True])
    writer.add_array("test.array_nested", [[1, 2], [3]])

    shapes = {
        "t.f32_1d": ((256,), Q.F32),
        "t.f16_2d": ((3, 256), Q.F16),
        "t.bf16_3d": ((2, 3, 256), Q.BF16),
        "t.q8_0_2d": ((5, 256), Q.Q8_0),
        "t.q4_k_4d": ((2, 1, 2, 256), Q.Q4_K),
        "t.i32_1d": ((7,), Q.I32),
    }
    values = {}
    for name, (shape, qtype) in shapes.items():
        if qtype == Q.I32:
            data = rng.integers(-1000, 1000, size=shape, dtype=np.int32)
            writer.add_tensor(name, data)
            values[name] = torch.from_numpy(data.astype(np.float32))
            continue
        data = rng.standard_normal(shape).astype(np.float32)
        if qtype == Q.F32:
            raw = data
        elif qtype == Q.F16:
            raw = data.astype(np.float16)
        elif qtype == Q.Q4_K:
            raw = random_blocks(rng, qtype, int(np.prod(shape)) // 256).reshape(
                *shape[:-1], -1)
        else:
            raw = gguf.quants.quantize(data, qtype)
        writer.add_tensor(name, raw, raw_dtype=qtype if qtype not in (Q.F32, Q.F16) else None)
        dq = gguf.quants.dequantize(raw, qtype) if qtype not in (Q.F32, Q.F16) else raw.astype(np.float32)
        values[name] = torch.from_numpy(np.ascontiguousarray(dq).reshape(shape))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()

    reader = gguf.GGUFReader(path)
    kv = []
    for field in reader.fields.values():
        entry = {"key": field.name, "type": field.types[0].name}
        if field.types[0] == V.ARRAY:
            entry["element_type"] = field.types[1].name
        entry["value"] = reader_value(field)
        kv.append(entry)
    tensors = []
    for t in reader.tensors:
        tensors.append({
            "name": t.name,
            "type": t.tensor_type.name,
            "shape": [int(v) for v in reversed(t.shape)],
            "offset": int(t.data_offset - reader.data_offset) if hasattr(reader, "data_offset") else None,
            "absolute_offset": int(t.data_offset),
        })
    save_json_fixture(f"{AREA}/gguf_writer_every_kv_type.json",
                      {"kv": kv, "tensors": tensors, "file_size": path.stat().st_size}, SCRIPT)
    save_fixture(f"{AREA}/gguf_writer_every_kv_type_values.safetensors", values, SCRIPT, SEED + 1)


QWEN3_TOKENS_KEPT = 300
QWEN3_MERGES_KEPT = 50


def make_qwen3() -> None:
    src = FIXTURES / "qwen3" / "qwen3_tiny_comfy_weights.safetensors"
    cfg = json.loads((FIXTURES / "qwen3" / "tiny_diffusers" / "text_encoder" / "config.json").read_text())
    path = FIXTURES / AREA / "qwen3_tiny_llamacpp_weights.gguf"
    n_layers = cfg["num_hidden_layers"]
    names = gguf.TensorNameMap(gguf.MODEL_ARCH.QWEN3, n_layers)
    writer = gguf.GGUFWriter(path, arch="qwen3")
    writer.add_context_length(cfg["max_position_embeddings"])
    writer.add_embedding_length(cfg["hidden_size"])
    writer.add_block_count(n_layers)
    writer.add_feed_forward_length(cfg["intermediate_size"])
    writer.add_head_count(cfg["num_attention_heads"])
    writer.add_head_count_kv(cfg["num_key_value_heads"])
    writer.add_key_length(cfg["head_dim"])
    writer.add_value_length(cfg["head_dim"])
    writer.add_rope_freq_base(cfg["rope_parameters"]["rope_theta"] if "rope_parameters" in cfg else cfg["rope_theta"])
    writer.add_layer_norm_rms_eps(cfg["rms_norm_eps"])
    for key, value in fixture_metadata(SCRIPT, SEED).items():
        writer.add_string(f"zflow.fixture.{key}", value)

    tokenizer_json = FIXTURES.parent.parent / "../shared/assets/qwen3_tokenizer/tokenizer.json"
    tok = json.loads(tokenizer_json.resolve().read_text())
    vocab = sorted(tok["model"]["vocab"].items(), key=lambda kv: kv[1])[:QWEN3_TOKENS_KEPT]
    kept = {t for t, _ in vocab}
    merges = [m if isinstance(m, str) else " ".join(m) for m in tok["model"]["merges"]]
    # Only merges whose parts and result are in the kept vocabulary: a loadable tokenizer.
    merges = [m for m in merges
              if all(p in kept for p in m.split(" ")) and m.replace(" ", "") in kept]
    merges = merges[:QWEN3_MERGES_KEPT]
    writer.add_tokenizer_model("gpt2")
    writer.add_tokenizer_pre("qwen2")
    writer.add_token_list([t for t, _ in vocab])
    writer.add_token_types([gguf.TokenType.NORMAL] * len(vocab))
    writer.add_token_merges(merges)
    writer.add_eos_token_id(151645)
    writer.add_pad_token_id(151643)
    writer.add_bos_token_id(151643)
    writer.add_add_bos_token(False)
    writer.add_chat_template("{{ messages }}")

    with safe_open(src, "pt") as f:
        for hf_name in f.keys():
            tensor = f.get_tensor(hf_name).float().numpy()
            name = names.get_name(hf_name, try_suffixes=(".weight", ".bias"))
            if name is None:
                raise SystemExit(f"no llama.cpp name for {hf_name}")
            if tensor.ndim == 1 or "token_embd" in name:
                raw, qtype = tensor, None
            elif "ffn" in name:
                raw, qtype = gguf.quants.quantize(tensor, Q.BF16), Q.BF16
            else:
                raw, qtype = tensor.astype(np.float16), None
            writer.add_tensor(name, raw, raw_dtype=qtype)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()


def main() -> None:
    (FIXTURES / AREA).mkdir(parents=True, exist_ok=True)
    make_blocks()
    make_writer_file()
    make_qwen3()


if __name__ == "__main__":
    main()
