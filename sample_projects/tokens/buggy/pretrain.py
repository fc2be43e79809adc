"""Pre-train word vectors on the reviews themselves, with mltriage's monitor recording the run.

A CBOW model (Mikolov et al. 2013) learns to predict each word of a training review from the two words on
either side of it; its embedding can then initialise ReviewRouter.embed (train.py). The learning rate warms
up linearly over the first WARMUP_STEPS steps, then stays at LR.

    python pretrain.py                     # the monitor writes .mltriage/monitor/pretrain-<time>-<pid>.jsonl
    mltriage watch . --until-alarm         # in a second terminal: alarms while it trains, exit 1 at a fail

`python pretrain.py --steps 300 --every 5` is a short run; `--out vectors.pt` saves the embedding.
"""
import argparse
import os
import time
from pathlib import Path

import torch
from torch import nn

from mltriage.monitor import Monitor
from train import VOCAB, make_dataset

HERE = Path(__file__).resolve().parent
EMBED_DIM = 32
WINDOW = 2                # words on each side of the predicted one
LR = 0.01
WARMUP_STEPS = 20
BATCH_SIZE = 32
EVAL_EVERY = 100          # steps between validation losses (recorded by the monitor)


def warmup(step):
    """The learning-rate factor at a step: a linear warm-up to 1, then 1."""
    return (step + 1) / WARMUP_STEPS


def context_pairs(split):
    """Every word of a split that has WINDOW words on each side: (N, 2 WINDOW) context ids, (N,) word ids."""
    windows = torch.cat([ids.unfold(0, 2 * WINDOW + 1, 1) for ids in make_dataset(split).ids
                         if len(ids) > 2 * WINDOW])
    around = [i for i in range(2 * WINDOW + 1) if i != WINDOW]
    return windows[:, around], windows[:, WINDOW]


class CBOW(nn.Module):
    def __init__(self, vocab_size=len(VOCAB), dim=EMBED_DIM):
        super().__init__()
        self.embed = nn.Embedding(vocab_size, dim)
        self.out = nn.Linear(dim, vocab_size)

    def forward(self, context):
        return self.out(self.embed(context).mean(dim=1))   # logits over the vocabulary


def monitor_path():
    """.mltriage/monitor/ next to this project's mltriage.toml, one file per run."""
    return HERE / ".mltriage" / "monitor" / f"pretrain-{time.strftime('%Y%m%d-%H%M%S')}-{os.getpid()}.jsonl"


def main(steps=1500, every=50, seed=0, out=None):
    torch.manual_seed(seed)
    generator = torch.Generator().manual_seed(seed)
    contexts, words = context_pairs("train")
    valid_contexts, valid_words = context_pairs("valid")
    model = CBOW()
    optimizer = torch.optim.Adam(model.parameters(), lr=LR)
    schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, warmup)
    with Monitor(model, optimizer, every=every, path=monitor_path()) as monitor:
        for step in range(1, steps + 1):
            batch = torch.randint(len(words), (BATCH_SIZE,), generator=generator)
            loss = nn.functional.cross_entropy(model(contexts[batch]), words[batch])
            optimizer.zero_grad()
            loss.backward()
            monitor.step(loss)
            optimizer.step()
            schedule.step()
            if step % EVAL_EVERY == 0:
                with torch.no_grad():
                    valid_loss = nn.functional.cross_entropy(model(valid_contexts), valid_words).item()
                monitor.eval(val_loss=valid_loss)
                print(f"step {step}: train loss {loss.item():.3f}, valid loss {valid_loss:.3f}", flush=True)
    if out:
        torch.save(model.embed.state_dict(), out)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--steps", type=int, default=1500)
    parser.add_argument("--every", type=int, default=50, help="steps between the monitor's records")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", help="save the learned embedding (a state_dict) to this file")
    args = parser.parse_args()
    main(args.steps, args.every, args.seed, args.out)
