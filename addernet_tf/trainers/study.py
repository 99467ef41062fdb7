# Copyright 2026 The addernet_tf Authors. Licensed under the Apache License 2.0.
"""Multi-seed studies: every (method, seed) trained as an ordinary run, then summarized.

    python -m trainers.study --flagfile=configs/demo_digits.flags --methods=cnn,ann,kd,pkkd \\
        --seeds=0,1,2 --study_dir=runs/study [--baseline=ann] [--ablation=table1]

Every `trainers.pkkd` flag passes through as the base configuration. Each
variant (a method, or with `--ablation=table1` one of the paper's 8 Table 1
configurations) and seed is one `trainers.pkkd.train` run in
`<study_dir>/<variant>/seed<k>/`, one after another. Finished runs are
reported from their summary.json, not trained again, and a run cut off
resumes from its backup, so a killed study continues where it stopped. A run
that fails (a NaN, or any error) is listed as failed with its reason; it is
never dropped from the table, and the study goes on.

Writes `study.json` and `study.md` (atomically) with, per variant: its runs
(seed, test and val accuracy, status, reason), and over the finished runs
the mean, sample std, min, max and n of the test accuracy, and the paired
difference to `--baseline` over the seeds both finished: its mean and 95%
t-interval. study.md sets the paper's figure beside ours where the data set
and model match.
"""

import math
import os
import sys
import traceback
import types

from absl import flags

from addernet_tf import _atomic, cli
from addernet_tf.trainers import flags as trainer_flags
from addernet_tf.trainers import pkkd, report, run_dir

__all__ = ["ABLATIONS", "variants", "summarize", "run_study", "define_flags", "main"]

# Table 1 (ResNet-20, CIFAR-10): feature maps and 1x1 rho on or off, fixed or
# progressive teacher; all PKKD-style feature distillation plus KD.
ABLATIONS = {
    "table1": {
        f"{name}_{teacher}": dict(method="pkkd", kernel=kernel, rho=rho, teacher=teacher)
        for teacher in ("fixed", "progressive")
        for name, kernel, rho in (("kd", False, False), ("rho_kd", False, True),
                                  ("kernel_kd", True, False), ("kernel_rho_kd", True, True))
    },
}

# The paper's figures (test accuracy, %), by (dataset, model): Table 2 and Table 1.
_PAPER = {
    ("cifar10", "resnet20"): dict(cnn=92.93, ann=92.02, mmd=92.30, pkkd=92.96, kd_fixed=92.21,
                                  rho_kd_fixed=92.27, kernel_kd_fixed=92.29,
                                  kernel_rho_kd_fixed=92.39, kd_progressive=92.58,
                                  rho_kd_progressive=92.67, kernel_kd_progressive=92.75,
                                  kernel_rho_kd_progressive=92.96),
    ("cifar100", "resnet20"): dict(cnn=68.75, ann=67.60, mmd=68.07, pkkd=69.93),
    ("cifar10", "resnet32"): dict(cnn=93.59, ann=93.01, mmd=93.16, pkkd=93.62),
    ("cifar100", "resnet32"): dict(cnn=70.46, ann=69.17, mmd=69.89, pkkd=72.41),
    ("cifar10", "vgg_small"): dict(cnn=94.25, ann=93.72, mmd=93.97, pkkd=95.03),
    ("cifar100", "vgg_small"): dict(cnn=75.96, ann=74.58, mmd=75.14, pkkd=76.94),
}


def variants(methods, ablation=None):
    """{variant name: trainer overrides}: one per method, or the ablation's rows."""
    if ablation:
        if ablation not in ABLATIONS:
            raise ValueError(f"--ablation={ablation}: must be one of {', '.join(ABLATIONS)}")
        return dict(ABLATIONS[ablation])
    bad = [m for m in methods if m not in trainer_flags.METHODS]
    if bad or not methods:
        raise ValueError(f"--methods={','.join(methods)}: each must be one of "
                         f"{', '.join(trainer_flags.METHODS)}")
    return {method: dict(method=method) for method in methods}


def _t_quantile(level, dof):
    from scipy import stats  # pylint: disable=import-outside-toplevel
    return float(stats.t.ppf(0.5 + level / 2, dof))


def _describe(values):
    n = len(values)
    if n == 0:
        return dict(n=0, mean=None, std=None, min=None, max=None)
    mean = sum(values) / n
    std = math.sqrt(sum((v - mean) ** 2 for v in values) / (n - 1)) if n > 1 else None
    return dict(n=n, mean=mean, std=std, min=min(values), max=max(values))


def summarize(runs, baseline=None):
    """study.json's "variants": per variant its runs and their statistics.

    Args:
      runs: {variant: [run dict with "seed", "status" ("finished" or "failed"),
        "test_accuracy", "val_accuracy", "reason"]}.
      baseline: a variant to difference against, over the seeds both finished.
    """
    finished = {name: {r["seed"]: r["test_accuracy"] for r in rows
                       if r["status"] == "finished" and r["test_accuracy"] is not None}
                for name, rows in runs.items()}
    if baseline is not None and baseline not in runs:
        raise ValueError(f"--baseline={baseline}: not among the studied variants "
                         f"({', '.join(runs)})")
    out = {}
    for name, rows in runs.items():
        entry = dict(runs=rows, test_accuracy=_describe(list(finished[name].values())))
        if baseline is not None and name != baseline:
            seeds = sorted(set(finished[name]) & set(finished[baseline]))
            diffs = [finished[name][s] - finished[baseline][s] for s in seeds]
            stats = _describe(diffs)
            interval = None
            if stats["n"] > 1:
                half = _t_quantile(0.95, stats["n"] - 1) * stats["std"] / math.sqrt(stats["n"])
                interval = [stats["mean"] - half, stats["mean"] + half]
            entry["difference_to_baseline"] = dict(baseline=baseline, seeds=seeds,
                                                   mean=stats["mean"], std=stats["std"],
                                                   n=stats["n"], ci95=interval)
        out[name] = entry
    return out


def _run_one(settings, train):
    """One run as a row of the study: finished (with its figures) or failed (why)."""
    row = dict(seed=settings["seed"], model_dir=settings["model_dir"], status="failed",
               test_accuracy=None, val_accuracy=None, reason=None)
    try:
        summary = train(types.SimpleNamespace(**settings))
    except pkkd.NonFiniteLossError as e:
        row["reason"] = f"stopped on a non-finite loss: {e}"
        return row
    except ValueError:  # the configuration: every run would share it
        raise
    except Exception as e:  # noqa: BLE001 (a crash of one run is listed, not fatal)
        traceback.print_exc()
        row["reason"] = f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}"
        return row
    row.update(status="finished", test_accuracy=summary.get("student_test_accuracy"),
               val_accuracy=summary.get("student_val_accuracy"))
    return row


def _fmt(value, digits=2):
    return "–" if value is None else f"{100 * value:.{digits}f}"


def _markdown(study):
    base = study["base"]
    paper = _PAPER.get((base["dataset"], base["model"]), {})
    lines = [f"# Study: {base['model']} on {base['dataset']}, seeds "
             f"{', '.join(map(str, study['seeds']))}", "",
             "Test accuracy (%) of the student: mean ± sample std over the finished runs.", "",
             "| variant | mean ± std | min | max | n | failed | Δ to baseline (95% CI) | paper |",
             "|---|---|---|---|---|---|---|---|"]
    for name in study["order"]:
        entry = study["variants"][name]
        acc = entry["test_accuracy"]
        failed = sum(r["status"] != "finished" for r in entry["runs"])
        diff = entry.get("difference_to_baseline")
        delta = "–"
        if diff and diff["n"]:
            delta = f"{100 * diff['mean']:+.2f}"
            if diff["ci95"]:
                delta += f" ({100 * diff['ci95'][0]:+.2f}, {100 * diff['ci95'][1]:+.2f})"
        mean = _fmt(acc["mean"]) + (f" ± {_fmt(acc['std'])}" if acc["std"] is not None else "")
        lines.append(f"| {name} | {mean} | {_fmt(acc['min'])} | {_fmt(acc['max'])} | "
                     f"{acc['n']} | {failed} | {delta} | "
                     f"{paper[name] if name in paper else '–'} |")
    failures = [(name, r) for name, e in study["variants"].items() for r in e["runs"]
                if r["status"] != "finished"]
    if failures:
        lines += ["", "Failed runs:", ""]
        lines += [f"- {name}, seed {r['seed']}: {r['reason']}" for name, r in failures]
    lines += ["", "![accuracy per epoch](report/curves.png)", "",
              "![test accuracy per variant](report/accuracy.png)", "",
              "![penultimate features, PCA](report/features.png)"]
    return "\n".join(lines) + "\n"


def run_study(config, methods=("cnn", "ann", "kd", "pkkd"), seeds=(0, 1, 2), study_dir=None,
              baseline=None, ablation=None, train=None):
    """Runs (or resumes) a study; writes and returns study.json's content.

    Args:
      config: the base trainer configuration (absl FLAGS, an object or a dict).
      methods, seeds: what to run; `ablation` ("table1") replaces the methods.
      study_dir: the study's folder (default: `<model_dir>_study`).
      baseline: the variant the others are differenced against.
      train: the training function (default `trainers.pkkd.train`; tests
        pass their own).

    Raises:
      ValueError: a bad setting (one line).
    """
    base = trainer_flags.settings_of(config)
    problem = trainer_flags.validate(types.SimpleNamespace(**base))
    if problem:
        raise ValueError(problem)
    chosen = variants(list(methods), ablation)
    seeds = list(seeds)
    if not seeds or any(not isinstance(s, int) or s < 0 for s in seeds) or \
            len(set(seeds)) != len(seeds):
        raise ValueError(f"--seeds={','.join(map(str, seeds))}: must be distinct ints >= 0")
    if baseline is not None and baseline not in chosen:
        raise ValueError(f"--baseline={baseline}: not among the studied variants "
                         f"({', '.join(chosen)})")
    study_dir = study_dir or base["model_dir"].rstrip("/\\") + "_study"
    run_dir.check_writable_dir(study_dir, "study_dir")
    train = train or pkkd.train
    runs = {}
    for name, overrides in chosen.items():
        runs[name] = []
        for seed in seeds:
            settings = dict(base, **overrides, seed=seed, overwrite=False,
                            model_dir=os.path.join(study_dir, name, f"seed{seed}"))
            print(f"study: {name}, seed {seed}", file=sys.stderr, flush=True)
            runs[name].append(_run_one(settings, train))
    # Data paths stay: the report reads the test split again.
    study = dict(base={k: v for k, v in base.items()
                       if k not in ("model_dir", "verbose", "overwrite", "force")},
                 seeds=seeds, ablation=ablation, baseline=baseline, order=list(chosen),
                 variants=summarize(runs, baseline))
    _atomic.write_json(os.path.join(study_dir, "study.json"), study)
    _atomic.write_text(os.path.join(study_dir, "study.md"), _markdown(study))
    report.write_quietly(study_dir)
    return study


def define_flags(flag_values=flags.FLAGS):
    """The trainer's flags and the study's own."""
    trainer_flags.define_flags(flag_values)
    flags.DEFINE_list("methods", ["cnn", "ann", "kd", "pkkd"], "Methods to compare.",
                      flag_values=flag_values)
    flags.DEFINE_list("seeds", ["0", "1", "2"], "Seeds, one run per method each.",
                      flag_values=flag_values)
    flags.DEFINE_string("study_dir", None, "The study's folder (default: <model_dir>_study).",
                        flag_values=flag_values)
    flags.DEFINE_string("baseline", "ann", "The variant the others are compared with, "
                        "seed by seed (paired differences); empty: none.",
                        flag_values=flag_values)
    flags.DEFINE_string("ablation", None, f"Instead of --methods: one of "
                        f"{', '.join(ABLATIONS)} (the paper's Table 1 rows).",
                        flag_values=flag_values)


def _seeds(f):
    return [int(s) for s in f.seeds]


def _rules(f):
    try:
        _seeds(f)
    except ValueError:
        return f"--seeds={','.join(f.seeds)}: must be ints"
    return None


def main(f):
    seeds = _seeds(f)
    baseline = f.baseline or None
    if f.ablation and baseline == "ann":  # the default: no ann row in an ablation
        baseline = None
    study = run_study(f, methods=f.methods, seeds=seeds, study_dir=f.study_dir,
                      baseline=baseline, ablation=f.ablation)
    print(_markdown(study))


if __name__ == "__main__":
    cli.run("study", define_flags, main, validate=_rules, errors=(ValueError,))
