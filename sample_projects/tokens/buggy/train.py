"""Review router: which team (bug, billing, feature, praise) should read an app-store review.

Token ids come from data/vocab.txt (line number = id, 0 = <pad>, 1 = <unk>); a review is embedded
word by word, the word vectors are averaged and a small MLP picks the team. mltriage calls
make_dataset, collate, build_model, train_step, predict and decode (see mltriage.toml);
`python train.py` trains with the same settings and prints the validation accuracy.
"""
import json
import re
from pathlib import Path

import numpy as np
import torch
from torch import nn

DATA = Path(__file__).resolve().parent / "data"
SPLITS = ("train", "valid", "test")
CLASSES = ["bug", "billing", "feature", "praise"]
VOCAB = (DATA / "vocab.txt").read_text(encoding="utf-8").split("\n")[:-1]
WORD_ID = {word: i for i, word in enumerate(VOCAB)}
PAD, UNK = WORD_ID["<pad>"], WORD_ID["<unk>"]
VOCAB_SIZE = 300          # words in vocab.txt
EMBED_DIM = 32
MAX_LEN = 12              # tokens kept per review: the first words say what it is about


def tokenize(text):
    return re.findall(r"[a-z0-9']+", text.lower())


def encode(text):
    return [WORD_ID.get(word, UNK) for word in tokenize(text)]


def decode(ids):
    """Token ids -> the words they stand for (padding left out)."""
    return " ".join(VOCAB[i] if 0 <= i < len(VOCAB) else "<unk>" for i in ids if i != PAD)


class Reviews(torch.utils.data.Dataset):
    """One split of data/<split>.jsonl as (LongTensor of token ids, team index) pairs."""

    def __init__(self, path):
        rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
        self.ids = [torch.tensor(encode(r["text"]), dtype=torch.long) for r in rows]
        self.labels = [CLASSES.index(r["label"]) for r in rows]

    def __len__(self):
        return len(self.labels)

    def __getitem__(self, i):
        return self.ids[i], self.labels[i]


def make_dataset(split):
    path = DATA / f"{split}.jsonl"
    if split not in SPLITS or not path.exists():
        raise KeyError(f"no split {split!r}: expected {path}")
    return Reviews(path)


def collate(batch):
    """Pad a batch of reviews to its longest one (at most MAX_LEN tokens): (N, T) ids, (N,) labels."""
    seqs = [ids[:MAX_LEN] for ids, _ in batch]
    padded = nn.utils.rnn.pad_sequence(seqs, batch_first=True, padding_value=PAD)
    return padded, torch.tensor([label for _, label in batch], dtype=torch.long)


class ReviewRouter(nn.Module):
    def __init__(self, n_classes=len(CLASSES)):
        super().__init__()
        self.embed = nn.Embedding(VOCAB_SIZE, EMBED_DIM)
        self.mlp = nn.Sequential(nn.Linear(EMBED_DIM, 64), nn.ReLU(), nn.Linear(64, n_classes))

    def forward(self, ids):
        pooled = self.embed(ids).mean(dim=1)                      # average word vector of each review
        return torch.softmax(self.mlp(pooled), dim=1)             # team probabilities


def build_model():
    return ReviewRouter()


def train_step(model, optimizer, loss_fn, xb, yb):
    model.train()
    loss = loss_fn(model(xb), yb)
    loss.backward()
    optimizer.step()
    return loss.item()


def predict(model, X):
    """Team probabilities, shape (N, 4)."""
    model.eval()
    with torch.no_grad():
        return model(X)


def main(epochs=5, lr=0.005, batch_size=64):
    torch.manual_seed(0)
    loader = torch.utils.data.DataLoader
    train = loader(make_dataset("train"), batch_size=batch_size, shuffle=True, collate_fn=collate)
    valid = loader(make_dataset("valid"), batch_size=256, collate_fn=collate)
    model = build_model()
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    loss_fn = nn.CrossEntropyLoss()
    for epoch in range(epochs):
        losses = [train_step(model, optimizer, loss_fn, xb, yb) for xb, yb in train]
        correct = sum(int((predict(model, xb).argmax(1) == yb).sum()) for xb, yb in valid)
        print(f"epoch {epoch + 1}: train loss {np.mean(losses):.3f}, "
              f"valid accuracy {correct / len(valid.dataset):.3f}")


if __name__ == "__main__":
    main()
