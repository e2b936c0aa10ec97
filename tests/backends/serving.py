"""What the test backends share: a threaded HTTP/1.1 server on 127.0.0.1 that prints its port and stays quiet about
clients that give up (a TLS handshake the gateway refused, a request it timed out)."""
from http.server import ThreadingHTTPServer


class Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 1024

    def handle_error(self, request, client_address):
        pass


def serve(handler, wrap=None):
    """Serves `handler` on a port the system picks, printed on the first line of stdout; `wrap` may wrap the
    listening socket (TLS)."""
    server = Server(("127.0.0.1", 0), handler)
    if wrap is not None:
        server.socket = wrap(server.socket)
    print(server.server_address[1], flush=True)
    server.serve_forever()
