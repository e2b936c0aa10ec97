// permessage-deflate in a real browser: headless Chromium (Debian's, driven by playwright-core) connects to each
// OK_URL, sends "tom" and expects "ok", and to ECHO_URL, sends a 20 KiB JSON message and expects it back; for each
// it records the extension the connection negotiated (`ws.extensions`, from the response header).
// Usage: node browser_deflate.mjs PAGE_URL ECHO_URL OK_URL... Prints one JSON line; exits non-zero on failure.
import { chromium } from 'playwright-core';

const [pageUrl, echoUrl, ...okUrls] = process.argv.slice(2);
const browser = await chromium.launch({
  executablePath: '/usr/bin/chromium',
  args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
    '--disable-component-update', '--disable-sync', '--ignore-certificate-errors'],
  timeout: 30000,
});
const result = { ok: {} };
try {
  const page = await browser.newPage({ ignoreHTTPSErrors: true });
  await page.goto(pageUrl, { timeout: 15000 });
  const exchange = (url, message) => page.evaluate(([url, message]) => new Promise((resolve, reject) => {
    const ws = new WebSocket(url);
    ws.onopen = () => ws.send(message);
    ws.onmessage = (e) => { resolve({ reply: e.data, extensions: ws.extensions }); ws.close(1000, 'done'); };
    ws.onerror = () => reject(new Error('WebSocket error for ' + url));
    setTimeout(() => reject(new Error('no reply from ' + url)), 10000);
  }), [url, message]);
  for (const url of okUrls) {
    result.ok[url] = await exchange(url, 'tom');
  }
  const big = JSON.stringify(Array.from({ length: 400 }, (_, i) => ({ from: `user${i % 5}`, room: 'lobby', text: `message ${i}` })));
  const echoed = await exchange(echoUrl, big);
  result.echo = { extensions: echoed.extensions, big_len: big.length, big_ok: echoed.reply === big };
} finally {
  await browser.close();
}
console.log(JSON.stringify(result));
