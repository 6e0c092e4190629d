"""The one owner of a project's files on a host: where `<root>/projects/<ref>/` is and what it holds."""
