"""A CLIP tokenizer built locally (no vocabulary download) for the miniature world.

Byte-level alphabet (so any text tokenizes) plus one whole-word token per word of the miniature prompts,
reached through left-to-right BPE merges. Every prompt word is therefore a single token, which textual
inversion needs for its initialiser word.

>>> tok = build_tokenizer()
>>> tok.tokenize("a photo of a seven")
['a</w>', 'photo</w>', 'of</w>', 'a</w>', 'seven</w>']
"""
from __future__ import annotations

from transformers import CLIPTokenizer
from transformers.convert_slow_tokenizer import bytes_to_unicode

from dekag.miniature.data import CLASS_WORDS, PROMPT_WORDS

#: Longest token sequence (with start/end tokens). The miniature prompts have at most 8 words.
MAX_LENGTH = 16


def build_tokenizer(extra_words: tuple[str, ...] = ()) -> CLIPTokenizer:
    """Return a ``CLIPTokenizer`` whose vocabulary holds the byte alphabet and every prompt word."""
    vocab: dict[str, int] = {"<|startoftext|>": 0, "<|endoftext|>": 1}
    alphabet = list(bytes_to_unicode().values())
    for c in alphabet:
        vocab[c] = len(vocab)
    for c in alphabet:
        vocab[c + "</w>"] = len(vocab)
    merges: list[tuple[str, str]] = []
    for word in (*PROMPT_WORDS, *CLASS_WORDS, *extra_words):
        parts = list(word[:-1]) + [word[-1] + "</w>"]
        merged = parts[0]
        for part in parts[1:]:
            if (merged, part) not in merges:
                merges.append((merged, part))
            merged += part
            vocab.setdefault(merged, len(vocab))
    return CLIPTokenizer(vocab=vocab, merges=merges, model_max_length=MAX_LENGTH)
