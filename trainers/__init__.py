"""Training entry points (`python -m trainers.<name>`): the PKKD trainer and tuner live here."""
