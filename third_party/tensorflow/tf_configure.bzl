# Copyright 2026 The addernet_tf Authors. Licensed under the Apache License 2.0.
"""@local_tensorflow: the headers and framework library of a pip TensorFlow.

The repository is made from whatever TensorFlow the Python interpreter in
$PYTHON_BIN_PATH imports (default: <workspace>/.venv/bin/python, then python3),
using the same tf.sysconfig flags that the pip build of the op library uses:
  - `-I<include>` becomes a symlink `include/` and a header cc_library,
  - each `-D...` becomes a define of that library,
  - `-L<dir>` with `-l:<lib>` becomes a symlink to the library and a cc_import.
The C++ standard flag is left to the BUILD files (Bazel 4 injects -std=c++0x,
which a later -std=c++17 in copts overrides).
"""

_PYTHON_ENV = "PYTHON_BIN_PATH"

# Prints one `key=value` line per item; importing TensorFlow is the slow part.
_PROBE = """
import sys
import tensorflow as tf
print("version=" + tf.__version__)
for flag in tf.sysconfig.get_compile_flags():
    print("cflag=" + flag)
for flag in tf.sysconfig.get_link_flags():
    print("lflag=" + flag)
"""

def find_python(ctx):
    """The interpreter to probe: $PYTHON_BIN_PATH, else .venv/bin/python, else python3.

    Also used by //third_party/cuda:cuda_configure.bzl, so both repositories
    ask the same Python.
    """
    python = ctx.os.environ.get(_PYTHON_ENV, "").strip()
    if python:
        if not python.startswith("/"):
            # Repository rules do not run in the workspace: resolve it there.
            python = str(ctx.path(Label("//:WORKSPACE")).dirname) + "/" + python
        if not ctx.path(python).exists:
            fail("%s=%s does not exist." % (_PYTHON_ENV, python))
        return python
    venv = ctx.path(Label("//:WORKSPACE")).dirname.get_child(".venv").get_child("bin").get_child("python")
    if venv.exists:
        return str(venv)
    python = ctx.which("python3")
    if not python:
        fail("No Python found: set %s to a Python that has TensorFlow." % _PYTHON_ENV)
    return str(python)

def _probe(ctx, python):
    res = ctx.execute(
        [python, "-c", _PROBE],
        # Keep TensorFlow's import chatter out of the answer.
        environment = {"TF_CPP_MIN_LOG_LEVEL": "3", "CUDA_VISIBLE_DEVICES": ""},
        quiet = True,
        timeout = 300,
    )
    if res.return_code != 0:
        fail("%s could not import TensorFlow (exit %d):\n%s" %
             (python, res.return_code, res.stderr[-3000:]))
    out = {"version": "", "cflag": [], "lflag": []}
    for line in res.stdout.splitlines():
        key, sep, value = line.partition("=")
        if not sep or key not in out:
            continue
        if key == "version":
            out[key] = value
        else:
            out[key].append(value)
    return out

def _parse_compile_flags(flags):
    include_dir = None
    defines = []
    for flag in flags:
        if flag.startswith("-I"):
            if include_dir == None:
                include_dir = flag[2:]
        elif flag.startswith("-D"):
            defines.append(flag[2:])
        elif flag.startswith("--std=") or flag.startswith("-std="):
            pass
        else:
            fail("Unexpected TensorFlow compile flag: %s" % flag)
    if not include_dir:
        fail("TensorFlow gave no -I flag: %s" % flags)
    return include_dir, defines

def _parse_link_flags(flags):
    lib_dir = None
    lib_name = None
    for flag in flags:
        if flag.startswith("-L"):
            lib_dir = flag[2:]
        elif flag.startswith("-l:"):
            lib_name = flag[3:]
        elif flag.startswith("-l"):
            lib_name = "lib%s.so" % flag[2:]
        else:
            fail("Unexpected TensorFlow link flag: %s" % flag)
    if not lib_dir or not lib_name:
        fail("TensorFlow gave no -L/-l flags: %s" % flags)
    return lib_dir, lib_name

def _tf_configure_impl(ctx):
    python = find_python(ctx)
    info = _probe(ctx, python)
    include_dir, defines = _parse_compile_flags(info["cflag"])
    lib_dir, lib_name = _parse_link_flags(info["lflag"])

    lib = ctx.path(lib_dir + "/" + lib_name)
    if not lib.exists:
        fail("TensorFlow's framework library %s does not exist." % lib)
    if not ctx.path(include_dir).exists:
        fail("TensorFlow's include dir %s does not exist." % include_dir)

    ctx.symlink(include_dir, "include")
    ctx.symlink(lib, lib_name)
    ctx.template(
        "BUILD",
        ctx.attr.build_tpl,
        substitutions = {
            "%{PYTHON_BIN}": python,
            "%{TF_VERSION}": info["version"],
            "%{DEFINES}": repr(defines),
            "%{LINK_FLAGS}": " ".join(info["lflag"]),
            "%{FRAMEWORK_LIB}": lib_name,
        },
        executable = False,
    )

tf_configure = repository_rule(
    implementation = _tf_configure_impl,
    attrs = {
        "build_tpl": attr.label(default = Label("//third_party/tensorflow:BUILD.tpl")),
    },
    environ = [_PYTHON_ENV],
    # Re-probe on every server start: a reinstalled TensorFlow changes nothing
    # that Bazel's fetch markers could see.
    local = True,
    doc = "Creates a repository with the pip TensorFlow's headers and library.",
)
