"""Custom hostnames: who may give a project a name of its own (ownership, through DNS)."""
