"""A test plugin that misbehaves on request, to show the gateway contains a failing Python plugin: only the
connection whose event failed is closed (1011) and the next client is served by a fresh instance.

It accepts every upgrade. Text messages: `throw` raises in on_message; `loop` loops forever (the gateway's CPU
budget or fuel must stop it); `bomb` allocates without bound, keeping every 1 MiB block (the instance's memory limit
must stop it); anything else is echoed.
"""

import wssgate

#: Where `bomb` keeps its blocks, so none can be freed.
hoard = []


class Misbehaving(wssgate.Plugin):
    def on_message(self, conn, state, message):
        if message == "throw":
            raise RuntimeError("misbehaving was asked to throw")
        if message == "loop":
            while True:
                pass
        if message == "bomb":
            while True:
                hoard.append(bytearray(1 << 20))
        conn.send(message)
