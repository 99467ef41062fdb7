# Copyright 2026 The addernet_tf Authors. Licensed under the Apache License 2.0.
"""int8 adder convolutions as the custom op, in a calibrated full-integer .tflite.

The TFLite converter calibrates int8 models in its own interpreter, which
cannot load a custom op, so an int8 model is first converted with every
adder layer as builtin ops (`export.int8.CenteredAdder`, each in the name
scope `SCOPE.format(k)`), calibrated. `fuse_adders` then replaces each such
scope's ops with one `Addernet>AdderConv2D` whose x and y are the scope's
calibrated int8 input and output. The op's int8 arithmetic
(custom_ops/cc/kernels/adder_conv2d_int8.h):

    acc = Σ |x_q − w_q|,   y_q = clamp(round(bias[o] − multiplier[o]·acc), lo, hi)

with the filter on x's grid (scale s_x, zero point z_x), so that x_q − w_q
is (x − w) / s_x. A weight outside x's range [s_x(−128 − z_x), s_x(127 − z_x)]
is clipped to its edge; since every x lies inside, |x − w| = |x − ŵ| + |w − ŵ|
there exactly, and the clipped part moves into the bias. A scope may hold
the layer's BN and ReLU too (`export.int8.int8_friendly(fold_batch_norm=True)`):
for `y = scale·(−Σ|x − w| + center) + shift`, then maybe a ReLU,

    multiplier[o] = scale[o]·s_x / s_y
    bias[o] = z_y + (scale[o]·(center[o] − Σ_clipped |w − ŵ|) + shift[o]) / s_y
    lo = z_y under the ReLU (real 0), else −128;  hi = 127.

An int8 ADD that alone reads such an op's unclamped output y (s_y, z_y) and
adds a residual r (s_r, z_r; a block's shortcut) into o (s_o, z_o), maybe
with a ReLU, folds in too (`fuse_adders(residuals=True)`): the op takes r as
a 5th input and computes o directly, with one rounding instead of two,

    multiplier'[o] = multiplier[o]·s_y / s_o,   rm = s_r / s_o
    bias'[o] = z_o + s_y·(bias[o] − z_y) / s_o − rm·z_r
    y_q = clamp(round(bias'[o] − multiplier'[o]·acc + rm·r_q), lo, hi)

(lo = z_o under the ReLU), its requantization `[2 O + 4]` with rm last.
"""

import flatbuffers
import numpy as np
from ai_edge_litert import schema_py_generated as schema

from addernet_tf.lite import flatbuffer as fb

__all__ = ["SCOPE", "quantize_adder", "fuse_adders"]

SCOPE = "addernet_int8_adder_{}"
"""The name scope of the k-th adder layer's builtin ops in the model to fuse."""

_CUSTOM = 32  # BuiltinOperator.CUSTOM
_INT8 = schema.TensorType.INT8
_FLOAT32 = schema.TensorType.FLOAT32


def quantize_adder(kernel, center, x_scale, x_zero_point, y_scale, y_zero_point, scale=None,
                   shift=None, relu=False):
    """The int8 op's constants for one adder layer (and the BN and ReLU folded into it).

    Args:
      kernel: float `[KH, KW, C, O]`.
      center: float `[O]`, added to `−Σ|x − w|` (zeros for a plain layer).
      x_scale, x_zero_point: the int8 input's quantization.
      y_scale, y_zero_point: the int8 output's.
      scale, shift: float `[O]`, a folded BN's `y = scale·(−Σ|x − w| + center)
        + shift`; None for none (1 and 0).
      relu: whether a ReLU follows (the output clamped at real 0).

    Returns:
      `(filter, requantization)`: int8 `[KH, KW, C, O]` on x's grid, and
      float32 `[2 O + 3]` = (z_x, lo, hi, multiplier[O], bias[O]).

    Raises:
      ValueError: a scale not positive and finite, a zero point outside
        [-128, 127], or a folded `scale`/`shift` not finite or not `[O]`.
    """
    for name, step in (("x_scale", x_scale), ("y_scale", y_scale)):
        if not (np.isfinite(step) and step > 0):
            raise ValueError(f"`{name}` must be a positive finite float, got {step!r}")
    for name, zero in (("x_zero_point", x_zero_point), ("y_zero_point", y_zero_point)):
        if int(zero) != zero or not -128 <= zero <= 127:
            raise ValueError(f"`{name}` must be an int in [-128, 127], got {zero!r}")
    kernel = np.asarray(kernel, np.float64)
    channels = kernel.shape[-1]
    affine = []
    for name, value, default in (("scale", scale, 1.0), ("shift", shift, 0.0)):
        value = np.full(channels, default) if value is None else np.asarray(value, np.float64)
        if value.shape != (channels,) or not np.all(np.isfinite(value)):
            raise ValueError(f"`{name}` must be {channels} finite floats, got {value!r}")
        affine.append(value)
    scale, shift = affine
    grid = np.round(kernel / x_scale) + x_zero_point
    filter_q = np.clip(grid, -128, 127)
    clipped = np.where(grid != filter_q,
                       np.abs(kernel - x_scale * (filter_q - x_zero_point)), 0.0)
    centered = np.asarray(center, np.float64) - clipped.sum(axis=(0, 1, 2))
    bias = y_zero_point + (scale * centered + shift) / y_scale
    lo = y_zero_point if relu else -128
    requantization = np.concatenate(
        [[x_zero_point, lo, 127], scale * x_scale / y_scale, bias]).astype(np.float32)
    return filter_q.astype(np.int8), requantization


def _name(tensor):
    name = tensor.name
    return name.decode() if isinstance(name, bytes) else str(name or "")


def _constant(model, tensor):
    data = model.buffers[tensor.buffer].data
    return data is not None and len(data) > 0


def _per_tensor(tensor):
    """(scale, zero point) of a per-tensor int8 tensor; None for any other."""
    q = tensor.quantization
    if tensor.type != _INT8 or q is None or q.scale is None or len(q.scale) != 1:
        return None
    return float(q.scale[0]), int(q.zeroPoint[0])


def _quantization(tensor, what):
    found = _per_tensor(tensor)
    if found is None:
        raise ValueError(f"the adder's {what} {_name(tensor)!r} is not a per-tensor int8 tensor")
    return found


def _scope_ops(graph, k):
    token = f"/{SCOPE.format(k)}/"
    found = []
    for index, op in enumerate(graph.operators):
        parts = [_name(graph.tensors[int(t)]).split(";") for t in op.outputs]
        inside = [token in part for names in parts for part in names]
        if any(inside):
            if not all(inside):
                raise ValueError(f"adder layer {k}: the converter fused an op across its "
                                 f"boundary ({[_name(graph.tensors[int(t)]) for t in op.outputs]})")
            found.append(index)
    return found


def _boundary(model, graph, ops, k):
    """The scope's one non-constant input tensor and one output read outside it."""
    inside = set(ops)
    produced = {int(t) for i in ops for t in graph.operators[i].outputs}
    inputs = {int(t) for i in ops for t in graph.operators[i].inputs
              if t >= 0 and int(t) not in produced and not _constant(model, graph.tensors[int(t)])}
    read_outside = {int(t) for i, op in enumerate(graph.operators) if i not in inside
                    for t in op.inputs if int(t) in produced}
    read_outside |= produced & {int(t) for t in graph.outputs}
    if len(inputs) != 1 or len(read_outside) != 1:
        raise ValueError(f"adder layer {k}: expected one input and one output, found "
                         f"{len(inputs)} and {len(read_outside)}")
    return inputs.pop(), read_outside.pop()


def _opcode(model):
    for index, code in enumerate(model.operatorCodes):
        if code.customCode is not None and code.customCode.decode() == fb.OP_NAME:
            return index
    code = schema.OperatorCodeT()
    code.builtinCode = code.deprecatedBuiltinCode = _CUSTOM
    code.customCode = fb.OP_NAME.encode()
    code.version = 1
    model.operatorCodes.append(code)
    return len(model.operatorCodes) - 1


_ADD = schema.BuiltinOperator.ADD
_ACTIVATIONS = schema.ActivationFunctionType


def _residual_add(model, graph, op, readers, outputs):
    """(index of the int8 ADD that alone reads int8 adder op `op`'s output, the other
    operand's tensor index), or None when there is none to fold."""
    y = int(op.outputs[0])
    consumers = readers.get(y, [])
    if len(consumers) != 1 or y in outputs:
        return None
    index = consumers[0]
    add = graph.operators[index]
    found = fb.other_operand(add, y)
    if fb.builtin_code(model, add) != _ADD or found is None:
        return None
    other = found[0]
    shape = list(graph.tensors[y].shape)
    for t in (other, int(add.outputs[0])):
        tensor = graph.tensors[t]
        if list(tensor.shape) != shape or _per_tensor(tensor) is None or \
                _constant(model, tensor):
            return None
    activation = getattr(add.builtinOptions, "fusedActivationFunction", 0)
    if activation not in (_ACTIVATIONS.NONE, _ACTIVATIONS.RELU, _ACTIVATIONS.RELU6):
        return None
    return index, other


def _fuse_residuals(model, graph, opcode):
    """Folds each int8 residual ADD after an int8 adder op into it (see the module doc)."""
    readers = fb.readers(graph)
    outputs = {int(t) for t in graph.outputs}
    taken, moved = set(), {}
    for position, op in enumerate(graph.operators):
        if op.opcodeIndex != opcode or len(op.inputs) != 4:
            continue
        found = _residual_add(model, graph, op, readers, outputs)
        if found is None or found[0] in taken:
            continue
        index, other = found
        add = graph.operators[index]
        requant = np.frombuffer(bytes(model.buffers[graph.tensors[int(op.inputs[3])].buffer]
                                      .data), np.float32).astype(np.float64)
        if requant[1] != -128 or requant[2] != 127:
            continue  # y is clamped (a ReLU of its own): the sum would differ
        (s_y, z_y), (s_r, z_r), (s_o, z_o) = (
            _per_tensor(graph.tensors[t]) for t in (int(op.outputs[0]), other,
                                                    int(add.outputs[0])))
        channels = (len(requant) - 3) // 2
        multiplier, bias = requant[3:3 + channels], requant[3 + channels:]
        rm = s_r / s_o
        activation = getattr(add.builtinOptions, "fusedActivationFunction", 0)
        lo = z_o if activation in (_ACTIVATIONS.RELU, _ACTIVATIONS.RELU6) else -128
        hi = min(127, z_o + round(6.0 / s_o)) if activation == _ACTIVATIONS.RELU6 else 127
        values = np.concatenate([[requant[0], lo, hi], multiplier * s_y / s_o,
                                 z_o + s_y * (bias - z_y) / s_o - rm * z_r, [rm]])
        if not np.all(np.isfinite(values.astype(np.float32))):
            continue
        name = f"{_name(graph.tensors[int(add.outputs[0])])}/requantization"
        op.inputs = np.array([*(int(t) for t in op.inputs[:3]),
                              fb.add_tensor(model, graph, name, values.astype(np.float32),
                                          _FLOAT32),
                              other], np.int32)
        op.outputs = np.array([int(add.outputs[0])], np.int32)
        taken.update((position, index))
        moved[index] = op  # the residual may be computed after the adder op
    fb.place_fused(graph, taken, moved)


def fuse_adders(flatbuffer, layers, residuals=True):
    """A calibrated int8 .tflite with each adder scope replaced by the int8 custom op.

    Args:
      flatbuffer: bytes of the full-integer model, its k-th adder layer's
        builtin ops in the name scope `SCOPE.format(k)`.
      layers: one dict per adder layer, k-th first: "kernel" (float
        `[KH, KW, C, O]`), "center" (float `[O]`), "strides" (2 ints),
        "paddings" ((top, bottom), (left, right)), and optionally a folded
        BN's "scale" and "shift" (float `[O]` or None) and "relu" (bool).
      residuals: also fold each int8 ADD that alone reads an op's unclamped
        output, with its ReLU, taking the ADD's other operand as the op's
        5th input (see the module doc).

    Returns:
      the model's bytes, not yet `finalize`d (tensor data inline).

    Raises:
      ValueError: a layer's scope is missing, fused with ops outside it, has
        other than one input and one output, or is not per-tensor int8; or
        the model has more adder scopes than `layers`.
    """
    model = fb._model(flatbuffer)  # pylint: disable=protected-access
    graph = model.subgraphs[0]
    opcode = _opcode(model)
    for k, layer in enumerate(layers):
        ops = _scope_ops(graph, k)
        if not ops:
            raise ValueError(f"adder layer {k}: no ops in scope {SCOPE.format(k)!r}")
        x, y = _boundary(model, graph, ops, k)
        x_scale, x_zero = _quantization(graph.tensors[x], "input")
        y_scale, y_zero = _quantization(graph.tensors[y], "output")
        kernel = np.asarray(layer["kernel"])
        filter_q, requantization = quantize_adder(
            kernel, layer["center"], x_scale, x_zero, y_scale, y_zero, layer.get("scale"),
            layer.get("shift"), layer.get("relu", False))
        (top, bottom), (left, right) = layer["paddings"]
        attrs = {"strides": list(layer["strides"]), "padding": "EXPLICIT",
                 "explicit_paddings": [top, bottom, left, right]}
        geometry = fb._geometry(  # pylint: disable=protected-access
            attrs, graph.tensors[x].shape, kernel.shape)
        name = SCOPE.format(k)
        op = schema.OperatorT()
        op.opcodeIndex = opcode
        op.inputs = np.array([
            x,
            # The filter is on x's grid; saying so keeps the file self-describing.
            fb.add_tensor(model, graph, f"{name}/filter", filter_q, _INT8,
                        quantization=(x_scale, x_zero)),
            fb.add_tensor(model, graph, f"{name}/adder_geometry",
                        np.zeros(int(np.prod(geometry)), np.int8), _INT8, geometry),
            fb.add_tensor(model, graph, f"{name}/requantization", requantization, _FLOAT32),
        ], np.int32)
        op.outputs = np.array([y], np.int32)
        position = next(i for i in ops if y in {int(t) for t in graph.operators[i].outputs})
        graph.operators[position] = op
        removed = set(ops) - {position}
        graph.operators = [o for i, o in enumerate(graph.operators) if i not in removed]
    left = [_name(graph.tensors[int(t)]) for op in graph.operators if op.opcodeIndex != opcode
            for t in op.outputs if "/" + SCOPE.format("") in _name(graph.tensors[int(t)])]
    if left:
        raise ValueError(f"{len(layers)} adder layers given, but the model has more adder "
                         f"scopes ({left[0]!r})")
    if residuals:
        _fuse_residuals(model, graph, opcode)
    fb.prune(model, graph)
    builder = flatbuffers.Builder(1024)
    builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
    return bytes(builder.Output())
