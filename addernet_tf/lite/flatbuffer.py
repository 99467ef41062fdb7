# Copyright 2026 The addernet_tf Authors. Licensed under the Apache License 2.0.
"""A converted .tflite with `Addernet>AdderConv2D` custom ops, made runnable by LiteRT.

The TFLite converter (`allow_custom_ops`) keeps each adder convolution as a
custom op whose attributes sit in a flexbuffer. LiteRT's custom-op interface
gives a kernel its inputs' shapes, never a node's options, so `finalize` adds
a third input to each such op, an int8 "geometry" tensor whose shape carries
the strides, paddings and formulation (custom_ops/lite/adder_conv2d_litert.h
has the layout). LiteRT also refuses constant buffers that are not 64-byte
aligned, so every tensor's data moves behind the flatbuffer, each at a
64-byte aligned file offset (the converter's "outside flatbuffers" layout).
"""

import flatbuffers
import numpy as np
from ai_edge_litert import schema_py_generated as schema
from flatbuffers import flexbuffers

from addernet_tf.ops.geometry import same_paddings

__all__ = ["OP_NAME", "ALIGNMENT", "adder_ops", "finalize"]

OP_NAME = "Addernet>AdderConv2D"
ALIGNMENT = 64
_FORMULATIONS = ("exact", "max_identity")
_BUFFER_LOCATION = b"buffer_location"
_OUTSIDE = b"outside flatbuffers"


def _model(flatbuffer):
    if not isinstance(flatbuffer, (bytes, bytearray)) or bytes(flatbuffer[4:8]) != b"TFL3":
        raise ValueError("`flatbuffer` is not a TFLite model (no TFL3 identifier)")
    return schema.ModelT.InitFromPackedBuf(bytearray(flatbuffer), 0)


def is_adder(model, op):
    code = model.operatorCodes[op.opcodeIndex]
    return code.customCode is not None and code.customCode.decode() == OP_NAME


def _attrs(op):
    """An adder op's attributes: the converter's flexbuffer options, decoded."""
    return flexbuffers.Loads(bytes(op.customOptions)) if op.customOptions is not None else {}


def adder_ops(flatbuffer):
    """The adder ops of a .tflite model: one dict per op, in graph order.

    Each: "subgraph", "inputs" (tensor indices) and the op's "attrs"
    (the converter's flexbuffer options, decoded).
    """
    model = _model(flatbuffer)
    found = []
    for index, graph in enumerate(model.subgraphs):
        for op in graph.operators:
            if is_adder(model, op):
                found.append({"subgraph": index, "inputs": [int(i) for i in op.inputs],
                              "attrs": _attrs(op)})
    return found


def _geometry(attrs, x_shape, f_shape):
    """The geometry tensor's shape for one op (its attributes, static x and filter shapes)."""
    # The TF op's attributes: strides [sh, sw], explicit_paddings [top, bottom, left, right].
    strides = [int(s) for s in attrs.get("strides", [])]
    if len(strides) != 2 or min(strides) < 1:
        raise ValueError(f"{OP_NAME}: strides must be two positive ints, got "
                         f"{attrs.get('strides')!r}")
    padding = attrs.get("padding", "VALID")
    padding = padding.decode() if isinstance(padding, bytes) else padding
    if padding == "VALID":
        pads = [(0, 0), (0, 0)]
    elif padding == "SAME":
        if min(x_shape[1:3]) < 1:
            raise ValueError(f"{OP_NAME}: SAME padding needs a static input size, got "
                             f"{list(x_shape)}")
        pads = [same_paddings(int(x_shape[1 + a]), int(f_shape[a]), strides[a]) for a in (0, 1)]
    elif padding == "EXPLICIT":
        explicit = [int(p) for p in attrs.get("explicit_paddings", [])]
        if len(explicit) != 4 or min(explicit) < 0:
            raise ValueError(f"{OP_NAME}: explicit_paddings must be [top, bottom, left, right], "
                             f"got {explicit}")
        pads = [(explicit[0], explicit[1]), (explicit[2], explicit[3])]
    else:
        raise ValueError(f"{OP_NAME}: unknown padding {padding!r}")
    formulation = attrs.get("formulation", "exact")
    formulation = formulation.decode() if isinstance(formulation, bytes) else formulation
    if formulation not in _FORMULATIONS:
        raise ValueError(f"{OP_NAME}: unknown formulation {formulation!r}")
    (top, bottom), (left, right) = pads
    return [strides[0], strides[1], top + 1, bottom + 1, left + 1, right + 1,
            _FORMULATIONS.index(formulation) + 1]


def _add_geometry(model):
    for graph in model.subgraphs:
        for op in graph.operators:
            if not is_adder(model, op):
                continue
            x_type = graph.tensors[int(op.inputs[0])].type if len(op.inputs) else None
            if len(op.inputs) in (4, 5) and x_type == schema.TensorType.INT8:
                continue  # int8, built with its geometry by lite.int8.fuse_adders
            if len(op.inputs) != 2:
                raise ValueError(f"{OP_NAME} has {len(op.inputs)} inputs, expected 2 "
                                 "(was this model finalized already?)")
            x, f = (graph.tensors[int(i)] for i in op.inputs)
            shape = _geometry(_attrs(op), x.shape, f.shape)
            geometry = add_tensor(model, graph, f"{(x.name or b'x').decode()}/adder_geometry",
                                  np.zeros(int(np.prod(shape)), np.int8),
                                  schema.TensorType.INT8, shape)
            op.inputs = np.array([*(int(i) for i in op.inputs), geometry], np.int32)


def add_tensor(model, graph, name, array, tensor_type, shape=None, quantization=None):
    """Appends a constant tensor holding `array`'s bytes (its own buffer) to `graph`;
    returns its index. `shape` defaults to `array`'s; `quantization`: (scale, zero point)."""
    buffer = schema.BufferT()
    buffer.data = np.frombuffer(np.ascontiguousarray(array).tobytes(), np.uint8)
    model.buffers.append(buffer)
    tensor = schema.TensorT()
    tensor.shape = np.array(array.shape if shape is None else shape, np.int32)
    tensor.type = tensor_type
    tensor.buffer = len(model.buffers) - 1
    tensor.name = name.encode()
    if quantization is not None:
        tensor.quantization = schema.QuantizationParametersT()
        tensor.quantization.scale = [float(quantization[0])]
        tensor.quantization.zeroPoint = [int(quantization[1])]
    graph.tensors.append(tensor)
    return len(graph.tensors) - 1


def builtin_code(model, op):
    """The BuiltinOperator of `op` (CUSTOM for a custom op)."""
    code = model.operatorCodes[op.opcodeIndex]
    return max(int(code.builtinCode), int(code.deprecatedBuiltinCode))


def other_operand(op, current):
    """(the other input of two-input, one-output `op` that reads `current` once, whether
    `current` is the first), or None."""
    if len(op.inputs) != 2 or len(op.outputs) != 1:
        return None
    first, second = (int(t) for t in op.inputs)
    if (first == current) == (second == current):
        return None
    return (second, True) if first == current else (first, False)


def place_fused(graph, removed, placed):
    """Drops the ops at indices `removed` and puts `placed[i]` at index i. A fused op
    placed where its chain ended reads nothing computed later: its inputs were read
    by its chain's ops, and what it writes is what the chain's last op wrote."""
    graph.operators = [placed.get(i, op) for i, op in enumerate(graph.operators)
                       if i in placed or i not in removed]


def readers(graph):
    """{tensor index: the indices of the ops of `graph` that read it}."""
    found = {}
    for index, op in enumerate(graph.operators):
        for t in op.inputs:
            if t >= 0:
                found.setdefault(int(t), []).append(index)
    return found


def prune(model, graph):
    """Drops the tensors of `graph` (a subgraph of `model`) that no op or graph edge uses,
    and empties the buffers only they read; returns those buffers' indices."""
    used = {int(t) for op in graph.operators for t in [*op.inputs, *op.outputs] if t >= 0}
    used |= {int(t) for t in [*graph.inputs, *graph.outputs]}
    keep = sorted(used)
    remap = {old: new for new, old in enumerate(keep)}
    # The converter shares one buffer between equal constants: empty only
    # the buffers no kept tensor (of any subgraph) reads.
    read = {int(graph.tensors[i].buffer) for i in keep}
    read |= {int(t.buffer) for other in model.subgraphs if other is not graph
             for t in other.tensors}
    freed = set()
    for index, tensor in enumerate(graph.tensors):
        if index not in used and int(tensor.buffer) not in read:
            model.buffers[tensor.buffer].data = None
            freed.add(int(tensor.buffer))
    graph.tensors = [graph.tensors[i] for i in keep]
    for op in graph.operators:
        op.inputs = np.array([remap[int(t)] if t >= 0 else -1 for t in op.inputs], np.int32)
        op.outputs = np.array([remap[int(t)] for t in op.outputs], np.int32)
    graph.inputs = np.array([remap[int(t)] for t in graph.inputs], np.int32)
    graph.outputs = np.array([remap[int(t)] for t in graph.outputs], np.int32)
    position = next(i for i, other in enumerate(model.subgraphs) if other is graph)
    for signature in model.signatureDefs or []:
        if signature.subgraphIndex == position:
            for edge in [*(signature.inputs or []), *(signature.outputs or [])]:
                edge.tensorIndex = remap[int(edge.tensorIndex)]
    return freed


def _pack(model):
    builder = flatbuffers.Builder(1024)
    builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
    return bytes(builder.Output())


def finalize(flatbuffer, fold=True):
    """The converter's output with geometry inputs and 64-byte aligned tensor data.

    Args:
      flatbuffer: bytes of a .tflite file from the TFLite converter (inline
        buffers or the `_experimental_use_buffer_offset` layout), holding
        adder ops with their two inputs (x, filter) and static x shapes.
      fold: fold each float adder op's following per-channel MUL/ADD/SUB
        (an inference BN) and ReLU into the op's epilogue
        (`epilogue.fold_epilogues`); the model computes the same, in fewer ops.

    Returns:
      bytes of the finished .tflite file.

    Raises:
      ValueError: not a TFLite model, an adder op already finalized or with
        attributes the LiteRT kernel does not take.
    """
    model = _model(flatbuffer)
    payloads = {}
    for index, buffer in enumerate(model.buffers):
        if buffer.offset > 1:
            payloads[index] = bytes(flatbuffer[buffer.offset:buffer.offset + buffer.size])
            buffer.data = None
    _add_geometry(model)
    if fold:
        # epilogue imports this module.
        from addernet_tf.lite.epilogue import fold_epilogues  # pylint: disable=cyclic-import,import-outside-toplevel

        def constant(tensor):
            data = payloads.get(int(tensor.buffer))
            if data is None:
                data = model.buffers[tensor.buffer].data
                data = None if data is None else np.asarray(data, np.uint8).tobytes()
            if not data or tensor.type != schema.TensorType.FLOAT32:
                return None
            return np.frombuffer(data, np.float32).reshape([int(d) for d in tensor.shape])

        for index in fold_epilogues(model, constant):
            payloads.pop(index, None)
            model.buffers[index].offset = model.buffers[index].size = 0
    tensor_buffers = {int(t.buffer) for graph in model.subgraphs for t in graph.tensors}
    for index in tensor_buffers:
        buffer = model.buffers[index]
        if buffer.data is not None and len(buffer.data):
            payloads[index] = np.asarray(buffer.data, np.uint8).tobytes()
            buffer.data = None
    if payloads:
        names = [m.name for m in model.metadata or []]
        if _BUFFER_LOCATION not in names:
            location = schema.BufferT()
            location.data = np.frombuffer(_OUTSIDE, np.uint8)
            model.buffers.append(location)
            metadata = schema.MetadataT()
            metadata.name = _BUFFER_LOCATION
            metadata.buffer = len(model.buffers) - 1
            model.metadata = (model.metadata or []) + [metadata]
    # Offsets and sizes are fixed-width fields: the placeholder pass gives
    # the flatbuffer's final length.
    for index, data in payloads.items():
        model.buffers[index].offset, model.buffers[index].size = 2, max(len(data), 1)
    head = len(_pack(model))
    position, layout = head, []
    for index in sorted(payloads):
        position = -(-position // ALIGNMENT) * ALIGNMENT
        model.buffers[index].offset, model.buffers[index].size = position, len(payloads[index])
        layout.append((position, payloads[index]))
        position += len(payloads[index])
    packed = _pack(model)
    if len(packed) != head:
        raise AssertionError(f"the flatbuffer's length changed ({head} -> {len(packed)})")
    out = bytearray(packed)
    for offset, data in layout:
        out += b"\0" * (offset - len(out))
        out += data
    return bytes(out)
