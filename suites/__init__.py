"""The shipped suites, installed as the package `hfbench.suites` (see pyproject.toml).

This folder stays at the top of the repository, where users look for suites, and is
the only copy: an editable install maps it into the package and a wheel carries its
YAML files as package data. `hfbench.suite.resolve("quickstart")` finds them through
importlib.resources. Nothing here is meant to be imported.
"""
