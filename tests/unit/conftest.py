"""Unit tests import the collection's code as Ansible does: ansible_collections.supamanager.supabase.*

scripts/setup links this checkout into .venv/collections; that directory goes on sys.path here.
"""

import sys

from tests.conftest import REPO

COLLECTIONS = REPO / ".venv" / "collections"
if str(COLLECTIONS) not in sys.path:
    sys.path.insert(0, str(COLLECTIONS))
