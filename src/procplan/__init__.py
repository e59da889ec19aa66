"""ProcPlan: one system to book, run and watch shared GPUs."""

__version__ = "0.1.0"
