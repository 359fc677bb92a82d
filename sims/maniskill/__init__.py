"""ManiSkill3 tasks behind the batched env API (optional: pip install 'embodied-vla[maniskill]')."""
