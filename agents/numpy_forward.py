"""The forward pass of a small Keras model, in NumPy: the layers, and a plan that chains them.

A `ForwardPlan` is a model's graph, read from the model's JSON description by
`agents.model_config.read_model_config` (the allowlisted reader, which never executes
anything a file names). `plan.bind(arrays)` then turns the Dense layers' arrays into
a function of a batch, built from the NumPy layers below.

The runtime gets the arrays from the file's `model.weights.h5` (see `agents.keras_file`);
training gets them from the live model (`model_config.keras_arrays`), so one implementation
serves both.
Calling Keras on one observation costs about a millisecond; this costs microseconds.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    pass

Array = np.ndarray
LayerFunction = Callable[[Array], Array]
#: Arrays of the layers that hold weights, by layer name (Dense: kernel, then bias if any).
LayerArrays = Mapping[str, Sequence[Array]]
#: Keras reports every layer's dtype; the pass computes in float32, as Keras does for these.
DTYPE = np.float32

#: The NumPy pass must equal Keras's own output this closely (the tests and submit.py check).
KERAS_TOLERANCE = 1e-5


class UnsupportedModelError(ValueError):
    """The model cannot be run by the NumPy pass: a layer outside the allowlist, a malformed
    graph, or weights that disagree with the config."""


def _relu(x: Array) -> Array:
    return np.maximum(x, 0.0)


def softmax(x: Array) -> Array:
    """Row-wise softmax, shifted by the row maximum so large logits do not overflow."""
    shifted = np.exp(x - x.max(axis=-1, keepdims=True))
    return shifted / shifted.sum(axis=-1, keepdims=True)


def _sigmoid(x: Array) -> Array:
    # exp(-logaddexp(0, -x)) = 1 / (1 + exp(-x)) without overflowing for very negative x.
    return np.exp(-np.logaddexp(0.0, -x))


def _identity(x: Array) -> Array:
    return x


ACTIVATIONS: dict[str, LayerFunction] = {
    "linear": _identity,
    "relu": _relu,
    "tanh": np.tanh,
    "sigmoid": _sigmoid,
    "softmax": softmax,
}
#: The elementwise op layers, as (tensor, constant) -> result.
SCALAR_OPS: dict[str, Callable[[Array, Any], Array]] = {
    "Add": np.add,
    "Subtract": np.subtract,
    "Multiply": np.multiply,
    "Divide": np.divide,
    "TrueDivide": np.divide,
}
#: Keras layer classes the pass runs; op layers (`SCALAR_OPS`) are not Keras layers.
LAYER_CLASSES = ("InputLayer", "Dense", "Activation", "Rescaling")


@dataclass(frozen=True)
class Step:
    """One layer call: `target = f(source)` on tensors named after the layers that made them."""

    name: str
    kind: str
    source: str
    width_in: int
    width_out: int
    activation: str = "linear"
    use_bias: bool = False
    #: Rescaling's scale and offset, or an op layer's constant.
    scale: Array | None = None
    offset: Array | None = None
    constant: float = 0.0
    constant_first: bool = False

    def weight_shapes(self) -> tuple[tuple[int, ...], ...]:
        """Shapes of the arrays this layer keeps in the weights file, in Keras's order."""
        if self.kind != "Dense":
            return ()
        kernel = (self.width_in, self.width_out)
        return (kernel, (self.width_out,)) if self.use_bias else (kernel,)


@dataclass(frozen=True)
class ForwardPlan:
    """A model's graph, checked against the allowlist, waiting for its arrays (`bind`)."""

    model_class: str
    input_name: str
    input_width: int
    steps: tuple[Step, ...]
    output_names: tuple[str, ...]
    output_widths: tuple[int, ...]
    #: `(name, class)` of the model's Keras layers in `model.layers` order, which is the
    #: order Keras writes their weights in.
    keras_layers: tuple[tuple[str, str], ...]

    @property
    def weight_shapes(self) -> dict[str, tuple[tuple[int, ...], ...]]:
        """Expected array shapes of every layer that holds weights, by layer name."""
        return {step.name: step.weight_shapes() for step in self.steps if step.weight_shapes()}

    def bind(
        self, arrays: LayerArrays, outputs: int | tuple[int, ...] = 0
    ) -> Callable[[Array], Array] | Callable[[Array], list[Array]]:
        """`forward(batch)` computing the model's output `outputs` from `(n, input_width)`.

        `outputs` is one output index (the function returns that array) or a tuple of them
        (it returns a list, and shared layers run once). Only the layers that lead to the
        requested outputs run, so an agent acting on one head does not pay for the others.
        """
        wanted = (outputs,) if isinstance(outputs, int) else tuple(outputs)
        if not wanted or not all(0 <= index < len(self.output_names) for index in wanted):
            raise UnsupportedModelError(
                f"the model has {len(self.output_names)} output(s), not {outputs}"
            )
        targets = [self.output_names[index] for index in wanted]
        steps = self._steps_leading_to(targets)
        functions = [(step.source, step.name, _layer_function(step, arrays)) for step in steps]
        if isinstance(outputs, int):  # the layers before one output form a chain
            chain = [function for _, _, function in functions]

            def forward_one(batch: Array) -> Array:
                for function in chain:
                    batch = function(batch)
                return batch

            return forward_one

        input_name = self.input_name

        def forward_many(batch: Array) -> list[Array]:
            values = {input_name: batch}
            for source, target, function in functions:
                values[target] = function(values[source])
            return [values[target] for target in targets]

        return forward_many

    def _steps_leading_to(self, targets: list[str]) -> list[Step]:
        producers = {step.name: step for step in self.steps}
        needed: set[str] = set()
        for name in targets:
            while name != self.input_name and name not in needed:
                needed.add(name)
                name = producers[name].source
        return [step for step in self.steps if step.name in needed]


# ---------------------------------------------------------------------- binding arrays


def _layer_function(step: Step, arrays: LayerArrays) -> LayerFunction:
    if step.kind == "Dense":
        kernel, bias = _dense_arrays(step, arrays)
        return _dense_function(kernel, bias, ACTIVATIONS[step.activation])
    if step.kind == "Activation":
        return ACTIVATIONS[step.activation]
    if step.kind == "Rescaling":  # one ufunc instead of two where the other is a no-op
        scale, offset = step.scale, step.offset
        if not offset.any():
            return lambda x: x * scale
        if np.all(scale == 1.0):
            return lambda x: x + offset
        return lambda x: x * scale + offset
    operation, constant = SCALAR_OPS[step.kind], DTYPE(step.constant)
    if step.constant_first:
        return lambda x: operation(constant, x)
    return lambda x: operation(x, constant)


def _dense_arrays(step: Step, arrays: LayerArrays) -> tuple[Array, Array | None]:
    expected = step.weight_shapes()
    given = arrays.get(step.name)
    if given is None:
        raise UnsupportedModelError(f"layer {step.name!r}: no weights for this Dense layer")
    if len(given) != len(expected):
        raise UnsupportedModelError(
            f"layer {step.name!r}: {len(given)} weight arrays, the config implies "
            f"{len(expected)} (kernel{', bias' if step.use_bias else ''})"
        )
    checked = []
    for index, (array, shape) in enumerate(zip(given, expected, strict=True)):
        array = np.ascontiguousarray(array, dtype=DTYPE)
        if array.shape != shape:
            raise UnsupportedModelError(
                f"layer {step.name!r}: weight {index} has shape {array.shape}, the config "
                f"implies {shape}"
            )
        checked.append(array)
    return checked[0], (checked[1] if step.use_bias else None)


def _dense_function(kernel: Array, bias: Array | None, activation: LayerFunction) -> LayerFunction:
    if bias is None:
        return lambda x: activation(x @ kernel)
    if activation is _identity:
        return lambda x: x @ kernel + bias
    return lambda x: activation(x @ kernel + bias)
