"""Digit-box reader: a small CNN over 32x32 colour crops of scanned form boxes, in PyTorch.

The crops are PNG files in ImageFolder layout (data/<split>/<digit>/<id>.png).  The transforms
are written with Pillow in the style of torchvision's (its wheels did not match the CPU build of
torch on our training boxes).  mltriage calls make_dataset, build_model, train_step and predict
(see mltriage.toml); `python train.py` trains with the same settings and prints the validation
accuracy.
"""
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageEnhance
from torch import nn

DATA = Path(__file__).resolve().parent / "data"
SPLITS = ("train", "valid", "test")
N_CLASSES = 10
# per-channel mean and std of the training crops (0-1 scale), measured once over data/train
CHANNEL_MEAN = torch.tensor([0.699, 0.664, 0.712]).view(3, 1, 1)
CHANNEL_STD = torch.tensor([0.193, 0.216, 0.177]).view(3, 1, 1)


def to_tensor(img):
    """PIL RGB image -> float tensor (3, 32, 32), channels first as Conv2d expects."""
    x = torch.from_numpy(np.array(img)).float() / 255.0   # (32, 32, 3) pixel values, scaled to 0-1
    x = x.permute(2, 0, 1).contiguous()                    # channels first: move the axis, keep the pixels
    return (x - CHANNEL_MEAN) / CHANNEL_STD


def _uniform(low, high):
    """A random float from torch's generator, so torch.manual_seed makes runs repeatable."""
    return float(torch.empty(()).uniform_(low, high))


def random_affine(img, degrees=8.0, shift=2):
    """Rotate by up to `degrees` and shift by up to `shift` pixels, filling with the paper colour."""
    dx, dy = (int(torch.randint(-shift, shift + 1, ())) for _ in range(2))
    return img.rotate(_uniform(-degrees, degrees), resample=Image.BILINEAR, translate=(dx, dy),
                      fillcolor=img.getpixel((0, 0)))


def color_jitter(img, strength=0.2):
    """Random brightness, contrast and saturation, each by a factor in [1 - strength, 1 + strength]."""
    for enhance in (ImageEnhance.Brightness, ImageEnhance.Contrast, ImageEnhance.Color):
        img = enhance(img).enhance(_uniform(1 - strength, 1 + strength))
    return img


def compose(*steps):
    def apply(img):
        for step in steps:
            img = step(img)
        return img
    return apply


# small shifts/rotations and colour changes, as the scanner produces them (no flips: a mirrored 2 is no 2)
TRAIN_TF = compose(random_affine, color_jitter, to_tensor)
EVAL_TF = compose(to_tensor)


class DigitFolder(torch.utils.data.Dataset):
    """ImageFolder layout: root/<digit>/<id>.png, the folder name is the label."""

    def __init__(self, root, transform):
        self.items = sorted((path, int(path.parent.name)) for path in Path(root).glob("*/*.png"))
        self.transform = transform

    def __len__(self):
        return len(self.items)

    def __getitem__(self, i):
        path, label = self.items[i]
        with Image.open(path) as img:
            return self.transform(img.convert("RGB")), label


def make_dataset(split):
    """The crops of one split as (image tensor (3, 32, 32), digit) pairs."""
    if split not in SPLITS or not (DATA / split).is_dir():
        raise KeyError(f"no split {split!r}: expected a folder {DATA / split}")
    return DigitFolder(DATA / split, transform=TRAIN_TF if split == "train" else EVAL_TF)


class DigitCardNet(nn.Module):
    def __init__(self, n_classes=N_CLASSES):
        super().__init__()
        self.features = nn.Sequential(
            nn.Sequential(nn.Conv2d(3, 16, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2)),   # 16 x 16 x 16
            nn.Sequential(nn.Conv2d(16, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2)),  # 32 x 8 x 8
            nn.Sequential(nn.Conv2d(32, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2)),  # 32 x 4 x 4
        )
        self.classifier = nn.Linear(32 * 4 * 4, n_classes)                                # logits

    def forward(self, x):
        return self.classifier(torch.flatten(self.features(x), 1))


def build_model():
    return DigitCardNet()


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
        return torch.softmax(model(X), dim=1)


def main(epochs=5, lr=0.002, batch_size=64):
    torch.manual_seed(0)
    train = torch.utils.data.DataLoader(make_dataset("train"), batch_size=batch_size, shuffle=True)
    valid = torch.utils.data.DataLoader(make_dataset("valid"), batch_size=256)
    model = build_model()
    optimizer = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=lr)
    loss_fn = nn.CrossEntropyLoss()
    for epoch in range(epochs):
        losses = [train_step(model, optimizer, loss_fn, xb, yb) for xb, yb in train]
        correct = sum(int((predict(model, xb).argmax(1) == yb).sum()) for xb, yb in valid)
        print(f"epoch {epoch + 1}: train loss {np.mean(losses):.3f}, "
              f"valid accuracy {correct / len(valid.dataset):.3f}")


if __name__ == "__main__":
    main()
