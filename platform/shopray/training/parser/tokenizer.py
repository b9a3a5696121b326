"""A byte-level BPE tokenizer trained on catalog text, with ChatML special tokens.

Byte-level, so any query (emoji, injection text, stray bytes) encodes without
an unknown token. The pre-tokenizer shapes what BPE may merge:
- digits stay single, so the model copies prices digit by digit;
- query text splits into words, so a brand reads the same wherever it stands;
- a JSON key with its punctuation (``,"category":``) and a whole quoted value
  (``"Shoes > Running"``) may each become one token, so a parse is about 16
  decoding steps instead of 40: on CPU, decoding steps are the latency.
"""

from __future__ import annotations

import json
from collections.abc import Iterable

from tokenizers import AddedToken, Regex, Tokenizer, decoders, models, pre_tokenizers, trainers
from transformers import PreTrainedTokenizerFast

PAD, IM_START, IM_END = "<|endoftext|>", "<|im_start|>", "<|im_end|>"
SPECIAL_TOKENS = [PAD, IM_START, IM_END]

# The standard ChatML template (the one Qwen2 instruct models ship), so vLLM,
# transformers and any OpenAI-style front end render prompts the same way.
CHATML_TEMPLATE = (
    "{% for message in messages %}"
    "{{ '<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)


PIECES = (
    r'[{,]?"[a-z_]+":'  # a JSON key with its leading brace or comma
    r'|"[^"\n]{1,64}"'  # a quoted value, quotes included
    r"|\d"  # one digit
    r'| ?[^\s\d"{},:\[\]]+'  # a word, with the space before it
    r"|[\[\]{},:]+|\s+|\""  # leftover punctuation and spaces
)


def pre_tokenizer() -> pre_tokenizers.PreTokenizer:
    return pre_tokenizers.Sequence(
        [pre_tokenizers.Split(Regex(PIECES), behavior="isolated"), pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)]
    )


def train_bpe(texts: Iterable[str], vocab_size: int = 4096) -> Tokenizer:
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizer()
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=SPECIAL_TOKENS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        min_frequency=2,
        show_progress=False,
    )
    tok.train_from_iterator(texts, trainer=trainer)
    return tok


def add_value_tokens(tok: Tokenizer, values: Iterable[str]) -> int:
    """Make every quoted catalog value one token, so choosing a brand is one decoding step.

    BPE alone gives a single token only to frequent values; the rest would be
    spelled in 2-4 pieces. Returns how many tokens were added.
    """
    new = []
    for value in values:
        quoted = json.dumps(value, ensure_ascii=False)
        if len(tok.encode(quoted).ids) > 1:
            new.append(AddedToken(quoted, single_word=False, normalized=False, special=False))
    return tok.add_tokens(new)


def hf_tokenizer(tok: Tokenizer, model_max_length: int):
    hf = PreTrainedTokenizerFast(
        tokenizer_object=tok,
        eos_token=IM_END,
        pad_token=PAD,
        unk_token=None,
        bos_token=None,
        model_max_length=model_max_length,
        chat_template=CHATML_TEMPLATE,
        clean_up_tokenization_spaces=False,
    )
    return hf
