"""Archive scale: run a pipeline over millions of documents on Ray, resumably.

``dgemma predict INPUTS... --output DIR --engine ray`` calls `run_job`. Ray is an extra
(``pip install "spacy-dgemma[cluster]"``) and is imported only when a job runs. See
docs/cluster.md for the layout of the output folder and for running on a cluster.
"""
from spacy_dgemma.scale.job import JobOptions, JobSummary, iter_output, output_files, run_job

__all__ = ["JobOptions", "JobSummary", "iter_output", "output_files", "run_job"]
