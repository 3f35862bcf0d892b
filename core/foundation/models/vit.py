"""A small vision transformer from torchvision's VisionTransformer class, for 8..64-pixel images:
4-pixel patches, 6 layers, 4 heads of 48 dimensions, width 192, MLP 384 (about 1.8 M parameters,
65 tokens at 32 px).

torchvision's attention is nn.MultiheadAttention, whose packed projection cannot lose a head while
the model keeps its width. HeadAttention computes the same thing (scaled dot-product attention over
heads, then an output projection) with q, k and v in one Linear laid out [q heads | k heads | v
heads], so channel pruning can remove whole heads: `num_heads` shrinks, `head_dim` stays.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

PATCH_SIZE = 4
NUM_LAYERS, NUM_HEADS, HIDDEN_DIM, MLP_DIM = 6, 4, 192, 384


class HeadAttention(nn.Module):
    """Self-attention with separable heads; called as torchvision's EncoderBlock calls
    nn.MultiheadAttention(batch_first=True): `out, _ = attention(x, x, x, need_weights=False)`."""

    def __init__(self, hidden_dim: int, num_heads: int, dropout: float = 0.0):
        super().__init__()
        if hidden_dim % num_heads:
            raise ValueError(f"width {hidden_dim} does not split into {num_heads} heads")
        self.num_heads, self.head_dim, self.dropout = num_heads, hidden_dim // num_heads, dropout
        self.qkv = nn.Linear(hidden_dim, 3 * hidden_dim)
        self.out_proj = nn.Linear(hidden_dim, hidden_dim)

    @classmethod
    def from_multihead(cls, attention: nn.MultiheadAttention) -> HeadAttention:
        """The same attention (same weights) as torchvision's packed nn.MultiheadAttention."""
        twin = cls(attention.embed_dim, attention.num_heads, attention.dropout)
        with torch.no_grad():
            twin.qkv.weight.copy_(attention.in_proj_weight)
            twin.qkv.bias.copy_(attention.in_proj_bias)
            twin.out_proj.weight.copy_(attention.out_proj.weight)
            twin.out_proj.bias.copy_(attention.out_proj.bias)
        return twin

    @property
    def inner_dim(self) -> int:
        return self.num_heads * self.head_dim

    def head_channels(self, head: int) -> list[int]:
        """The qkv output channels of one head: its rows of q, of k and of v."""
        return [block * self.inner_dim + head * self.head_dim + j for block in range(3) for j in range(self.head_dim)]

    def forward(self, query: torch.Tensor, key: torch.Tensor | None = None, value: torch.Tensor | None = None, need_weights: bool = False) -> tuple[torch.Tensor, None]:
        n, s, _ = query.shape
        q, k, v = self.qkv(query).reshape(n, s, 3, self.num_heads, self.head_dim).permute(2, 0, 3, 1, 4).unbind(0)
        x = F.scaled_dot_product_attention(q, k, v, dropout_p=self.dropout if self.training else 0.0)
        return self.out_proj(x.transpose(1, 2).reshape(n, s, self.inner_dim)), None


def remove_heads(attention: HeadAttention, heads: list[int]) -> None:
    """Cut whole heads out of `attention` in place: their q, k, v rows and their output-projection columns."""
    keep = [h for h in range(attention.num_heads) if h not in set(heads)]
    rows = [c for h in keep for c in attention.head_channels(h)]
    rows.sort()
    columns = [h * attention.head_dim + j for h in keep for j in range(attention.head_dim)]
    qkv, out_proj = attention.qkv, attention.out_proj
    smaller_qkv = nn.Linear(qkv.in_features, len(rows), bias=qkv.bias is not None).to(qkv.weight.device, qkv.weight.dtype)
    smaller_out = nn.Linear(len(columns), out_proj.out_features, bias=out_proj.bias is not None).to(out_proj.weight.device, out_proj.weight.dtype)
    with torch.no_grad():
        smaller_qkv.weight.copy_(qkv.weight[rows])
        if qkv.bias is not None:
            smaller_qkv.bias.copy_(qkv.bias[rows])
        smaller_out.weight.copy_(out_proj.weight[:, columns])
        if out_proj.bias is not None:
            smaller_out.bias.copy_(out_proj.bias)
    attention.qkv, attention.out_proj, attention.num_heads = smaller_qkv, smaller_out, len(keep)


def _vision_transformer_class():
    from torchvision.models.vision_transformer import VisionTransformer

    class SmallImageViT(VisionTransformer):
        """A side that is no multiple of the patch is padded (zeros right and below) to the next one."""

        def _process_input(self, x: torch.Tensor) -> torch.Tensor:
            short = self.image_size - x.shape[-1]
            if short > 0:
                x = F.pad(x, (0, short, 0, short))
            return super()._process_input(x)

    return SmallImageViT


def small_image_vit(in_channels: int, image_size: int, num_classes: int) -> nn.Module:
    side = math.ceil(image_size / PATCH_SIZE) * PATCH_SIZE
    model = _vision_transformer_class()(image_size=side, patch_size=PATCH_SIZE, num_layers=NUM_LAYERS, num_heads=NUM_HEADS, hidden_dim=HIDDEN_DIM, mlp_dim=MLP_DIM, num_classes=num_classes)
    if in_channels != 3:
        from core.foundation.models.torchvision_models import adapted_conv

        model.conv_proj = adapted_conv(model.conv_proj, in_channels)
    for block in model.encoder.layers:
        block.self_attention = HeadAttention.from_multihead(block.self_attention)
    return model
