"""Rollout collection and evaluation over batched envs."""
