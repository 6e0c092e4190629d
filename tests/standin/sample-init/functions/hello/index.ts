// Sample function: really run by the stand-in's Deno, in a user worker of its own.
Deno.serve((req: Request) =>
  Response.json({ hello: new URL(req.url).pathname, deno: Deno.version.deno, url: Deno.env.get("SUPABASE_URL") ?? null })
);
