# Sample pooler script: upstream's creates the tenant POOLER_TENANT_ID; the stand-in records it.
{:ok, _} = Application.ensure_all_started(:supavisor)
