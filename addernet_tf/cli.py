# Copyright 2026 The addernet_tf Authors. Licensed under the Apache License 2.0.
"""One way to write a command line: absl flags, choices as enums, errors in one line.

A program defines its flags in a function (so importing it defines none),
uses `flags.DEFINE_enum` for choices and `flags.DEFINE_integer(...,
lower_bound=...)` for ranges, and hands the rules that span several flags to
`validate`:

    if __name__ == "__main__":
        cli.run("export", define_flags, main, validate=rules)

Every usage error (an unknown flag, a bad value, an extra argument, a broken
rule) is one line on stderr, `program: --flag=value: what is wrong`, exit
status 2. A failure while `main` runs (one of `errors`) is one line, exit
status 1.
"""

import re
import sys

from absl import app, flags

__all__ = ["USAGE", "FAILURE", "Definer", "CheckedString", "required", "first_line", "usage_line",
           "fail", "run", "parse", "positional"]

USAGE = 2
FAILURE = 1

# absl's wording of a bad enum value, and ours.
_ENUM_ERROR = re.compile(r"^flag (--\S+?=.*?): value should be one of <(.*)>$")


class Definer:
    """`flags.DEFINE_*` bound to one `FlagValues` (absl's FLAGS, or a test's own).

    `module` is the defining module's `__name__`: absl files the flags under it
    (`--helpshort`, `get_flags_for_module`), not under this helper.
    """

    def __init__(self, flag_values=None, module=None):
        self._flag_values = flags.FLAGS if flag_values is None else flag_values
        self._module = module

    def __getattr__(self, name):
        define = getattr(flags, name)
        return lambda *args, **kwargs: define(*args, flag_values=self._flag_values,
                                              module_name=self._module, **kwargs)


class CheckedString(flags.ArgumentParser):
    """A string flag's parser that refuses a value `problem(value)` objects to.

    `problem(value)` returns None or one line (without the flag), which absl
    reports as `--name=value: line` when the command line is parsed.
    """

    syntactic_help = "a string"

    def __init__(self, problem):
        super().__init__()
        self._problem = problem

    def parse(self, argument):
        problem = self._problem(argument)
        if problem:
            raise ValueError(problem)
        return argument

    def flag_type(self):
        return "string"


def required(*rules):
    """A `validate` for `run`: `--name message` for the first `(name, message)`
    of `rules` whose flag has no value, else None."""
    def validate(values):
        for name, message in rules:
            if not getattr(values, name):
                return f"--{name} {message}"
        return None
    return validate


def first_line(error):
    """The first line of an exception's message (its type name if empty)."""
    return (str(error).strip().splitlines() or [type(error).__name__])[0]


def fail(program, message, status=FAILURE):
    """Prints `program: message` on stderr and exits with `status`."""
    print(f"{program}: {message}", file=sys.stderr)
    sys.exit(status)


def usage_line(error):
    """absl's `flags.Error` as the one line a usage error prints (without the program)."""
    line = first_line(error)
    match = _ENUM_ERROR.match(line)
    if match:
        return f"{match.group(1)}: must be one of {', '.join(match.group(2).split('|'))}"
    return line[len("flag "):] if line.startswith("flag --") else line


def parse(program, define_flags, argv=None, validate=None):
    """Parses `argv` into fresh `FlagValues` (absl's FLAGS untouched); exits on a usage error.

    For commands that are also called in process (`main(argv)`, as the
    benchmarks are): the same one-line errors and exit status as `run`.

    Args:
      program: the name that starts every error line.
      define_flags: `(flag_values) -> None`, registers the program's flags.
      argv: the arguments, without the program name (default: `sys.argv[1:]`).
      validate: `(values) -> str or None`, the first broken rule across flags.

    Returns:
      The parsed `flags.FlagValues`.
    """
    values = flags.FlagValues()
    define_flags(values)
    argv = sys.argv[1:] if argv is None else list(argv)
    _check_usage(program, values, _parsed(program, values, [program, *argv]), validate)
    return values


def positional(program, names, argv=None, what=""):
    """The arguments of a command that takes only positional ones (`names`, in order).

    Exactly `len(names)` arguments; a flag or another count is a one-line usage
    error (exit status 2). `-h`/`--help` prints the usage line and exits 0.

    Args:
      program: the name that starts every line.
      names: what each argument is, for the usage line (`["DIR"]`).
      argv: the arguments, without the program name (default: `sys.argv[1:]`).
      what: a note for the usage line (`"a run or a study folder"`).

    Returns:
      The arguments, a list of `len(names)` strings.
    """
    argv = sys.argv[1:] if argv is None else list(argv)
    usage = f"usage: {program} {' '.join(names)}" + (f"  ({what})" if what else "")
    if argv in (["-h"], ["--help"]):
        print(usage)
        sys.exit(0)
    given_flags = [a for a in argv if a.startswith("-") and a != "-"]
    if given_flags:
        fail(program, f"{given_flags[0]}: takes no flags; {usage}", USAGE)
    if len(argv) != len(names):
        fail(program, f"expected {len(names)} argument{'s' * (len(names) != 1)}, got "
                      f"{len(argv)}; {usage}", USAGE)
    return argv


def _parsed(program, values, argv):
    """`values(argv)`: the arguments left over; a usage error exits in one line."""
    try:
        return values(argv)
    except flags.Error as e:
        fail(program, usage_line(e), USAGE)


def _check_usage(program, values, rest, validate):
    """Exits in one line on leftover arguments or a broken rule across flags."""
    if len(rest) > 1:
        fail(program, f"unexpected arguments: {' '.join(rest[1:])}", USAGE)
    problem = validate(values) if validate else None
    if problem:
        fail(program, problem, USAGE)


def run(program, define_flags, main, validate=None, errors=(ValueError, RuntimeError, OSError),
        argv=None):
    """Defines the flags, parses `argv` and runs `main(FLAGS)` under absl; exits.

    Args:
      program: the name that starts every error line.
      define_flags: `() -> None`, registers the program's flags on absl's FLAGS.
      main: `(FLAGS) -> None`.
      validate: `(FLAGS) -> str or None`, the first broken rule across flags.
      errors: exception types that `main` reports in one line (exit status 1).
      argv: the command line, program name first (default: `sys.argv`).
    """
    define_flags()

    def body(argv):
        _check_usage(program, flags.FLAGS, argv, validate)
        try:
            main(flags.FLAGS)
        except errors as e:
            fail(program, first_line(e))

    app.run(body, argv=argv, flags_parser=lambda args: _parsed(program, flags.FLAGS, args))
