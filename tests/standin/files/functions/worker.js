// One user worker of the functions stand-in (runtime.js): runs a function's entrypoint, its
// Deno.serve bound to the port the runtime chose, on the loopback only.
const [entry, port] = Deno.args;
const serve = Deno.serve;
Deno.serve = (first, second) => {
  const handler = typeof first === "function" ? first : (second ?? first.handler);
  return serve({ hostname: "127.0.0.1", port: Number(port), onListen: () => {} }, handler);
};
addEventListener("unhandledrejection", (event) => console.error("unhandled rejection:", event.reason));
await import(entry);
