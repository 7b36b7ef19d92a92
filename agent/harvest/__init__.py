"""Harvest: curate the dialogue log (:mod:`agent.harvest.curation`) and export it as datasets."""
