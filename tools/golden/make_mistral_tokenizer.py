"""Golden token ids for Mistral's Tekken tokenizer (FLUX.2-dev's text encoder, Mistral-Small-3.1 / 3.2).

Reads the shared tokenizer in Hugging Face form (never copied into the repository):
  ../shared/assets/flux2_mistral_tokenizer/{vocab.json,merges.txt}
and builds the reference exactly as transformers 5.23 converts a tekken.json
(integrations/mistral/tokenizer.py, MistralConverter.converted): tokenizers' BPE with ignore_merges, the
pre-tokenizer Sequence[Split(Tekken pattern, isolated), ByteLevel(add_prefix_space=False, use_regex=False)],
no normalizer, and ids 0..999 added as special tokens.

Writes tests/fixtures/tokenizer/mistral_tokenizer_cases.json with
  cases:     [{text, ids, decoded}]  ids = encode(text); decoded = decode(ids), checked to equal text
  dev_cases: [{prompt, text, ids, attention_length}]  what diffusers' Flux2Pipeline._get_mistral_3_small_prompt_embeds
             feeds the text encoder: its own format_input (system message, content blocks), then
             apply_chat_template(..., add_generation_prompt=False, padding="max_length", truncation=True,
             max_length=512) on a tokenizer padding on the left with Mistral-Small-3.1's chat template for
             system + user text messages (facts: flux.md section 3.3). All 512 ids, padding included.
The texts are make_tokenizer.py's (every group plus random mixes with the same seed).
"""

from __future__ import annotations

from common import REPO, save_json_fixture
from make_tokenizer import (CHINESE, CODE, DIGITS, EMOJI, ENGLISH, JAPANESE, KOREAN, NFD, OTHER_SCRIPTS, RARE,
                            SPECIAL_IN_TEXT, URLS, WHITESPACE, chat_prompts, long_prompt, random_mixes,
                            surrogate_free)

TOKENIZER = REPO.parent / "shared" / "assets" / "flux2_mistral_tokenizer"
MAX_SEQUENCE_LENGTH = 512  # Flux2Pipeline default max_sequence_length
SPECIAL_TOKENS = 1000

# Tekken's split regex (tekken.json config.pattern; transformers' GGUF map, "tekken").
TEKKEN_PATTERN = (
    r"[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+"
    r"|[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*"
    r"|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n/]*|\s*[\r\n]+|\s+(?!\S)|\s+"
)

# Mistral-Small-3.1-24B-Instruct-2503's chat template, the part system + user text messages use.
CHAT_TEMPLATE = (
    "{{- bos_token }}"
    "{%- if messages[0]['role'] == 'system' %}"
    "{%- if messages[0]['content'] is string %}{%- set system_message = messages[0]['content'] %}"
    "{%- else %}{%- set system_message = messages[0]['content'][0]['text'] %}{%- endif %}"
    "{%- set loop_messages = messages[1:] %}"
    "{%- else %}{%- set loop_messages = messages %}{%- endif %}"
    "{%- if system_message is defined %}{{- '[SYSTEM_PROMPT]' + system_message + '[/SYSTEM_PROMPT]' }}{%- endif %}"
    "{%- for message in loop_messages %}{%- if message['role'] == 'user' %}"
    "{%- if message['content'] is string %}{{- '[INST]' + message['content'] + '[/INST]' }}"
    "{%- else %}{{- '[INST]' }}{%- for block in message['content'] %}"
    "{%- if block['type'] == 'text' %}{{- block['text'] }}{%- endif %}{%- endfor %}{{- '[/INST]' }}"
    "{%- endif %}{%- endif %}{%- endfor %}"
)


def reference_tokenizer():
    """The pipeline's tokenizer: tokenizers' Tekken conversion wrapped for apply_chat_template."""
    import json

    from tokenizers import AddedToken, Regex, Tokenizer, decoders, pre_tokenizers, processors
    from tokenizers.models import BPE
    from transformers import PreTrainedTokenizerFast

    vocab = json.loads((TOKENIZER / "vocab.json").read_text())
    lines = (TOKENIZER / "merges.txt").read_text().split("\n")
    merges = [tuple(line.split(" ")) for line in lines[1:] if line]
    core = Tokenizer(BPE(vocab, merges, fuse_unk=False, ignore_merges=True))
    core.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(TEKKEN_PATTERN), behavior="isolated", invert=False),
        pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
    ])
    core.decoder = decoders.ByteLevel()
    by_id = {i: t for t, i in vocab.items()}
    core.add_special_tokens([AddedToken(by_id[i], special=True) for i in range(SPECIAL_TOKENS)])
    core.post_processor = processors.ByteLevel(trim_offsets=False)
    wrapped = PreTrainedTokenizerFast(tokenizer_object=core, bos_token="<s>", eos_token="</s>", unk_token="<unk>",
                                      pad_token="<pad>", padding_side="left", chat_template=CHAT_TEMPLATE)
    return core, wrapped


def dev_prompt_inputs(tokenizer, prompts: list[str]):
    """Flux2Pipeline._get_mistral_3_small_prompt_embeds' tokenizer call."""
    from diffusers.pipelines.flux2.pipeline_flux2 import format_input
    from diffusers.pipelines.flux2.system_messages import SYSTEM_MESSAGE

    return tokenizer.apply_chat_template(format_input(prompts=prompts, system_message=SYSTEM_MESSAGE),
                                         add_generation_prompt=False, tokenize=True, return_dict=True,
                                         return_tensors="pt", padding="max_length", truncation=True,
                                         max_length=MAX_SEQUENCE_LENGTH)


def main() -> None:
    core, wrapped = reference_tokenizer()
    texts = [""]
    for group in (ENGLISH, CHINESE, JAPANESE, KOREAN, OTHER_SCRIPTS, EMOJI, DIGITS, WHITESPACE, CODE, URLS,
                  SPECIAL_IN_TEXT, NFD, RARE):
        texts += group
    texts.append(long_prompt())
    texts += [t for t in random_mixes(300 - len(texts)) if surrogate_free(t)]
    cases = []
    for text in texts:
        ids = core.encode(text).ids
        decoded = core.decode(ids, skip_special_tokens=False)
        if decoded != text:
            raise SystemExit(f"decode(encode(text)) is not text for {text!r}: {decoded!r}")
        cases.append({"text": text, "ids": ids, "decoded": decoded})

    from diffusers.pipelines.flux2.pipeline_flux2 import format_input
    from diffusers.pipelines.flux2.system_messages import SYSTEM_MESSAGE

    dev_cases = []
    prompts = chat_prompts() + ["an [IMG] token, [IM[IMG]G] twice", "[INST]nested[/INST] and <s>"]
    for prompt in prompts:
        text = wrapped.apply_chat_template(format_input(prompts=[prompt], system_message=SYSTEM_MESSAGE)[0],
                                           add_generation_prompt=False, tokenize=False)
        inputs = dev_prompt_inputs(wrapped, [prompt])
        dev_cases.append({"prompt": prompt, "text": text, "ids": inputs["input_ids"][0].tolist(),
                          "attention_length": int(inputs["attention_mask"][0].sum())})
    if not any(c["attention_length"] == MAX_SEQUENCE_LENGTH for c in dev_cases):
        raise SystemExit("no dev prompt reaches the truncation")
    path = save_json_fixture("tokenizer/mistral_tokenizer_cases.json",
                             {"max_sequence_length": MAX_SEQUENCE_LENGTH, "cases": cases, "dev_cases": dev_cases},
                             __file__)
    print(f"wrote {path}: {len(cases)} cases, {len(dev_cases)} dev prompt cases")


if __name__ == "__main__":
    main()
