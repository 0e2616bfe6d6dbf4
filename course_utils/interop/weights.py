"""Weights across layouts: the course's CNN in both frameworks (:func:`torch_cnn`,
:func:`keras_cnn`, the same layer names), its weights converted between a PyTorch
``state_dict`` and the Keras layout of :mod:`course_utils.training`, and the optimizer's
momentum read from and written to either framework.
"""

import numpy as np

from .. import training
from ..training import CNN_SPEC, Layer

CNN_NAMES = ("conv1", "conv2", "out")  # the CNN's layers, the same names in both frameworks

# ---------------------------------------------------------------- weights across layouts


def structure(spec=CNN_SPEC):
    """Return ``[(kind, flat_from), ...]`` for a layer spec of :mod:`course_utils.training`:
    each layer's kind and, for a dense layer after a Flatten, the (H, W, C) map it reads."""
    return [(kind, dims[0] if isinstance(dims[0], tuple) else None) for kind, *dims in spec]


def layers_from_state_dict(state_dict, spec=CNN_SPEC, names=CNN_NAMES):
    """Return :class:`~course_utils.training.Layer` objects in the Keras layout from a PyTorch
    ``state_dict`` (``{"conv1.weight": OIHW, "conv1.bias": ..., "out.weight": (out, in)}``,
    tensors or arrays). ``spec`` gives each layer's kind and flatten shape; ``names`` the
    modules in order. Uses :mod:`course_utils.training`'s converters.
    """
    layers = []
    for name, (kind, flat_from) in zip(names, structure(spec), strict=True):
        weight = _numpy(state_dict[f"{name}.weight"])
        bias = _numpy(state_dict[f"{name}.bias"])
        if kind == "conv":
            kernel = training.hwio_from_oihw(weight)  # OIHW -> HWIO
        else:
            kernel = training.dense_from_linear(weight)  # (out, in) -> (in, out)
            if flat_from is not None:  # rows in PyTorch's (C, H, W) flatten order -> (H, W, C)
                kernel = training.hwc_rows_from_chw(kernel, flat_from)
        layers.append(Layer(kind, kernel, bias, flat_from))
    return layers


def state_dict_from_layers(layers, names=CNN_NAMES):
    """Return a PyTorch-layout ``{"<name>.weight": array, "<name>.bias": array}`` (NumPy) from
    Keras-layout :class:`~course_utils.training.Layer` objects (the inverse of
    :func:`layers_from_state_dict`)."""
    out = {}
    for name, layer in zip(names, layers, strict=True):
        out[f"{name}.weight"], out[f"{name}.bias"] = training.torch_params(layer)
    return out


def layers_from_keras_arrays(arrays, spec=CNN_SPEC, names=CNN_NAMES):
    """Return :class:`~course_utils.training.Layer` objects from arrays saved by Keras layer
    name (``{"conv1/kernel": HWIO, "conv1/bias": ..., "out/kernel": (in, out)}``): already the
    Keras layout, so nothing moves."""
    return [
        Layer(kind, _numpy(arrays[f"{n}/kernel"]), _numpy(arrays[f"{n}/bias"]), flat_from)
        for n, (kind, flat_from) in zip(names, structure(spec), strict=True)
    ]


def _numpy(value):
    if hasattr(value, "detach"):
        value = value.detach().cpu()
    return np.asarray(value)


# ---------------------------------------------------------------- the models both sides train


def torch_cnn():
    """Return the course's small CNN as a PyTorch module (input ``(N, 1, 8, 8)``, channels first;
    modules ``conv1``, ``conv2``, ``out``), the same network as 05_training's."""
    import torch
    from torch import nn

    class CNN(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv1 = nn.Conv2d(1, 8, kernel_size=3, padding=1)
            self.conv2 = nn.Conv2d(8, 16, kernel_size=3, padding=1)
            self.out = nn.Linear(16 * 2 * 2, 10)

        def forward(self, x):
            x = torch.max_pool2d(torch.relu(self.conv1(x)), 2)
            x = torch.max_pool2d(torch.relu(self.conv2(x)), 2)
            return self.out(x.flatten(1))

    return CNN()


def keras_cnn():
    """Return the same CNN as a Keras model (input ``(N, 8, 8, 1)``, channels last; layers named
    ``conv1``, ``conv2``, ``out``). Works on any Keras backend."""
    import keras

    L = keras.layers
    return keras.Sequential(
        [
            keras.Input((8, 8, 1)),
            L.Conv2D(8, 3, padding="same", activation="relu", name="conv1"),
            L.MaxPooling2D(2),
            L.Conv2D(16, 3, padding="same", activation="relu", name="conv2"),
            L.MaxPooling2D(2),
            L.Flatten(),
            L.Dense(10, name="out"),
        ],
        name="cnn",
    )


def keras_arrays(model):
    """Return a Keras model's weights as ``{"<layer>/<weight>": NumPy array}`` (``"conv1/kernel"``,
    ``"conv1/bias"``, ...), in the Keras layout, for the layers that hold weights."""
    import keras

    return {
        f"{layer.name}/{weight.name}": keras.ops.convert_to_numpy(weight)
        for layer in model.layers
        for weight in layer.weights
    }


def keras_momentum(model, optimizer):
    """Return a built Keras SGD optimizer's momentum for each of ``model``'s trainable weights,
    named as in :func:`keras_arrays` (``optimizer.momentums`` follows the order of
    ``model.trainable_variables``, which is layer by layer)."""
    import keras

    names = [f"{layer.name}/{w.name}" for layer in model.layers for w in layer.trainable_weights]
    return {
        name: keras.ops.convert_to_numpy(m)
        for name, m in zip(names, optimizer.momentums, strict=True)
    }


def set_keras_momentum(model, optimizer, momentums):
    """Build a Keras SGD ``optimizer`` for ``model`` and set its momentum from ``momentums``
    (``{"<layer>/<weight>": array}`` in the Keras layout, as :func:`keras_momentum` returns);
    return the optimizer."""
    optimizer.build(model.trainable_variables)
    names = [f"{layer.name}/{w.name}" for layer in model.layers for w in layer.trainable_weights]
    for name, slot in zip(names, optimizer.momentums, strict=True):
        slot.assign(momentums[name])
    return optimizer


def set_torch_momentum(model, optimizer, buffers):
    """Set a PyTorch SGD ``optimizer``'s momentum buffers from ``buffers`` (``{parameter name:
    array}`` in the PyTorch layout); return the optimizer."""
    import torch

    for name, param in model.named_parameters():
        optimizer.state[param]["momentum_buffer"] = torch.as_tensor(np.asarray(buffers[name]))
    return optimizer


def torch_momentum(model, optimizer):
    """Return a PyTorch SGD optimizer's momentum buffers as ``{parameter name: NumPy array}``."""
    return {
        name: optimizer.state[param]["momentum_buffer"].detach().cpu().numpy()
        for name, param in model.named_parameters()
    }
