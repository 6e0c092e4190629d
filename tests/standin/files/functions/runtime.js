// The functions stand-in: what `edge-runtime start --main-service <dir>` does, on a real Deno.
// The main service runs in this process, its Deno.serve bound to the runtime's port, and it gets
// upstream's EdgeRuntime.userWorkers.create(): each user worker is a Deno process of its own that
// runs the function's entrypoint (worker.js) with only the environment the main service gives it.
// A worker is kept per service path and entrypoint until it exits or forceCreate replaces it.
const [mainService, portArg] = Deno.args;
const port = Number(portArg);
const WORKER = new URL("./worker.js", import.meta.url).pathname;
const workers = new Map();

function freePort() {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const { port } = listener.addr;
  listener.close();
  return port;
}

async function listening(worker, timeoutMs) {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (worker.exited) throw new Error(`worker for ${worker.entry} exited with ${worker.exited.code}`);
    try {
      (await Deno.connect({ hostname: "127.0.0.1", port: worker.port })).close();
      return;
    } catch {
      await new Promise((r) => setTimeout(r, 20));
    }
  }
  worker.child.kill("SIGKILL");
  throw new Error(`worker for ${worker.entry} did not serve within ${timeoutMs} ms`);
}

function spawn(opts, entry) {
  const env = Object.fromEntries(opts.envVars ?? []);
  for (const name of ["PATH", "HOME", "DENO_DIR"]) {
    if (Deno.env.get(name) !== undefined && env[name] === undefined) env[name] = Deno.env.get(name);
  }
  const args = ["run", "--allow-all", "--no-prompt", "--quiet"];
  if (opts.importMapPath) args.push("--import-map", opts.importMapPath);
  const worker = { entry, port: freePort(), exited: null };
  args.push(WORKER, entry, String(worker.port));
  worker.child = new Deno.Command(Deno.execPath(), { args, env, clearEnv: true, stdin: "null" }).spawn();
  worker.child.status.then((status) => {
    worker.exited = status;
  });
  worker.ready = listening(worker, opts.workerTimeoutMs ?? 60000);
  return worker;
}

async function create(opts) {
  if (!opts || typeof opts.servicePath !== "string") throw new TypeError("servicePath is required");
  const entry = opts.maybeEntrypoint ?? `file://${opts.servicePath.replace(/\/$/, "")}/index.ts`;
  const key = `${opts.servicePath}\0${entry}`;
  let worker = workers.get(key);
  if (worker && (opts.forceCreate || worker.exited)) {
    if (!worker.exited) worker.child.kill("SIGKILL");
    worker = undefined;
  }
  if (!worker) {
    worker = spawn(opts, entry);
    workers.set(key, worker);
  }
  try {
    await worker.ready;
  } catch (err) {
    workers.delete(key);
    throw err;
  }
  return {
    fetch(req) {
      const url = new URL(req.url);
      return fetch(`http://127.0.0.1:${worker.port}${url.pathname}${url.search}`, {
        method: req.method,
        headers: req.headers,
        body: req.body,
        redirect: "manual",
      });
    },
  };
}

globalThis.EdgeRuntime = { userWorkers: { create } };

function stop() {
  for (const worker of workers.values()) if (!worker.exited) worker.child.kill("SIGKILL");
  Deno.exit(0);
}
Deno.addSignalListener("SIGTERM", stop);
Deno.addSignalListener("SIGINT", stop);

const serve = Deno.serve;
Deno.serve = (first, second) => {
  const handler = typeof first === "function" ? first : (second ?? first.handler);
  return serve({ hostname: "0.0.0.0", port, onListen: () => console.log(`main service listening on ${port}`) }, handler);
};
const main = ["index.ts", "index.js", "index.tsx", "index.mjs"]
  .map((name) => `${mainService.replace(/\/$/, "")}/${name}`)
  .find((path) => {
    try {
      return Deno.statSync(path).isFile;
    } catch {
      return false;
    }
  });
await import(`file://${main}`);
