"""``classmap`` and Ctrl-C outside a command's own handling (issue 15): one line, 130."""

from __future__ import annotations

from classmap.app import cli


def test_ctrl_c_after_a_command_ended_gives_one_line_and_130(monkeypatch, capsys):
    def interrupted(parser, argv):
        raise KeyboardInterrupt  # as if SIGINT arrived just after run() restored the handlers

    monkeypatch.setattr(cli, "run", interrupted)
    assert cli.main(["export", "--help"]) == 130
    err = capsys.readouterr().err
    assert err == "classmap: interrupted by SIGINT\n"
