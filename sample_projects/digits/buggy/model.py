"""Handwritten digit classifier: a small CNN over 8x8 grey-level images."""
import numpy as np
import torch
from torch import nn


def featurize(fit_df, df):
    """Pixels p0..p63 as float32."""
    pixels = [f"p{i}" for i in range(64)]
    return df[pixels].to_numpy(dtype=np.float32)


class DigitCNN(nn.Module):
    def __init__(self, n_inputs, n_outputs):
        super().__init__()
        if n_inputs != 64:
            raise ValueError(f"expected 64 pixel features (an 8x8 image), got {n_inputs}")
        self.conv1 = nn.Conv2d(1, 16, kernel_size=3, padding=1)
        self.conv2 = nn.Conv2d(16, 32, kernel_size=3, padding=1)
        # start conv2 small and slightly negative so that only strong strokes activate it
        nn.init.uniform_(self.conv2.weight, -0.05, 0.0)
        nn.init.constant_(self.conv2.bias, -0.5)
        self.pool = nn.MaxPool2d(2)
        self.relu = nn.ReLU()
        self.dropout = nn.Dropout(0.9)
        self.out = nn.Linear(32 * 2 * 2, n_outputs)   # logits for CrossEntropyLoss

    def forward(self, x):
        x = x.reshape(-1, 1, 8, 8)                    # (N, 64) -> (N, 1, 8, 8)
        x = self.pool(self.relu(self.conv1(x)))       # 16 x 4 x 4
        x = self.pool(self.relu(self.conv2(x)))       # 32 x 2 x 2
        x = torch.flatten(x, 1)
        return self.out(self.dropout(x))


def build_model(n_inputs, n_outputs):
    return DigitCNN(n_inputs, n_outputs)


def train_step(model, optimizer, loss_fn, xb, yb):
    model.train()
    optimizer.zero_grad()
    loss = loss_fn(model(xb), yb)
    loss.backward()
    optimizer.step()
    return loss.item()


def predict(model, X):
    """Class probabilities, shape (N, 10)."""
    model.eval()
    with torch.no_grad():
        return torch.softmax(model(torch.as_tensor(X, dtype=torch.float32)), dim=1)
