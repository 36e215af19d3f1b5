"""Compile a small Keras model into a NumPy forward pass.

Calling a Keras model on one observation costs about a millisecond of framework overhead; the
same arithmetic for these MLPs takes microseconds in NumPy. The compiler below walks the
model's functional graph and supports only the layers our policies use; anything else raises
`UnsupportedModelError` so the caller can fall back to Keras. The caller also checks the result
against the Keras model on probe inputs before trusting it.
"""

from __future__ import annotations

from collections.abc import Callable

import keras
import numpy as np

Array = np.ndarray
LayerFunction = Callable[[Array], Array]


class UnsupportedModelError(ValueError):
    """The model uses a layer or activation the NumPy forward pass does not implement."""


def _relu(x: Array) -> Array:
    return np.maximum(x, 0.0)


def softmax(x: Array) -> Array:
    """Row-wise softmax, shifted by the row maximum so large logits do not overflow."""
    shifted = np.exp(x - x.max(axis=-1, keepdims=True))
    return shifted / shifted.sum(axis=-1, keepdims=True)


def _sigmoid(x: Array) -> Array:
    return 1.0 / (1.0 + np.exp(-x))


def _identity(x: Array) -> Array:
    return x


ACTIVATIONS: dict[str, LayerFunction] = {
    "linear": _identity,
    "relu": _relu,
    "tanh": np.tanh,
    "sigmoid": _sigmoid,
    "softmax": softmax,
}


def _activation(layer: keras.layers.Layer) -> LayerFunction:
    name = layer.get_config().get("activation", "linear")
    if not isinstance(name, str) or name not in ACTIVATIONS:
        raise UnsupportedModelError(f"layer {layer.name}: activation {name!r} is not supported")
    return ACTIVATIONS[name]


def _dense(layer: keras.layers.Dense, dtype: np.dtype) -> LayerFunction:
    kernel = np.asarray(layer.kernel.numpy(), dtype=dtype)
    bias = np.asarray(layer.bias.numpy(), dtype=dtype) if layer.use_bias else None
    activation = _activation(layer)
    if layer.get_config().get("lora_rank"):
        raise UnsupportedModelError(f"layer {layer.name}: LoRA kernels are not supported")
    if bias is None:
        return lambda x: activation(x @ kernel)
    return lambda x: activation(x @ kernel + bias)


def _rescaling(layer: keras.layers.Rescaling, dtype: np.dtype) -> LayerFunction:
    scale = np.asarray(layer.scale, dtype=dtype)
    offset = np.asarray(layer.offset, dtype=dtype)
    return lambda x: x * scale + offset


def _layer_function(layer: keras.layers.Layer, dtype: np.dtype) -> LayerFunction:
    if type(layer) is keras.layers.Dense:
        return _dense(layer, dtype)
    if type(layer) is keras.layers.Activation:
        return _activation(layer)
    if type(layer) is keras.layers.Rescaling:
        return _rescaling(layer, dtype)
    raise UnsupportedModelError(f"layer {layer.name}: {type(layer).__name__} is not supported")


def compile_numpy_forward(
    model: keras.Model, outputs: int | tuple[int, ...] = 0, dtype: np.dtype = np.float32
) -> Callable[[Array], Array] | Callable[[Array], list[Array]]:
    """Return `forward(batch)` computing `model(batch)[outputs]` with NumPy.

    Works for Sequential and functional models with one input built from Dense, Activation and
    Rescaling layers. `outputs` is one output index (the function returns that array) or a
    tuple of them (it returns a list, and shared layers run once). Only the layers that lead
    to the requested outputs are kept, so an agent that acts on one head does not pay for the
    others.
    """
    # A Sequential model keeps its graph in a private Functional; layers called more than once
    # (as after loading) have several inbound nodes, so only the graph's own nodes are reliable.
    graph = getattr(model, "_functional", None) if isinstance(model, keras.Sequential) else model
    nodes_by_depth = getattr(graph, "_nodes_by_depth", None)
    if graph is None or nodes_by_depth is None:
        raise UnsupportedModelError(f"{type(model).__name__} has no functional graph to compile")
    if len(graph.inputs) != 1:
        raise UnsupportedModelError("only single-input models are supported")
    wanted = (outputs,) if isinstance(outputs, int) else tuple(outputs)
    if not wanted or not all(0 <= index < len(graph.outputs) for index in wanted):
        raise UnsupportedModelError(f"model has no output {outputs}")
    # Deepest nodes first is the order from the input towards the outputs.
    ordered: list[tuple[int, int, keras.layers.Layer]] = []
    for depth in sorted(nodes_by_depth, reverse=True):
        for node in nodes_by_depth[depth]:
            layer = node.operation
            if type(layer) is keras.layers.InputLayer:
                continue
            if len(node.input_tensors) != 1 or len(node.outputs) != 1:
                raise UnsupportedModelError(f"layer {layer.name}: only one input and output")
            ordered.append((id(node.input_tensors[0]), id(node.outputs[0]), layer))
    producer_of = {target: source for source, target, _ in ordered}
    input_id = id(graph.inputs[0])
    output_ids = [id(graph.outputs[index]) for index in wanted]
    needed: set[int] = set()
    for tensor_id in output_ids:
        while tensor_id != input_id and tensor_id not in needed:
            if tensor_id not in producer_of:
                raise UnsupportedModelError("an output is not reached from the input")
            needed.add(tensor_id)
            tensor_id = producer_of[tensor_id]
    steps = [
        (source, target, _layer_function(layer, dtype))
        for source, target, layer in ordered
        if target in needed
    ]
    if isinstance(outputs, int):
        functions = [function for _, _, function in steps]  # one output: a plain chain

        def forward_one(batch: Array) -> Array:
            for function in functions:
                batch = function(batch)
            return batch

        return forward_one

    def forward_many(batch: Array) -> list[Array]:
        values = {input_id: batch}
        for source, target, function in steps:
            values[target] = function(values[source])
        return [values[output_id] for output_id in output_ids]

    return forward_many
