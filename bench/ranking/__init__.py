"""The search's ground truth at task level, split by purpose: its committed files
(:mod:`~bench.ranking.truth`), picking and timing the archs (:mod:`~bench.ranking.timing`),
distilling and fine-tuning them (:mod:`~bench.ranking.training`), the table
(:mod:`~bench.ranking.report`), and two questions asked of it (:mod:`~bench.ranking.depth`,
:mod:`~bench.ranking.separation`). Run it as ``python -m bench.ranking`` (``__main__``)."""
