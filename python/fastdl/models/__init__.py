"""Keras models: ``Model`` (functional and subclassed), ``Sequential``, and loading."""
from .functional import Functional
from .model import Model
from .sequential import Sequential


def load_model(filepath, custom_objects=None, compile=True, safe_mode=True):
    """A model written by model.save."""
    from ..saving import load_model as _load
    return _load(filepath, custom_objects=custom_objects, compile=compile, safe_mode=safe_mode)


def clone_model(model, input_tensors=None, clone_function=None):
    """A new model of the same architecture with fresh weights (from its config)."""
    if input_tensors is not None or clone_function is not None:
        raise NotImplementedError("clone_model: input_tensors and clone_function are not supported")
    from ..saving import deserialize_object, serialize_object
    return deserialize_object(serialize_object(model), kind="model")


__all__ = ["Model", "Sequential", "Functional", "load_model", "clone_model"]
