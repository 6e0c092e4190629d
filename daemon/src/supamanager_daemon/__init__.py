"""SupaManager control daemon: serves /v1/projects by running the collection's playbooks."""

__version__ = "0.1.0"
