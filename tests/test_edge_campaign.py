"""Issue 25's campaign (scripts/edge_campaign.py): new invocations and hand-damaged folders on every
command, each in a clean copy of a template working folder. A fast subset here; all of it under -m slow."""
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scripts"))
import edge_campaign  # noqa: E402

CASES = edge_campaign.cases()


@pytest.fixture(scope="module")
def template(tmp_path_factory):
    return edge_campaign.build_template(tmp_path_factory.mktemp("campaign") / "template")


def _check(case, template, tmp_path):
    result = edge_campaign.run_case(case, template, tmp_path)
    assert not result.problems, f"{case.name}: {result.problems}\n{result.err[-2000:]}"


@pytest.mark.parametrize("case", [c for c in CASES if c.fast], ids=lambda c: c.name)
def test_campaign_subset(case, template, tmp_path):
    _check(case, template, tmp_path)


@pytest.mark.slow
@pytest.mark.parametrize("case", [pytest.param(c, marks=pytest.mark.xfail(reason=c.known, strict=True)) if c.known
                                  else c for c in CASES if not c.fast], ids=lambda c: c.name)
def test_campaign(case, template, tmp_path):
    _check(case, template, tmp_path)


def test_the_campaign_is_large_and_reaches_every_command():
    commands = {c.args[0] for c in CASES}
    assert len(CASES) >= 150
    assert commands >= {"train", "resume", "resume-sweep", "list", "table", "plot", "ensemble", "check", "inspect",
                        "gradcheck", "lr-find"}
