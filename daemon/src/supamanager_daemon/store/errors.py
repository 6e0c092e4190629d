"""The store's own errors (domain errors; middleware.py maps them to HTTP)."""

from __future__ import annotations

from ..errors import Conflict, Forbidden, NotFound


class ProjectNotFound(NotFound):
    code = "project_not_found"

    def __init__(self, ref: str) -> None:
        super().__init__(f"project {ref[:64]!r} not found")


class OperationNotFound(NotFound):
    code = "operation_not_found"

    def __init__(self, op_id: str) -> None:
        super().__init__(f"operation {op_id[:64]!r} not found")


class RefTaken(Conflict):
    code = "ref_taken"

    def __init__(self, ref: str) -> None:
        super().__init__(f"project {ref} already exists")


class OperationInProgress(Conflict):
    """A mutating request while another operation is queued or running on the project."""

    code = "operation_in_progress"

    def __init__(self, ref: str, op_id: str, kind: str) -> None:
        super().__init__(f"operation {op_id} ({kind}) is still running on project {ref}", operation_id=op_id)
        self.operation_id = op_id


class HealingDisabled(Conflict):
    """A heal was asked for a project marked not to be healed."""

    code = "healing_disabled"

    def __init__(self, ref: str) -> None:
        super().__init__(f"project {ref} is marked not to be healed")


class OrganizationNotFound(NotFound):
    code = "organization_not_found"

    def __init__(self, slug: str) -> None:
        super().__init__(f"organization {slug[:64]!r} not found")


class TokenNotFound(NotFound):
    code = "token_not_found"

    def __init__(self, token_id: str) -> None:
        super().__init__(f"token {token_id[:64]!r} not found")


class TokenNameTaken(Conflict):
    code = "token_name_taken"

    def __init__(self, name: str) -> None:
        super().__init__(f"a token named {name!r} exists already")


class ProjectLimit(Forbidden):
    """The host holds max_projects projects already."""

    code = "project_limit"

    def __init__(self, limit: int) -> None:
        super().__init__(f"this host holds its limit of {limit} projects; delete one first")


class HostnameTaken(Conflict):
    code = "hostname_taken"

    def __init__(self, hostname: str) -> None:
        super().__init__(f"custom hostname {hostname} belongs to another project")
