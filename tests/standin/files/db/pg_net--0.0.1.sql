-- Stand-in pg_net: upstream's signatures (webhooks.sql alters and grants them); no HTTP is sent.
create schema if not exists net;
create table net.http_request_queue (
    id bigserial primary key,
    method text not null,
    url text not null,
    headers jsonb,
    body jsonb,
    timeout_milliseconds integer
);
create type net.http_response as (status_code integer, headers jsonb, body text);
create type net.http_response_result as (status text, message text, response net.http_response);
create function net.http_get(url text, params jsonb default '{}', headers jsonb default '{}',
                             timeout_milliseconds integer default 2000) returns bigint
language sql as $$
    insert into net.http_request_queue (method, url, headers, timeout_milliseconds)
    values ('GET', url, headers, timeout_milliseconds) returning id
$$;
create function net.http_post(url text, body jsonb default '{}', params jsonb default '{}',
                              headers jsonb default '{"Content-Type": "application/json"}',
                              timeout_milliseconds integer default 2000) returns bigint
language sql as $$
    insert into net.http_request_queue (method, url, headers, body, timeout_milliseconds)
    values ('POST', url, headers, body, timeout_milliseconds) returning id
$$;
create function net._http_collect_response(request_id bigint, async boolean default true)
returns net.http_response_result
language sql as $$
    select ('SUCCESS', 'stand-in: not sent', (200, '{}'::jsonb, '')::net.http_response)::net.http_response_result
$$;
