import argparse

from atb.search.cli import add_plot_subcommand
from atb.search.plots import plot_pareto

from tests.search.synthetic import SyntheticFitness, SyntheticLatency, SyntheticMeasure, search_with


def _run(tmp_path, small_space, **kw):
    return search_with(tmp_path / "ws", kw.pop("target", 15), latency=SyntheticLatency(),
                      fitness=SyntheticFitness(small_space), measure=SyntheticMeasure(),
                      generations=2, population=10, **kw)


def test_plot_writes_png_and_svg(tmp_path, small_space):
    r = _run(tmp_path, small_space)
    files = plot_pareto(r.run_dir, tmp_path / "out" / "front.png")
    assert [f.suffix for f in files] == [".png", ".svg"]
    assert all(f.stat().st_size > 1000 for f in files)
    assert files[0].read_bytes()[:4] == b"\x89PNG" and b"<svg" in files[1].read_bytes()[:500]


def test_atb_plot_pareto_subcommand_uses_the_latest_run(tmp_path, small_space):
    _run(tmp_path, small_space, algorithm="pareto", target=[12, 20])
    parser = argparse.ArgumentParser()
    add_plot_subcommand(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["pareto", "--workspace", str(tmp_path / "ws"), "-o", str(tmp_path / "p")])
    result = args.func(args)
    assert sorted(p.rsplit(".", 1)[1] for p in result["files"]) == ["png", "svg"]
    assert "pareto-12-20x" in result["run_dir"]
