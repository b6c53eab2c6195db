"""PipeTune: pipelined hyper- and system-parameter tuning for BigDL jobs on Spark."""

__version__ = "0.1.0"
