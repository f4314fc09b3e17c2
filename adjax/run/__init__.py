"""The host side of a run, one concern a module: what identifies it, the checks before it starts, where its members
live, the frozen teacher, the loop and its results. ``adjax.train`` puts them together."""
