"""Kinds of operation and their scheduler: each job runs a playbook in its own runner child process."""
