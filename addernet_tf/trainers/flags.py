# Copyright 2026 The addernet_tf Authors. Licensed under the Apache License 2.0.
"""Command-line flags of `trainers.pkkd`, with working defaults and one-line checks.

`define_flags()` registers them (only the programs call it, so importing the
trainer modules defines nothing); `validate(FLAGS)` returns the first problem
as one line naming the flag, or None.
"""

import functools
import math
import types

from absl import flags

from addernet_tf import cli, data
from addernet_tf.layers import TAP_KINDS
from addernet_tf.layers.kernel_heads import DIRECTIONS, SIGMA_BOUNDS
from addernet_tf.models import MODELS, model_name_problem
from addernet_tf.trainers.distiller import TEACHER_MODES
from addernet_tf.trainers.losses import TEACHER_HEADS
from addernet_tf.trainers.strategy import STRATEGIES, tf_config_problem

__all__ = ["METHODS", "STRATEGIES", "DEFAULT_RECALIBRATION_BATCHES", "OPERATIONAL",
           "define_flags", "validate", "recalibration_batches", "defaults", "flag_names",
           "as_dict", "settings_of", "run_settings"]

METHODS = ("cnn", "ann", "kd", "mmd", "at", "sp", "pkkd")
DEFAULT_RECALIBRATION_BATCHES = 10
# Flags that say where and how to run, not what is computed: every other flag
# defines the run (run.json; a tuner's search.json).
OPERATIONAL = ("model_dir", "verbose", "log_every_steps", "download", "data_dir", "manual_dir",
               "distribution_strategy", "cpu_replicas", "overwrite", "force")


def define_flags(flag_values=flags.FLAGS):
    """Registers every trainer flag on `flag_values` (absl's global `FLAGS`)."""
    d = cli.Definer(flag_values, module=__name__)
    d.DEFINE_enum("dataset", "cifar10", data.DATASETS, "The data set (image_folder: a folder "
                  "of class folders, see --data_dir).")
    d.DEFINE_string("data_dir", None, "tfds data directory (default: tfds' own); for "
                    "--dataset=image_folder, the folder (DIR/train/<class>/<images>, and "
                    "DIR/test/<class>/ if there is one).")
    d.DEFINE_boolean("download", True, "Download and prepare a tfds data set that is not "
                     "prepared yet (fails at once, in one line, without network).")
    d.DEFINE_float("validation_split", 0.1, "Fraction of the training split held out (a fixed, "
                   "seeded carve) for the per-epoch val_* metrics and the tuner; the test "
                   "split is read once, at the end. 0: no validation.")
    d.DEFINE_string("manual_dir", None, "imagenet2012: directory with the ILSVRC2012 tars.")
    d.DEFINE_integer("image_size", None, "Input side; default: the data set's (32 / 224).")
    d.DEFINE(cli.CheckedString(model_name_problem), "model", "resnet20",
             f"One of {', '.join(MODELS)}, or any Keras CNN made an adder network by "
             "addernet_tf.adderize: 'keras:<application>' (e.g. keras:ResNet50V2, built "
             "without pretrained weights) or 'module:function' (function(num_classes=, "
             "input_shape=) returns the CNN).")
    d.DEFINE_enum("method", "pkkd", METHODS, "cnn and ann train one network on "
                  "cross-entropy; the others distill a CNN into the ANN.")
    d.DEFINE_enum("teacher", "progressive", TEACHER_MODES, "progressive (trained alongside) "
                  "or fixed.")
    d.DEFINE_string("teacher_checkpoint", None, "fixed teacher: a .weights.h5 or .keras file of "
                    "the CNN; without it the teacher is trained first for --teacher_epochs.")
    d.DEFINE_integer("teacher_epochs", None, "Epochs of the fixed teacher's own training "
                     "(default: --epochs).")
    d.DEFINE_boolean("kernel", True, "pkkd: kernel maps (Laplace / Gaussian-alike).")
    d.DEFINE_boolean("rho", True, "pkkd: the 1x1 convolution rho on each head.")
    d.DEFINE_enum("teacher_heads", "fixed", TEACHER_HEADS, "pkkd: fixed or learn (sigma_c "
                  "and rho_c).")
    d.DEFINE_boolean("standardize_maps", True, "pkkd: compare the heads' outputs standardized "
                     "per channel (L_mid per channel = 2 - 2 corr; a flat map cannot win); "
                     "false: the plain MSE of Eq. 13.")
    d.DEFINE_enum("kernel_direction", "rising", DIRECTIONS, "pkkd: both maps rise with "
                  "their layer's output (the Laplace kernel exp(-|x-f|_1/sigma_a)), or both "
                  "fall (Eq. 7/8's printed signs).")
    d.DEFINE_enum("tap", "layer", TAP_KINDS, "Distilled features: layer (raw conv/adder "
                  "outputs) or block (block outputs).")
    d.DEFINE_float("alpha", 1.0, "Weight of the logit KD term (Eq. 14).")
    d.DEFINE_float("beta", 1.0, "Weight of the feature loss (Eq. 14).")
    d.DEFINE_float("temperature", 1.0, "KD temperature.")
    d.DEFINE_float("sigma_a_init", 1.0, "pkkd: initial sigma of the student's Laplace maps.")
    d.DEFINE_float("sigma_c_init", 1.0, "pkkd: initial sigma of the teacher's Gaussian maps.")
    d.DEFINE_integer("epochs", 400, "Training epochs.")
    d.DEFINE_integer("steps_per_epoch", None, "Steps per epoch; default: one pass over the "
                     "training split.")
    d.DEFINE_integer("batch_size", 256, "Global batch size (all replicas).")
    d.DEFINE_float("learning_rate", 0.1, "Initial learning rate (cosine decay to 0), both nets.")
    d.DEFINE_float("momentum", 0.9, "SGD momentum.")
    d.DEFINE_float("weight_decay", 5e-4, "Coupled L2 weight decay (PyTorch SGD style).")
    d.DEFINE_float("adaptive_eta", 0.2, "AdderNet's adaptive learning-rate eta (0 = off).")
    d.DEFINE_integer("bn_recalibration_batches", None, "Before every evaluation and before "
                     "saving, re-estimate the student's BN statistics with its current weights "
                     f"on this many training batches (0 = off; default: "
                     f"{DEFAULT_RECALIBRATION_BATCHES} for an adder student, 0 for a CNN).")
    d.DEFINE_string("model_dir", "runs/pkkd", "Checkpoints, logs and summary.json go here. "
                    "A rerun continues the run there (or reports it, if finished); other "
                    "settings than the run's stop it, unless --overwrite.")
    d.DEFINE_boolean("overwrite", False, "Start over: delete the outputs of the run in "
                     "--model_dir (finished or not) before training.")
    d.DEFINE_boolean("force", False, "Skip the check that refuses a batch or image size "
                     "whose estimated memory does not fit.")
    d.DEFINE_enum("distribution_strategy", "default", STRATEGIES, "default: one device; "
                  "mirrored over this machine's GPUs (or --cpu_replicas CPU devices); "
                  "multi_worker over the workers TF_CONFIG lists.")
    d.DEFINE_integer("cpu_replicas", 0, "mirrored without GPUs: split the CPU into this many "
                     "logical devices, one replica each (0 = leave the devices alone).")
    d.DEFINE_integer("seed", 0, "Random seed (weights, data order, augmentation).")
    d.DEFINE_integer("verbose", 1, "Keras progress: 0 silent, 1 bar, 2 one line per epoch.")
    d.DEFINE_integer("log_every_steps", 100, "TensorBoard writes the training metrics every "
                     "this many steps (0: once per epoch).")


def _bad(flag, value, what):
    return f"--{flag}={value}: {what}"


@functools.lru_cache(maxsize=None)
def _checked_by_parser():
    """(name, parser) of the flags whose parser refuses bad values (choices, --model)."""
    values = flags.FlagValues()
    define_flags(values)
    return tuple((name, values[name].parser) for name in sorted(values)
                 if isinstance(values[name].parser, (flags.EnumParser, cli.CheckedString)))


def _parser_problem(f):
    """The first value of `f` that its flag's own parser refuses (for settings that
    were not parsed from a command line: `defaults`, a tuner's trial), or None."""
    for name, parser in _checked_by_parser():
        value = getattr(f, name)
        if isinstance(parser, flags.EnumParser) and value not in parser.enum_values:
            return _bad(name, value, f"must be one of {', '.join(parser.enum_values)}")
        if isinstance(parser, cli.CheckedString):
            try:
                parser.parse(value)
            except ValueError as e:
                return _bad(name, value, cli.first_line(e))
    return None


def validate(f):
    """First problem with the parsed flags `f`, as one line, or None."""
    problem = _parser_problem(f)
    if problem:
        return problem
    for flag in ("alpha", "beta", "weight_decay", "momentum", "adaptive_eta"):
        value = getattr(f, flag)
        if not (math.isfinite(value) and value >= 0):
            return _bad(flag, value, "must be a finite number >= 0")
    for flag in ("temperature", "learning_rate", "sigma_a_init", "sigma_c_init"):
        value = getattr(f, flag)
        if not (math.isfinite(value) and value > 0):
            return _bad(flag, value, "must be a finite number > 0")
    low, high = SIGMA_BOUNDS
    for flag in ("sigma_a_init", "sigma_c_init"):
        if not low <= getattr(f, flag) <= high:
            return _bad(flag, getattr(f, flag), f"must be in [{low:g}, {high:g}]")
    split = f.validation_split
    if not (math.isfinite(split) and 0 <= split < 1):
        return _bad("validation_split", split, "must be in [0, 1)")
    if f.bn_recalibration_batches is not None and f.bn_recalibration_batches < 0:
        return _bad("bn_recalibration_batches", f.bn_recalibration_batches, "must be >= 0")
    for flag in ("epochs", "batch_size"):
        if getattr(f, flag) <= 0:
            return _bad(flag, getattr(f, flag), "must be > 0")
    for flag in ("steps_per_epoch", "teacher_epochs", "image_size"):
        value = getattr(f, flag)
        if value is not None and value <= 0:
            return _bad(flag, value, "must be > 0")
    if f.momentum >= 1:
        return _bad("momentum", f.momentum, "must be < 1")
    if f.seed < 0:
        return _bad("seed", f.seed, "must be >= 0")
    if f.log_every_steps < 0:
        return _bad("log_every_steps", f.log_every_steps, "must be >= 0")
    if f.verbose not in (0, 1, 2):
        return _bad("verbose", f.verbose, "must be 0, 1 or 2")
    if f.dataset == "image_folder" and not f.data_dir:
        return _bad("data_dir", f.data_dir, "required with --dataset=image_folder")
    if f.manual_dir and f.dataset != "imagenet2012":
        return _bad("manual_dir", f.manual_dir, "only applies to --dataset=imagenet2012")
    if f.teacher_checkpoint and f.teacher != "fixed":
        return _bad("teacher_checkpoint", f.teacher_checkpoint, "needs --teacher=fixed")
    if not f.model_dir:
        return _bad("model_dir", f.model_dir, "must not be empty")
    cpu_replicas = getattr(f, "cpu_replicas", 0)
    if cpu_replicas < 0:
        return _bad("cpu_replicas", cpu_replicas, "must be >= 0")
    if cpu_replicas and f.distribution_strategy != "mirrored":
        return _bad("cpu_replicas", cpu_replicas,
                    "only applies to --distribution_strategy=mirrored")
    if cpu_replicas > 1 and f.batch_size % cpu_replicas:
        return _bad("batch_size", f.batch_size,
                    f"must be a multiple of --cpu_replicas={cpu_replicas}")
    if f.distribution_strategy == "multi_worker":
        return tf_config_problem()
    return None


def recalibration_batches(f):
    """K of `--bn_recalibration_batches`, its default resolved (adder students only)."""
    if f.bn_recalibration_batches is not None:
        return f.bn_recalibration_batches
    return 0 if f.method == "cnn" else DEFAULT_RECALIBRATION_BATCHES


def defaults(**overrides):
    """The trainer's settings: every flag's default, then `overrides`, as an object
    for `trainers.pkkd.train` (an unknown name is a ValueError)."""
    values = flags.FlagValues()
    define_flags(values)
    unknown = sorted(set(overrides) - set(values))
    if unknown:
        raise ValueError(f"unknown trainer settings: {', '.join(unknown)}")
    return types.SimpleNamespace(**{**{name: values[name].default for name in values},
                                    **overrides})


def flag_names():
    """The trainer's flag names, sorted (without touching absl's global FLAGS)."""
    values = flags.FlagValues()
    define_flags(values)
    return sorted(values)


def settings_of(config):
    """Every trainer setting of `config` (absl FlagValues, a dict or any object
    with the flags as attributes) as a plain dict."""
    names = flag_names()
    if isinstance(config, dict):
        return {name: config[name] for name in names}
    if isinstance(config, flags.FlagValues):
        return {name: config[name].value for name in names}
    return {name: getattr(config, name) for name in names}


def run_settings(f):
    """The settings that define the run `f` configures, defaults resolved
    (image size, teacher epochs, recalibration batches), as a dict."""
    settings = {name: value for name, value in as_dict(f).items() if name not in OPERATIONAL}
    settings["image_size"] = data.dataset_info(f.dataset, f.image_size,
                                               data_dir=f.data_dir).image_shape[0]
    if f.dataset == "image_folder":  # here the folder is the data, not where it lies
        settings["data_dir"] = data.prepare(f.dataset, f.data_dir)
    settings["teacher_epochs"] = f.teacher_epochs or f.epochs
    settings["bn_recalibration_batches"] = recalibration_batches(f)
    return settings


def as_dict(f):
    """The trainer's settings as a plain dict (for summary.json)."""
    if isinstance(f, flags.FlagValues):  # only the trainer's flags, whatever else is defined
        return {name: f[name].value for name in flag_names()}
    return dict(vars(f))
