# Copyright 2026 The addernet_tf Authors. Licensed under the Apache License 2.0.
"""`adderize`: any functional or Sequential Keras CNN as an adder network with PKKD taps."""

import collections

import keras

from addernet_tf import _validate
from addernet_tf.layers import Adder2D, Tap
from addernet_tf.models.taps import tap_layers

__all__ = ["adderize", "adderize_plan", "tap_like", "Decision", "KEEP"]

KEEP = ("first", "last")

Decision = collections.namedtuple("Decision", ["layer", "action", "reason"])
Decision.__doc__ = """What `adderize` does with one layer.

Fields:
  layer: the layer's name in the given model.
  action: `"adder"` (becomes an `Adder2D`), `"kept"` (an ordinary `Conv2D`
    kept as a multiplication by `keep`) or `"left"` (not convertible).
  reason: why, in a few words.
"""

_CONVOLUTIONS = (keras.layers.Conv1D, keras.layers.Conv2D, keras.layers.Conv3D,
                 keras.layers.DepthwiseConv1D, keras.layers.DepthwiseConv2D,
                 keras.layers.SeparableConv1D, keras.layers.SeparableConv2D,
                 keras.layers.Conv1DTranspose, keras.layers.Conv2DTranspose,
                 keras.layers.Conv3DTranspose)
_WEIGHTED = _CONVOLUTIONS + (keras.layers.Dense, keras.layers.EinsumDense)


def _why_not(layer):
    """None for an ordinary Conv2D, else why it stays as it is."""
    if isinstance(layer, keras.layers.Dense):
        return "dense: AdderNet keeps fully connected layers as multiplications"
    if type(layer) is not keras.layers.Conv2D:
        kind = type(layer).__name__
        if "Depthwise" in kind:
            return f"depthwise ({kind}): no adder form"
        if "Separable" in kind:
            return f"separable ({kind}): no adder form"
        if "Transpose" in kind:
            return f"transposed ({kind}): no adder form"
        if kind in ("Conv1D", "Conv3D"):
            return f"{kind}: only 2-D convolutions have an adder form"
        return f"{kind} is not keras.layers.Conv2D"
    if layer.groups != 1:
        return f"grouped (groups={layer.groups}): no adder form"
    if tuple(layer.dilation_rate) != (1, 1):
        return f"dilated (dilation_rate={tuple(layer.dilation_rate)}): no adder form"
    return None


def _functional(model):
    if isinstance(model, keras.Sequential):
        try:
            built = bool(model.inputs)
        except (AttributeError, ValueError):  # Keras: "has no defined inputs yet"
            built = False
        if not built:
            raise ValueError(f"`model` {model.name!r} is a Sequential model that is not built: "
                             "give it an input shape (keras.Input or build()) first")
        inputs = keras.Input(batch_shape=model.inputs[0].shape, dtype=model.inputs[0].dtype)
        x = inputs
        for layer in model.layers:
            x = layer(x)
        return keras.Model(inputs, x, name=model.name)
    if isinstance(model, keras.Model) and any(
            cls.__name__ == "Functional" for cls in type(model).__mro__):
        return model
    raise ValueError(
        f"`model` must be a functional or Sequential keras.Model, got a subclassed "
        f"{type(model).__name__}: rebuild it functionally (keras.Input → layers → "
        "keras.Model), or put Adder2D layers in place of its Conv2D layers by hand")


def _consumers(model):
    """Layer name → the layers that read its output (Keras' graph nodes)."""
    found = collections.defaultdict(dict)
    for layer in model.layers:
        for node in layer._inbound_nodes:  # no public API lists a layer's inputs' producers
            for tensor in node.input_tensors:
                found[tensor._keras_history.operation.name][id(layer)] = layer
    return {name: list(readers.values()) for name, readers in found.items()}


def adderize_plan(model, keep=KEEP):
    """What `adderize(model, keep)` does with each weighted layer, in graph order.

    Args:
      model: a functional or Sequential `keras.Model`.
      keep: ordinary `Conv2D` layers to keep as multiplications: `"first"` (the
        first convolution of the graph, AdderNet's stem), `"last"` (the
        classifier, when it is a convolution) and/or layer names.

    Returns:
      `[Decision]`, one per convolution or dense layer.

    Raises:
      ValueError: a subclassed or nested model, or a bad `keep`.
    """
    model = _functional(model)
    if isinstance(keep, str):
        keep = (keep,)
    keep = tuple(keep)
    names = {layer.name for layer in model.layers}
    unknown = [k for k in keep if k not in KEEP and k not in names]
    if unknown:
        raise ValueError(f"`keep` must hold {KEEP} or layer names of `model`, got {unknown[0]!r}")
    nested = [layer.name for layer in model.layers if isinstance(layer, keras.Model)]
    if nested:
        raise ValueError(f"`model` {model.name!r} nests the model {nested[0]!r}: adderize that "
                         "model on its own, or build the network as one flat graph")
    weighted = [layer for layer in model.layers if isinstance(layer, _WEIGHTED)]
    convs = [layer for layer in weighted if isinstance(layer, _CONVOLUTIONS)]
    first = convs[0].name if convs else None
    last = weighted[-1].name if weighted else None
    decisions = []
    for layer in weighted:
        why = _why_not(layer)
        if why is not None:
            decisions.append(Decision(layer.name, "left", why))
        elif layer.name in keep:
            decisions.append(Decision(layer.name, "kept", "named in `keep`"))
        elif "first" in keep and layer.name == first:
            decisions.append(Decision(layer.name, "kept", "the first convolution (keep='first')"))
        elif "last" in keep and layer.name == last:
            decisions.append(Decision(layer.name, "kept", "the classifier (keep='last')"))
        else:
            decisions.append(Decision(layer.name, "adder", "ordinary Conv2D"))
    return decisions


@_validate.reads_old_network_names
def adderize(model, keep=KEEP, copy_weights=False, network="ann", adaptive_eta=0.2,
             implementation="auto", name=None, print_fn=None):
    """A new model in which every ordinary `Conv2D` of `model` is an `Adder2D`.

    Converted: `keras.layers.Conv2D` with groups 1 and dilation 1 (any kernel,
    stride and padding), except those `keep` names. Each becomes an `Adder2D`
    with the same filters, kernel, strides, padding and data format and no
    bias; its activation, if any, becomes a separate `Activation`; a `Tap`
    (kind `"layer"`, PKKD's distilled feature) follows it, and a
    `BatchNormalization` is inserted after it unless one reads its output
    already (adder outputs are large and negative: AdderNet needs BN after
    every adder layer). Every other layer is cloned as it is. `adderize_plan`
    lists what is converted, kept and left alone (depthwise, grouped,
    dilated, separable, transposed, 1-D/3-D convolutions, dense layers).

    `network="cnn"` builds the matching teacher: the same convolutions stay
    `Conv2D` (activation split off the same way) with the same taps and no
    inserted BN, so `Distiller(adderize(m), adderize(m, network="cnn"))` pairs
    the taps one to one with equal shapes.

    Args:
      model: a functional or Sequential `keras.Model` (built), images in.
      keep: see `adderize_plan` (default: the first conv and the classifier).
      copy_weights: start from `model`'s weights (a converted conv's kernel
        becomes the adder kernel; its bias is dropped); else fresh weights.
      network: `"ann"` (the student) or `"cnn"` (the tapped teacher).
      adaptive_eta, implementation: for each `Adder2D`.
      name: the new model's name (default: `model`'s).
      print_fn: called with one line per layer that is not converted, saying
        why (e.g. `print`); None: silent.

    Returns:
      A functional `keras.Model` with the same inputs and outputs shapes.

    Raises:
      ValueError: a subclassed or nested model, a bad `keep` or `network`, or no
        convertible layer.
    """
    network = _validate.network(network)
    source = _functional(model)
    decisions = adderize_plan(source, keep)
    converted = {d.layer for d in decisions if d.action == "adder"}
    if not converted:
        raise ValueError(f"`model` {model.name!r} has no Conv2D that adderize can convert "
                         f"(keep={tuple(keep) if not isinstance(keep, str) else keep!r})")
    if print_fn is not None:
        for d in decisions:
            if d.action != "adder":
                print_fn(f"adderize: {d.layer}: {d.action} ({d.reason})")
    consumers = _consumers(source)
    origin = {}

    def clone(layer):
        if layer.name not in converted:
            new = layer.__class__.from_config(layer.get_config())
        elif network == "ann":
            new = Adder2D(layer.filters, layer.kernel_size, strides=layer.strides,
                          padding=layer.padding, adaptive_eta=adaptive_eta,
                          data_format=layer.data_format, implementation=implementation,
                          name=layer.name)
        else:
            config = layer.get_config()
            config["activation"] = "linear"
            new = keras.layers.Conv2D.from_config(config)
        origin[id(new)] = layer
        return new

    taps = []

    def call(new, *args, **kwargs):
        out = new(*args, **kwargs)
        old = origin[id(new)]
        if old.name not in converted:
            return out
        axis = -1 if old.data_format == "channels_last" else 1
        fan_in = int(old.kernel_size[0] * old.kernel_size[1] * old.kernel.shape[2])
        out = Tap(len(taps), kind="layer", fan_in=fan_in, name=f"{old.name}_tap")(out)
        taps.append(old.name)
        readers = consumers.get(old.name, [])
        has_bn = (old.activation is keras.activations.linear and len(readers) == 1
                  and isinstance(readers[0], keras.layers.BatchNormalization))
        if network == "ann" and not has_bn:
            out = keras.layers.BatchNormalization(axis=axis, name=f"{old.name}_bn")(out)
        if old.activation is not keras.activations.linear:
            out = keras.layers.Activation(old.activation, name=f"{old.name}_activation")(out)
        return out

    new_model = keras.models.clone_model(source, clone_function=clone, call_function=call)
    if name is not None:
        new_model.name = name
    if copy_weights:
        for new in new_model.layers:
            old = origin.get(id(new))
            if old is None or not old.weights:
                continue
            weights = old.get_weights()
            if isinstance(new, Adder2D):
                weights = weights[:1]
            new.set_weights(weights)
    return new_model


def _producer(layer):
    return layer._inbound_nodes[0].input_tensors[0]._keras_history.operation


def tap_like(model, student):
    """`model`'s own layers (weights shared) with `"layer"` taps where `student` has them.

    For the original CNN of an `adderize`d student: each of the student's
    `"layer"` taps reads a converted layer, which keeps its conv's name, and
    the view taps `model`'s layer of that name. Training the view trains
    `model`. `Distiller` calls it for a teacher without taps.

    Args:
      model: the functional or Sequential CNN `student` was made from (or a
        fresh copy of it).
      student: an `adderize`d model.

    Returns:
      A functional `keras.Model` over `model`'s layers, with `Tap` layers.

    Raises:
      ValueError: a layer to tap is missing from `model` or has a fused
        activation (its raw output is not a tensor of the graph).
    """
    source = _functional(model)
    wanted = {}
    for tap in tap_layers(student, "layer"):
        wanted[_producer(tap).name] = tap
    names = {layer.name: layer for layer in source.layers}
    for name in wanted:
        layer = names.get(name)
        if layer is None:
            raise ValueError(f"the student's tap {wanted[name].name!r} reads layer {name!r}, "
                             f"which `model` {model.name!r} does not have")
        if getattr(layer, "activation", keras.activations.linear) is not keras.activations.linear:
            raise ValueError(
                f"layer {name!r} of `model` {model.name!r} has a fused activation, so its raw "
                "output cannot be tapped in place: use adderize(model, network='cnn', "
                "copy_weights=True) as the teacher")

    def call(layer, *args, **kwargs):
        out = layer(*args, **kwargs)
        tap = wanted.get(layer.name)
        if tap is None:
            return out
        return Tap(tap.index, kind="layer", fan_in=tap.fan_in, name=f"{layer.name}_tap")(out)

    return keras.models.clone_model(source, clone_function=lambda layer: layer,
                                    call_function=call)
