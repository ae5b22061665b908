"""The top-level command line: --help, --version, and one-line errors."""

import subprocess
import sys

import pytest
import torch

import rnnlab
from cli_testing import run_cli
from rnnlab.cli import main


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["--version"])
    assert exit_info.value.code == 0
    assert capsys.readouterr().out.strip() == f"rnnlab {rnnlab.__version__}"


def test_help_lists_subcommands(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["--help"])
    assert exit_info.value.code == 0
    assert "usage: rnnlab" in capsys.readouterr().out


def test_no_command_prints_help(capsys: pytest.CaptureFixture[str]) -> None:
    assert main([]) == 0
    assert "usage: rnnlab" in capsys.readouterr().out


def test_unknown_command_is_one_line_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["no-such-command"])
    assert exit_info.value.code == 2
    error = capsys.readouterr().err
    assert error.count("\n") == 1 and "invalid choice" in error


def test_console_script_module_entry() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "rnnlab.cli", "--version"], capture_output=True, text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f"rnnlab {rnnlab.__version__}"


def test_info_names_the_implementation_of_every_cell(capsys: pytest.CaptureFixture[str],
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    from rnnlab.nn import cells
    from rnnlab.nn.kernels import onednn

    code, out, _ = run_cli(capsys, "info")
    assert code == 0 and f"torch {torch.__version__}" in out
    assert ("compiled backend: available" if onednn.status().available
            else "compiled backend: unavailable") in out
    for name in cells.CELL_NAMES:
        assert any(line.split()[:1] == [name] for line in out.splitlines()), name

    unavailable = onednn.Status(False, "no compiler here")
    monkeypatch.setattr(onednn, "_status", unavailable)
    monkeypatch.setattr(onednn.available, "warned", True, raising=False)
    code, out, _ = run_cli(capsys, "info")
    assert code == 0 and "unavailable (no compiler here)" in out
    gru = next(line for line in out.splitlines() if line.split()[:1] == ["gru-lecture"])
    assert gru.split()[1] == "bptt"  # the hand-written kernel is what runs without it
