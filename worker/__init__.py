"""The RQ edge: job functions, the worker runner and notifiers."""
