# Copyright 2026 The addernet_tf Authors. Licensed under the Apache License 2.0.
"""Folds the per-channel affine ops and ReLU after a float adder op into the op itself.

The converter turns an inference BatchNormalization after an adder layer
into a MUL and an ADD by constant per-channel vectors (the ReLU after it
fused into the ADD), which cost two passes over the layer's output. The
LiteRT op applies them as it stores its output instead, from a 4th input,
the epilogue, float32 `[2 O + 2]` = (lo, hi, scale[O], shift[O]):

    y = min(max(scale[o]·adder(x, f)[o] + shift[o], lo), hi)

`fold_epilogues` walks from each float adder op through the ops that alone
read its output: MUL, ADD or SUB by a constant that broadcasts along the
channels only, then a ReLU, ReLU6 or ReLU_N1_TO_1 (standalone or fused into
the last of them), and replaces that chain with the epilogue.
"""

import numpy as np
from ai_edge_litert import schema_py_generated as schema

from addernet_tf.lite import flatbuffer as fb

__all__ = ["fold_epilogues"]

_OPS = schema.BuiltinOperator
_ACTIVATIONS = schema.ActivationFunctionType
# (lo, hi) of each clamp, by fused activation and by standalone op.
_FUSED_CLAMPS = {_ACTIVATIONS.RELU: (0.0, np.inf), _ACTIVATIONS.RELU6: (0.0, 6.0),
                 _ACTIVATIONS.RELU_N1_TO_1: (-1.0, 1.0)}
_CLAMP_OPS = {_OPS.RELU: (0.0, np.inf), _OPS.RELU6: (0.0, 6.0), _OPS.RELU_N1_TO_1: (-1.0, 1.0)}
_AFFINE_OPS = (_OPS.MUL, _OPS.ADD, _OPS.SUB)


def _builtin(model, op):
    code = model.operatorCodes[op.opcodeIndex]
    return max(int(code.builtinCode), int(code.deprecatedBuiltinCode))


def _channel_vector(value, channels):
    """`value` as float64 `[channels]` if it broadcasts along the channel axis only; else None."""
    if value is None:
        return None
    shape = value.shape
    if len(shape) > 4 or any(d != 1 for d in shape[:-1]) or (shape and shape[-1] not in
                                                              (1, channels)):
        return None
    return np.broadcast_to(value.reshape(-1).astype(np.float64), (channels,)).copy()


def _affine(model, graph, op, current, channels, constant):
    """The (kind, vector, current_is_first) of a MUL/ADD/SUB of `current` by a channel
    constant, or None."""
    if len(op.inputs) != 2 or len(op.outputs) != 1:
        return None
    first, second = (int(t) for t in op.inputs)
    if (first == current) == (second == current):
        return None
    other = graph.tensors[second if first == current else first]
    if other.type != schema.TensorType.FLOAT32:
        return None
    out = graph.tensors[int(op.outputs[0])]
    if list(out.shape) != list(graph.tensors[current].shape):
        return None  # the constant broadcasts the output wider
    vector = _channel_vector(constant(other), channels)
    if vector is None:
        return None
    return _builtin(model, op), vector, first == current


def fold_epilogues(model, constant):
    """Folds the chains after each float adder op of `model` into the op (in place).

    Args:
      model: a `schema.ModelT` whose adder ops have their geometry input
        (x, filter, geometry), as `flatbuffer.finalize` builds them.
      constant: `constant(tensor)`: a constant tensor's value as a NumPy
        array (its shape), or None for a tensor computed in the graph.

    Returns:
      the indices of the buffers that only removed tensors read (now empty).
      Each adder op that took a chain has a 4th input, its epilogue.
    """
    freed = set()
    for graph in model.subgraphs:
        readers = {}
        for index, op in enumerate(graph.operators):
            for t in op.inputs:
                if t >= 0:
                    readers.setdefault(int(t), []).append(index)
        graph_outputs = {int(t) for t in graph.outputs}
        removed = set()
        for op in graph.operators:
            if not fb.is_adder(model, op) or len(op.inputs) != 3:
                continue
            y = int(op.outputs[0])
            if graph.tensors[y].type != schema.TensorType.FLOAT32:
                continue
            channels = int(graph.tensors[int(op.inputs[1])].shape[-1])
            scale, shift = np.ones(channels), np.zeros(channels)
            lo, hi = -np.inf, np.inf
            current, chain = y, []
            while len(readers.get(current, [])) == 1 and current not in graph_outputs:
                index = readers[current][0]
                nxt = graph.operators[index]
                kind = _builtin(model, nxt)
                if kind in _CLAMP_OPS and len(nxt.inputs) == 1:
                    lo, hi = _CLAMP_OPS[kind]
                    chain.append(index)
                    current = int(nxt.outputs[0])
                    break
                if kind not in _AFFINE_OPS:
                    break
                activation = getattr(nxt.builtinOptions, "fusedActivationFunction", 0)
                found = _affine(model, graph, nxt, current, channels, constant)
                if found is None or (activation and activation not in _FUSED_CLAMPS):
                    break
                kind, vector, current_first = found
                if kind == _OPS.MUL:
                    scale, shift = scale * vector, shift * vector
                elif kind == _OPS.ADD:
                    shift = shift + vector
                elif current_first:  # y − c
                    shift = shift - vector
                else:  # c − y
                    scale, shift = -scale, vector - shift
                chain.append(index)
                current = int(nxt.outputs[0])
                if activation:
                    lo, hi = _FUSED_CLAMPS[activation]
                    break
            if not chain:
                continue
            values = np.concatenate([[lo, hi], scale, shift]).astype(np.float32)
            if not np.all(np.isfinite(values[2:])):
                continue  # an overflowing constant: leave the ops as they were
            buffer = schema.BufferT()
            buffer.data = np.frombuffer(values.tobytes(), np.uint8)
            model.buffers.append(buffer)
            tensor = schema.TensorT()
            tensor.shape = np.array([values.size], np.int32)
            tensor.type = schema.TensorType.FLOAT32
            tensor.buffer = len(model.buffers) - 1
            tensor.name = (graph.tensors[current].name or b"y") + b"/adder_epilogue"
            graph.tensors.append(tensor)
            op.inputs = np.array([*(int(t) for t in op.inputs), len(graph.tensors) - 1],
                                 np.int32)
            op.outputs = np.array([current], np.int32)
            removed.update(chain)
        if removed:
            graph.operators = [op for i, op in enumerate(graph.operators) if i not in removed]
            freed |= fb.prune(model, graph)
    return freed
