"""Causal video tokenizers: continuous (CV) and discrete FSQ (DV)."""

from cosmos_sim.tokenizer.model import PRESETS, CausalVideoTokenizer, Stream, TokenizerConfig, preset
from cosmos_sim.tokenizer.train import evaluate_tokenizer, train_tokenizer

__all__ = ["PRESETS", "CausalVideoTokenizer", "Stream", "TokenizerConfig", "preset", "train_tokenizer",
           "evaluate_tokenizer"]
