"""The pipeline's steps: each turns frozen params and a run context into a typed result.

A command runs one step (`commands/land.py` runs `pipeline.land`); `hourly` and `demo`
compose several. Steps read and write through `io/` and shape data with `transforms/`; they
never print (the runner does) and never import a command.
"""
