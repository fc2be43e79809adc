"""What each step is for, what to look at, common mistakes, and the manual checklist items.

Plain data, shown by the app next to the step's checks. The manual items cover what no code can
check for the user; their text is also the key under which ticks are saved in session.json, so
rewording an item un-ticks it (acceptable: the item is then a different promise).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class StepGuide:
    purpose: str
    look_at: str
    mistakes: str
    manual: tuple[str, ...]


GUIDES: dict[str, StepGuide] = {
    "problem": StepGuide(
        purpose="Pin down what the model predicts, which classes exist, which number decides whether it "
                "is good, and what a model that ignores its inputs would score. Everything later is "
                "measured against this.",
        look_at="The inferred task, target and classes below; the class counts per split; the baseline "
                "score that any real model must clearly beat.",
        mistakes="Optimising accuracy on imbalanced classes; a metric nobody downstream cares about; a "
                 "regression loss on class ids; no baseline, so a useless model looks fine.",
        manual=(
            "Wrote down, in one sentence, what a prediction is used for",
            "Wrote down which errors would be costly (and which are cheap)",
            "Agreed the metric and a target score with whoever uses the model",
        ),
    ),
    "sanity": StepGuide(
        purpose="Prove the plumbing works before tuning anything: data loads, the model builds, the loss "
                "starts where theory says, a tiny batch can be memorised and every weight gets a gradient.",
        look_at="Loss at initialisation against its theoretical value; whether the small-batch loss goes "
                "to near zero; parameters without gradient; your own train_step and predict.",
        mistakes="Forgetting optimizer.zero_grad(); leaving the model in train mode at inference; a "
                 "softmax before a loss that applies its own; shapes that broadcast silently.",
        manual=(
            "Ran one batch through by hand and looked at the shapes",
            "Checked that training and serving use the same preprocessing",
        ),
    ),
    "data": StepGuide(
        purpose="Look at the data before the model: most model bugs are data bugs. Find gaps, copies, "
                "leaks between splits or from the target, odd scales, suspect labels and shift.",
        look_at="Rows shared between train and validation; features that predict the label too well; "
                "duplicated inputs with different labels; columns that are ids in disguise.",
        mistakes="Splitting after augmenting or deduplicating; normalising with statistics from all "
                 "splits; a sorted training file with shuffling off; trusting labels without reading any.",
        manual=(
            "Read 20 random training examples with their labels",
            "Read 20 validation examples the model will be judged on",
            "Know how the labels were produced and by whom",
        ),
    ),
    "architecture": StepGuide(
        purpose="Check that the network fits the task: the output layer matches the loss, the output "
                "size matches the classes, and the capacity is sensible for the amount of data.",
        look_at="The final activation against the loss; dead or saturated units after initialisation; "
                "the scale of the initial weights; dropout where it belongs.",
        mistakes="Softmax or sigmoid in front of a loss that expects logits; one output for a multi-class "
                 "problem; a huge model on a few thousand rows; ReLU units that never fire.",
        manual=(
            "Started from the simplest model that could work",
            "Compared against a linear or tree baseline on the same features",
        ),
    ),
    "training": StepGuide(
        purpose="Read the learning dynamics: is the learning rate in the range where loss falls, do "
                "gradients stay finite, does the model under- or overfit, and when should training stop.",
        look_at="The learning-rate range test curve; spikes and NaNs in the loss; the gap between train "
                "and validation curves; the update-to-weight ratio.",
        mistakes="A learning rate copied from another optimiser; judging training from the last epoch "
                 "only; tuning on the test set; stopping on training loss instead of validation.",
        manual=(
            "Looked at the full loss curves, not only the final numbers",
            "Changed one thing at a time and wrote down each result",
        ),
    ),
    "metrics": StepGuide(
        purpose="Measure what the model achieves on data it has not seen, against the baseline, per "
                "class and with calibrated probabilities.",
        look_at="Validation score against the baseline; the gap to training; the weakest class; the "
                "confusion matrix; whether probabilities mean what they say.",
        mistakes="Reporting accuracy when classes are imbalanced; reusing the validation set so often "
                 "that it stops being held out; ignoring a test score far below validation.",
        manual=(
            "Checked the headline number on the test split only once",
            "Looked at the confusion matrix for the costly errors",
        ),
    ),
    "errors": StepGuide(
        purpose="Find where the model fails: confident mistakes, weak slices of the data, the curated "
                "slice tests, and what got worse since the previous run.",
        look_at="The most confident wrong predictions (often label errors or leaks); slices with a much "
                "lower score; slice tests below their threshold; regressions.",
        mistakes="Looking only at aggregate scores; fixing one slice and breaking another unnoticed; no "
                 "fixed test set for known hard cases.",
        manual=(
            "Read the 20 most confident mistakes",
            "Added a slice test for each failure mode found",
        ),
    ),
}

STATUS_MEANINGS = (
    ("fail", "very likely a bug that costs model quality: fix it first"),
    ("warn", "worth a look: unusual, possibly fine in your setting"),
    ("error", "the check itself broke (often an error in project code): read its message"),
    ("info", "a measurement worth knowing, no verdict"),
    ("pass", "checked and fine"),
    ("skipped", "inputs missing: the detail says what to add to mltriage.toml"),
    ("not run", "not run yet in this session: press r"),
)
