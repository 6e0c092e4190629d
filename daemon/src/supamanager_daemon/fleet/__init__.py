"""The Docker hosts: the engine client, the status poller and the mapping of what Docker reports."""
