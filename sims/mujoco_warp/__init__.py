"""The tabletop tasks with physics in MuJoCo Warp (optional: pip install 'embodied-vla[warp]')."""
