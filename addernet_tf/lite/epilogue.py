# Copyright 2026 The addernet_tf Authors. Licensed under the Apache License 2.0.
"""Folds the per-channel affine ops and ReLU after a float adder op into the op itself.

The converter turns an inference BatchNormalization after an adder layer
into a MUL and an ADD by constant per-channel vectors (the ReLU after it
fused into the ADD), which cost two passes over the layer's output. The
LiteRT op applies them as it stores its output instead, from a 4th input,
the epilogue, float32 `[2 O + 2]` = (lo, hi, scale[O], shift[O]):

    y = min(max(scale[o]·adder(x, f)[o] + shift[o] [+ r], lo), hi)

with r, a 5th input, the residual block's shortcut when its ADD folds too.
`fold_epilogues` walks from each float adder op through the ops that alone
read its output: MUL, ADD or SUB by a constant that broadcasts along the
channels only, at most one ADD of a computed tensor of the same shape (the
residual), then a ReLU, ReLU6 or ReLU_N1_TO_1 (standalone or fused into the
last of them), and replaces that chain with the epilogue. The op takes the
place of the chain's last op, as the residual may be computed after the
adder (a downsampling block's shortcut).
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
    found = fb.other_operand(op, current)
    if found is None:
        return None
    other, current_first = graph.tensors[found[0]], found[1]
    if other.type != schema.TensorType.FLOAT32:
        return None
    out = graph.tensors[int(op.outputs[0])]
    if list(out.shape) != list(graph.tensors[current].shape):
        return None  # the constant broadcasts the output wider
    vector = _channel_vector(constant(other), channels)
    if vector is None:
        return None
    return fb.builtin_code(model, op), vector, current_first


def _residual(graph, op, current, constant):
    """The other operand of ADD `op` when it is a float tensor the graph computes with
    `current`'s shape (a block's shortcut), else None."""
    found = fb.other_operand(op, current)
    if found is None:
        return None
    other = found[0]
    tensor = graph.tensors[other]
    shape = list(graph.tensors[current].shape)
    if (tensor.type != schema.TensorType.FLOAT32 or constant(tensor) is not None
            or list(tensor.shape) != shape
            or list(graph.tensors[int(op.outputs[0])].shape) != shape):
        return None
    return other


def _walk(model, graph, op, readers, graph_outputs, taken, constant):
    """The chain after adder op `op`: (op indices, its last output, the epilogue
    float32 [2 O + 2], the residual tensor or None)."""
    channels = int(graph.tensors[int(op.inputs[1])].shape[-1])
    scale, shift = np.ones(channels), np.zeros(channels)
    lo, hi = -np.inf, np.inf
    current, chain, residual = int(op.outputs[0]), [], None
    while len(readers.get(current, [])) == 1 and current not in graph_outputs:
        index = readers[current][0]
        nxt = graph.operators[index]
        kind = fb.builtin_code(model, nxt)
        if index in taken:
            break
        if kind in _CLAMP_OPS and len(nxt.inputs) == 1:
            lo, hi = _CLAMP_OPS[kind]
            chain.append(index)
            current = int(nxt.outputs[0])
            break
        if kind not in _AFFINE_OPS or residual is not None:
            break  # after the residual only a clamp folds
        activation = getattr(nxt.builtinOptions, "fusedActivationFunction", 0)
        if activation and activation not in _FUSED_CLAMPS:
            break
        other = _residual(graph, nxt, current, constant) if kind == _OPS.ADD else None
        if other is not None:
            residual = other
        else:
            found = _affine(model, graph, nxt, current, channels, constant)
            if found is None:
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
    values = np.concatenate([[lo, hi], scale, shift]).astype(np.float32)
    return chain, current, values, residual


def fold_epilogues(model, constant):
    """Folds the chains after each float adder op of `model` into the op (in place).

    Args:
      model: a `schema.ModelT` whose adder ops have their geometry input
        (x, filter, geometry), as `flatbuffer.finalize` builds them.
      constant: `constant(tensor)`: a constant tensor's value as a NumPy
        array (its shape), or None for a tensor computed in the graph.

    Returns:
      the indices of the buffers that only removed tensors read (now empty).
      Each adder op that took a chain has a 4th input, its epilogue, and a
      5th, the residual, when it took a residual ADD.
    """
    freed = set()
    for graph in model.subgraphs:
        readers = fb.readers(graph)
        graph_outputs = {int(t) for t in graph.outputs}
        taken, moved = set(), {}  # chain ops; {last chain op: the adder op taking its place}
        for position, op in enumerate(graph.operators):
            if not fb.is_adder(model, op) or len(op.inputs) != 3:
                continue
            y = int(op.outputs[0])
            if graph.tensors[y].type != schema.TensorType.FLOAT32:
                continue
            chain, current, values, residual = _walk(model, graph, op, readers, graph_outputs,
                                                     taken, constant)
            if not chain or not np.all(np.isfinite(values[2:])):
                continue  # nothing to fold, or an overflowing constant
            name = f"{(graph.tensors[current].name or b'y').decode()}/adder_epilogue"
            extra = [fb.add_tensor(model, graph, name, values, schema.TensorType.FLOAT32)]
            extra += [residual] if residual is not None else []
            op.inputs = np.array([*(int(t) for t in op.inputs), *extra], np.int32)
            op.outputs = np.array([current], np.int32)
            taken.update(chain)
            taken.add(position)
            # Where the chain ended: a residual may be computed after the adder.
            moved[chain[-1]] = op
        if moved:
            fb.place_fused(graph, taken, moved)
            freed |= fb.prune(model, graph)
    return freed
