"""The text models in torch: the BigDL apps' layers (textcnn.py, textlstm.py, and the head in
textapp.py) with torch's, reading (documents, sequence, width) embedded words.

Weights are initialised by torch (from --seed), not as BigDL does; the shapes are BigDL's.
"""

from __future__ import annotations

import torch
from text_flags import HEAD_DROPOUT, HEAD_WIDTH, KERNEL_WIDTH
from torch import nn


class ConvBody(nn.Module):
    """TemporalConvolution(E -> F, 5 words) -> ReLU -> the max over time: (documents, F)."""

    def __init__(self, embedding_dim: int, filters: int) -> None:
        super().__init__()
        self.conv = nn.Conv1d(embedding_dim, filters, KERNEL_WIDTH)

    def forward(self, words: torch.Tensor) -> torch.Tensor:
        # Conv1d reads (documents, width, sequence): the words' vectors as channels
        return torch.relu(self.conv(words.transpose(1, 2))).amax(dim=2)


class LSTMBody(nn.Module):
    """LSTM(E -> H) over the sequence, then its last step (the text is padded in front)."""

    def __init__(self, embedding_dim: int, hidden_size: int) -> None:
        super().__init__()
        self.lstm = nn.LSTM(embedding_dim, hidden_size, batch_first=True)

    def forward(self, words: torch.Tensor) -> torch.Tensor:
        steps, _ = self.lstm(words)
        return steps[:, -1]


def classifier(body: nn.Module, width: int, classes: int) -> nn.Sequential:
    """body -> Linear(width -> 128) -> Dropout(0.2) -> ReLU -> Linear(128 -> classes) ->
    LogSoftmax: the original News20 app's head, as the BigDL apps build it."""
    return nn.Sequential(
        body,
        nn.Linear(width, HEAD_WIDTH),
        nn.Dropout(HEAD_DROPOUT),
        nn.ReLU(),
        nn.Linear(HEAD_WIDTH, classes),
        nn.LogSoftmax(dim=1),
    )
