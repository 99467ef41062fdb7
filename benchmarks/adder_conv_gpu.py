# Copyright 2026 The addernet_tf Authors. Licensed under the Apache License 2.0.
"""The CUDA adder kernels vs cuDNN convolution of the same shapes, through PyTorch.

    python3 -m benchmarks.adder_conv_gpu [--batch 32] [--repeats 10] [--json]
    make bench-gpu

Needs a CUDA GPU, PyTorch with CUDA and nvcc; no TensorFlow (the kernels are
called through custom_ops/cuda_launchers.py's C ABI). Both sides are float32
NHWC (PyTorch channels_last, TF32 off, cuDNN autotuning on), on the same
stream, timed with CUDA events; the best mean of --repeats rounds of --inner
launches is kept. Printed per shape, measured in this one run (ratios are the
result, absolute times are only for orientation):
  fwd/cudnn   adder forward / cuDNN convolution forward   (issue target: <= 3)
  dX/cudnn    adder input gradient / cuDNN backward-data
  dF/cudnn    adder filter gradient / cuDNN backward-filter
  all/cudnn   the three adder kernels / the three cuDNN ones
Before timing, each shape's adder forward is checked against torch.cdist(p=1)
on its im2col patches (batch 2), so a broken build can't report a speed.
"""

import argparse
import json
import sys

from custom_ops import cuda_launchers

# (name, H=W, C, O, kernel, stride): every distinct adder layer of ResNet-20
# (CIFAR, 32 px) and of ResNet-50 v1 (ImageNet, 224 px; stride in the first
# 1x1 of a downsampling block, as the models package builds it).
RESNET20 = [
    ("r20 16ch@32", 32, 16, 16, 3, 1),
    ("r20 16->32 s2", 32, 16, 32, 3, 2),
    ("r20 32ch@16", 16, 32, 32, 3, 1),
    ("r20 32->64 s2", 16, 32, 64, 3, 2),
    ("r20 64ch@8", 8, 64, 64, 3, 1),
]
RESNET50 = [
    ("r50 1x1 64->64@56", 56, 64, 64, 1, 1),
    ("r50 3x3 64@56", 56, 64, 64, 3, 1),
    ("r50 1x1 64->256@56", 56, 64, 256, 1, 1),
    ("r50 1x1 256->64@56", 56, 256, 64, 1, 1),
    ("r50 1x1 256->128 s2", 56, 256, 128, 1, 2),
    ("r50 3x3 128@28", 28, 128, 128, 3, 1),
    ("r50 1x1 128->512@28", 28, 128, 512, 1, 1),
    ("r50 3x3 256@14", 14, 256, 256, 3, 1),
    ("r50 1x1 256->1024@14", 14, 256, 1024, 1, 1),
    ("r50 3x3 512@7", 7, 512, 512, 3, 1),
    ("r50 1x1 512->2048@7", 7, 512, 2048, 1, 1),
]


def _fail(message):
    print(f"adder_conv_gpu: {message}", file=sys.stderr)
    sys.exit(2)


def _parse(argv):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--inner", type=int, default=20)
    parser.add_argument("--json", action="store_true", help="one JSON object instead of a table")
    args = parser.parse_args(argv)
    for name in ("batch", "repeats", "inner"):
        if getattr(args, name) < 1:
            parser.error(f"--{name} must be >= 1, got {getattr(args, name)}")
    return args


class Shape:
    """One layer: tensors, cuDNN closures and adder closures on the current stream."""

    def __init__(self, torch, lib, batch, size, c, o, k, stride):
        self.torch = torch
        pad = k // 2
        self.pad, self.stride = pad, stride
        dev = "cuda"
        self.x = torch.randn(batch, size, size, c, device=dev)         # NHWC
        self.f = torch.randn(k, k, c, o, device=dev)                   # [KH, KW, C, O]
        self.geom = cuda_launchers.geometry(self.x.shape, self.f.shape, (stride, stride),
                                            [pad, pad, pad, pad])
        n, _, _, _, _, _, _, oh, ow = self.geom[:9]
        self.dy = torch.randn(n, oh, ow, o, device=dev)
        self.y = torch.empty_like(self.dy)
        self.dx = torch.empty_like(self.x)
        self.df = torch.empty_like(self.f)
        self.geom_arg = cuda_launchers.geometry_arg(self.geom)
        size_ws = lib.addernet_adder_conv2d_backprop_filter_workspace_f32(self.geom_arg)
        self.ws = torch.empty(max(size_ws, 1), device=dev)
        self.lib = lib
        # cuDNN views: NCHW shapes over channels_last (NHWC) memory.
        self.x_cl = self.x.permute(0, 3, 1, 2)
        self.w_cl = self.f.permute(3, 2, 0, 1).contiguous(memory_format=torch.channels_last)
        self.dy_cl = self.dy.permute(0, 3, 1, 2)

    def _stream(self):
        return self.torch.cuda.current_stream().cuda_stream

    def _check(self, status, what):
        if status != 0:
            _fail(f"{what} launcher returned {status}")

    def adder_fwd(self):
        self._check(self.lib.addernet_adder_conv2d_forward_f32(
            self.geom_arg, self.x.data_ptr(), self.f.data_ptr(), self.y.data_ptr(),
            self._stream()), "forward")

    def adder_dx(self):
        self._check(self.lib.addernet_adder_conv2d_backprop_input_f32(
            self.geom_arg, self.x.data_ptr(), self.f.data_ptr(), self.dy.data_ptr(),
            self.dx.data_ptr(), self._stream()), "backprop_input")

    def adder_df(self):
        self._check(self.lib.addernet_adder_conv2d_backprop_filter_f32(
            self.geom_arg, self.x.data_ptr(), self.f.data_ptr(), self.dy.data_ptr(),
            self.ws.data_ptr(), self.df.data_ptr(), self._stream()), "backprop_filter")

    def cudnn_fwd(self):
        self.torch.nn.functional.conv2d(self.x_cl, self.w_cl, stride=self.stride, padding=self.pad)

    def cudnn_dx(self):
        self.torch.nn.grad.conv2d_input(self.x_cl.shape, self.w_cl, self.dy_cl,
                                        stride=self.stride, padding=self.pad)

    def cudnn_df(self):
        self.torch.nn.grad.conv2d_weight(self.x_cl, self.w_cl.shape, self.dy_cl,
                                         stride=self.stride, padding=self.pad)

    def check_forward(self):
        """Adder forward on the first 2 images vs -cdist(patches, filters, p=1)."""
        torch = self.torch
        k, c, o = self.f.shape[0], self.f.shape[2], self.f.shape[3]
        self.adder_fwd()
        torch.cuda.synchronize()
        x = self.x[:2].permute(0, 3, 1, 2)
        patches = torch.nn.functional.unfold(x, k, padding=self.pad, stride=self.stride)
        # unfold orders a patch (C, KH, KW); the filter is [KH, KW, C, O].
        patches = patches.transpose(1, 2).reshape(-1, c * k * k)
        filters = self.f.permute(3, 2, 0, 1).reshape(o, c * k * k)
        want = -torch.cdist(patches.double(), filters.double(), p=1)
        got = self.y[:2].reshape(-1, o).double()
        err = (got - want).abs().max().item()
        scale = want.abs().max().item() + 1.0
        if err > 1e-4 * scale:
            _fail(f"forward disagrees with cdist: max error {err:.3g} at scale {scale:.3g}")


def _time(torch, fn, repeats, inner):
    """Best over `repeats` of the mean time (ms) of `inner` back-to-back calls."""
    for _ in range(3):
        fn()
    torch.cuda.synchronize()
    best = float("inf")
    for _ in range(repeats):
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        for _ in range(inner):
            fn()
        end.record()
        end.synchronize()
        best = min(best, start.elapsed_time(end) / inner)
    return best


def main(argv=None):
    args = _parse(argv)
    try:
        import torch  # pylint: disable=import-outside-toplevel
    except ImportError as err:
        _fail(f"needs PyTorch with CUDA ({err})")
    if not torch.cuda.is_available():
        _fail("no CUDA GPU visible to PyTorch")
    torch.backends.cudnn.allow_tf32 = False
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.benchmark = True
    lib = cuda_launchers.load("cuda")

    rows = []
    for name, size, c, o, k, stride in RESNET20 + RESNET50:
        shape = Shape(torch, lib, args.batch, size, c, o, k, stride)
        shape.check_forward()
        t = {fn: _time(torch, getattr(shape, fn), args.repeats, args.inner)
             for fn in ("adder_fwd", "adder_dx", "adder_df", "cudnn_fwd", "cudnn_dx", "cudnn_df")}
        rows.append({"shape": name, "ms": t,
                     "fwd/cudnn": t["adder_fwd"] / t["cudnn_fwd"],
                     "dX/cudnn": t["adder_dx"] / t["cudnn_dx"],
                     "dF/cudnn": t["adder_df"] / t["cudnn_df"],
                     "all/cudnn": (t["adder_fwd"] + t["adder_dx"] + t["adder_df"])
                                  / (t["cudnn_fwd"] + t["cudnn_dx"] + t["cudnn_df"])})
        del shape
    summary = {}
    for label, prefix in (("ResNet-20", "r20"), ("ResNet-50", "r50")):
        sel = [r for r in rows if r["shape"].startswith(prefix)]
        total = {fn: sum(r["ms"][fn] for r in sel) for fn in sel[0]["ms"]}
        summary[label] = {"fwd/cudnn": total["adder_fwd"] / total["cudnn_fwd"],
                          "dX/cudnn": total["adder_dx"] / total["cudnn_dx"],
                          "dF/cudnn": total["adder_df"] / total["cudnn_df"]}
    device = torch.cuda.get_device_name()
    if args.json:
        print(json.dumps({"device": device, "batch": args.batch, "rows": rows,
                          "summed_over_distinct_shapes": summary}, indent=1))
        return 0
    print(f"{device}, float32 NHWC, batch {args.batch}; ratios adder / cuDNN, one run")
    print(f"{'shape':24s} {'fwd':>6s} {'dX':>6s} {'dF':>6s} {'all':>6s}   adder fwd ms")
    for r in rows:
        print(f"{r['shape']:24s} {r['fwd/cudnn']:6.2f} {r['dX/cudnn']:6.2f} {r['dF/cudnn']:6.2f} "
              f"{r['all/cudnn']:6.2f}   {r['ms']['adder_fwd']:.3f}")
    for label, s in summary.items():
        verdict = "met" if s["fwd/cudnn"] <= 3.0 else "NOT met"
        print(f"{label} summed: fwd {s['fwd/cudnn']:.2f}, dX {s['dX/cudnn']:.2f}, "
              f"dF {s['dF/cudnn']:.2f}  (target fwd <= 3x: {verdict})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
