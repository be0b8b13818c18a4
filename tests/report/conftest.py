"""Fixtures of the report tests: hand-made run folders with and without stage 2."""

import pytest

from tests.report.runs import make_run


@pytest.fixture
def run2(tmp_path):
    return make_run(tmp_path / "run2", stage2=True)


@pytest.fixture
def run1(tmp_path):
    return make_run(tmp_path / "run1", stage2=False)
