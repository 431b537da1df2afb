"""Keras 3's own files: ``.keras`` (a zip of config.json, metadata.json and
model.weights.h5) and ``.weights.h5``.

The HDF5 layout is Keras 3's: one group per layer under ``layers/``, named after
the layer's class in snake case and numbered in model order (``dense``,
``dense_1``, ...; not the layer's own name), holding ``vars/0``, ``vars/1``, ...
(recurrent layers: ``cell/vars/...``); plus an empty ``vars`` for the model.
Configs map layer by layer through saving.layer_table. h5py is imported only here,
and only when a file is read or written.
"""
import datetime
import io
import json
import os
import zipfile

import numpy as np

from .. import _device
from .._fileio import atomic_file
from . import layer_table

KERAS_VERSION = "3.15.1"      # the version written into metadata.json (the format fastdl follows)


def _h5py():
    try:
        import h5py
    except ImportError:
        raise ImportError("reading and writing Keras files (.keras, .weights.h5) needs h5py: "
                          "pip install 'fastdl[keras]'") from None
    return h5py


# ================================================================ which models
def unsupported_layers(model):
    """The layers of ``model`` that Keras' format cannot express here (empty if it can)."""
    from ..models import Functional, Sequential
    if not isinstance(model, (Sequential, Functional)) or type(model) not in (Sequential, Functional):
        return [model]
    return [l for l in model.layers if layer_table.converter_for_layer(l) is None]


def expressible(model):
    return not unsupported_layers(model)


def is_keras_zip(path):
    try:
        with zipfile.ZipFile(path) as z:
            return "config.json" in z.namelist()
    except (zipfile.BadZipFile, OSError):
        return False


def is_h5(path):
    try:
        with open(path, "rb") as f:
            return f.read(8) == b"\x89HDF\r\n\x1a\n"
    except OSError:
        return False


# ================================================================ h5 weights
def keras_layer_order(model):
    """A functional model's layers in the order Keras 3 gives them (model.layers there):
    by decreasing depth (distance from the outputs), ties by first visit of a depth-first
    walk from the outputs. Keras numbers the weight groups of a file in this order."""
    index, post, seen = {}, [], set()

    def walk(node):
        if id(node) in seen:
            return
        index.setdefault(id(node.layer), len(index))
        for t in node.inputs:
            walk(t.node)
        seen.add(id(node))
        post.append(node)
    for t in model._flat_outputs:
        walk(t.node)
    node_depth, layer_depth, layer_of = {}, {}, {}
    for node in reversed(post):
        d = node_depth.setdefault(id(node), 0)
        d = max(d, layer_depth.get(id(node.layer), 0))
        layer_depth[id(node.layer)] = d
        layer_of[id(node.layer)] = node.layer
        node_depth[id(node)] = d
        for t in node.inputs:
            node_depth[id(t.node)] = max(d + 1, node_depth.get(id(t.node), 0))
    for t in model._flat_inputs:            # inputs no output uses
        if id(t.node.layer) not in layer_depth:
            layer_depth[id(t.node.layer)] = 0
            index[id(t.node.layer)] = -1
            layer_of[id(t.node.layer)] = t.node.layer
    ids = sorted(layer_depth, key=lambda i: (-layer_depth[i], index[i]))
    return [layer_of[i] for i in ids]


def _layer_groups(model):
    """[(group path, layer)] in Keras' order and naming."""
    from ..models import Sequential
    layers = list(model.layers)
    if not isinstance(model, Sequential):
        layers = keras_layer_order(model)       # input layers included, as Keras does
    out, counts = [], {}
    for l in layers:
        base = layer_table.snake(type(l).__name__)
        k = counts.get(base, 0)
        counts[base] = k + 1
        out.append((f"layers/{base}" + (f"_{k}" if k else ""), l))
    return out


def _own_arrays(layer):
    return list(layer.weights)


def write_weights_h5(model, f):
    """Keras' weights layout into an open h5py.File."""
    f.create_group("layers")
    for path, layer in _layer_groups(model):
        conv = layer_table.converter_for_layer(layer)
        ws = [np.asarray(_device.to_host(w)) for w in _own_arrays(layer)]
        grp = f.create_group(path)
        if not ws:
            grp.create_group("vars").attrs["name"] = layer.name
            continue
        ws = conv.weights_to_keras(layer, ws)
        i = 0
        for sub, n in conv.weight_groups(layer, len(ws)):
            g = grp.require_group(sub)
            g.attrs["name"] = layer.name
            for j in range(n):
                g.create_dataset(str(j), data=ws[i])
                i += 1
        if "vars" not in grp:
            grp.create_group("vars").attrs["name"] = layer.name
    f.create_group("vars").attrs["name"] = model.name


def read_weights_h5(model, f, source):
    """Set ``model``'s weights from an open h5py.File in Keras' layout."""
    new = []
    groups = _layer_groups(model)
    mapped = {path for path, layer in groups if _own_arrays(layer)}
    extra = []
    if "layers" in f:
        for key in f["layers"]:
            held = []
            f["layers"][key].visititems(lambda n, o: held.append(n) if hasattr(o, "shape") else None)
            if held and f"layers/{key}" not in mapped:
                extra.append(key)
    if extra:
        raise ValueError(f"{source!r} holds weights for layers {sorted(extra)} that the model "
                         f"{model.name!r} does not have (its layers with weights: "
                         f"{sorted(p.split('/', 1)[1] for p in mapped)})")
    for path, layer in groups:
        mine = _own_arrays(layer)
        if not mine:
            continue
        conv = layer_table.converter_for_layer(layer)
        arrays = []
        for sub, n in conv.weight_groups(layer, len(mine)):
            full = f"{path}/{sub}"
            if full not in f:
                raise ValueError(f"{source!r}: no weights for layer {layer.name!r} "
                                 f"({type(layer).__name__}) at {full!r}; the file's layers: "
                                 f"{sorted(f['layers']) if 'layers' in f else []}")
            g = f[full]
            if len(g) != n:
                raise ValueError(f"{source!r}: layer {layer.name!r} ({type(layer).__name__}) "
                                 f"expects {n} weight arrays at {full!r}, the file holds {len(g)}")
            arrays.extend(np.asarray(g[str(j)]) for j in range(n))
        arrays = conv.weights_from_keras(layer, arrays)
        for a, w in zip(arrays, mine):
            if a.shape != w.shape:
                raise ValueError(f"{source!r}: layer {layer.name!r} ({type(layer).__name__}) "
                                 f"has a weight of shape {w.shape}, the file {a.shape}")
        new.extend(zip(mine, arrays))
    for w, a in new:
        _device.assign(w, a.astype(w.dtype, copy=False))


def _keras_slot_order(opt, n_params):
    """Indices into fastdl's optimizer state (each weight's slots in turn) in the order
    Keras 3 keeps the same variables, or None where that layout is not known here.
    Keras makes one list per add_optimizer_variables call, interleaving the names of one
    call weight by weight: Adam's (momentum, velocity) then amsgrad's velocity_hat;
    RMSprop's velocity, momentum and average_gradient one list each."""
    if getattr(opt, "use_ema", False) or getattr(opt, "gradient_accumulation_steps", None):
        return None
    try:
        float(opt.learning_rate)
    except (TypeError, ValueError):
        return None     # a schedule
    name = type(opt).__name__
    k = len(opt._slot_names)
    if name == "RMSprop":
        groups = [[i] for i in range(k)]
    elif name in ("Adam", "AdamW") and k == 3:
        groups = [[0, 1], [2]]
    else:
        groups = [list(range(k))]
    return [p * k + s for grp in groups for p in range(n_params) for s in grp]


def _keras_extra(opt, iterations):
    """Variables Keras keeps after the slots that fastdl derives from the step count
    (Nadam's product of momentum-schedule factors)."""
    if type(opt).__name__ == "Nadam":
        return [np.array(opt._u_product(int(iterations)), np.float32)]
    return []


def write_optimizer_h5(model, f):
    """The optimizer's state. Where Keras' layout is known (_keras_slot_order): Keras'
    variables, iterations, learning rate, the slots in Keras' order, then what Keras
    adds (_keras_extra), so Keras resumes training too. Otherwise (EMA, gradient
    accumulation, a learning-rate schedule) fastdl's own order under 'fastdl_optimizer',
    a group Keras does not read (it starts such an optimizer afresh)."""
    opt = model.optimizer
    it, state = opt.get_state(model.trainable_weights)
    order = _keras_slot_order(opt, len(model.trainable_weights))
    if order is not None and len(order) == len(state):
        arrays = [np.array(it, np.int64), np.array(float(opt.learning_rate), np.float32)] + \
            [state[i] for i in order] + _keras_extra(opt, it)
        group = "optimizer"
    else:
        arrays = [np.array(it, np.int64)] + list(state)
        group = "fastdl_optimizer"
    g = f.create_group(group).create_group("vars")
    g.attrs["name"] = getattr(opt, "name", None) or type(opt).__name__.lower()
    for i, a in enumerate(arrays):
        g.create_dataset(str(i), data=a)


def read_optimizer_h5(model, f, source):
    if not model.compiled or model.optimizer is None:
        return
    import warnings
    opt = model.optimizer
    params = model.trainable_weights
    need = len(opt.get_state(params)[1])
    if "fastdl_optimizer/vars" in f:
        g = f["fastdl_optimizer/vars"]
        if len(g) == need + 1:
            opt.set_state(params, int(np.asarray(g["0"])),
                          [np.asarray(g[str(i + 1)]) for i in range(need)])
            return
    elif "optimizer/vars" in f:
        g = f["optimizer/vars"]
        order = _keras_slot_order(opt, len(params))
        extra = len(_keras_extra(opt, 0))
        if order is not None and len(g) == need + 2 + extra:
            state = [None] * need
            for j, i in enumerate(order):
                state[i] = np.asarray(g[str(j + 2)])
            opt.set_state(params, int(np.asarray(g["0"])), state)
            return
    else:
        return
    warnings.warn(f"{source!r}: the optimizer state in the file does not fit "
                  f"{type(opt).__name__} here; the optimizer starts afresh", stacklevel=4)


def save_weights(model, path):
    h5py = _h5py()
    with atomic_file(path, "wb") as out:
        with h5py.File(out, "w") as f:
            write_weights_h5(model, f)


def load_weights(model, path, kind="h5"):
    """Weights from a .weights.h5 file, or from the model.weights.h5 inside a .keras file."""
    h5py = _h5py()
    try:
        if kind == "keras":
            with zipfile.ZipFile(path) as z:
                src = io.BytesIO(z.read("model.weights.h5"))
        else:
            src = path
        f = h5py.File(src, "r")
    except Exception as e:
        raise ValueError(f"{path!r} is not a readable Keras weights file (truncated, corrupt or "
                         f"another format): {type(e).__name__}: {e}") from None
    with f:
        _guard(read_weights_h5, path)(model, f, path)


def _guard(fn, path):
    """fn with the errors of a damaged file (h5py's OSError, KeyError, ...) as ValueError."""
    def run(*a, **kw):
        try:
            return fn(*a, **kw)
        except (ValueError, ImportError, NotImplementedError):
            raise
        except Exception as e:
            raise ValueError(f"{path!r}: the Keras file is damaged or inconsistent "
                             f"({type(e).__name__}: {e})") from None
    return run


# ================================================================ configs: fastdl -> Keras
def _layer_entry(layer, functional):
    conv = layer_table.converter_for_layer(layer)
    entry = {"module": "keras.layers", "class_name": conv.keras_name,
             "config": conv.to_keras(layer), "registered_name": None}
    from ..layers.layer import InputLayer
    if not isinstance(layer, InputLayer) and layer.input_shape is not None:
        shape = layer.input_shape
        from ..layers.rnn import _RNN
        if isinstance(layer, _RNN) and isinstance(shape, list):
            shape = shape[0]   # [x, *states] (initial_state): Keras builds from the sequences
        entry["build_config"] = {"input_shape": _jsonable(shape)}
    if functional:
        entry["name"] = layer.name
    return entry


def _jsonable(v):
    if isinstance(v, (list, tuple)):
        return [_jsonable(x) for x in v]
    if isinstance(v, np.integer):
        return int(v)
    return v


def model_config(model):
    """Keras 3's config.json object for a Sequential or functional model."""
    from ..layers.layer import InputLayer
    from ..models import Sequential
    dtype = (model.dtype or np.dtype("float32")).name
    if isinstance(model, Sequential):
        shape = model._build_input_shape
        layers = [{"module": "keras.layers", "class_name": "InputLayer",
                   "config": {"batch_shape": _jsonable(list(shape)), "dtype": dtype,
                              "sparse": False, "ragged": False,
                              "name": layer_table.snake("InputLayer"), "optional": False},
                   "registered_name": None}]
        layers += [_layer_entry(l, False) for l in model.layers if not isinstance(l, InputLayer)]
        cfg = {"name": model.name, "trainable": model.trainable,
               "dtype": layer_table.keras_object("keras", "DTypePolicy", {"name": dtype}),
               "layers": layers, "build_input_shape": _jsonable(list(shape))}
        return {"module": "keras", "class_name": "Sequential", "config": cfg,
                "registered_name": None, "build_config": {"input_shape": _jsonable(list(shape))}}
    from ..models.functional import _node_index
    entries = {id(l): dict(_layer_entry(l, True), inbound_nodes=[]) for l in model._layers}

    def ktensor(t):
        return {"class_name": "__keras_tensor__",
                "config": {"shape": _jsonable(list(t.shape)), "dtype": np.dtype(t.dtype).name,
                           "keras_history": [t.node.layer.name, _node_index(t.node), t.index]}}
    from .._symbolic import pack_like
    from ..layers.rnn import _RNN
    for node in model._nodes:
        arg = pack_like(node.structure, [ktensor(t) for t in node.inputs])
        kwargs = {k: v for k, v in (node.kwargs or {}).items()}
        if isinstance(node.layer, _RNN) and isinstance(arg, list) and len(arg) > 1:
            # fastdl's recurrent layers take [x, *states]; Keras' take initial_state=
            arg, kwargs["initial_state"] = arg[0], arg[1:]
        entries[id(node.layer)]["inbound_nodes"].append({"args": [arg], "kwargs": kwargs})

    def ref(t):
        return [t.node.layer.name, _node_index(t.node), t.index]
    ins = [ref(t) for t in model._flat_inputs]
    outs = [ref(t) for t in model._flat_outputs]
    if isinstance(model._input_struct, dict) or isinstance(model._output_struct, dict):
        raise ValueError("saving in Keras' format: models with dict inputs or outputs are not "
                         "supported; save under another extension (fastdl's own format)")
    single_in = not isinstance(model._input_struct, (list, tuple))
    single_out = not isinstance(model._output_struct, (list, tuple))
    cfg = {"name": model.name, "trainable": model.trainable,
           "layers": [entries[id(l)] for l in keras_layer_order(model)],
           "input_layers": ins[0] if single_in else ins,
           "output_layers": outs[0] if single_out else outs}
    return {"module": "keras.src.models.functional", "class_name": "Functional", "config": cfg,
            "registered_name": "Functional", "build_config": {"input_shape": None}}


def _compile_config(model):
    """Keras' compile_config: fastdl's (saving._compile_config) in Keras' spelling."""
    from . import _compile_config as own
    cc = own(model)
    if cc is None:
        return None

    def keras_loss(l):
        if isinstance(l, dict) and "class_name" in l:
            return layer_table.keras_object("keras.losses", l["class_name"], l.get("config") or {})
        if isinstance(l, dict):
            return {k: keras_loss(v) for k, v in l.items()}
        if isinstance(l, list):
            return [keras_loss(v) for v in l]
        return l
    opt = cc["optimizer"]
    return {"optimizer": layer_table.keras_object("keras.optimizers", opt["class_name"],
                                                  opt["config"]),
            "loss": keras_loss(cc["loss"]), "loss_weights": cc["loss_weights"],
            "metrics": cc["metrics"], "weighted_metrics": cc.get("weighted_metrics"),
            "run_eagerly": False,
            "steps_per_execution": 1, "jit_compile": False}


def save_model(model, path, include_optimizer=True):
    """Write ``model`` as Keras 3's .keras zip (through a temporary file)."""
    h5py = _h5py()
    cfg = model_config(model)
    cfg["compile_config"] = _compile_config(model)
    meta = {"keras_version": KERAS_VERSION,
            "date_saved": datetime.datetime.now().strftime("%Y-%m-%d@%H:%M:%S")}
    with atomic_file(path, "wb") as out:
        buf = io.BytesIO()
        with h5py.File(buf, "w") as f:
            write_weights_h5(model, f)
            if include_optimizer and cfg["compile_config"] is not None:
                write_optimizer_h5(model, f)
        with zipfile.ZipFile(out, "w") as z:
            z.writestr("metadata.json", json.dumps(meta))
            z.writestr("config.json", json.dumps(cfg))
            z.writestr("model.weights.h5", buf.getvalue())


# ================================================================ configs: Keras -> fastdl
def _convert_layer(entry):
    """(fastdl serialize dict, keras class name) for a Keras layer entry."""
    name = entry.get("class_name")
    conv = layer_table.TABLE.get(name)
    if name in ("Sequential", "Functional", "Model"):
        raise ValueError(f"the Keras file nests a model ({(entry.get('config') or {}).get('name')!r}) "
                         f"as a layer; fastdl reads Keras files of unnested models only")
    if conv is None or conv.cls is None:
        raise ValueError(f"the Keras file uses the layer class {name!r} "
                         f"(layer {(entry.get('config') or {}).get('name')!r}), which fastdl "
                         f"does not have")
    return {"class_name": conv.fastdl_name, "config": conv.from_keras(entry.get("config") or {})}


def _from_keras_sequential(cfg):
    from ..saving import deserialize_object
    from ..models import Sequential
    entries = cfg.get("layers") or []
    model = Sequential(name=cfg.get("name"), trainable=cfg.get("trainable", True))
    shape = cfg.get("build_input_shape")
    for e in entries:
        layer = deserialize_object(_convert_layer(e), kind="layer")
        model.add(layer)
    if not model.built:
        if shape is None:
            raise ValueError("the Keras Sequential model has no input shape")
        model.build(tuple(shape))
    return model


def _from_keras_functional(cfg):
    """Keras' per-layer inbound_nodes -> fastdl's functional config (nodes in order)."""
    from ..models import Functional
    layers = []
    pending = []
    for e in cfg["layers"]:
        d = _convert_layer(e)
        d["name"] = e.get("name") or e["config"].get("name")
        layers.append(d)
        for k, nd in enumerate(e.get("inbound_nodes") or []):
            pending.append((d["name"], k, nd))
    made = {(d["name"], 0, 0) for d in layers if d["class_name"] == "InputLayer"}
    nodes = []

    def refs(v):
        if isinstance(v, dict) and v.get("class_name") == "__keras_tensor__":
            return list(v["config"]["keras_history"])
        if isinstance(v, dict):
            return {k: refs(x) for k, x in v.items()}
        if isinstance(v, (list, tuple)):
            return [refs(x) for x in v]
        return v

    def needs(v):
        if isinstance(v, list) and len(v) == 3 and isinstance(v[0], str):
            return [tuple(v)]
        if isinstance(v, dict):
            return [r for x in v.values() for r in needs(x)]
        if isinstance(v, list):
            return [r for x in v for r in needs(x)]
        return []
    # every tensor the file refers to: a call makes the outputs others use (several for a
    # recurrent layer with return_state)
    referenced = {r for _, _, nd in pending
                  for r in needs(refs([nd.get("args"), nd.get("kwargs")]))}
    referenced |= set(needs(cfg.get("output_layers") or []))
    counts = {}
    while pending:
        progress = False
        for item in list(pending):
            lname, k, nd = item
            args = nd.get("args") or []
            if len(args) != 1:
                raise ValueError(f"Keras file: layer {lname!r} is called with {len(args)} "
                                 f"positional arguments; fastdl layers take one")
            arg = refs(args[0])
            init = (nd.get("kwargs") or {}).get("initial_state")
            if init is not None:   # Keras' initial_state=: fastdl's [x, *states]
                arg = [arg] + [refs(v) for v in (init if isinstance(init, list) else [init])]
            if any(r not in made for r in needs(arg)) or counts.get(lname, 0) != k:
                continue
            kwargs = {}
            for kk, v in (nd.get("kwargs") or {}).items():
                if kk in ("training", "initial_state") or (kk == "mask" and v is None):
                    continue
                raise ValueError(f"Keras file: layer {lname!r} is called with {kk}={v!r}, "
                                 f"which fastdl does not support")
            nodes.append({"layer": lname, "args": arg, "kwargs": kwargs})
            counts[lname] = k + 1
            made.add((lname, k, 0))
            made.update(r for r in referenced if r[0] == lname and r[1] == k)
            pending.remove(item)
            progress = True
        if not progress:
            raise ValueError(f"Keras file: the layer calls of "
                             f"{sorted({p[0] for p in pending})} use tensors no call makes")

    def norm_io(v):
        if isinstance(v, list) and len(v) == 3 and isinstance(v[0], str):
            return v
        return [norm_io(x) for x in v]
    return Functional.from_config({"name": cfg.get("name"), "trainable": cfg.get("trainable", True),
                                   "layers": layers, "nodes": nodes,
                                   "input_layers": norm_io(cfg["input_layers"]),
                                   "output_layers": norm_io(cfg["output_layers"])})


def model_from_config(cfg):
    name = cfg.get("class_name")
    if name == "Sequential":
        return _from_keras_sequential(cfg.get("config") or {})
    if name in ("Functional", "Model"):
        return _from_keras_functional(cfg.get("config") or {})
    raise ValueError(f"the Keras file holds a model of class {name!r}; fastdl reads Keras' "
                     f"Sequential and functional models")


# Keras loss-config keys fastdl's losses do not take, at the values that change nothing
_LOSS_DEFAULTS = {"reduction": "sum_over_batch_size", "ignore_class": None, "dtype": None,
                  "axis": -1}


def _compile_from(model, cc, path):
    """compile() from Keras' compile_config; settings fastdl lacks leave the model
    uncompiled with a warning that names them."""
    import warnings
    from .. import losses, optimizers

    def loss_obj(l):
        if isinstance(l, dict) and "class_name" in l:
            cfg = {k: v for k, v in (l.get("config") or {}).items()
                   if not (k in _LOSS_DEFAULTS and v == _LOSS_DEFAULTS[k])}
            return losses.get({"class_name": l["class_name"], "config": cfg})
        if isinstance(l, dict):
            return {k: loss_obj(v) for k, v in l.items()}
        if isinstance(l, list):
            return [loss_obj(v) for v in l]
        return l
    try:
        opt = optimizers.get(cc.get("optimizer") or "rmsprop")
        extra = {"weighted_metrics": cc["weighted_metrics"]} if cc.get("weighted_metrics") else {}
        model.compile(optimizer=opt, loss=loss_obj(cc.get("loss")),
                      loss_weights=cc.get("loss_weights"), metrics=cc.get("metrics"), **extra)
    except (ValueError, TypeError, NotImplementedError, KeyError) as e:
        warnings.warn(f"{path!r}: the model was loaded uncompiled: its compile settings are not "
                      f"supported here ({type(e).__name__}: {e}); call model.compile",
                      stacklevel=4)


def load_model(path, compile=True):
    h5py = _h5py()
    try:
        with zipfile.ZipFile(path) as z:
            cfg = json.loads(z.read("config.json").decode("utf-8"))
            weights = z.read("model.weights.h5")
    except Exception as e:
        raise ValueError(f"{path!r} is not a readable Keras file (truncated, corrupt or another "
                         f"format): {type(e).__name__}: {e}") from None
    if not isinstance(cfg, dict) or "class_name" not in cfg:
        raise ValueError(f"{path!r}: its config.json describes no model")
    model = _guard(model_from_config, path)(cfg)
    try:
        f = h5py.File(io.BytesIO(weights), "r")
    except Exception as e:
        raise ValueError(f"{path!r}: its model.weights.h5 is not readable: {e}") from None
    with f:
        _guard(read_weights_h5, path)(model, f, path)
        cc = cfg.get("compile_config")
        if compile and cc:
            _compile_from(model, cc, path)
            _guard(read_optimizer_h5, path)(model, f, path)
    return model


def file_kind(path):
    """'keras' (a .keras zip), 'h5' (HDF5 weights) or None (anything else)."""
    if not os.path.isfile(path):
        return None
    if is_h5(path):
        return "h5"
    if is_keras_zip(path):
        return "keras"
    return None
