"""Diabetes progression regressor: standardised baseline measurements into a small MLP."""
import numpy as np
import torch
from sklearn.preprocessing import StandardScaler
from torch import nn

# progression on data/train.csv (python ../generate.py prints them): the network predicts in
# standardised units and the model maps back, so the output starts near the mean.
TARGET_MEAN = 153.7
TARGET_STD = 75.8


def featurize(fit_df, df):
    """Standardise every feature with statistics from fit_df."""
    scaler = StandardScaler().fit(fit_df.to_numpy(dtype=np.float64))
    return scaler.transform(df.to_numpy(dtype=np.float64)).astype(np.float32)


class ProgressionMLP(nn.Module):
    def __init__(self, n_inputs, n_outputs=1):
        super().__init__()
        self.net = nn.Sequential(
            nn.Linear(n_inputs, 32),
            nn.ReLU(),
            nn.Linear(32, n_outputs),   # linear output: the target is unbounded
        )

    def forward(self, x):
        return TARGET_MEAN + TARGET_STD * self.net(x)   # shape (N, 1)


def build_model(n_inputs, n_outputs):
    return ProgressionMLP(n_inputs, n_outputs)


def train_step(model, optimizer, loss_fn, xb, yb):
    model.train()
    optimizer.zero_grad()
    pred = model(xb).squeeze(-1)        # (N, 1) -> (N,) to match yb
    loss = loss_fn(pred, yb)
    loss.backward()
    optimizer.step()
    return loss.item()


def predict(model, X):
    """Predicted progression, shape (N,)."""
    model.eval()
    with torch.no_grad():
        return model(torch.as_tensor(X, dtype=torch.float32)).squeeze(-1)
