"""Small building blocks shared by every SAM 2 part (parameter names follow Meta's checkpoints)."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class MLP(nn.Module):
    """`num_layers` linear layers with an activation between them; names `layers.{i}` match the checkpoints."""

    def __init__(self, input_dim: int, hidden_dim: int, output_dim: int, num_layers: int,
                 activation: type[nn.Module] = nn.ReLU, sigmoid_output: bool = False) -> None:
        super().__init__()
        dims_in = [input_dim] + [hidden_dim] * (num_layers - 1)
        dims_out = [hidden_dim] * (num_layers - 1) + [output_dim]
        self.layers = nn.ModuleList(nn.Linear(i, o) for i, o in zip(dims_in, dims_out))
        self.act = activation()
        self.sigmoid_output = sigmoid_output

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        last = len(self.layers) - 1
        for i, layer in enumerate(self.layers):
            x = layer(x)
            if i < last:
                x = self.act(x)
        return torch.sigmoid(x) if self.sigmoid_output else x


class LayerNorm2d(nn.Module):
    """LayerNorm over the channel axis of a [B, C, H, W] map."""

    def __init__(self, num_channels: int, eps: float = 1e-6) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.ones(num_channels))
        self.bias = nn.Parameter(torch.zeros(num_channels))
        self.eps = eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if torch.onnx.is_in_onnx_export():  # one LayerNormalization node (TensorRT's normalization layer, fp32)
            return F.layer_norm(x.permute(0, 2, 3, 1), (self.weight.numel(),), self.weight, self.bias, self.eps
                                ).permute(0, 3, 1, 2)
        # Eagerly Meta's arithmetic (mean, then the biased variance), so results stay the reference's bit for bit.
        mean = x.mean(1, keepdim=True)
        var = (x - mean).pow(2).mean(1, keepdim=True)
        x = (x - mean) / torch.sqrt(var + self.eps)
        return x * self.weight[:, None, None] + self.bias[:, None, None]


def split_heads(x: torch.Tensor, num_heads: int) -> torch.Tensor:
    """[B, N, C] -> [B, heads, N, C/heads]."""
    b, n, c = x.shape
    return x.reshape(b, n, num_heads, c // num_heads).transpose(1, 2)


def merge_heads(x: torch.Tensor) -> torch.Tensor:
    """[B, heads, N, c] -> [B, N, heads*c]."""
    b, h, n, c = x.shape
    return x.transpose(1, 2).reshape(b, n, h * c)


class Attention(nn.Module):
    """Multi-head attention with separate q/k/v projections, optional inner downscaling, and SDPA."""

    def __init__(self, embedding_dim: int, num_heads: int, downsample_rate: int = 1,
                 dropout: float = 0.0, kv_in_dim: int | None = None) -> None:
        super().__init__()
        kv_in_dim = embedding_dim if kv_in_dim is None else kv_in_dim
        self.internal_dim = embedding_dim // downsample_rate
        if self.internal_dim % num_heads:
            raise ValueError(f"num_heads={num_heads} must divide the attention width {self.internal_dim}")
        self.num_heads = num_heads
        self.dropout_p = dropout
        self.q_proj = nn.Linear(embedding_dim, self.internal_dim)
        self.k_proj = nn.Linear(kv_in_dim, self.internal_dim)
        self.v_proj = nn.Linear(kv_in_dim, self.internal_dim)
        self.out_proj = nn.Linear(self.internal_dim, embedding_dim)

    def project(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor):
        """Project and split heads: each [B, N, C] -> [B, heads, N, c]."""
        return (split_heads(self.q_proj(q), self.num_heads), split_heads(self.k_proj(k), self.num_heads),
                split_heads(self.v_proj(v), self.num_heads))

    def attend(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        """SDPA on split heads, then merge heads and project out."""
        out = F.scaled_dot_product_attention(q, k, v, dropout_p=self.dropout_p if self.training else 0.0)
        return self.out_proj(merge_heads(out))

    def forward(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        return self.attend(*self.project(q, k, v))
