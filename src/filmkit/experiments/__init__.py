"""The named training recipes and the runs built on them: the speedrun, the demo and the reproduction."""
