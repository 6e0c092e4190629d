"""supamanager.supabase.project_backup and project_backup_info through real ansible-playbook runs, on a
repository with a hand-made base backup (the real pg_basebackup output: tests/integration/role/, not on
main yet): begin, seal, commit, list, plan, mark, switch_chain, prune, unseal; the errors each refuses."""

import json
import os
import stat
import time

BACKUP = "supamanager.supabase.project_backup"
INFO = "supamanager.supabase.project_backup_info"
SECRET = "correct-horse-battery-staple-42"
MANIFEST = {"WAL-Ranges": [{"Timeline": 1, "Start-LSN": "0/2000028", "End-LSN": "0/2000100"}]}


def test_a_backup_from_begin_to_restore_plan(playbook, tmp_path):
    repo = tmp_path / "backups" / "shop"
    key = tmp_path / "secrets" / "backup.key"
    chain = playbook(BACKUP, {"repository": str(repo), "action": "switch_chain"})
    assert chain["changed"] is True and chain["previous"] is None
    begun = playbook(BACKUP, {"repository": str(repo), "action": "begin"})
    staging = begun["staging"]
    assert begun["chain"] == chain["current"]
    os.makedirs(os.path.join(staging, "base"))
    with open(os.path.join(staging, "base", "backup_manifest"), "w") as fh:
        json.dump(MANIFEST, fh)
    with open(os.path.join(staging, "base", "end_time"), "w") as fh:
        fh.write(f"{begun['id'] + 2}\n")
    secrets = tmp_path / "secrets" / "shop"
    secrets.mkdir(parents=True)
    (secrets / "secrets.json").write_text(json.dumps({"POSTGRES_PASSWORD": SECRET}))
    sealed = playbook(
        BACKUP,
        {
            "repository": str(repo),
            "action": "seal",
            "staging": staging,
            "key_file": str(key),
            "sources": [{"src": str(secrets), "name": "secrets"}],
        },
    )
    assert sealed["changed"] is True
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    committed = playbook(
        BACKUP,
        {
            "repository": str(repo),
            "action": "commit",
            "staging": staging,
            "info": {"ref": "shop"},
            "checks": [{"name": "x", "ok": True}],
        },
    )
    backup = committed["backup"]
    assert backup["status"] == "COMPLETED" and backup["chain"] == chain["current"]
    listed = playbook(INFO, {"repository": str(repo)})
    assert [b["id"] for b in listed["backups"]] == [backup["id"]]
    assert listed["window"]["earliest"] == backup["base_end"] and listed["current_chain"] == chain["current"]
    plan = playbook(INFO, {"repository": str(repo), "target_time": str(backup["base_end"] + 1)})["plan"]
    assert (plan["id"], plan["target"], plan["start_wal"]) == (backup["id"], "time", "000000010000000000000002")
    assert playbook(INFO, {"repository": str(repo), "latest": True})["plan"]["target"] == "latest"
    refused = playbook(INFO, {"repository": str(repo), "target_time": "yesterday"})
    assert refused["failed"] and "recovery target time" in refused["msg"]

    unsealed = playbook(
        BACKUP,
        {
            "repository": str(repo),
            "action": "unseal",
            "backup_id": str(backup["id"]),
            "key_file": str(key),
            "dest": str(tmp_path / "out"),
        },
    )
    assert unsealed["files"] == ["secrets/secrets.json"]
    assert SECRET not in (repo / "archive" / str(backup["id"]) / "settings.tar.enc").read_bytes().decode("latin-1")

    (repo / "archive" / str(backup["id"]) / "base" / "end_time").write_text("0\n")
    marked = playbook(BACKUP, {"repository": str(repo), "action": "mark", "backup_id": str(backup["id"])})
    assert marked["backup"]["status"] == "FAILED" and "base/end_time does not match" in marked["backup"]["reason"]

    pruned = playbook(BACKUP, {"repository": str(repo), "action": "prune"}, check=True)
    assert pruned["changed"] is False and pruned["removed"] == []
    back = playbook(BACKUP, {"repository": str(repo), "action": "switch_chain", "chain": chain["current"]})
    assert back["changed"] is False
    assert all(SECRET not in out for out in playbook.outputs)


def test_what_each_action_refuses(playbook, tmp_path):
    repo = str(tmp_path / "backups" / "shop")
    missing = playbook(BACKUP, {"repository": repo, "action": "commit"})
    assert missing["failed"] and "action=commit needs staging" in missing["msg"]
    in_check = playbook(BACKUP, {"repository": repo, "action": "begin"}, check=True)
    assert in_check["failed"] and "does not run in check mode" in in_check["msg"]
    bad_chain = playbook(BACKUP, {"repository": repo, "action": "switch_chain", "chain": "../x"})
    assert bad_chain["failed"] and "not a WAL chain" in bad_chain["msg"]
    nothing = playbook(INFO, {"repository": repo, "latest": True})
    assert nothing["failed"] and "no completed backup" in nothing["msg"]
    not_a_dir = tmp_path / "file"
    not_a_dir.write_text("")
    broken = playbook(BACKUP, {"repository": str(not_a_dir / "x"), "action": "begin"})
    assert broken["failed"] and "backup repository" in broken["msg"]


def test_a_deletes_one_run_marks_its_project_and_prunes_those_deleted_long_ago(playbook, tmp_path):
    """prune_deleted with mark_deleted (the role's delete): this project's repository is marked deleted now,
    another one deleted eight days ago goes; check mode says so and changes nothing."""
    backups, projects = tmp_path / "backups", tmp_path / "projects"
    (backups / "shop").mkdir(parents=True)
    (backups / "old").mkdir()
    (backups / "old" / "deleted.json").write_text(json.dumps({"deleted_at": int(time.time()) - 8 * 86400}) + "\n")
    args = {"action": "prune_deleted", "mark_deleted": True, "projects_root": str(projects)}
    would = playbook(BACKUP, {"repository": str(backups / "shop"), **args}, check=True)
    assert (would["changed"], would["deleted_removed"]) == (True, ["old"]) and (backups / "old").exists()
    assert not (backups / "shop" / "deleted.json").exists()
    done = playbook(BACKUP, {"repository": str(backups / "shop"), **args})
    assert (done["changed"], done["deleted_removed"]) == (True, ["old"]) and not (backups / "old").exists()
    marked = json.loads((backups / "shop" / "deleted.json").read_text())["deleted_at"]
    assert abs(marked - time.time()) < 120
