// Node's `ws` with permessage-deflate (its client offers it by default) against a compressed echo route over wss.
// Usage: node deflate.mjs URL CA_PEM. Sends a 20 KiB JSON message and a short one; prints one JSON line with the
// negotiated extensions and whether both came back intact; exits non-zero on failure.
import fs from 'node:fs';
import WebSocket from 'ws';

const [url, ca] = process.argv.slice(2);
const timer = setTimeout(() => { console.error('timed out'); process.exit(2); }, 10000);
const ws = new WebSocket(url, { ca: fs.readFileSync(ca), servername: 'localhost', perMessageDeflate: true });
const next = () => new Promise((resolve) => ws.once('message', (data) => resolve(data.toString())));
const big = JSON.stringify(Array.from({ length: 400 }, (_, i) => ({ from: `user${i % 5}`, room: 'lobby', text: `message ${i}` })));

ws.on('error', (e) => { console.error(e); process.exit(1); });
ws.on('open', async () => {
  ws.send(big);
  const echoedBig = await next();
  ws.send('tom');
  const echoedSmall = await next();
  console.log(JSON.stringify({
    extensions: ws.extensions,
    big_len: big.length,
    big_ok: echoedBig === big,
    small: echoedSmall,
  }));
  clearTimeout(timer);
  ws.close(1000, 'done');
});
