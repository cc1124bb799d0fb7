"""Archive-scale inference on Ray Data (``vertx-infer --engine ray``; ``pip install 'vertxnet[scale]'``).

    from vertxnet.batch import BatchConfig, run_batch
    from vertxnet.cli.infer import InferConfig

    summary = run_batch(BatchConfig(InferConfig(inputs=("archive/",), outdir=Path("out"), recursive=True), workers=8))

Films are read and decoded in Ray tasks and inferred in a pool of actors, each holding one
:class:`~vertxnet.pipeline.Pipeline`; the job's driver publishes every film's outputs (the same
files vertx-infer writes) exactly once, journals them so that a re-run skips what is done, and
writes ``vertebrae.parquet`` (every vertebra of every film) and ``failures.csv``. Ray is imported
only when a job runs: the rest of vertxnet never needs it.
"""

from .job import BatchConfig, BatchSummary, FilmOutcome, run_batch
from .tables import Failure

__all__ = ["BatchConfig", "BatchSummary", "Failure", "FilmOutcome", "run_batch"]
