"""Every command's error paths through the real entry point: a clear message,
a non-zero exit code, no traceback, nothing created by a refused command.

Run in-process with ``stsmon.cli.main`` against an empty state folder (no
deployment), from a folder that is not the project (no cdk.json).
"""

from __future__ import annotations


import pytest

from stsmon import cli as cli_module

CASES = [
    # (args, exit code, message fragment)
    (["train"], 3, "pipeline 'stsPipeline' is not deployed locally"),
    (["train", "--input-data", "/no/such/file"], 3, "is not deployed locally"),
    (["train", "--target", "gcp"], 2, "'gcp' is not one of 'local', 'aws'"),
    (["deploy"], 3, "no cloud assembly at cdk.out (manifest.json missing): run `stsmon synth` first"),
    (["deploy", "--assembly", "/no/such/cdk.out"], 3, "no cloud assembly at /no/such/cdk.out"),
    (["deploy", "--stop"], 3, "no local endpoint in"),
    (["deploy", "--target", "azure"], 2, "'azure' is not one of 'local', 'aws'"),
    (["traffic"], 3, "no test split of a training run locally"),
    (["traffic", "--input", "/no/such/pairs.csv"], 2, "input file not found: /no/such/pairs.csv"),
    (["traffic", "--concurrency", "0"], 2, "--concurrency"),
    (["traffic", "--target", "gcp"], 2, "'gcp' is not one of"),
    (["traffic", "--shift", "sideways"], 2, "--shift 'sideways' is not one of mismatched, truncated or file:PATH"),
    (["traffic", "--shift", "file:/no/such/other.tsv"], 2, "--shift file: /no/such/other.tsv not found"),
    (["ground-truth"], 1, "no traffic record in"),
    (["ground-truth", "--error-rate", "1.5"], 2, "--error-rate"),
    (["ground-truth", "--mode", "psychic"], 2, "'psychic' is not one of"),
    (["monitor", "run"], 3, "the stack outputs MonitoringPipelineName, EndpointName are not deployed locally"),
    (["monitor", "run", "--target", "gcp"], 2, "'gcp' is not one of"),
    (["report"], 3, "the monitoring stack is not deployed locally"),
    (["status"], 3, "nothing is deployed locally"),
    (["status", "--target", "gcp"], 2, "'gcp' is not one of"),
    (["cleanup", "--target", "gcp"], 2, "'gcp' is not one of"),
    (["demo"], 2, "is not the stsmodelmonitor project folder"),
    (["synth"], 2, "no cdk.json in"),
    (["train", "-c", "BASE_JOB_PREFIX=Not Valid!"], 2, "BASE_JOB_PREFIX"),
    (["no-such-command"], 2, "No such command"),
]


@pytest.mark.parametrize("args, code, message", CASES, ids=[" ".join(c[0]) for c in CASES])
def test_error_is_clear_and_exit_code_non_zero(args, code, message, tmp_path, monkeypatch, capsys):
    state = tmp_path / "state"
    cwd = tmp_path / "elsewhere"
    cwd.mkdir()
    monkeypatch.chdir(cwd)
    monkeypatch.setenv("STSMON_HOME", str(state))
    assert cli_module.main(args) == code
    captured = capsys.readouterr()
    err = captured.err + captured.out
    assert message in err
    assert "Traceback" not in err
    # A refused command leaves nothing behind: no state folder, no hand-off files.
    assert not state.exists() or not any(state.iterdir())
    assert list(cwd.iterdir()) == []


def test_demo_with_a_bad_data_path_stops_before_anything_runs(repo_root, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(repo_root)
    state = tmp_path / "state"
    code = cli_module.main(["demo", "--state-dir", str(state), "--assembly", str(tmp_path / "cdk.out"),
                            "--input-data", str(tmp_path / "missing.txt")])
    err = capsys.readouterr().err
    assert code != 0
    assert f"--input-data {tmp_path / 'missing.txt'}: no such file or folder" in err
    assert not (tmp_path / "cdk.out").exists()
    assert not state.exists()


@pytest.mark.parametrize("name", list(cli_module.COMMANDS))
def test_every_command_has_help(name, capsys):
    assert cli_module.main([name, "--help"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("Usage: stsmon " + name)
