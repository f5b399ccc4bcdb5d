"""The CLI shell: help lists every command, user errors have no traceback."""

from click.testing import CliRunner

from stsmon import cli as cli_module
from stsmon.errors import StsmonError


def test_help_lists_every_command():
    result = CliRunner().invoke(cli_module.cli, ["--help"])
    assert result.exit_code == 0
    for name in cli_module.COMMANDS:
        assert name in result.output


def test_unknown_command_is_a_usage_error(capsys):
    assert cli_module.main(["no-such-command"]) == 2
    assert "No such command" in capsys.readouterr().err


def test_user_error_prints_message_without_traceback(capsys, monkeypatch):
    def boom(*args, **kwargs):
        raise StsmonError("the thing is missing; run X first", exit_code=3)

    monkeypatch.setattr(cli_module.cli, "main", boom)
    assert cli_module.main(["status"]) == 3
    err = capsys.readouterr().err
    assert err.strip() == "Error: the thing is missing; run X first"
    assert "Traceback" not in err
