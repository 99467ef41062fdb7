# Copyright 2026 The addernet_tf Authors. Licensed under the Apache License 2.0.
"""nvcc actions for the CUDA sources of a library, per @local_cuda//:defs.bzl.

    nvcc_objects(name, srcs, hdrs) -> labels of the objects (empty when CUDA is off)

Each src is compiled as setup.py does it, `$NVCC -c SRC -o OBJ $NVCC_FLAGS`
(cuda_config.py's flags, with `-I .`: genrules run in the execroot, where the
repo-root-relative includes "custom_ops/cc/..." resolve). The objects are
named *.pic.o (they are built with -Xcompiler -fPIC), so a cc_binary or
cc_library that lists them in srcs links them into a shared library as is.
"""

load("@local_cuda//:defs.bzl", "CUDA_ENABLED", "NVCC", "NVCC_FLAGS")

def _shell_quote(arg):
    # '$' is doubled for genrule's own "Make" variable expansion.
    return "'" + arg.replace("'", "'\\''").replace("$", "$$") + "'"

def nvcc_objects(name, srcs, hdrs = [], visibility = None):
    """One genrule `<name>_<src>` per source; returns their output labels.

    Args:
      name: prefix of the genrules; the objects go under `<name>/`.
      srcs: the *.cu.cc files of this package.
      hdrs: headers they may include (declared inputs, needed when sandboxed).
      visibility: of the genrules.
    """
    if not CUDA_ENABLED:
        return []
    flags = " ".join([_shell_quote(f) for f in NVCC_FLAGS])
    objects = []
    for src in srcs:
        if not src.endswith(".cu.cc"):
            fail("nvcc_objects: %s is not a .cu.cc file" % src)
        stem = src[:-len(".cc")]  # x.cu.cc -> x.cu
        out = "%s/%s.pic.o" % (name, stem)
        native.genrule(
            name = "%s_%s" % (name, stem.replace("/", "_").replace(".", "_")),
            srcs = [src] + hdrs,
            outs = [out],
            cmd = "%s -c $(location %s) -o $@ %s" % (_shell_quote(NVCC), src, flags),
            message = "nvcc %s" % src,
            visibility = visibility,
        )
        objects.append(":" + out)
    return objects
