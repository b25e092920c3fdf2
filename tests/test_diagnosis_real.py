"""Real tiny runs built to go wrong are diagnosed as such at the end of the run."""
from conftest import run_tiny


def kinds(summary):
    return {f["kind"] for f in summary["diagnosis"]}


def test_a_learning_rate_far_too_low_is_not_learning(tmp_path):
    s = run_tiny(tmp_path, ["optimizer=sgd", "optimizer.lr=1e-6", "trainer.epochs=6", "dataset.subset=400",
                            "trainer.batch_size=32"])
    assert "not_learning" in kinds(s)


def test_a_big_model_on_sixty_examples_overfits(tmp_path):
    s = run_tiny(tmp_path, ["dataset.subset=60", "trainer.epochs=60", "arch.width=512", "trainer.batch_size=10",
                            "optimizer.lr=0.003"])
    assert "overfitting" in kinds(s)


def test_a_healthy_default_run_has_no_findings_that_would_mislead(tmp_path):
    s = run_tiny(tmp_path, ["trainer.epochs=8", "dataset.subset=null"])
    assert not kinds(s) & {"diverged", "not_learning", "exploding"}
