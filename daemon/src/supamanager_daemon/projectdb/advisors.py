"""The advisors' lints, our own (in the spirit of Supabase's splinter), run as read-only SQL in the
project's database: security (tables in exposed schemas without RLS, security definer views,
functions with a mutable search_path) and performance (foreign keys without an index, unused and
duplicate indexes). Each lint answers in the document's `lints` shape."""

from __future__ import annotations

import dataclasses
from typing import Any

from .pools import ProjectDatabases, Target

# Schemas the platform manages: a user's lints are about the others (the exposed ones for RLS and views).
MANAGED_SCHEMAS = (
    "pg_catalog,information_schema,pg_toast,auth,storage,realtime,_realtime,extensions,graphql,graphql_public,"
    "pgbouncer,vault,pgsodium,pgsodium_masks,supabase_functions,supabase_migrations,net,_analytics,_supavisor,cron"
)
_DOCS = "https://supabase.com/docs/guides/database/database-linter?lint="


@dataclasses.dataclass(frozen=True)
class Lint:
    name: str
    title: str
    level: str
    category: str
    description: str
    remediation: str  # the docs' lint id
    sql: str  # rows: schema, entity, type, detail (and fkey_name, fkey_columns)
    exposed: bool  # $1 is the exposed schemas (else the managed ones, to leave out)


SECURITY = (
    Lint(
        "rls_disabled_in_public",
        "RLS Disabled in Public",
        "ERROR",
        "SECURITY",
        "Detects cases where row level security (RLS) has not been enabled on tables in schemas exposed to PostgREST",
        "0013_rls_disabled_in_public",
        "select n.nspname as schema, c.relname as entity, 'table' as type,"
        " format('Table `%s.%s` is public, but RLS has not been enabled.', n.nspname, c.relname) as detail"
        " from pg_class c join pg_namespace n on n.oid = c.relnamespace"
        " where c.relkind in ('r', 'p') and not c.relrowsecurity and n.nspname = any(string_to_array($1, ','))"
        " order by 1, 2",
        True,
    ),
    Lint(
        "security_definer_view",
        "Security Definer View",
        "ERROR",
        "SECURITY",
        "Detects views defined with the SECURITY DEFINER property. These views enforce Postgres permissions and row"
        " level security policies (RLS) of the view creator, rather than that of the querying user",
        "0010_security_definer_view",
        "select n.nspname as schema, c.relname as entity, 'view' as type,"
        " format('View `%s.%s` is defined with the SECURITY DEFINER property', n.nspname, c.relname) as detail"
        " from pg_class c join pg_namespace n on n.oid = c.relnamespace"
        " where c.relkind = 'v' and n.nspname = any(string_to_array($1, ','))"
        " and not coalesce(c.reloptions && array['security_invoker=true', 'security_invoker=on'], false)"
        " order by 1, 2",
        True,
    ),
    Lint(
        "function_search_path_mutable",
        "Function Search Path Mutable",
        "WARN",
        "SECURITY",
        "Detects functions where the search_path parameter is not set.",
        "0011_function_search_path_mutable",
        "select n.nspname as schema, p.proname as entity, 'function' as type,"
        " format('Function `%s.%s` has a role mutable search_path', n.nspname, p.proname) as detail"
        " from pg_proc p join pg_namespace n on n.oid = p.pronamespace"
        " where n.nspname <> all(string_to_array($1, ','))"
        " and not exists (select 1 from pg_depend d where d.objid = p.oid and d.deptype = 'e')"
        " and not exists (select 1 from unnest(coalesce(p.proconfig, '{}')) s where s like 'search_path=%')"
        " order by 1, 2",
        False,
    ),
)

PERFORMANCE = (
    Lint(
        "unindexed_foreign_keys",
        "Unindexed foreign keys",
        "INFO",
        "PERFORMANCE",
        "Identifies foreign key constraints without a covering index, which can impact database performance.",
        "0001_unindexed_foreign_keys",
        "select n.nspname as schema, c.relname as entity, 'table' as type, k.conname as fkey_name,"
        " k.conkey::int[] as fkey_columns,"
        " format('Table `%s.%s` has a foreign key `%s` without a covering index. This can lead to suboptimal query"
        " performance.', n.nspname, c.relname, k.conname) as detail"
        " from pg_constraint k join pg_class c on c.oid = k.conrelid join pg_namespace n on n.oid = c.relnamespace"
        " where k.contype = 'f' and n.nspname <> all(string_to_array($1, ','))"
        " and not exists (select 1 from pg_index i where i.indrelid = k.conrelid"
        " and (i.indkey::int2[])[0:array_length(k.conkey, 1) - 1] @> k.conkey"
        " and (i.indkey::int2[])[0:array_length(k.conkey, 1) - 1] <@ k.conkey)"
        " order by 1, 2, 4",
        False,
    ),
    Lint(
        "unused_index",
        "Unused Index",
        "INFO",
        "PERFORMANCE",
        "Detects if an index has never been used and may be a candidate for removal.",
        "0005_unused_index",
        "select s.schemaname as schema, s.relname as entity, 'table' as type,"
        " format('Index `%s` on table `%s.%s` has not been used', s.indexrelname, s.schemaname, s.relname) as detail,"
        " s.indexrelname as index_name"
        " from pg_stat_user_indexes s join pg_index i on i.indexrelid = s.indexrelid"
        " join pg_namespace n on n.nspname = s.schemaname"
        " where s.idx_scan = 0 and not i.indisunique and not i.indisprimary"
        " and n.nspname <> all(string_to_array($1, ','))"
        " order by 1, 2, 5",
        False,
    ),
    Lint(
        "duplicate_index",
        "Duplicate Index",
        "WARN",
        "PERFORMANCE",
        "Detects cases where two ore more identical indexes exist.",
        "0009_duplicate_index",
        "select n.nspname as schema, c.relname as entity, 'table' as type,"
        " format('Table `%s.%s` has identical indexes %s. Drop all except one of them', n.nspname, c.relname,"
        " array_agg(x.relname order by x.relname)::text) as detail,"
        " string_agg(x.relname, ',' order by x.relname) as index_name"
        " from pg_index i join pg_class x on x.oid = i.indexrelid join pg_class c on c.oid = i.indrelid"
        " join pg_namespace n on n.oid = c.relnamespace"
        " where n.nspname <> all(string_to_array($1, ','))"
        " group by n.nspname, c.relname, i.indrelid, i.indkey::text, i.indclass::text, i.indcollation::text,"
        " coalesce(pg_get_expr(i.indexprs, i.indrelid), ''), coalesce(pg_get_expr(i.indpred, i.indrelid), '')"
        " having count(*) > 1 order by 1, 2, 5",
        False,
    ),
)


async def run_lints(
    dbs: ProjectDatabases, ref: str, target: Target, lints: tuple[Lint, ...], exposed: str
) -> list[dict[str, Any]]:
    """Every lint's findings, in the document's shape (read-only; nothing is changed)."""
    found = []
    for lint in lints:
        rows = await dbs.query(ref, target, lint.sql, [exposed if lint.exposed else MANAGED_SCHEMAS], read_only=True)
        for row in rows:
            metadata: dict[str, Any] = {"schema": row["schema"], "name": row["entity"], "type": row["type"]}
            metadata["entity"] = row["entity"]
            key = f"{lint.name}_{row['schema']}_{row['entity']}"
            if "fkey_name" in row:
                metadata["fkey_name"] = row["fkey_name"]
                metadata["fkey_columns"] = row["fkey_columns"]
                key += f"_{row['fkey_name']}"
            if "index_name" in row:
                key += f"_{row['index_name']}"
            found.append(
                {
                    "name": lint.name,
                    "title": lint.title,
                    "level": lint.level,
                    "facing": "EXTERNAL",
                    "categories": [lint.category],
                    "description": lint.description,
                    "detail": row["detail"],
                    "remediation": _DOCS + lint.remediation,
                    "metadata": metadata,
                    "cache_key": key,
                }
            )
    return found
