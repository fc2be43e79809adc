"""Generate the files of the `logs_only` sample project.

Deterministic (fixed seed):

    python generate.py

A support-ticket router (billing / technical / account / shipping) that was trained elsewhere
(a fine-tuned text model on the team's GPU box).  mltriage only gets what the training run left
behind, so this project has no [model] section:

- data/train.csv, data/valid.csv   the tickets (ticket_id, channel, text, queue) - same in both variants
- logs/metrics.csv                 the PyTorch Lightning CSVLogger file of the run
- preds/valid.csv                  that run's predictions on data/valid.csv (row-aligned)
- preds/valid_prev.csv             the previous run's predictions (same file in both variants)

The buggy run trained 30 epochs with no early stopping and kept the last checkpoint; the fixed
run stopped early and kept the best one.  The planted problems are listed in buggy/bugs.toml.
"""
from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pandas as pd

SEED = 314
HERE = Path(__file__).resolve().parent
CLASSES = ["account", "billing", "shipping", "technical"]
CHANNELS = ["chat", "email", "app", "web_form"]
CHANNEL_P = [0.35, 0.22, 0.23, 0.20]
N_TRAIN, N_VALID = 2400, 600
BATCH = 32

PLANS = ["basic", "family", "pro", "student", "business"]
DEVICES = ["iPhone", "Android phone", "iPad", "laptop", "Windows PC", "Mac", "smart TV"]
NAMES = ["Anna", "Ben", "Chloe", "David", "Emma", "Felix", "Grace", "Hugo", "Isla", "Jonas",
         "Karin", "Leo", "Maya", "Noah", "Olga", "Paul", "Rosa", "Sam", "Tara", "Yusuf"]
TEMPLATES = {
    "billing": [
        "I was charged twice for my {plan} subscription",
        "please send me an invoice for order {n}",
        "why did my bill go up this month",
        "I would like a refund for the {plan} plan, I cancelled on time",
        "the discount code was not applied at checkout",
        "my card was declined but the money left my account",
        "how do I switch from the {plan} plan to the {plan2} plan",
        "there is a charge I do not recognise on my statement",
        "can I get a refund for the months I did not use",
        "the VAT number is missing on my invoice",
        "I cancelled but I am still being billed",
        "do you offer a yearly payment option for {plan}",
    ],
    "shipping": [
        "my package has not arrived yet, order {n}",
        "tracking says delivered but there is nothing here",
        "can I change the delivery address for order {n}",
        "the parcel arrived damaged",
        "I want a refund because order {n} arrived two weeks late",
        "only half of my order {n} was delivered",
        "which courier do you use for deliveries to my area",
        "the tracking number for order {n} does not work",
        "can I pick up order {n} at a store instead",
        "my order {n} was sent to the wrong address",
        "how long does express shipping take",
        "I got someone else's parcel with order {n}",
    ],
    "account": [
        "I cannot log in to my account on my {device}",
        "how do I reset my password on the {device} app",
        "please delete my {plan} account and my data",
        "I want to change the email address on my {plan} account",
        "the two-factor code never arrives on my {device}",
        "my {plan} account was locked after too many attempts",
        "someone else logged in to my account from a {device}",
        "how do I add a family member to my {plan} account",
        "I never received the verification email",
        "can I merge my {plan} and {plan2} accounts",
        "my username is wrong on my {device}, please change it",
        "how do I turn off login alerts on my {device}",
    ],
    "technical": [
        "the app crashes when I open settings on my {device}",
        "I get error {code} when uploading a file",
        "sync is not working on my {device}",
        "videos keep buffering on my {device}",
        "the page stays blank after the update to {v}",
        "notifications stopped working on my {device}",
        "the export to PDF produces an empty file in version {v}",
        "the app is very slow since version {v}",
        "I cannot connect the {device} app to my printer",
        "search returns no results on my {device}",
        "dark mode makes the text unreadable on my {device}",
        "the app logs me out every few minutes on my {device}",
    ],
}
OPENERS = ["", "", "hi, ", "hello, ", "hey, ", "good morning, "]
CLOSERS = ["", "", "", " thanks", " thank you", " please help", " asap please"]


def ticket_text(rng, label: str, channel: str) -> str:
    t = str(rng.choice(TEMPLATES[label]))
    plan, plan2 = rng.choice(PLANS, size=2, replace=False)
    core = t.format(plan=plan, plan2=plan2, n=int(rng.integers(100000, 999999)),
                    device=rng.choice(DEVICES), code=int(rng.choice([400, 403, 404, 500, 502, 503])), v=f"{int(rng.integers(3, 6))}.{int(rng.integers(0, 10))}")
    if channel == "email":
        name = rng.choice(NAMES)
        return f"Hello, {core}. Kind regards, {name}"
    text = str(rng.choice(OPENERS)) + core + str(rng.choice(CLOSERS))
    return text[0].upper() + text[1:]


def make_tickets(rng) -> pd.DataFrame:
    total = N_TRAIN + N_VALID
    quota = dict(zip(CLASSES, np.round(np.array([0.24, 0.28, 0.26, 0.22]) * total).astype(int)))
    quota[CLASSES[-1]] = total - sum(quota[c] for c in CLASSES[:-1])
    rows, seen = [], set()
    count = dict.fromkeys(CLASSES, 0)
    while len(rows) < total:
        label = str(rng.choice(CLASSES))
        if count[label] == quota[label]:
            continue
        channel = str(rng.choice(CHANNELS, p=CHANNEL_P))
        text = ticket_text(rng, label, channel)
        if text.lower() in seen:  # no ticket text twice, within or across splits
            continue
        seen.add(text.lower())
        count[label] += 1
        rows.append({"channel": channel, "text": text, "queue": label})
    df = pd.DataFrame(rows).iloc[rng.permutation(total)].reset_index(drop=True)
    df.insert(0, "ticket_id", [f"T-{i}" for i in rng.choice(np.arange(10000, 99999), size=len(df), replace=False)])
    return df


CONFUSE = {"billing": "shipping", "shipping": "billing", "account": "technical", "technical": "account"}


def predictions(valid: pd.DataFrame, target_acc: np.ndarray, u: np.ndarray, z: np.ndarray,
                w: np.ndarray, overconfident: bool) -> tuple[pd.DataFrame, float]:
    """Row-aligned predictions whose correctness follows target_acc per row.

    u (shared across runs) decides which rows are hard, z the confidence ranking, w the wrong
    class: so two runs of similar quality agree on most rows, as real models do.
    """
    logit = np.log(target_acc / (1 - target_acc))
    p_right = 1 / (1 + np.exp(-(logit + 0.8 * z)))
    correct = u < p_right
    conf = np.clip(p_right, 0.40, 0.995)  # the top probability must stay the largest of the four
    y = valid["queue"].to_numpy()
    pred = np.where(correct, y, np.array([CONFUSE[c] if wi < 0.75 else CLASSES[int(wi * 97) % 4]
                                          for c, wi in zip(y, w)]))
    # a wrong guess that landed on the true class by the modulo above: push it to the confusion class
    pred = np.where(~correct & (pred == y), np.array([CONFUSE[c] for c in y]), pred)
    shown = 1 - (1 - conf) * 0.3 if overconfident else conf
    shown = np.maximum(shown, 0.40)
    probs = np.zeros((len(y), 4))
    for i in range(len(y)):
        k = CLASSES.index(pred[i])
        rest = 1 - shown[i]
        share = np.array([0.2, 0.3, 0.5])
        others = [j for j in range(4) if j != k]
        if not correct[i]:  # the true class gets the largest share of what is left
            t = CLASSES.index(y[i])
            others = [t] + [j for j in others if j != t]
            share = np.array([0.6, 0.25, 0.15])
        probs[i, k] = shown[i]
        probs[i, others] = rest * share
    out = pd.DataFrame({"prediction": pred})
    for j, c in enumerate(CLASSES):
        out[f"prob_{c}"] = probs[:, j].round(4)
    return out, float(correct.mean())


def lightning_log(path: Path, train_curve, val_curve, val_acc, n_train: int, rng) -> None:
    """Write a PyTorch Lightning CSVLogger metrics.csv (log_every_n_steps=50, sorted columns)."""
    steps_per_epoch = int(np.ceil(n_train / BATCH))
    rows = []
    step = 0
    for epoch, (tl, vl, va) in enumerate(zip(train_curve, val_curve, val_acc)):
        nxt = train_curve[epoch + 1] if epoch + 1 < len(train_curve) else 2 * tl - train_curve[epoch - 1]
        losses = []
        for s in range(steps_per_epoch):
            frac = s / steps_per_epoch
            level = tl + (nxt - tl) * (frac - 0.5)  # the loss keeps falling within an epoch
            loss = level * float(np.exp(rng.normal(0, 0.12)))  # mini-batch noise
            losses.append(loss)
            if (step + 1) % 50 == 0:
                rows.append({"epoch": epoch, "step": step, "train_loss_step": round(loss, 6)})
            step += 1
        rows.append({"epoch": epoch, "step": step - 1, "val_acc": round(va, 6), "val_loss": round(vl, 6)})
        rows.append({"epoch": epoch, "step": step - 1, "train_loss_epoch": round(float(np.mean(losses)), 6)})
    cols = ["epoch", "step", "train_loss_epoch", "train_loss_step", "val_acc", "val_loss"]
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=cols, lineterminator="\n")
        w.writeheader()
        for r in rows:
            w.writerow({c: r.get(c, "") for c in cols})


def main() -> None:
    rng = np.random.default_rng(SEED)
    tickets = make_tickets(rng)
    train, valid = tickets.iloc[:N_TRAIN], tickets.iloc[N_TRAIN:].reset_index(drop=True)
    for variant in ("buggy", "fixed"):
        (HERE / variant / "data").mkdir(parents=True, exist_ok=True)
        train.to_csv(HERE / variant / "data" / "train.csv", index=False)
        valid.to_csv(HERE / variant / "data" / "valid.csv", index=False)

    n = len(valid)
    u, z, w = rng.random(n), rng.normal(size=n), rng.random(n)
    y = valid["queue"].to_numpy()
    email = valid["channel"].eq("email").to_numpy()
    refund = valid["text"].str.contains("refund").to_numpy()
    account = y == "account"

    # previous run: decent overall, already weak on e-mails and refunds
    prev_acc = np.full(n, 0.93)
    prev_acc[email], prev_acc[refund] = 0.38, 0.68
    # buggy current run (last of 30 epochs, overfit): same weak spots, and account tickets regressed
    bug_acc = np.full(n, 0.96)
    bug_acc[account] = 0.65
    bug_acc[email], bug_acc[refund] = 0.35, 0.60
    # fixed current run (best checkpoint, e-mail signatures stripped, refund tickets relabelled)
    fix_acc = np.full(n, 0.92)
    fix_acc[email], fix_acc[refund] = 0.90, 0.93

    prev, prev_score = predictions(valid, prev_acc, u, z, w, overconfident=False)
    bug, bug_score = predictions(valid, bug_acc, np.clip(u + rng.normal(0, 0.03, n), 0, 1), z, w, overconfident=True)
    fix, fix_score = predictions(valid, fix_acc, np.clip(u + rng.normal(0, 0.03, n), 0, 1), z, w, overconfident=False)
    for variant, cur in (("buggy", bug), ("fixed", fix)):
        (HERE / variant / "preds").mkdir(parents=True, exist_ok=True)
        cur.to_csv(HERE / variant / "preds" / "valid.csv", index=False)
        prev.to_csv(HERE / variant / "preds" / "valid_prev.csv", index=False)

    # training logs --------------------------------------------------------------------------
    e = np.arange(30)
    # buggy: 30 epochs, no early stopping. Train loss keeps falling; val loss bottoms out at epoch 8
    train_b = 0.02 + 1.30 * np.exp(-e / 4.5)
    val_b = 0.42 + 0.95 * np.exp(-e / 2.6) + 0.0045 * np.maximum(e - 8, 0) ** 1.5
    val_b = val_b * np.exp(rng.normal(0, 0.012, 30))
    acc_b = 0.85 - 0.55 * np.exp(-e / 2.2) - (0.85 - bug_score) / 21 * np.maximum(e - 8, 0)
    acc_b = acc_b + rng.normal(0, 0.004, 30)
    acc_b[-1] = bug_score  # the last epoch's checkpoint is the one that wrote preds/valid.csv
    lightning_log(HERE / "buggy" / "logs" / "metrics.csv", train_b, val_b, acc_b, N_TRAIN, rng)

    # fixed: EarlyStopping(monitor="val_loss", patience=3): best epoch 11, stops after epoch 14
    e = np.arange(15)
    train_f = 0.24 + 1.10 * np.exp(-e / 3.2)
    val_f = 0.30 + 1.05 * np.exp(-e / 2.8) + 0.0012 * np.maximum(e - 10, 0) ** 2
    val_f = val_f * np.exp(rng.normal(0, 0.006, 15))
    val_f[12:] = np.maximum(val_f[12:], val_f[11] + np.array([0.002, 0.004, 0.003]))
    val_f[:11] = np.maximum(val_f[:11], val_f[11] + 0.001)
    acc_f = fix_score - 0.6 * np.exp(-e / 2.4) + rng.normal(0, 0.003, 15)
    acc_f[12:] = np.minimum(acc_f[12:], fix_score - 0.002)
    acc_f[11] = fix_score  # the best checkpoint (epoch 11) wrote preds/valid.csv
    lightning_log(HERE / "fixed" / "logs" / "metrics.csv", train_f, val_f, acc_f, N_TRAIN, rng)

    print(f"accuracy on valid: previous run {prev_score:.3f}, buggy run {bug_score:.3f}, fixed run {fix_score:.3f}")


if __name__ == "__main__":
    main()
