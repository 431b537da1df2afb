"""Saving models and weights, and (de)serializing layers, models and custom objects.

Which format a file gets:

- ``model.save("m.keras")`` and ``model.save_weights("w.weights.h5")`` write Keras 3's
  own formats (saving/keras_format.py; h5py, ``pip install 'fastdl[keras]'``) whenever
  Keras can express the model: a Sequential or functional model whose layers all have an
  entry in saving/layer_table.py. Keras 3 loads those files and predicts identically.
- Anything else (a subclassed model, a user's layer, a Lambda, any other file name) is
  written in fastdl's own format below: Keras could not rebuild those classes anyway.
  (So a ``.keras`` file of a subclassed model is fastdl's format, not Keras'.)
- ``load_model`` / ``load_weights`` look at the file's contents, not its name, and read
  both formats (``load_weights`` also reads the weights inside a ``.keras`` file).

fastdl's own format: one file holds a model: its architecture (the config of every layer, JSON), its
weights, and its optimizer state, in a NumPy ``.npz`` container, written to a
temporary name and renamed so a crash never leaves half a file. Layers and
models written by users are found by class name through ``custom_objects=``,
``register_keras_serializable`` or ``custom_object_scope``.
"""
import contextlib
import json
import os

import numpy as np

from .. import _device
from .._fileio import atomic_file

__all__ = ["save_model", "load_model", "save_weights", "load_weights", "serialize_object",
           "deserialize_object", "register_keras_serializable", "get_custom_objects",
           "custom_object_scope", "get_registered_name", "get_registered_object"]

_FORMAT = "fastdl"
_FORMAT_VERSION = 2
_REGISTERED = {}
_SCOPES = []


# ------------------------------------------------------------------ custom objects
def register_keras_serializable(package="Custom", name=None):
    """Decorator: the class can be loaded by name without custom_objects."""
    def deco(cls):
        key = f"{package}>{name or cls.__name__}"
        _REGISTERED[key] = cls
        cls._registered_name = key
        return cls
    return deco


def get_custom_objects():
    return _REGISTERED


def get_registered_name(obj):
    cls = obj if isinstance(obj, type) else type(obj)
    return getattr(cls, "_registered_name", cls.__name__)


def get_registered_object(name, custom_objects=None, module_objects=None):
    return _lookup(name, custom_objects) or (module_objects or {}).get(name)


@contextlib.contextmanager
def custom_object_scope(custom_objects):
    _SCOPES.append(dict(custom_objects or {}))
    try:
        yield
    finally:
        _SCOPES.pop()


def _builtin_classes():
    from .. import layers, models
    table = dict(layers._CLASSES)
    table.update({"Sequential": models.Sequential, "Functional": models.Functional,
                  "Model": models.Functional})
    return table


def _lookup(name, custom_objects):
    for scope in [custom_objects or {}] + _SCOPES[::-1]:
        if name in scope:
            return scope[name]
    if name in _REGISTERED:
        return _REGISTERED[name]
    short = name.split(">", 1)[-1]
    for key, cls in _REGISTERED.items():
        if key.split(">", 1)[-1] == short:
            return cls
    for scope in [custom_objects or {}] + _SCOPES[::-1]:
        if short in scope:
            return scope[short]
    return None


def serialize_object(obj):
    return {"class_name": get_registered_name(obj), "config": obj.get_config()}


def deserialize_object(config, custom_objects=None, kind="object"):
    if not isinstance(config, dict) or "class_name" not in config:
        raise ValueError(f"cannot deserialize {config!r}: expected a dict with 'class_name' and "
                         f"'config'")
    name = config["class_name"]
    cls = _lookup(name, custom_objects) or _builtin_classes().get(name)
    if cls is None:
        raise ValueError(f"unknown {kind} class {name!r}: pass custom_objects={{'{name}': "
                         f"{name}}} to load_model, or decorate the class with "
                         f"@fastdl.saving.register_keras_serializable()")
    cfg = dict(config.get("config") or {})
    import inspect
    if "custom_objects" in inspect.signature(cls.from_config).parameters:
        return cls.from_config(cfg, custom_objects=custom_objects)
    with custom_object_scope(custom_objects):
        return cls.from_config(cfg)


# ------------------------------------------------------------------ the file
def _write(path, header, arrays):
    """Write to a temporary file in the same folder, then rename over path."""
    with atomic_file(path, "wb") as f:
        meta = np.frombuffer(json.dumps(header).encode("utf-8"), dtype=np.uint8)
        np.savez(f, __fastdl__=meta, **{k: np.asarray(_device.to_host(v)) for k, v in arrays.items()})


def _read(path):
    if not os.path.exists(path):
        raise FileNotFoundError(f"no such file: {path!r}")
    try:
        with np.load(path, allow_pickle=False) as z:
            if not hasattr(z, "files") or "__fastdl__" not in z.files:
                raise ValueError("no fastdl header")
            header = json.loads(bytes(z["__fastdl__"]).decode("utf-8"))
            arrays = {k: z[k] for k in z.files if k != "__fastdl__"}
    except Exception as e:
        raise ValueError(f"{path!r} is not a readable fastdl model/weights file (truncated, "
                         f"corrupt or another format): {type(e).__name__}: {e}") from None
    if not isinstance(header, dict) or header.get("format") != _FORMAT:
        raise ValueError(f"{path!r} is not a fastdl model/weights file")
    return header, arrays


def _not_built(model, what):
    return ValueError(model._not_built_message(what))


def _keras_format_for(model, path, suffix):
    """True when ``path`` (ending in ``suffix``) is to be written in Keras' format."""
    if not str(path).endswith(suffix):
        return False
    from . import keras_format
    return keras_format.expressible(model)


def save_model(model, filepath, overwrite=True, include_optimizer=True, **kwargs):
    """One file: architecture JSON, weights, optimizer state (Keras' format for a .keras
    name when Keras can express the model, else fastdl's; see the module docstring)."""
    if kwargs:
        raise TypeError(f"save: unexpected keyword argument(s) {', '.join(sorted(kwargs))}")
    if not model.built:
        raise _not_built(model, "save")
    path = os.fspath(filepath)
    if not overwrite and os.path.exists(path):
        raise FileExistsError(f"save: {path!r} exists and overwrite=False")
    if _keras_format_for(model, path, ".keras"):
        from . import keras_format
        keras_format.save_model(model, path, include_optimizer=include_optimizer)
        return
    header = {"format": _FORMAT, "version": _FORMAT_VERSION, "kind": "model",
              "model": serialize_object(model), "dtype": (model.dtype or np.dtype("float32")).name,
              "build_input_shape": _jsonable(getattr(model, "_build_input_shape", None)),
              "compile": _compile_config(model)}
    weights = model.get_weights()
    arrays = {f"w{i}": w for i, w in enumerate(weights)}
    if include_optimizer and model.compiled and model.optimizer is not None:
        it, state = model.optimizer.get_state(model.trainable_weights)
        header["optimizer_iterations"] = it
        header["optimizer_slots"] = len(state)
        arrays.update({f"o{i}": s for i, s in enumerate(state)})
    header["num_weights"] = len(weights)
    _write(path, header, arrays)


def _jsonable(v):
    if isinstance(v, dict):
        return {k: _jsonable(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_jsonable(x) for x in v]
    return v


def _compile_config(model):
    if not model.compiled:
        return None
    from .. import losses, optimizers

    def loss_cfg(l):
        if l is None or isinstance(l, str):
            return l
        if isinstance(l, dict):
            return {k: loss_cfg(v) for k, v in l.items()}
        if isinstance(l, (list, tuple)):
            return [loss_cfg(v) for v in l]
        obj = losses.get(l) if not isinstance(l, losses.Loss) else l
        if isinstance(obj, losses.LossFunctionWrapper):
            return None
        return losses.serialize(obj)
    mets = model._metrics_arg
    wmets = getattr(model, "_weighted_metrics_arg", None)
    ok = lambda m: isinstance(m, (str, list, tuple, dict)) or m is None  # noqa: E731
    return {"optimizer": optimizers.serialize(model.optimizer),
            "loss": loss_cfg(model._loss_arg), "loss_weights": model._loss_weights_arg,
            "metrics": mets if ok(mets) and json_ok(mets) else None,
            "weighted_metrics": wmets if ok(wmets) and json_ok(wmets) else None}


def json_ok(v):
    try:
        json.dumps(v)
        return True
    except TypeError:
        return False


def load_model(filepath, custom_objects=None, compile=True, safe_mode=True):
    path = os.fspath(filepath)
    from . import keras_format
    kind = keras_format.file_kind(path)
    if kind == "keras":
        with custom_object_scope(custom_objects):
            return keras_format.load_model(path, compile=compile)
    if kind == "h5":
        raise ValueError(f"{path!r} is an HDF5 weights file (from save_weights), not a model; "
                         f"build the model and call model.load_weights instead")
    header, arrays = _read(path)
    if header.get("kind") != "model":
        raise ValueError(f"{path!r} holds only weights (from save_weights); build the model and "
                         f"call model.load_weights instead")
    if header.get("version") == 1:   # files of the Sequential-only format
        header["model"] = {"class_name": "Sequential", "config": header["config"]}
        header["build_input_shape"] = header["config"].get("build_input_shape")
    from .. import losses, optimizers
    try:
        model = deserialize_object(header["model"], custom_objects, kind="model")
        dt = header.get("dtype")
        if not model.built:
            shape = header.get("build_input_shape")
            if shape is None:
                raise ValueError("the saved model has no input shape")
            if hasattr(model, "_build_from_data") and dt:
                model.build(tuple(shape), dt)
            else:
                model.build(shape)
        elif dt and model.dtype is not None and np.dtype(dt) != model.dtype and \
                hasattr(model, "_build_from_data"):
            for l in model._layers:
                l.built = False
                l._weights, l._grads, l._weight_names, l._weight_trainable = [], [], [], []
                l.dtype = None
            model.built = False
            model.build(model._build_input_shape, dt)
        n = header["num_weights"]
        model.set_weights([arrays[f"w{i}"] for i in range(n)])
        cc = header.get("compile")
        if compile and cc:
            def loss_obj(l):
                if isinstance(l, dict) and "class_name" in l:
                    return losses.get(l)
                if isinstance(l, dict):
                    return {k: loss_obj(v) for k, v in l.items()}
                if isinstance(l, list):
                    return [loss_obj(v) for v in l]
                return l
            model.compile(optimizer=optimizers.get(cc["optimizer"]), loss=loss_obj(cc["loss"]),
                          loss_weights=cc.get("loss_weights"), metrics=cc.get("metrics"),
                          weighted_metrics=cc.get("weighted_metrics"))
            k = header.get("optimizer_slots")
            if k is not None:
                model.optimizer.set_state(model.trainable_weights, header["optimizer_iterations"],
                                          [arrays[f"o{i}"] for i in range(k)])
    except (KeyError, TypeError) as e:
        raise ValueError(f"{path!r}: the saved model is incomplete or inconsistent "
                         f"({type(e).__name__}: {e})") from None
    return model


def save_weights(model, filepath, overwrite=True):
    if not model.built:
        raise _not_built(model, "save_weights")
    path = os.fspath(filepath)
    if not overwrite and os.path.exists(path):
        raise FileExistsError(f"save_weights: {path!r} exists and overwrite=False")
    if _keras_format_for(model, path, ".weights.h5"):
        from . import keras_format
        keras_format.save_weights(model, path)
        return
    ws = model.get_weights()
    header = {"format": _FORMAT, "version": _FORMAT_VERSION, "kind": "weights",
              "num_weights": len(ws), "shapes": [list(w.shape) for w in ws]}
    _write(path, header, {f"w{i}": w for i, w in enumerate(ws)})


def load_weights(model, filepath):
    path = os.fspath(filepath)
    from . import keras_format
    kind = keras_format.file_kind(path)
    if kind is not None:
        if not model.built:
            raise _not_built(model, "load_weights")
        bad = keras_format.unsupported_layers(model)
        if bad:
            raise ValueError(f"load_weights: {path!r} is in Keras' format, which fastdl reads into "
                             f"Sequential and functional models of built-in layers; "
                             f"{bad[0].name!r} ({type(bad[0]).__name__}) is not one")
        keras_format.load_weights(model, path, kind)
        return
    header, arrays = _read(path)
    n = header.get("num_weights")
    ws = [arrays.get(f"w{i}") for i in range(n or 0)]
    if n is None or any(w is None for w in ws):
        raise ValueError(f"load_weights: {path!r} holds no complete set of weights")
    if not model.built:
        raise _not_built(model, "load_weights")
    mine = model.weights
    if len(ws) != len(mine) or any(a.shape != b.shape for a, b in zip(ws, mine)):
        raise ValueError(f"load_weights: {path!r} holds weights of shapes "
                         f"{[a.shape for a in ws]}, the model has {[b.shape for b in mine]}")
    model.set_weights(ws)
