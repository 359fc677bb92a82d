"""Env workers in this process or as Ray actors, behind the collector interface the trainer already uses."""
