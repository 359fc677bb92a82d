"""Real-arm drivers; each imports its SDK lazily and names the extra to install when it is missing."""
