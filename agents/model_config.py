"""Reading a Keras model's JSON description into a `ForwardPlan`, against a strict allowlist.

Keras describes a model as JSON (the `config.json` inside a `.keras` file, or
`keras.saving.serialize_keras_object(model)` for a live model). This module reads that
description and never executes anything it names: `InputLayer`; `Dense` with a relu, tanh,
sigmoid, softmax or linear activation; `Activation`; `Rescaling`; and the elementwise layers
Keras 3 records for `x * 3.0`, `x + 1.0`, `2.0 - x` or `x / 2.0` (scalar constants only).
Anything else raises `UnsupportedModelError` naming the layer. The file is untrusted input, so
every count and size is bounded before anything is allocated. `agents.numpy_forward` runs the
plan.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    import keras

from agents.numpy_forward import (
    ACTIVATIONS,
    DTYPE,
    LAYER_CLASSES,
    SCALAR_OPS,
    Array,
    ForwardPlan,
    Step,
    UnsupportedModelError,
)

#: The bounds keep a hostile config from making the reader allocate or loop without limit.
MAX_LAYERS = 256
MAX_UNITS = 1 << 16
MAX_PARAMETERS = 1 << 24

LAYERS_MODULE = "keras.layers"
OPS_MODULE = "keras.src.ops.numpy"
MODEL_MODULES = {
    "Sequential": {"keras", "keras.models", "keras.src.models.sequential"},
    "Functional": {"keras", "keras.models", "keras.src.models.functional"},
}
NESTED_MODEL_CLASSES = {"Sequential", "Functional", "Model"}
TENSOR_CLASS = "__keras_tensor__"
NUMPY_CLASS = "__numpy__"
#: Dtype policies that only say which float type to compute in (quantised ones change weights).
PLAIN_DTYPE_POLICIES = {"DTypePolicy", "FloatDTypePolicy"}


def _shown(value: Any) -> str:
    """A value from the file as it may appear in a message: printable and short."""
    text = value if isinstance(value, str) and value.isprintable() else repr(value)
    return text if len(text) <= 80 else f"{text[:77]}..."


def _fail(layer: str, message: str) -> UnsupportedModelError:
    return UnsupportedModelError(f"layer {_shown(repr(layer))}: {message}")


def _require_dict(value: Any, what: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise UnsupportedModelError(f"{what} is a {type(value).__name__}, expected an object")
    return value


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _positive_int(value: Any, layer: str, what: str, limit: int) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or not 0 < value <= limit:
        raise _fail(layer, f"{what} must be an integer in 1..{limit}, got {value!r}")
    return value


def read_model_config(config: Any) -> ForwardPlan:
    """The plan of a model description (the JSON of `config.json`); raise if anything is off."""
    config = _require_dict(config, "the model config")
    class_name, module = config.get("class_name"), config.get("module")
    if class_name not in MODEL_MODULES or module not in MODEL_MODULES[class_name]:
        raise UnsupportedModelError(
            f"the model is a {_shown(module)}.{_shown(class_name)}; only Sequential and "
            "Functional models of "
            "built-in layers are supported"
        )
    if config.get("registered_name") not in (None, class_name):
        raise UnsupportedModelError(
            f"the model is registered as {_shown(config.get('registered_name'))}, a custom class"
        )
    inner = _require_dict(config.get("config"), "the model's config")
    layers = inner.get("layers")
    if not isinstance(layers, list) or not layers:
        raise UnsupportedModelError("the model config lists no layers")
    if len(layers) > MAX_LAYERS:
        raise UnsupportedModelError(f"{len(layers)} layers, over the limit of {MAX_LAYERS}")
    entries = [_layer_entry(layer, index) for index, layer in enumerate(layers)]
    names = [name for name, _, _ in entries]
    if len(set(names)) != len(names):
        raise UnsupportedModelError("two layers share a name")
    if class_name == "Sequential":
        return _read_sequential(inner, entries)
    return _read_functional(inner, layers, entries)


def _layer_entry(layer: Any, index: int) -> tuple[str, str, dict[str, Any]]:
    """`(name, class, config)` of one allowed layer; raise for anything else."""
    layer = _require_dict(layer, f"layer {index}")
    settings = _require_dict(layer.get("config"), f"layer {index}'s config")
    name = layer.get("name", settings.get("name"))
    if not isinstance(name, str) or not name:
        raise UnsupportedModelError(f"layer {index} has no name")
    class_name, module = layer.get("class_name"), layer.get("module")
    registered = layer.get("registered_name")
    if class_name in NESTED_MODEL_CLASSES:
        raise _fail(name, "a nested model is not supported; build the policy from layers")
    known = (module == LAYERS_MODULE and class_name in LAYER_CLASSES) or (
        module == OPS_MODULE and class_name in SCALAR_OPS
    )
    if not known or registered not in (None, class_name):
        raise _fail(
            name,
            f"{_shown(module)}.{_shown(class_name)} (registered as {_shown(registered)}) is not "
            "supported: only "
            f"{', '.join(LAYER_CLASSES)} and scalar {', '.join(SCALAR_OPS)} run here, and "
            "nothing a file names is ever executed",
        )
    if class_name in ("Dense", "Activation", "Rescaling"):
        _check_dtype_policy(name, settings)
    return name, class_name, settings


def _check_dtype_policy(name: str, settings: dict[str, Any]) -> None:
    policy = settings.get("dtype")
    if isinstance(policy, dict) and policy.get("class_name") not in PLAIN_DTYPE_POLICIES:
        raise _fail(name, f"dtype policy {policy.get('class_name')!r} is not supported")
    if settings.get("quantization_config") or settings.get("lora_rank"):
        raise _fail(name, "quantised or LoRA layers are not supported")


def _activation(name: str, settings: dict[str, Any]) -> str:
    activation = settings.get("activation", "linear")
    if activation is None:
        return "linear"
    if not isinstance(activation, str) or activation not in ACTIVATIONS:
        shown = _shown(activation) if isinstance(activation, str) else "a serialised object"
        raise _fail(name, f"activation '{shown}' is not supported ({', '.join(ACTIVATIONS)})")
    return activation


def _float_array(value: Any, name: str, what: str) -> Array:
    """A Rescaling scale or offset: a number, a list of numbers or Keras's `__numpy__` form."""
    if isinstance(value, dict):
        if value.get("class_name") != NUMPY_CLASS:
            raise _fail(name, f"{what} must be numbers, got an object")
        value = _require_dict(value.get("config"), f"layer {name!r} {what}").get("value")
    try:
        array = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError) as error:
        raise _fail(name, f"{what} must be numbers: {error}") from error
    if array.dtype == object or array.ndim > 2 or array.size > MAX_UNITS:
        raise _fail(name, f"{what} must be a number or a short list of numbers")
    if not np.isfinite(array).all():
        raise _fail(name, f"{what} is not finite")
    return array.astype(DTYPE)


def _step(name: str, class_name: str, settings: dict[str, Any], source: str, width: int) -> Step:
    """The step for one unary layer reading a tensor of `width` features."""
    if class_name == "Dense":
        units = _positive_int(settings.get("units"), name, "units", MAX_UNITS)
        use_bias = settings.get("use_bias", True)
        if not isinstance(use_bias, bool):
            raise _fail(name, f"use_bias must be true or false, got {use_bias!r}")
        return Step(
            name, "Dense", source, width, units, _activation(name, settings), use_bias=use_bias
        )
    if class_name == "Activation":
        return Step(name, "Activation", source, width, width, _activation(name, settings))
    if class_name == "Rescaling":
        scale = _float_array(settings.get("scale", 1.0), name, "scale")
        offset = _float_array(settings.get("offset", 0.0), name, "offset")
        for array, what in ((scale, "scale"), (offset, "offset")):
            try:
                fits = np.broadcast_shapes((1, width), array.shape) == (1, width)
            except ValueError:
                fits = False
            if not fits:
                raise _fail(name, f"{what} of shape {array.shape} does not fit {width} features")
        return Step(name, "Rescaling", source, width, width, scale=scale, offset=offset)
    raise _fail(name, f"{class_name} cannot be used here")


def _input_width(name: str, settings: dict[str, Any]) -> int:
    shape = settings.get("batch_shape", settings.get("batch_input_shape"))
    if not isinstance(shape, list) or len(shape) != 2 or shape[0] is not None:
        raise _fail(name, f"input shape {shape!r} is not (None, features)")
    return _positive_int(shape[1], name, "the number of input features", MAX_UNITS)


def _check_size(steps: list[Step]) -> None:
    total = sum(math.prod(shape) for step in steps for shape in step.weight_shapes())
    if total > MAX_PARAMETERS:
        raise UnsupportedModelError(f"{total} weights, over the limit of {MAX_PARAMETERS}")


def _read_sequential(
    inner: dict[str, Any], entries: list[tuple[str, str, dict[str, Any]]]
) -> ForwardPlan:
    if entries[0][1] == "InputLayer":
        input_name, _, settings = entries[0]
        width = _input_width(input_name, settings)
        body = entries[1:]
    else:
        input_name = ""  # no layer has an empty name, so it cannot clash
        width = _input_width("the input", {"batch_shape": inner.get("build_input_shape")})
        body = entries
    input_width, source, steps = width, input_name, []
    for name, class_name, settings in body:
        if class_name not in ("Dense", "Activation", "Rescaling"):
            raise _fail(name, f"{class_name} cannot be used in a Sequential model here")
        step = _step(name, class_name, settings, source, width)
        steps.append(step)
        source, width = name, step.width_out
    _check_size(steps)
    return ForwardPlan(
        model_class="Sequential",
        input_name=input_name,
        input_width=input_width,
        steps=tuple(steps),
        output_names=(source,),
        output_widths=(width,),
        keras_layers=tuple((name, class_name) for name, class_name, _ in body),
    )


def _tensor_reference(value: Any, layer: str) -> str | None:
    """The producing layer's name if `value` is a serialised Keras tensor, else None."""
    if not isinstance(value, dict) or value.get("class_name") != TENSOR_CLASS:
        return None
    history = _require_dict(value.get("config"), f"layer {layer!r} input").get("keras_history")
    if (
        not isinstance(history, list)
        or len(history) != 3
        or not isinstance(history[0], str)
        or history[1:] != [0, 0]
    ):
        raise _fail(layer, f"input {history!r} is not the single output of another layer")
    return history[0]


def _one_reference(value: Any, what: str) -> str:
    """The layer named by `[name, 0, 0]` or `[[name, 0, 0]]` (model inputs and outputs)."""
    if isinstance(value, list) and len(value) == 1 and isinstance(value[0], list):
        value = value[0]
    if not isinstance(value, list) or len(value) != 3 or not isinstance(value[0], str):
        raise UnsupportedModelError(f"{what} {value!r} is not [layer, 0, 0]")
    if value[1:] != [0, 0]:
        raise UnsupportedModelError(f"{what} {value!r}: only single-output layers are supported")
    return value[0]


def _read_functional(
    inner: dict[str, Any], layers: list[Any], entries: list[tuple[str, str, dict[str, Any]]]
) -> ForwardPlan:
    widths: dict[str, int] = {}
    input_names = [name for name, class_name, _ in entries if class_name == "InputLayer"]
    if len(input_names) != 1:
        raise UnsupportedModelError(f"the model has {len(input_names)} inputs, not one")
    steps = []
    for layer, (name, class_name, settings) in zip(layers, entries, strict=True):
        nodes = layer.get("inbound_nodes")
        if class_name == "InputLayer":
            if nodes:
                raise _fail(name, "an input layer cannot have inputs")
            widths[name] = _input_width(name, settings)
            continue
        if not isinstance(nodes, list) or len(nodes) != 1:
            raise _fail(name, "each layer must be called exactly once (no shared layers)")
        node = _require_dict(nodes[0], f"layer {name!r} call")
        arguments, keywords = node.get("args"), node.get("kwargs", {})
        if not isinstance(arguments, list) or keywords:
            raise _fail(name, "its call has keyword arguments or no argument list")
        sources = [_tensor_reference(argument, name) for argument in arguments]
        tensors = [source for source in sources if source is not None]
        if len(tensors) != 1:
            raise _fail(name, f"takes {len(tensors)} tensors; only one-input layers run here")
        source = tensors[0]
        if source not in widths:
            raise _fail(name, f"reads {source!r}, which no earlier layer produces")
        width = widths[source]
        if class_name in SCALAR_OPS:
            if len(arguments) != 2:
                raise _fail(name, "an elementwise layer needs a tensor and one constant")
            constant_first = sources[0] is None
            constant = arguments[0] if constant_first else arguments[1]
            if not _is_number(constant):
                raise _fail(name, f"the constant {constant!r} is not a finite number")
            step = Step(
                name, class_name, source, width, width,
                constant=float(constant), constant_first=constant_first,
            )  # fmt: skip
        else:
            if len(arguments) != 1:
                raise _fail(name, "takes extra positional arguments")
            step = _step(name, class_name, settings, source, width)
        steps.append(step)
        widths[name] = step.width_out
    input_name = _one_reference(inner.get("input_layers"), "the model input")
    if input_name != input_names[0]:
        raise UnsupportedModelError(f"the model input {input_name!r} is not its input layer")
    outputs = inner.get("output_layers")
    if isinstance(outputs, list) and outputs and isinstance(outputs[0], list):
        output_names = [_one_reference(output, "a model output") for output in outputs]
    else:
        output_names = [_one_reference(outputs, "the model output")]
    for name in output_names:
        if name not in widths:
            raise UnsupportedModelError(f"the model output {name!r} is not a layer of the model")
    _check_size(steps)
    return ForwardPlan(
        model_class="Functional",
        input_name=input_name,
        input_width=widths[input_name],
        steps=tuple(steps),
        output_names=tuple(output_names),
        output_widths=tuple(widths[name] for name in output_names),
        keras_layers=tuple(
            (name, class_name) for name, class_name, _ in entries if class_name not in SCALAR_OPS
        ),
    )


# ---------------------------------------------------------------------- live Keras models


def plan_of_keras_model(model: keras.Model) -> ForwardPlan:
    """The plan of a live model, from the same JSON `keras.models.save_model` writes."""
    import keras

    config = json.loads(json.dumps(keras.saving.serialize_keras_object(model)))
    return read_model_config(config)


def keras_arrays(model: keras.Model, plan: ForwardPlan) -> Callable[[], dict[str, list[Array]]]:
    """A function returning the live model's current Dense arrays by layer name.

    The layers are looked up once here, so each call only copies the variables out
    (well under a millisecond for these networks: cheap enough to call after every update).
    """
    layers = [(name, model.get_layer(name)) for name in plan.weight_shapes]

    def read() -> dict[str, list[Array]]:
        return {name: [variable.numpy() for variable in layer.weights] for name, layer in layers}

    return read
