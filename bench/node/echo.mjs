// An echo load from Node's `ws`, as an independent check on `loadgen`: the gateway's own client must not be the
// only witness of its speed. It speaks loadgen's arguments and JSON (the ones `benchrun --client node` passes) for
// the echo mode only: `--connections` connections each keep `--in-flight` messages of `--size` bytes outstanding
// and send the next one as each reply arrives, as a browser's `onmessage` handler would. The server's CPU time in
// the measured window is read from /proc, summed over its threads, exactly as loadgen reads it.
import { readFileSync, readdirSync } from "node:fs";
import WebSocket from "ws";

function parse(argv) {
  const args = {
    address: "127.0.0.1:8282", path: "/wss", cert: null, connections: 100, inFlight: 1, size: 32,
    warmup: 1, duration: 5, serverPid: null, json: false, binary: false, mode: "echo",
  };
  const names = {
    "--address": "address", "--path": "path", "--cert": "cert", "--connections": "connections",
    "--in-flight": "inFlight", "--size": "size", "--warmup": "warmup", "--duration": "duration",
    "--server-pid": "serverPid", "--mode": "mode",
  };
  // loadgen's flags this client has no use for, with their value: ignored, so benchrun passes the same list.
  const ignored = new Set(["--metrics", "--sources", "--ramp", "--pin"]);
  for (let i = 0; i < argv.length; i++) {
    const flag = argv[i];
    if (flag === "--json") args.json = true;
    else if (flag === "--binary") args.binary = true;
    else if (flag === "--paced") continue; // this client is always paced
    else if (ignored.has(flag)) i++;
    else if (flag in names) {
      if (i + 1 >= argv.length) throw new Error(`${flag} needs a value`);
      const value = argv[++i];
      const key = names[flag];
      args[key] = typeof args[key] === "number" || key === "serverPid" ? Number(value) : value;
    } else throw new Error(`unknown argument ${flag}`);
  }
  if (args.mode !== "echo") throw new Error(`--mode ${args.mode}: this client drives echo only`);
  return args;
}

// CPU nanoseconds of every thread of `pid` so far: the first field of each /proc/PID/task/TID/schedstat.
function cpuNs(pid) {
  let total = 0n;
  for (const task of readdirSync(`/proc/${pid}/task`)) {
    try {
      total += BigInt(readFileSync(`/proc/${pid}/task/${task}/schedstat`, "utf8").split(" ")[0]);
    } catch {
      // A thread that ended between the listing and the read took its time with it.
    }
  }
  return total;
}

function memoryKib(pid) {
  const status = readFileSync(`/proc/${pid}/status`, "utf8");
  const field = (name) => Number((status.match(new RegExp(`^${name}:\\s+(\\d+)`, "m")) ?? [0, 0])[1]);
  return { rss: field("VmRSS"), peak: field("VmHWM") };
}

const sleep = (s) => new Promise((resolve) => setTimeout(resolve, s * 1000));

async function main() {
  const args = parse(process.argv.slice(2));
  const url = `${args.cert ? "wss" : "ws"}://${args.address}${args.path}`;
  const ca = args.cert ? readFileSync(args.cert) : undefined;
  const message = args.binary ? Buffer.alloc(args.size, "x") : "x".repeat(args.size);
  const rssBefore = args.serverPid ? memoryKib(args.serverPid) : null;
  let measuring = false;
  let stopping = false;
  let count = 0;
  let errors = 0;
  const latencies = [];
  const error = (what, e) => {
    if (stopping) return;
    if (errors < 5) console.error(`node client: ${what}: ${e?.message ?? e}`);
    errors++;
  };
  const sockets = await Promise.all(
    Array.from({ length: args.connections }, () => new Promise((resolve) => {
      const ws = new WebSocket(url, { ca, perMessageDeflate: false, servername: "localhost" });
      const timer = setTimeout(() => { error("connect", "no upgrade within 30 s"); ws.terminate(); resolve(null); }, 30_000);
      ws.on("open", () => { clearTimeout(timer); resolve(ws); });
      ws.on("error", (e) => { clearTimeout(timer); error("connect", e); resolve(null); });
    })),
  );
  for (const ws of sockets) {
    if (!ws) continue;
    const sent = [];
    ws.on("message", () => {
      const at = sent.shift();
      if (measuring) {
        count++;
        if (at !== undefined && latencies.length < 1_000_000) latencies.push(Number(process.hrtime.bigint() - at) / 1000);
      }
      if (stopping) return;
      sent.push(process.hrtime.bigint());
      ws.send(message);
    });
    ws.on("close", () => error("receive", "server closed the connection"));
    for (let i = 0; i < args.inFlight; i++) {
      sent.push(process.hrtime.bigint());
      ws.send(message);
    }
  }
  await sleep(args.warmup);
  const cpuStart = args.serverPid ? cpuNs(args.serverPid) : 0n;
  const started = process.hrtime.bigint();
  measuring = true;
  await sleep(args.duration);
  measuring = false;
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  const cpuEnd = args.serverPid ? cpuNs(args.serverPid) : 0n;
  stopping = true;
  latencies.sort((a, b) => a - b);
  const at = (q) => Math.max(1, Math.round(latencies[Math.min(latencies.length - 1, Math.floor(q * latencies.length))]));
  let server = null;
  if (args.serverPid) {
    const cpuUs = Number(cpuEnd - cpuStart) / 1000;
    const after = memoryKib(args.serverPid);
    server = {
      cpu_us: cpuUs, cpu_us_per_op: count > 0 ? cpuUs / count : 0, cpu_percent: cpuUs / seconds / 1e4,
      rss_before_kib: rssBefore.rss, rss_after_kib: after.rss, peak_rss_kib: after.peak,
      rss_per_connection_kib: 0, plugin_share: null,
    };
  }
  const opened = sockets.filter(Boolean).length;
  const report = {
    mode: "echo", op: "message", connections: opened, in_flight: args.inFlight, size: args.size, seconds, count,
    per_sec: count / seconds,
    latency: latencies.length ? { p50_us: at(0.5), p99_us: at(0.99), p999_us: at(0.999) } : null,
    errors: errors + (args.connections - opened), server,
  };
  for (const ws of sockets) ws?.terminate();
  if (args.json) console.log(JSON.stringify(report));
  else console.log(`echo connections=${opened} in_flight=${args.inFlight} messages=${count} rate=${report.per_sec.toFixed(0)}/s errors=${report.errors}`
    + (server ? ` server_cpu_per_message=${server.cpu_us_per_op.toFixed(2)}us` : ""));
  process.exit(0);
}

main().catch((e) => {
  console.error(`node client: ${e.message}`);
  process.exit(1);
});
