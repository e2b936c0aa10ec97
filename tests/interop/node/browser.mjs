// The seed's check in a real browser: headless Chromium (Debian's, driven by playwright-core) runs
//   ws = new WebSocket("wss://…/wss"); ws.send("tom")  → expects "ok"
// for each URL given, and for the gateway's own page, reads the reply the page shows.
// Usage: node browser.mjs PAGE_URL WSS_URL... Prints one JSON line; exits non-zero on failure.
import { chromium } from 'playwright-core';

const [pageUrl, ...wssUrls] = process.argv.slice(2);
const browser = await chromium.launch({
  executablePath: '/usr/bin/chromium',
  args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
    '--disable-component-update', '--disable-sync', '--ignore-certificate-errors'],
  timeout: 30000,
});
const result = { replies: {} };
try {
  const page = await browser.newPage({ ignoreHTTPSErrors: true });
  await page.goto(pageUrl, { timeout: 15000 });
  await page.waitForFunction(() => document.getElementById('result').textContent === 'ok', null, { timeout: 15000 });
  result.page = await page.textContent('#result');
  for (const url of wssUrls) {
    result.replies[url] = await page.evaluate((url) => new Promise((resolve, reject) => {
      const ws = new WebSocket(url);
      ws.onopen = () => ws.send('tom');
      ws.onmessage = (e) => { resolve(e.data); ws.close(1000, 'done'); };
      ws.onerror = () => reject(new Error('WebSocket error for ' + url));
      setTimeout(() => reject(new Error('no reply from ' + url)), 10000);
    }), url);
  }
} finally {
  await browser.close();
}
console.log(JSON.stringify(result));
