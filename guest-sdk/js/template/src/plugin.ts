// The {name} plugin: echoes every message back to its sender, and answers `count` with how many messages that
// connection sent before. Edit it, run `npm test`, then `npm run build` and serve dist/{name}.wasm.

import { accept, definePlugin } from "wssgate";

/** What the plugin keeps for each connection (the SDK drops it when the connection closes). */
interface Client {
  messages: number;
}

export default definePlugin<Client>({
  onConnect() {
    return accept({ messages: 0 });
  },

  onMessage(conn, client, message) {
    if (message === "count") {
      conn.send(`count ${client.messages}`);
      return;
    }
    client.messages += 1;
    conn.send(message);
  },
});
