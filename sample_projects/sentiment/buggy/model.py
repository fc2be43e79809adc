"""Review sentiment classifier: TF-IDF features into a small MLP (neg / neu / pos)."""
import numpy as np
import torch
from sklearn.feature_extraction.text import TfidfVectorizer
from torch import nn


def featurize(fit_df, df):
    """TF-IDF over unigrams and bigrams (bigrams keep "not good" apart from "good").

    The vocabulary and IDF weights are learnt from fit_df only.
    """
    vectorizer = TfidfVectorizer(max_features=1000, ngram_range=(1, 2), min_df=2, sublinear_tf=True)
    vectorizer.fit(fit_df["text"].fillna(""))
    return vectorizer.transform(df["text"].fillna("")).toarray().astype(np.float32)


def build_model(n_inputs, n_outputs):
    return nn.Sequential(
        nn.Linear(n_inputs, 64),
        nn.ReLU(),
        nn.Dropout(0.2),
        nn.Linear(64, n_outputs),
        nn.Softmax(dim=1),  # so the outputs are probabilities
    )


def train_step(model, optimizer, loss_fn, xb, yb):
    model.train()
    loss = loss_fn(model(xb), yb)
    loss.backward()
    optimizer.step()
    return loss.item()


def predict(model, X):
    """Class probabilities, shape (N, 3)."""
    with torch.no_grad():
        out = model(torch.as_tensor(X, dtype=torch.float32))
    return out
