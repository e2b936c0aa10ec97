// An interop client nobody here wrote the library of: Node's `ws` against the gateway's /echo over wss.
// Usage: node client.mjs URL CA_PEM. Prints one JSON line with what came back; exits non-zero on any failure.
import fs from 'node:fs';
import WebSocket from 'ws';

const [url, ca] = process.argv.slice(2);
const timer = setTimeout(() => { console.error('timed out'); process.exit(2); }, 10000);
const ws = new WebSocket(url, { ca: fs.readFileSync(ca), servername: 'localhost' });
const result = {};
const next = () => new Promise((resolve) => ws.once('message', (data, isBinary) => resolve({ data, isBinary })));

ws.on('error', (e) => { console.error(e); process.exit(1); });
ws.on('open', async () => {
  ws.send('héllo from node');
  const text = await next();
  result.text = text.data.toString();
  ws.send(Buffer.from([0, 1, 255]));
  const binary = await next();
  result.binary = [...binary.data];
  result.binary_flag = binary.isBinary;
  ws.ping(Buffer.from('are you there'));
  result.pong = await new Promise((resolve) => ws.once('pong', (data) => resolve(data.toString())));
  ws.close(4000, 'node done');
});
ws.on('close', (code, reason) => {
  result.close_code = code;
  result.close_reason = reason.toString();
  clearTimeout(timer);
  console.log(JSON.stringify(result));
});
