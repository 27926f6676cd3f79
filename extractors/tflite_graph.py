"""A float TFLite graph (flatbuffer) read into a torch module that runs it batched, on any device.

The ``.tflite`` file is parsed with the ``tflite`` package (the TFLite flatbuffer schema,
Apache-2.0, https://github.com/zhenhuaw-me/tflite); constant sub-graphs (``DEQUANTIZE`` of
float16 weights, ``DENSIFY`` of sparse weights) are folded at load time, and every remaining
operator becomes a torch call. Activations stay NCHW inside the module; ``RESHAPE`` and
``CONCATENATION`` see NHWC semantics (the tensor is permuted first), so outputs equal
TFLite's. Supported builtins: ``CONV_2D``, ``DEPTHWISE_CONV_2D``, ``ADD``, ``PAD``,
``RESHAPE``, ``CONCATENATION``, ``DEPTH_TO_SPACE``, ``RESIZE_BILINEAR``, ``MAX_POOL_2D``,
``LOGISTIC`` (those of MediaPipe's BlazePose graphs); anything else raises
:class:`UnsupportedGraphError` at load time.

Semantics followed: TensorFlow Lite builtin ops reference
(https://www.tensorflow.org/mlir/tfl_ops): ``SAME`` padding puts the odd pixel at the end,
fused activations are applied after the op, ``RESIZE_BILINEAR`` with ``half_pixel_centers``
is torch's ``align_corners=False``, ``DEPTH_TO_SPACE`` orders channels (block row, block col,
channel).
"""
from __future__ import annotations

from typing import Union

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

__all__ = ["TFLiteGraph", "UnsupportedGraphError", "read_tensors"]


class UnsupportedGraphError(ValueError):
    """The graph holds an operator, option or tensor format this reader does not implement."""


_NP_TYPES = {0: np.float32, 1: np.float16, 2: np.int32, 3: np.uint8, 4: np.int64, 9: np.int8}
_ACTIVATIONS = {0: None, 1: F.relu, 3: F.relu6, 4: torch.tanh}


def _builtin_names() -> dict[int, str]:
    from tflite.BuiltinOperator import BuiltinOperator

    return {v: k for k, v in vars(BuiltinOperator).items() if not k.startswith("_")}


def _options(op, cls):
    opts = cls()
    table = op.BuiltinOptions()
    opts.Init(table.Bytes, table.Pos)
    return opts


def _buffer(model, tensor, raw: bytes) -> np.ndarray | None:
    buf = model.Buffers(tensor.Buffer())
    if buf is None:
        return None
    if buf.DataLength():
        data = buf.DataAsNumpy()
    elif hasattr(buf, "Offset") and buf.Offset() > 1:  # large-model layout: data after the root
        data = np.frombuffer(raw, np.uint8, count=buf.Size(), offset=buf.Offset())
    else:
        return None
    if tensor.Type() not in _NP_TYPES:
        raise UnsupportedGraphError(f"tensor {tensor.Name().decode()}: type {tensor.Type()}")
    return np.frombuffer(data.tobytes(), _NP_TYPES[tensor.Type()])


def _vector(table, kind: int) -> np.ndarray:
    import tflite

    cls = {1: tflite.Int32Vector, 2: tflite.Uint16Vector, 3: tflite.Uint8Vector}[kind]
    vec = cls()
    vec.Init(table.Bytes, table.Pos)
    return vec.ValuesAsNumpy().astype(np.int64)


def _densify(values: np.ndarray, shape: tuple[int, ...], sparsity) -> np.ndarray:
    """Dense array of a TFLite sparse tensor whose only sparse level is the innermost (CSR).

    Raises:
        UnsupportedGraphError: block sparsity, a permuted traversal order, or another format.
    """
    order = sparsity.TraversalOrderAsNumpy().tolist()
    levels = [sparsity.DimMetadata(i) for i in range(sparsity.DimMetadataLength())]
    if (sparsity.BlockMapLength() or order != list(range(len(shape)))
            or any(m.Format() != 0 for m in levels[:-1]) or levels[-1].Format() != 1):
        raise UnsupportedGraphError("sparse tensor: only row-major CSR on the last axis is read")
    last = levels[-1]
    segments = _vector(last.ArraySegments(), last.ArraySegmentsType())
    indices = _vector(last.ArrayIndices(), last.ArrayIndicesType())
    rows = int(np.prod(shape[:-1]))
    dense = np.zeros((rows, shape[-1]), values.dtype)
    row_of = np.repeat(np.arange(rows), np.diff(segments))
    dense[row_of, indices] = values[: len(indices)]
    return dense.reshape(shape)


def read_tensors(path_or_bytes: Union[str, bytes]):
    """Parse a ``.tflite`` flatbuffer.

    Returns:
        ``(subgraph, model, consts)``: the first subgraph and the model (``tflite`` objects),
        and ``consts``: tensor index -> float32 / int numpy array of every constant tensor,
        float16 weights dequantized and sparse weights densified.
    Raises:
        UnsupportedGraphError: several subgraphs, or an unsupported constant format.
    """
    import tflite

    raw = path_or_bytes if isinstance(path_or_bytes, bytes) else open(path_or_bytes, "rb").read()
    model = tflite.Model.GetRootAsModel(raw, 0)
    if model.SubgraphsLength() != 1:
        raise UnsupportedGraphError(f"{model.SubgraphsLength()} subgraphs; one expected")
    graph = model.Subgraphs(0)
    consts: dict[int, np.ndarray] = {}
    for i in range(graph.TensorsLength()):
        t = graph.Tensors(i)
        data = _buffer(model, t, raw)
        if data is None:
            continue
        shape = tuple(int(s) for s in t.ShapeAsNumpy()) if t.ShapeLength() else ()
        consts[i] = (_densify(data, shape, t.Sparsity()) if t.Sparsity() is not None
                     else data.reshape(shape))
    names = _builtin_names()
    for k in range(graph.OperatorsLength()):  # fold DENSIFY / DEQUANTIZE of constants
        op = graph.Operators(k)
        name = _op_name(model, op, names)
        src, dst = int(op.Inputs(0)), int(op.Outputs(0))
        if name in ("DENSIFY", "DEQUANTIZE") and src in consts:
            consts[dst] = consts[src].astype(np.float32) if name == "DEQUANTIZE" else consts[src]
    return graph, model, consts


def _op_name(model, op, names) -> str:
    code = model.OperatorCodes(op.OpcodeIndex())
    builtin = max(code.BuiltinCode(), code.DeprecatedBuiltinCode())
    return names.get(builtin, str(builtin))


def _same_pads(size: int, kernel: int, stride: int, dilation: int = 1) -> tuple[int, int]:
    eff = (kernel - 1) * dilation + 1
    total = max((-(-size // stride) - 1) * stride + eff - size, 0)
    return total // 2, total - total // 2


def _nhwc_axis(axis: int, rank: int) -> int:
    axis = axis % rank
    return (0, 2, 3, 1)[axis] if rank == 4 else axis


class TFLiteGraph(nn.Module):
    """A float TFLite graph as a torch module (see the module docstring).

    Args:
        path_or_bytes: the ``.tflite`` file or its bytes.
    Call: ``module(x)`` with ``x`` float [N, C, H, W] (the graph's one NHWC input, permuted)
    returns the graph outputs in the graph's order: 4-D tensors as [N, C, H, W], others with
    the graph's shape and batch N.
    Raises:
        UnsupportedGraphError: at construction, an operator or option not implemented.
    """

    def __init__(self, path_or_bytes: Union[str, bytes]):
        super().__init__()
        graph, model, consts = read_tensors(path_or_bytes)
        names = _builtin_names()
        self.input_index = int(graph.Inputs(0))
        self.output_indices = [int(i) for i in graph.OutputsAsNumpy()]
        self.shapes = {i: tuple(int(s) for s in graph.Tensors(i).ShapeAsNumpy())
                       for i in range(graph.TensorsLength()) if graph.Tensors(i).ShapeLength()}
        self.program: list[tuple] = []
        for k in range(graph.OperatorsLength()):
            op = graph.Operators(k)
            name = _op_name(model, op, names)
            ins = [int(i) for i in op.InputsAsNumpy()]
            out = int(op.Outputs(0))
            if out in consts:
                continue
            self.program.append(self._compile(k, name, op, ins, out, consts))

    def _param(self, key: str, array: np.ndarray) -> str:
        self.register_buffer(key, torch.from_numpy(np.ascontiguousarray(array, np.float32)))
        return key

    def _compile(self, k: int, name: str, op, ins: list[int], out: int, consts) -> tuple:
        import tflite

        if name in ("CONV_2D", "DEPTHWISE_CONV_2D"):
            depthwise = name == "DEPTHWISE_CONV_2D"
            o = _options(op, tflite.DepthwiseConv2DOptions if depthwise else tflite.Conv2DOptions)
            w = consts[ins[1]]  # conv: [O, kh, kw, I]; depthwise: [1, kh, kw, C * mult]
            w = w.transpose(3, 0, 1, 2) if depthwise else w.transpose(0, 3, 1, 2)
            bias = consts[ins[2]] if len(ins) > 2 and ins[2] >= 0 else np.zeros(w.shape[0])
            _, h, wd, c = self.shapes[ins[0]]
            stride, dil = (o.StrideH(), o.StrideW()), (o.DilationHFactor(), o.DilationWFactor())
            pads = (0, 0, 0, 0)
            if o.Padding() == 0:  # SAME
                ph = _same_pads(h, w.shape[2], stride[0], dil[0])
                pw = _same_pads(wd, w.shape[3], stride[1], dil[1])
                pads = (pw[0], pw[1], ph[0], ph[1])
            return ("conv", ins[0], out, self._param(f"w{k}", w), self._param(f"b{k}", bias),
                    stride, dil, pads, c if depthwise else 1,
                    self._act(o.FusedActivationFunction()))
        if name in ("ADD", "CONCATENATION"):
            cls = tflite.AddOptions if name == "ADD" else tflite.ConcatenationOptions
            o = _options(op, cls)
            axis = o.Axis() if name == "CONCATENATION" else 0
            return (name.lower(), ins, out, axis, self._act(o.FusedActivationFunction()))
        if name == "PAD":
            p = consts[ins[1]].reshape(-1, 2)  # NHWC rows (before, after)
            return ("pad", ins[0], out, (int(p[2, 0]), int(p[2, 1]), int(p[1, 0]), int(p[1, 1]),
                                         int(p[3, 0]), int(p[3, 1])))
        if name == "RESHAPE":
            return ("reshape", ins[0], out, self.shapes[out])
        if name == "DEPTH_TO_SPACE":
            return ("d2s", ins[0], out, _options(op, tflite.DepthToSpaceOptions).BlockSize())
        if name == "RESIZE_BILINEAR":
            o = _options(op, tflite.ResizeBilinearOptions)
            if o.AlignCorners() or not o.HalfPixelCenters():
                raise UnsupportedGraphError("RESIZE_BILINEAR: only half_pixel_centers is read")
            return ("resize", ins[0], out, self.shapes[out][1:3])
        if name == "MAX_POOL_2D":
            o = _options(op, tflite.Pool2DOptions)
            kernel, stride = (o.FilterHeight(), o.FilterWidth()), (o.StrideH(), o.StrideW())
            _, h, wd, _ = self.shapes[ins[0]]
            pads = (0, 0, 0, 0)
            if o.Padding() == 0:
                ph, pw = _same_pads(h, kernel[0], stride[0]), _same_pads(wd, kernel[1], stride[1])
                pads = (pw[0], pw[1], ph[0], ph[1])
            return ("maxpool", ins[0], out, kernel, stride, pads,
                    self._act(o.FusedActivationFunction()))
        if name == "LOGISTIC":
            return ("sigmoid", ins[0], out)
        raise UnsupportedGraphError(f"operator {k}: {name} is not supported")

    @staticmethod
    def _act(code: int):
        if code not in _ACTIVATIONS:
            raise UnsupportedGraphError(f"fused activation {code} is not supported")
        return code

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        env = {self.input_index: x}
        for step in self.program:
            env[step[2]] = self._run(step, env)
        return [env[i] for i in self.output_indices]

    def _run(self, step: tuple, env: dict) -> torch.Tensor:
        kind, src = step[0], step[1]
        if kind == "conv":
            _, _, _, w, b, stride, dil, pads, groups, act = step
            x = env[src]
            if any(pads):
                x = F.pad(x, pads)
            y = F.conv2d(x, getattr(self, w).to(x.dtype), getattr(self, b).to(x.dtype), stride,
                         0, dil, groups)
            return _activate(y, act)
        if kind == "add":
            a, b = env[src[0]], env[src[1]]
            return _activate(a + b, step[4])
        if kind == "concatenation":
            parts = [env[i] for i in src]
            return _activate(torch.cat(parts, _nhwc_axis(step[3], parts[0].dim())), step[4])
        if kind == "pad":
            return F.pad(env[src], step[3])
        if kind == "reshape":
            x = env[src]
            if x.dim() == 4:
                x = x.permute(0, 2, 3, 1)
            y = x.reshape((x.shape[0],) + tuple(step[3][1:]))
            return y.permute(0, 3, 1, 2) if y.dim() == 4 else y
        if kind == "d2s":
            x, r = env[src], step[3]
            n, c, h, w = x.shape
            y = x.reshape(n, r, r, c // (r * r), h, w).permute(0, 3, 4, 1, 5, 2)
            return y.reshape(n, c // (r * r), h * r, w * r)
        if kind == "resize":
            return F.interpolate(env[src], size=step[3], mode="bilinear", align_corners=False)
        if kind == "maxpool":
            _, _, _, kernel, stride, pads, act = step
            x = env[src]
            if any(pads):
                x = F.pad(x, pads, value=float("-inf"))
            return _activate(F.max_pool2d(x, kernel, stride), act)
        return torch.sigmoid(env[src])


def _activate(y: torch.Tensor, code: int) -> torch.Tensor:
    fn = _ACTIVATIONS[code]
    return y if fn is None else fn(y)
