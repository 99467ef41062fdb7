# Copyright 2026 The addernet_tf Authors. Licensed under the Apache License 2.0.
"""`addernet_tf.cli`: every program's command line ends in one line, with the right status."""

import re

import pytest
from absl import flags

from addernet_tf import cli


def _define():
    flags.DEFINE_enum("cli_test_color", "red", ["red", "green"], "A choice.")
    flags.DEFINE_integer("cli_test_count", 1, "A count.", lower_bound=1)
    flags.DEFINE_string("cli_test_name", None, "Required by the rule.")


def _rule(values):
    return None if values.cli_test_name else "--cli_test_name must be given"


@pytest.fixture(scope="module")
def program():
    """Runs the test program on `args`: (exit status, stderr lines, what main saw)."""
    defined = []

    def define():
        if not defined:  # absl's FLAGS is global: define once per process
            _define()
            defined.append(True)

    def run(capsys, *args, fail_with=None):
        seen = []

        def main(values):
            seen.append((values.cli_test_color, values.cli_test_count, values.cli_test_name))
            if fail_with is not None:
                raise fail_with

        flags.FLAGS.unparse_flags()  # values of an earlier test's parse would stay
        with pytest.raises(SystemExit) as stop:
            cli.run("prog", define, main, validate=_rule, argv=["prog", *args])
        lines = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
        return stop.value.code, lines, seen

    return run


@pytest.mark.parametrize("args, status, line", [
    (["--cli_test_color=blue", "--cli_test_name=x"], cli.USAGE,
     "prog: --cli_test_color=blue: must be one of red, green"),
    (["--cli_test_count=0", "--cli_test_name=x"], cli.USAGE,
     r"prog: --cli_test_count=0: 0 is not a positive integer"),
    (["--cli_test_nope=1"], cli.USAGE, "prog: Unknown command line flag 'cli_test_nope'.*"),
    (["--cli_test_name=x", "extra", "words"], cli.USAGE, "prog: unexpected arguments: extra words"),
    ([], cli.USAGE, "prog: --cli_test_name must be given"),
])
def test_usage_errors_are_one_line_with_status_2(program, capsys, args, status, line):
    code, lines, seen = program(capsys, *args)
    assert (code, len(lines), seen) == (status, 1, [])
    assert re.fullmatch(line, lines[0]), lines[0]


def test_a_failure_in_main_is_its_first_line_with_status_1(program, capsys):
    code, lines, seen = program(capsys, "--cli_test_name=x",
                                fail_with=ValueError("first line\nsecond line"))
    assert (code, lines, seen) == (cli.FAILURE, ["prog: first line"], [("red", 1, "x")])


def test_other_exceptions_are_not_swallowed(program, capsys):
    with pytest.raises(KeyError):
        program(capsys, "--cli_test_name=x", fail_with=KeyError("bug"))


def test_good_flags_reach_main(program, capsys):
    code, lines, seen = program(capsys, "--cli_test_color=green", "--cli_test_count=3",
                                "--cli_test_name=n")
    assert (code or 0, lines, seen) == (0, [], [("green", 3, "n")])


def _define_on(values):
    d = cli.Definer(values, module=__name__)
    d.DEFINE_enum("color", "red", ["red", "green"], "A choice.")
    d.DEFINE_integer("count", 1, "A count.", lower_bound=1)
    d.DEFINE(cli.CheckedString(lambda v: None if v.islower() else "must be lower case"),
             "name", "x", "Checked by its parser.")


@pytest.mark.parametrize("args, line", [
    (["--color=blue"], "prog: --color=blue: must be one of red, green"),
    (["--count", "0"], "prog: --count=0: 0 is not a positive integer"),
    (["--name=Bob"], "prog: --name=Bob: must be lower case"),
    (["--nope=1"], "prog: Unknown command line flag 'nope'.*"),
    (["extra"], "prog: unexpected arguments: extra"),
    (["--count=2"], "prog: count is 2"),
])
def test_parse_gives_the_same_one_line_errors_in_process(capsys, args, line):
    def rule(values):
        return f"count is {values.count}" if values.count == 2 else None

    with pytest.raises(SystemExit) as stop:
        cli.parse("prog", _define_on, args, validate=rule)
    lines = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert stop.value.code == cli.USAGE and len(lines) == 1
    assert re.fullmatch(line, lines[0]), lines[0]


def test_parse_returns_fresh_values_leaving_absl_flags_alone():
    values = cli.parse("prog", _define_on, ["--color", "green", "--count=3", "--name=ann"])
    assert (values.color, values.count, values.name) == ("green", 3, "ann")
    assert "color" not in flags.FLAGS


@pytest.mark.parametrize("args, line", [
    ([], "report: expected 1 argument, got 0; usage: report DIR  (a run or a study folder)"),
    (["a", "b"], "report: expected 1 argument, got 2; usage: report DIR  (a run or a study folder)"),
    (["--dir=x"], "report: --dir=x: takes no flags; usage: report DIR  (a run or a study folder)"),
])
def test_positional_usage_errors_are_one_line_with_status_2(capsys, args, line):
    with pytest.raises(SystemExit) as exit_info:
        cli.positional("report", ["DIR"], args, what="a run or a study folder")
    assert exit_info.value.code == cli.USAGE
    assert capsys.readouterr().err.splitlines() == [line]


def test_positional_gives_the_arguments_and_help_exits_0(capsys):
    assert cli.positional("p", ["A", "B"], ["x", "-"]) == ["x", "-"]
    with pytest.raises(SystemExit) as exit_info:
        cli.positional("p", ["A", "B"], ["--help"])
    assert exit_info.value.code == 0
    assert capsys.readouterr().out.splitlines() == ["usage: p A B"]


def test_report_command_line(capsys, tmp_path):
    from addernet_tf.trainers import report  # pylint: disable=import-outside-toplevel
    with pytest.raises(SystemExit) as exit_info:
        report.main([str(tmp_path)])
    assert exit_info.value.code == cli.FAILURE
    assert capsys.readouterr().err.splitlines() == [
        f"report: {tmp_path}: neither a run (history.csv) nor a study (study.json)"]
    with pytest.raises(SystemExit) as exit_info:
        report.main([])
    assert exit_info.value.code == cli.USAGE
