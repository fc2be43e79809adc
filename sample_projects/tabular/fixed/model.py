"""Biopsy classifier (benign / malignant): scikit-learn preprocessing into a small PyTorch MLP."""
import numpy as np
import torch
from sklearn.compose import ColumnTransformer, make_column_selector
from sklearn.impute import SimpleImputer
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler
from torch import nn


def make_preprocessor():
    numeric = Pipeline([
        ("impute", SimpleImputer(strategy="median")),
        ("scale", StandardScaler()),
    ])
    categorical = OneHotEncoder(handle_unknown="ignore", sparse_output=False)
    return ColumnTransformer([
        ("num", numeric, make_column_selector(dtype_include=np.number)),
        ("cat", categorical, make_column_selector(dtype_exclude=np.number)),
    ])


def featurize(fit_df, df):
    """Numeric columns: median-impute + standardise; text columns: one-hot. Fitted on fit_df only."""
    pre = make_preprocessor().fit(fit_df)
    return np.asarray(pre.transform(df), dtype=np.float32)


def build_model(n_inputs, n_outputs):
    return nn.Sequential(
        nn.Linear(n_inputs, 32),
        nn.ReLU(),
        nn.Dropout(0.1),
        nn.Linear(32, n_outputs),  # logits for CrossEntropyLoss
    )


def train_step(model, optimizer, loss_fn, xb, yb):
    model.train()
    optimizer.zero_grad()
    loss = loss_fn(model(xb), yb)
    loss.backward()
    optimizer.step()
    return loss.item()


def predict(model, X):
    """Class probabilities, shape (N, 2): [benign, malignant]."""
    model.eval()
    with torch.no_grad():
        return torch.softmax(model(torch.as_tensor(X, dtype=torch.float32)), dim=1)
