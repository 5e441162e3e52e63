"""The package version (also in pyproject.toml). Its own module so that anything can import it
without importing the package's public face (rnnedge/__init__.py)."""

__version__ = "0.1.0"
