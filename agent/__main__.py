"""``python -m agent`` runs the ``epistemic`` command."""

from agent.cli import main

main()
