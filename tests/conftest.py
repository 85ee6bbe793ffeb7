"""Shared test set-up: quiet, fast, isolated from the user's machine state."""

import os

import pytest


@pytest.fixture(autouse=True)
def _isolated_env(tmp_path_factory, monkeypatch):
    # own lock file per test session, smoke timing rules, no progress bars
    lock_dir = tmp_path_factory.getbasetemp()
    monkeypatch.setenv("ATB_LOCK_FILE", str(lock_dir / "atb-test.lock"))
    monkeypatch.setenv("ATB_TIMING_RULE", "smoke")
    monkeypatch.setenv("ATB_NO_PROGRESS", "1")
    monkeypatch.delenv("ATB_WORKSPACE", raising=False)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    yield


def cli_env(**extra) -> dict:
    """Environment for a CLI subprocess (inherits the fixture's variables)."""
    env = dict(os.environ)
    env.update({k: str(v) for k, v in extra.items()})
    return env
