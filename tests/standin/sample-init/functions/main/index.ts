// Sample main service, as upstream's self-hosted one: the global VERIFY_JWT, then one user worker
// per function folder (the project role's own router, roles/project/templates/functions/main, adds
// each function's verify_jwt).
const secret = new TextEncoder().encode(Deno.env.get("JWT_SECRET") ?? "");
const b64url = (s: string) => Uint8Array.from(atob(s.replace(/-/g, "+").replace(/_/g, "/")), (c) => c.charCodeAt(0));

async function validJwt(req: Request): Promise<boolean> {
  const [head, payload, sig] = (req.headers.get("authorization") ?? "").replace(/^Bearer /, "").split(".");
  if (!sig) return false;
  const key = await crypto.subtle.importKey("raw", secret, { name: "HMAC", hash: "SHA-256" }, false, ["verify"]);
  return crypto.subtle.verify("HMAC", key, b64url(sig), new TextEncoder().encode(`${head}.${payload}`));
}

Deno.serve(async (req: Request) => {
  if (req.method !== "OPTIONS" && Deno.env.get("VERIFY_JWT") === "true" && !(await validJwt(req))) {
    return Response.json({ msg: "Invalid JWT" }, { status: 401 });
  }
  const name = new URL(req.url).pathname.split("/")[1];
  try {
    Deno.statSync(`/home/deno/functions/${name}/index.ts`);
  } catch {
    return Response.json({ error: "function not found" }, { status: 404 });
  }
  const worker = await EdgeRuntime.userWorkers.create({
    servicePath: `/home/deno/functions/${name}`,
    memoryLimitMb: 150,
    workerTimeoutMs: 60000,
    noModuleCache: false,
    importMapPath: null,
    envVars: Object.entries(Deno.env.toObject()),
  });
  return worker.fetch(req);
});
