# Copyright 2026 The addernet_tf Authors. Licensed under the Apache License 2.0.
"""Count multiplications, additions, parameters and energy of a built Keras model.

`count_ops(model)` reads every layer's output shape and weights from a
functional (or built `Sequential`) model, nested models included: no
per-architecture table. All counts are per sample. The convention (a conv or
dense MAC is 1 mul + 1 add, an adder MAC is 2 adds, BN/activations/pooling/
residual adds under `other`) and the figures against the papers are in
docs/DESIGN.md, "Op counting".

    python -m addernet_tf.opcount --model resnet32 --num_classes 100 --conv adder \\
        [--input_size 32] [--json] [--per_layer]
"""

import dataclasses
import json
import math
import sys

import keras

from addernet_tf import _validate, cli
from addernet_tf.layers import Adder2D, Tap

__all__ = ["ENERGY_PJ", "LayerOps", "OpCount", "OTHER_KEYS", "count_ops", "energy_pj",
           "format_table"]

# (pJ per multiplication, pJ per addition), 45 nm, Horowitz (ISSCC 2014).
ENERGY_PJ = {
    "fp32": (3.7, 0.9),
    "fp16": (1.1, 0.4),
    "int32": (3.1, 0.1),
    "int8": (0.2, 0.03),
}

OTHER_KEYS = ("bn_mul", "bn_add", "affine_mul", "affine_add", "bias_add", "elementwise_add",
              "elementwise_mul", "compare", "pool_add", "pool_mul", "activation")

_MULT_LAYERS = (keras.layers.Conv1D, keras.layers.Conv2D, keras.layers.Conv3D, keras.layers.Dense)
_DEPTHWISE_LAYERS = (keras.layers.DepthwiseConv1D, keras.layers.DepthwiseConv2D)
_SEPARABLE_LAYERS = (keras.layers.SeparableConv1D, keras.layers.SeparableConv2D)
_ACTIVATION_LAYERS = (keras.layers.ReLU, keras.layers.LeakyReLU, keras.layers.ELU,
                      keras.layers.Softmax)
_AVG_POOL = (keras.layers.AveragePooling1D, keras.layers.AveragePooling2D,
             keras.layers.AveragePooling3D)
_MAX_POOL = (keras.layers.MaxPooling1D, keras.layers.MaxPooling2D, keras.layers.MaxPooling3D)
_GLOBAL_AVG_POOL = (keras.layers.GlobalAveragePooling1D, keras.layers.GlobalAveragePooling2D,
                    keras.layers.GlobalAveragePooling3D)
_GLOBAL_MAX_POOL = (keras.layers.GlobalMaxPooling1D, keras.layers.GlobalMaxPooling2D,
                    keras.layers.GlobalMaxPooling3D)
_NO_ARITHMETIC_LAYERS = (
    keras.layers.InputLayer, keras.layers.Flatten, keras.layers.Reshape, keras.layers.Permute,
    keras.layers.Dropout, keras.layers.SpatialDropout1D, keras.layers.SpatialDropout2D,
    keras.layers.SpatialDropout3D, keras.layers.GaussianNoise, keras.layers.GaussianDropout,
    keras.layers.AlphaDropout, keras.layers.ActivityRegularization, keras.layers.Identity,
    keras.layers.ZeroPadding1D, keras.layers.ZeroPadding2D, keras.layers.ZeroPadding3D,
    keras.layers.Cropping1D, keras.layers.Cropping2D, keras.layers.Cropping3D,
    keras.layers.Concatenate, keras.layers.RepeatVector, Tap)
# Operations that are not layers (`x + y`, `keras.ops.relu(x)` on symbolic
# tensors in a functional model), by class name.
_OP_RULES = {
    "Add": "elementwise_add", "Subtract": "elementwise_add",
    "Multiply": "elementwise_mul", "Divide": "elementwise_mul", "TrueDivide": "elementwise_mul",
    "Maximum": "compare", "Minimum": "compare",
    "Relu": "activation", "Relu6": "activation", "Sigmoid": "activation", "Tanh": "activation",
    "Softmax": "activation", "Gelu": "activation", "Silu": "activation",
    "LeakyRelu": "activation", "Elu": "activation", "HardSigmoid": "activation",
}
_NO_ARITHMETIC_OPS = {"Reshape", "Transpose", "Flatten", "Squeeze", "ExpandDims", "Concatenate",
                      "GetItem", "Identity", "Cast", "StopGradient"}


@dataclasses.dataclass(frozen=True)
class LayerOps:
    """Counts of one call of one layer (per sample).

    `kind` is `"mult"` (conv/dense: each MAC a mul and an add), `"adder"` (each
    MAC two adds), `"other"` (only `other` counts), `"none"` (no arithmetic) or
    `"uncounted"` (weightless, no rule). `params` is the layer's weight count on
    its first call and 0 on later calls of a shared layer.
    """

    name: str
    type: str
    output_shape: tuple
    kind: str
    macs: int
    mul: int
    add: int
    params: int
    other: dict


@dataclasses.dataclass(frozen=True)
class OpCount:
    """Per-sample counts of a model (see the module docstring for the rules).

    Attributes:
      mul, add: headline multiplications and additions.
      mult_macs: MACs of the multiplication layers (conv/dense).
      adder_macs: MACs of the adder layers.
      params, trainable_params: weight counts (all weights, trainable ones).
      energy_pj: {"fp32", "fp16", "int32", "int8"} → `mul·E_mul + add·E_add`.
      other: the operations left out of the headline, keys `OTHER_KEYS`.
      layers: one `LayerOps` per layer call, input to output.
      uncounted: names of weightless layers/ops that had no counting rule.
    """

    mul: int
    add: int
    mult_macs: int
    adder_macs: int
    params: int
    trainable_params: int
    energy_pj: dict
    other: dict
    layers: tuple
    uncounted: tuple

    def as_dict(self):
        """The totals as a JSON-ready dict (no per-layer rows)."""
        return {"mul": self.mul, "add": self.add, "params": self.params,
                "trainable_params": self.trainable_params, "energy_pj": dict(self.energy_pj),
                "other": dict(self.other)}


def energy_pj(mul, add):
    """`{"fp32": ..., "fp16": ..., "int32": ..., "int8": ...}` in pJ for `mul`, `add` ops."""
    # Rounded to 1e-6 pJ so that the float noise of 3.7·n does not reach the JSON.
    return {precision: round(mul * e_mul + add * e_add, 6)
            for precision, (e_mul, e_add) in ENERGY_PJ.items()}


def _size(variable):
    return math.prod(int(d) for d in variable.shape)


def _unique_size(variables):
    return sum(_size(v) for v in {id(v): v for v in variables}.values())


def _per_sample(tensor, where):
    dims = tuple(tensor.shape)[1:]
    if any(d is None for d in dims):
        raise ValueError(
            f"`count_ops` needs fully defined shapes, but {where} has shape {tuple(tensor.shape)}; "
            "build the model on an input with a fixed size")
    return dims, math.prod(dims)


def _has_activation(layer):
    activation = getattr(layer, "activation", None)
    return activation is not None and activation is not keras.activations.linear


def _count_layer(layer, node, name):
    """(kind, macs, other, per-sample output shape) for one call of a leaf layer."""
    out_shape, out = _per_sample(node.output_tensors[0], f"the output of layer {name!r}")
    other = {}
    if isinstance(layer, Adder2D):
        return "adder", out * (_size(layer.kernel) // int(layer.kernel.shape[-1])), other, out_shape
    if isinstance(layer, _MULT_LAYERS + _DEPTHWISE_LAYERS + _SEPARABLE_LAYERS):
        if isinstance(layer, _MULT_LAYERS):
            macs = out * (_size(layer.kernel) // int(layer.kernel.shape[-1]))
        elif isinstance(layer, _DEPTHWISE_LAYERS):
            kernel = layer.kernel  # [k..., c_in, depth_multiplier]
            macs = out * (_size(kernel) // (int(kernel.shape[-2]) * int(kernel.shape[-1])))
        else:
            positions = out // int(layer.pointwise_kernel.shape[-1])
            macs = positions * (_size(layer.depthwise_kernel) + _size(layer.pointwise_kernel))
        if getattr(layer, "bias", None) is not None:
            other["bias_add"] = out
        if _has_activation(layer):
            other["activation"] = out
        return "mult", macs, other, out_shape
    if isinstance(layer, keras.layers.BatchNormalization):
        return "other", 0, {"bn_mul": out, "bn_add": out}, out_shape
    if isinstance(layer, (keras.layers.Rescaling, keras.layers.Normalization)):
        return "other", 0, {"affine_mul": out, "affine_add": out}, out_shape
    if isinstance(layer, _ACTIVATION_LAYERS) or (
            isinstance(layer, keras.layers.Activation) and _has_activation(layer)):
        return "other", 0, {"activation": out}, out_shape
    if isinstance(layer, (keras.layers.Add, keras.layers.Subtract, keras.layers.Average,
                          keras.layers.Multiply, keras.layers.Maximum, keras.layers.Minimum)):
        extra = (len(node.input_tensors) - 1) * out
        if isinstance(layer, keras.layers.Multiply):
            return "other", 0, {"elementwise_mul": extra}, out_shape
        if isinstance(layer, (keras.layers.Maximum, keras.layers.Minimum)):
            return "other", 0, {"compare": extra}, out_shape
        other = {"elementwise_add": extra}
        if isinstance(layer, keras.layers.Average):
            other["elementwise_mul"] = out
        return "other", 0, other, out_shape
    if isinstance(layer, _AVG_POOL + _MAX_POOL):
        window = math.prod(layer.pool_size)
        if isinstance(layer, _MAX_POOL):
            return "other", 0, {"compare": (window - 1) * out}, out_shape
        return "other", 0, {"pool_add": (window - 1) * out, "pool_mul": out}, out_shape
    if isinstance(layer, _GLOBAL_AVG_POOL + _GLOBAL_MAX_POOL):
        _, inp = _per_sample(node.input_tensors[0], f"the input of layer {name!r}")
        window = inp // out
        if isinstance(layer, _GLOBAL_MAX_POOL):
            return "other", 0, {"compare": (window - 1) * out}, out_shape
        return "other", 0, {"pool_add": (window - 1) * out, "pool_mul": out}, out_shape
    if isinstance(layer, _NO_ARITHMETIC_LAYERS) or (
            isinstance(layer, keras.layers.Activation) and not _has_activation(layer)):
        return "none", 0, other, out_shape
    if layer.weights:
        raise ValueError(
            f"`count_ops` has no rule for layer {name!r} of type {type(layer).__name__}, which "
            f"has weights ({_unique_size(layer.weights)} parameters); add a rule to "
            "addernet_tf/opcount.py rather than let it count as zero")
    return "uncounted", 0, other, out_shape


def _count_operation(op, node, name):
    """(kind, macs, other, per-sample output shape) for one call of a non-layer operation."""
    out_shape, out = _per_sample(node.output_tensors[0], f"the output of operation {name!r}")
    op_type = type(op).__name__
    if op_type in _OP_RULES:
        return "other", 0, {_OP_RULES[op_type]: out}, out_shape
    if op_type in _NO_ARITHMETIC_OPS:
        return "none", 0, {}, out_shape
    return "uncounted", 0, {}, out_shape


def _graph_nodes(model):
    """The nodes of `model`'s graph, from inputs to outputs."""
    if isinstance(model, keras.Sequential):
        functional = getattr(model, "_functional", None)
        if functional is None:
            raise ValueError(
                f"`count_ops` needs a built model, but Sequential model {model.name!r} has no "
                "input shape; start it with `keras.Input(shape)`")
        model = functional
    nodes_by_depth = getattr(model, "_nodes_by_depth", None)
    if nodes_by_depth is None:
        raise ValueError(
            f"`count_ops` needs a functional or Sequential model (a graph of layers), got "
            f"{type(model).__name__} {model.name!r}")
    return [node for depth in sorted(nodes_by_depth, reverse=True)
            for node in nodes_by_depth[depth]]


def _model_input_shapes(model):
    return [tuple(t.shape)[1:] for t in keras.tree.flatten(model.inputs)]


def _walk(model, prefix, rows, seen_layers):
    for node in _graph_nodes(model):
        op = node.operation
        if node.is_input or isinstance(op, keras.layers.InputLayer):
            continue
        name = prefix + op.name
        if isinstance(op, keras.Model):
            called = [tuple(t.shape)[1:] for t in node.input_tensors]
            if called != _model_input_shapes(op):
                raise ValueError(
                    f"nested model {name!r} is called on per-sample shapes {called} but was built "
                    f"on {_model_input_shapes(op)}; `count_ops` counts a nested model at the "
                    "shapes it was built with")
            _walk(op, name + "/", rows, seen_layers)
            continue
        if isinstance(op, keras.layers.Layer):
            kind, macs, other, out_shape = _count_layer(op, node, name)
            params = 0 if id(op) in seen_layers else _unique_size(op.weights)
            seen_layers.add(id(op))
        else:
            kind, macs, other, out_shape = _count_operation(op, node, name)
            params = 0
        if kind == "adder":
            mul, add = 0, 2 * macs
        elif kind == "mult":
            mul, add = macs, macs
        else:
            mul = add = 0
        rows.append(LayerOps(name=name, type=type(op).__name__, output_shape=out_shape,
                             kind=kind, macs=macs, mul=mul, add=add, params=params,
                             other=other))


def count_ops(model):
    """Counts the per-sample operations, parameters and energy of `model`.

    Args:
      model: a functional `keras.Model` or a built `keras.Sequential`, with fully
        defined input shapes (except the batch dimension). Nested models are
        walked; subclassed models cannot be (their graph is not recorded).

    Returns:
      An `OpCount`.

    Raises:
      ValueError: `model` is not a graph of layers, has undefined shapes, or
        holds a layer with weights of a type that has no counting rule.
    """
    rows = []
    _walk(model, "", rows, set())
    mult_macs = sum(r.macs for r in rows if r.kind == "mult")
    adder_macs = sum(r.macs for r in rows if r.kind == "adder")
    mul = sum(r.mul for r in rows)
    add = sum(r.add for r in rows)
    other = {key: sum(r.other.get(key, 0) for r in rows) for key in OTHER_KEYS}
    return OpCount(
        mul=mul, add=add, mult_macs=mult_macs, adder_macs=adder_macs,
        params=_unique_size(model.weights),
        trainable_params=_unique_size(model.trainable_weights),
        energy_pj=energy_pj(mul, add), other=other, layers=tuple(rows),
        uncounted=tuple(r.name for r in rows if r.kind == "uncounted"))


# ----------------------------------------------------------------------------
# Command line.

def _human(n):
    for scale, suffix in ((1e9, "G"), (1e6, "M"), (1e3, "K")):
        if abs(n) >= scale:
            return f"{n / scale:.2f}{suffix}"
    return str(n)


def format_table(result, per_layer=False):
    """A readable multi-line report of an `OpCount`."""
    lines = []
    if per_layer:
        header = (f"{'layer':<40} {'type':<22} {'output':<16} {'kind':<6} {'MACs':>13} "
                  f"{'params':>10}")
        lines += [header, "-" * len(header)]
        for r in result.layers:
            if r.kind == "none":
                continue
            shape = "x".join(str(d) for d in r.output_shape)
            lines.append(f"{r.name:<40.40} {r.type:<22.22} {shape:<16} {r.kind:<6} "
                         f"{r.macs:>13,} {r.params:>10,}")
        lines.append("")
    lines += [
        f"multiplications   {result.mul:>16,}  ({_human(result.mul)})",
        f"additions         {result.add:>16,}  ({_human(result.add)})",
        f"  conv/dense MACs {result.mult_macs:>16,}  (1 mul + 1 add each)",
        f"  adder MACs      {result.adder_macs:>16,}  (2 adds each)",
        f"parameters        {result.params:>16,}  (trainable {result.trainable_params:,})",
        "energy, 45 nm (pJ): " + ", ".join(
            f"{k} {v:,.0f}" for k, v in result.energy_pj.items()),
        "not in the figures above: " + ", ".join(
            f"{k} {v:,}" for k, v in result.other.items() if v),
    ]
    if result.uncounted:
        lines.append("weightless layers without a counting rule: " + ", ".join(result.uncounted))
    return "\n".join(lines)


def _main(values):
    from addernet_tf import models

    network = values.network
    if values.conv is not None:
        network = _validate.OLD_NETWORKS[values.conv]
        print(f"opcount: --conv is deprecated: use --network={network}", file=sys.stderr)
    kwargs = {"network": network}
    given = [f"--model={values.model}", f"--network={network}"]
    if values.num_classes is not None:
        kwargs["num_classes"] = values.num_classes
        given.append(f"--num_classes={values.num_classes}")
    if values.input_size is not None:
        kwargs["input_shape"] = (values.input_size, values.input_size, 3)
        given.append(f"--input_size={values.input_size}")
    try:
        model = models.get_model(values.model, **kwargs)
    except ValueError as e:
        raise ValueError(f"cannot build {' '.join(given)}: {cli.first_line(e)}") from None
    result = count_ops(model)
    num_classes = int(model.outputs[0].shape[-1])
    input_shape = list(_model_input_shapes(model)[0])
    if values.json:
        print(json.dumps({"model": values.model, "network": network, "num_classes": num_classes,
                          "input_shape": input_shape, **result.as_dict()}))
        return
    print(f"model {values.model}, network {network}, num_classes {num_classes}, "
          f"input {'x'.join(str(d) for d in input_shape)} (per sample)")
    print(format_table(result, per_layer=values.per_layer))


def define_flags(flag_values=None):
    """Registers the command's flags (on absl's FLAGS by default). Only the
    program calls it: importers (the trainer) keep their own `--model` etc."""
    from addernet_tf import models

    d = cli.Definer(flag_values, module=__name__)
    d.DEFINE(cli.CheckedString(models.model_name_problem), "model", "resnet20",
             f"Architecture to count: one of "
             f"{', '.join(sorted(models.MODELS))}, 'keras:<application>' or "
             "'module:function' (a Keras CNN, adderized).")
    d.DEFINE_integer("num_classes", None, "Classes of the classifier (default: the model's "
                     "own, 10 for CIFAR models, 1000 for ImageNet ones).", lower_bound=1)
    d.DEFINE_enum("network", "ann", ["ann", "cnn"],
                  "`ann`: the adder network; `cnn`: the CNN.")
    d.DEFINE_enum("conv", None, ["adder", "conv"],
                  "Deprecated spelling of --network (adder: ann, conv: cnn).")
    d.DEFINE_integer("input_size", None, "Input height = width (default: the model's own, "
                     "32 for CIFAR models, 224 for ImageNet ones).", lower_bound=1)
    d.DEFINE_boolean("json", False, "Print one JSON line instead of a table.")
    d.DEFINE_boolean("per_layer", False, "Also print one row per layer (table only).")


if __name__ == "__main__":
    cli.run("opcount", define_flags, _main)
