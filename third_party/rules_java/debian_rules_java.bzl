# Copyright 2026 The addernet_tf Authors. Licensed under the Apache License 2.0.
"""@rules_java from Debian's bazel-rules-java package, found at fetch time.

Bazel 4 loads `@rules_java//java:defs.bzl` from @bazel_tools//tools/jdk (its
registered Java toolchains are loaded even for a C++-only build), and its
WORKSPACE suffix would download rules_java otherwise. Debian's package installs
the rules as a plain source tree; this rule finds that tree and links its
top-level entries into the repository.

Where it looks, first hit wins:
  1. $BAZEL_RULES_JAVA_DIR, if set (the folder that holds java/defs.bzl);
  2. the folder `dpkg -L bazel-rules-java` lists that holds java/defs.bzl;
  3. /usr/share/bazel/rules/java (where Debian 12 puts it).
"""

_KNOWN_DIR = "/usr/share/bazel/rules/java"

def _is_rules_java_dir(ctx, path):
    return path and ctx.path(path + "/java/defs.bzl").exists

def _from_dpkg(ctx):
    dpkg = ctx.which("dpkg")
    if not dpkg:
        return None
    res = ctx.execute([dpkg, "-L", "bazel-rules-java"], quiet = True)
    if res.return_code != 0:
        return None
    for line in res.stdout.splitlines():
        line = line.strip()
        suffix = "/java/defs.bzl"
        if line.endswith(suffix):
            return line[:-len(suffix)]
    return None

def _find_rules_java(ctx):
    tried = []
    for candidate in [
        ctx.os.environ.get("BAZEL_RULES_JAVA_DIR", ""),
        _from_dpkg(ctx),
        _KNOWN_DIR,
    ]:
        if not candidate:
            continue
        tried.append(candidate)
        if _is_rules_java_dir(ctx, candidate):
            return candidate
    fail(("Could not find Debian's rules_java (tried: %s). Install it with " +
          "`apt-get install -y bazel-rules-java`, or set BAZEL_RULES_JAVA_DIR " +
          "to the folder that holds java/defs.bzl.") % (", ".join(tried) or "nothing"))

def _debian_rules_java_impl(ctx):
    src = ctx.path(_find_rules_java(ctx))
    for entry in src.readdir():
        if entry.basename in ("WORKSPACE", "WORKSPACE.bazel"):
            continue
        ctx.symlink(entry, entry.basename)
    ctx.file("WORKSPACE", 'workspace(name = "rules_java")\n')

debian_rules_java = repository_rule(
    implementation = _debian_rules_java_impl,
    environ = ["BAZEL_RULES_JAVA_DIR"],
    local = True,
    doc = "Creates @rules_java from the Java rules that Debian installs.",
)
