# Copyright 2026 The addernet_tf Authors. Licensed under the Apache License 2.0.
"""Pictures of a run or a study (PNG, matplotlib), written into `<DIR>/report/`.

    python -m trainers.report DIR      # a trainers.pkkd run, or a trainers.study folder

A run (its history.csv):
  accuracy.png   accuracy per epoch, train and val, student and teacher (the
                 paper's Fig. 2)
  kernel_maps.png  L_mid per tap, and σa / σc per tap, over training (PKKD runs)
A study (its study.json and runs):
  curves.png     the student's accuracy per epoch: per variant the mean over
                 seeds of val (with a min–max band) and train
  accuracy.png   test accuracy per variant: mean ± sample std, and every seed
  features.png   the paper's Fig. 1 on our data: a 2-D PCA of the penultimate
                 features on test images, coloured by class, of the cnn, ann
                 and pkkd students (the first finished seed of each present)

The trainer and the study write their reports when they finish.
"""

import math
import os
import sys

import numpy as np

from addernet_tf import _atomic, cli
from addernet_tf.trainers.history import read_history

__all__ = ["run_report", "study_report", "report", "write_quietly", "main"]


def _pyplot():
    import matplotlib  # pylint: disable=import-outside-toplevel
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # pylint: disable=import-outside-toplevel
    return plt


def _number(text):
    try:
        return float(text)
    except (TypeError, ValueError):
        return math.nan


def _history(run_path):
    """A run's history.csv (`trainers.history.read_history`) as numbers."""
    rows = read_history(os.path.join(run_path, "history.csv"))
    return [{key: _number(text) for key, text in row.items()} for row in rows]


def _save(fig, path):
    with _atomic.atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=110, bbox_inches="tight")
    _pyplot().close(fig)
    return path


def _epochs(rows):
    return [int(r["epoch"]) + 1 for r in rows]


def _series(rows, key):
    return [r.get(key, math.nan) for r in rows]


def run_report(run_path):
    """Writes a run's figures; returns their paths (none without history.csv)."""
    rows = _history(run_path)
    if not rows:
        return []
    plt = _pyplot()
    out_dir = os.path.join(run_path, "report")
    os.makedirs(out_dir, exist_ok=True)
    written = []
    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    x = _epochs(rows)
    for key, label, style in (("student_accuracy", "student, train", "-"),
                              ("val_student_accuracy", "student, val", "--"),
                              ("teacher_accuracy", "teacher, train", "-"),
                              ("val_teacher_accuracy", "teacher, val", "--")):
        if key in rows[0]:
            ax.plot(x, [100 * v for v in _series(rows, key)], style, marker="o", markersize=3,
                    label=label, color="C0" if "student" in key else "C1")
    ax.set(xlabel="epoch", ylabel="accuracy (%)", title="Accuracy per epoch")
    ax.grid(alpha=0.3)
    ax.legend()
    written.append(_save(fig, os.path.join(out_dir, "accuracy.png")))

    taps = sorted(int(k.split("_")[-1]) for k in rows[0] if k.startswith("feature_"))
    if taps:
        fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4.2))
        colours = plt.get_cmap("viridis")(np.linspace(0, 1, len(taps)))
        for tap, colour in zip(taps, colours):
            left.plot(x, _series(rows, f"feature_{tap}"), color=colour, label=f"tap {tap}")
            for side, style in (("sigma_a", "-"), ("sigma_c", ":")):
                if f"{side}_{tap}" in rows[0]:
                    right.plot(x, _series(rows, f"{side}_{tap}"), style, color=colour)
        left.set(xlabel="epoch", ylabel="L_mid of the tap (per channel: 2 − 2·corr)",
                 title="Feature loss per tap")
        right.set(xlabel="epoch", ylabel="σ (log scale)", yscale="log",
                  title="σa (solid) and σc (dotted) per tap")
        for ax in (left, right):
            ax.grid(alpha=0.3)
        left.legend(fontsize=6, ncol=2)
        written.append(_save(fig, os.path.join(out_dir, "kernel_maps.png")))
    return written


def _penultimate(model):
    import keras  # pylint: disable=import-outside-toplevel
    for name in ("avg_pool", "flatten"):
        try:
            return keras.Model(model.inputs, model.get_layer(name).output)
        except ValueError:
            continue
    return keras.Model(model.inputs, model.layers[-2].output)


def _pca_2d(features):
    centred = features - features.mean(0)
    _, _, vt = np.linalg.svd(centred, full_matrices=False)
    return centred @ vt[:2].T


def _feature_panels(study, limit=500):
    """[(title, 2-D points, labels)] for the cnn, ann and pkkd students present."""
    import keras  # pylint: disable=import-outside-toplevel
    import addernet_tf  # noqa: F401  pylint: disable=import-outside-toplevel,unused-import
    from addernet_tf.trainers import pkkd  # pylint: disable=import-outside-toplevel
    from addernet_tf.trainers import flags as trainer_flags  # pylint: disable=import-outside-toplevel
    panels = []
    images = labels = None
    for name in ("cnn", "ann", "pkkd"):
        entry = study["variants"].get(name)
        done = [r for r in (entry or {}).get("runs", []) if r["status"] == "finished"]
        path = done and os.path.join(done[0]["model_dir"], "student.keras")
        if not path or not os.path.exists(path):
            continue
        if images is None:
            config = trainer_flags.defaults(**{**study["base"],
                                               "model_dir": done[0]["model_dir"]})
            batches = list(pkkd.load_split(config, "test").as_numpy_iterator())
            # A fixed random subset: a split may be stored class by class.
            images, labels = (np.concatenate([b[i] for b in batches]) for i in (0, 1))
            chosen = np.sort(np.random.default_rng(0).permutation(len(labels))[:limit])
            images, labels = images[chosen], labels[chosen]
        model = keras.models.load_model(path, compile=False)
        features = np.asarray(_penultimate(model).predict(images, verbose=0))
        panels.append((f"{name} (seed {done[0]['seed']})",
                       _pca_2d(features.reshape(len(features), -1)), labels))
    return panels


def study_report(study_path):
    """Writes a study's figures; returns their paths."""
    study = _atomic.read_json(os.path.join(study_path, "study.json"), "the study")
    plt = _pyplot()
    out_dir = os.path.join(study_path, "report")
    os.makedirs(out_dir, exist_ok=True)
    written = []
    names = study.get("order") or list(study["variants"])

    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    for index, name in enumerate(names):
        histories = [_history(r["model_dir"]) for r in study["variants"][name]["runs"]
                     if r["status"] == "finished"]
        histories = [h for h in histories if h]
        if not histories:
            continue
        length = min(len(h) for h in histories)
        x = np.arange(1, length + 1)
        for key, style in (("val_student_accuracy", "-"), ("student_accuracy", "--")):
            values = 100 * np.array([_series(h, key)[:length] for h in histories])
            ax.plot(x, values.mean(0), style, color=f"C{index}",
                    label=f"{name} (n={len(histories)})" if style == "-" else None)
            if style == "-":
                ax.fill_between(x, values.min(0), values.max(0), color=f"C{index}", alpha=0.2)
    ax.set(xlabel="epoch", ylabel="student accuracy (%)",
           title="Student accuracy per epoch: val (solid, min–max band), train (dashed)")
    ax.grid(alpha=0.3)
    ax.legend()
    written.append(_save(fig, os.path.join(out_dir, "curves.png")))

    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    for index, name in enumerate(names):
        entry = study["variants"][name]
        stats = entry["test_accuracy"]
        points = [100 * r["test_accuracy"] for r in entry["runs"]
                  if r["status"] == "finished" and r["test_accuracy"] is not None]
        if stats["mean"] is not None:
            ax.bar(index, 100 * stats["mean"], color=f"C{index}", alpha=0.5,
                   yerr=100 * stats["std"] if stats["std"] is not None else None, capsize=6)
        ax.plot([index] * len(points), points, "k.", markersize=8)
    ax.set_xticks(range(len(names)), names)
    ax.set(ylabel="student test accuracy (%)",
           title="Test accuracy: mean ± sample std (bars), each seed (dots)")
    ax.grid(alpha=0.3, axis="y")
    written.append(_save(fig, os.path.join(out_dir, "accuracy.png")))

    panels = _feature_panels(study)
    if panels:
        fig, axes = plt.subplots(1, len(panels), figsize=(4.2 * len(panels), 4.2),
                                 squeeze=False)
        for ax, (title, points, labels) in zip(axes[0], panels):
            ax.scatter(points[:, 0], points[:, 1], c=labels, cmap="tab10", s=6)
            ax.set(title=title, xlabel="principal component 1 (a.u.)",
                   ylabel="principal component 2 (a.u.)")
        fig.suptitle("Penultimate features of the students on test images (PCA), by class")
        fig.tight_layout()
        written.append(_save(fig, os.path.join(out_dir, "features.png")))
    return written


def write_quietly(path):
    """`report(path)`, a failure reported in one line on stderr instead of raised
    (the trainer and the study call it after their results are safe)."""
    try:
        return report(path)
    except Exception as e:  # noqa: BLE001 (pictures must never cost a result)
        print(f"report: no pictures for {path}: {type(e).__name__}: {e}", file=sys.stderr)
        return []


def report(path):
    """`study_report` for a study folder, `run_report` for a run; returns the paths."""
    if os.path.exists(os.path.join(path, "study.json")):
        return study_report(path)
    if os.path.exists(os.path.join(path, "history.csv")):
        return run_report(path)
    raise ValueError(f"{path}: neither a run (history.csv) nor a study (study.json)")


def main(argv=None):
    (path,) = cli.positional("report", ["DIR"], argv, what="a run or a study folder")
    try:
        for written in report(path):
            print(written)
    except ValueError as e:
        cli.fail("report", cli.first_line(e))


if __name__ == "__main__":
    main()
