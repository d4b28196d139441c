"""The main job, ``python -m sknet``, as a user runs it."""

import subprocess
import sys

import pytest


def _run(*args):
    return subprocess.run(
        [sys.executable, "-m", "sknet", *args],
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_main_job_reaches_the_documented_accuracy():
    """With defaults, the digits job prints its report and beats 0.96."""
    done = _run("--quiet")
    assert done.returncode == 0, done.stderr
    accuracy = float(done.stdout.split("test accuracy:")[1].split()[0])
    assert accuracy >= 0.96
    assert "settings:" in done.stdout and "workers=1" in done.stdout


def test_main_job_prints_one_line_per_epoch():
    """Without --quiet, each epoch prints its line before the report."""
    done = _run("--epochs", "3")
    assert done.returncode == 0, done.stderr
    assert [ln for ln in done.stdout.splitlines() if ln.startswith("Epoch")] == [
        ln for ln in done.stdout.splitlines()[:3]
    ]


def test_main_job_with_two_workers_reports_them():
    """--n-jobs 2 trains with the engine and says how many workers it used."""
    done = _run("--quiet", "--n-jobs", "2", "--epochs", "3")
    assert done.returncode == 0, done.stderr
    assert "workers=2" in done.stdout


@pytest.mark.parametrize(
    "args, message",
    [
        (["--n-jobs", "0"], "n_jobs"),
        (["--epochs", "0"], "max_iter"),
        (["--learning-rate", "1e12"], "learning rate"),
        (["--test-size", "1.5"], "test-size"),
        (["--hidden", "64,,32"], "comma-separated"),
        (["--optimizer", "adam"], "invalid choice"),
    ],
)
def test_main_job_bad_settings_fail_without_traceback(args, message):
    """A bad flag value is a usage error (exit 2) that names it, not a crash."""
    done = _run(*args)
    assert done.returncode == 2
    assert message in done.stderr
    assert "Traceback" not in done.stderr
