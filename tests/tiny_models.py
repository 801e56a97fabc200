"""Tiny randomly initialised models of several architectures, built locally for tests.

Each has a few layers and a vocabulary matching the tests' locally trained tokenizer,
so a bridge boots in well under a second without any download.
"""

from __future__ import annotations

import torch
from transformers import (
    AutoModelForCausalLM,
    Gemma3TextConfig,
    GPT2Config,
    GPTNeoXConfig,
    LlamaConfig,
    PretrainedConfig,
    PreTrainedModel,
    Qwen2Config,
)

N_LAYERS = 4
N_CTX = 64


def tiny_config(architecture: str, vocab_size: int) -> PretrainedConfig:
    """A 4-layer config of the named architecture (``llama``, ``neox``, ``gpt2``, ``gemma3``, ``qwen2``)."""
    if architecture == "llama":
        return LlamaConfig(
            vocab_size=vocab_size,
            hidden_size=32,
            intermediate_size=64,
            num_hidden_layers=N_LAYERS,
            num_attention_heads=4,
            num_key_value_heads=2,
            max_position_embeddings=N_CTX,
            tie_word_embeddings=False,
            bos_token_id=0,
            eos_token_id=1,
        )
    if architecture == "neox":
        return GPTNeoXConfig(
            vocab_size=vocab_size,
            hidden_size=32,
            intermediate_size=64,
            num_hidden_layers=N_LAYERS,
            num_attention_heads=4,
            max_position_embeddings=N_CTX,
            bos_token_id=0,
            eos_token_id=1,
        )
    if architecture == "gpt2":
        return GPT2Config(
            vocab_size=vocab_size,
            n_embd=32,
            n_layer=N_LAYERS,
            n_head=4,
            n_positions=N_CTX,
            bos_token_id=0,
            eos_token_id=1,
        )
    if architecture == "gemma3":
        return Gemma3TextConfig(
            vocab_size=vocab_size,
            hidden_size=32,
            intermediate_size=64,
            num_hidden_layers=N_LAYERS,
            num_attention_heads=2,
            num_key_value_heads=1,
            head_dim=16,
            max_position_embeddings=N_CTX,
            sliding_window=4,
            layer_types=["sliding_attention", "full_attention"] * (N_LAYERS // 2),
            bos_token_id=0,
            eos_token_id=1,
            pad_token_id=1,
        )
    if architecture == "qwen2":  # Llama's layout with biases on the query, key and value maps
        return Qwen2Config(
            vocab_size=vocab_size,
            hidden_size=32,
            intermediate_size=64,
            num_hidden_layers=N_LAYERS,
            num_attention_heads=4,
            num_key_value_heads=2,
            max_position_embeddings=N_CTX,
            tie_word_embeddings=False,
            bos_token_id=0,
            eos_token_id=1,
        )
    raise ValueError(f"unknown tiny architecture {architecture!r}")


ARCHITECTURES = ("llama", "neox", "gpt2", "gemma3", "qwen2")


def tiny_hf_model(architecture: str, vocab_size: int, seed: int = 0) -> PreTrainedModel:
    """A randomly initialised HF causal LM; the same seed gives the same weights.

    Biases, which HF initialises to zero, are drawn at random too (Qwen2's query, key and
    value biases are large in trained models): a zero bias would hide whether one is applied.
    """
    torch.manual_seed(seed)
    model = AutoModelForCausalLM.from_config(tiny_config(architecture, vocab_size))
    model.config.architectures = [type(model).__name__]
    if architecture == "qwen2":
        with torch.no_grad():
            for name, parameter in model.named_parameters():
                if name.endswith("bias"):
                    parameter.normal_(std=0.5)
    return model.eval()


def perturb_norm_weights(model: PreTrainedModel, seed: int, scale: float = 0.5) -> PreTrainedModel:
    """Add seeded Gaussian noise to the weight of every norm, in place; returns the model.

    A fresh norm holds the identity gain (weight 1, or 0 in Gemma's ``1 + weight``
    convention), which hides whether an analysis applies a norm's gain at all; a
    trained model's gains vary from channel to channel.
    """
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, parameter in model.named_parameters():
            if "norm" in name and name.endswith("weight"):
                parameter.add_(scale * torch.randn(parameter.shape, generator=generator))
    return model
