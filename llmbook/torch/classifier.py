"""An encoder-only classifier: chapter 6's Transformer encoder, masked mean pooling, a linear head.

Shapes: B batch, S passage length (padded), D model width, C classes, h heads.

    H = Encoder(x)                                  contextual vectors of the tokens, (B, S, D)
    m_s = 1 if token s is real, 0 if padding        (B, S)
    z = sum_s m_s H_s / sum_s m_s                   masked mean pooling, (B, D)
    logits = z W + b                                (B, C); P(class | passage) = softmax(logits)

The encoder's self-attention never attends to padding (its keys are masked) and the mean never
counts it, so appending padding to a passage leaves its logits unchanged. No [CLS] token: a mean of
the token vectors is the simplest pooling that does not depend on the padded length.
"""
from __future__ import annotations

import torch
from torch import nn

from llmbook.torch.transformer import Encoder, padding_mask


def masked_mean(x: torch.Tensor, keep: torch.Tensor) -> torch.Tensor:
    """Mean of x (B, S, D) over the positions where keep (B, S) is True -> (B, D)."""
    w = keep.to(x.dtype)[..., None]                                        # (B, S, 1)
    return (x * w).sum(dim=1) / w.sum(dim=1).clamp(min=1.0)                # (B, D) / (B, 1) -> (B, D)


class EncoderClassifier(nn.Module):
    """Token ids -> Transformer encoder -> masked mean pooling -> linear layer -> class logits."""

    def __init__(self, vocab_size: int, num_classes: int, d_model: int = 64, num_heads: int = 4,
                 num_layers: int = 2, d_ff: int = 128, dropout: float = 0.1, max_len: int = 128,
                 pad_id: int = 0):
        super().__init__()
        self.pad_id = pad_id
        self.encoder = Encoder(vocab_size, d_model, num_heads, num_layers, d_ff, dropout, max_len)
        self.drop = nn.Dropout(dropout)
        self.head = nn.Linear(d_model, num_classes)

    def pooled(self, ids: torch.Tensor) -> torch.Tensor:
        """Ids (B, S) -> one vector per passage (B, D), the mean of the encoder's outputs at real tokens."""
        if ids.ndim != 2:
            raise ValueError(f"expected token ids of shape (batch, length), got {tuple(ids.shape)}")
        mask = padding_mask(ids, self.pad_id)                              # (B, 1, 1, S)
        h, _ = self.encoder(ids, mask)                                     # (B, S, D)
        return masked_mean(h, mask[:, 0, 0])                               # (B, D)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        """Ids (B, S), padded with pad_id -> class logits (B, C)."""
        return self.head(self.drop(self.pooled(ids)))                      # (B, D) -> (B, C)
