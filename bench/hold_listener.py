# bench/hold_listener.py PORTFILE: a loopback listener that accepts and keeps
# each connection open until the client closes it (as a real server does),
# for at most 10 minutes. Writes its port to PORTFILE.
import selectors, socket, sys, time
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", 0)); s.listen(512); s.setblocking(False)
open(sys.argv[1], "w").write(str(s.getsockname()[1]))
sel = selectors.DefaultSelector(); sel.register(s, selectors.EVENT_READ)
end = time.time() + 600
while time.time() < end:
    for key, _ in sel.select(1):
        if key.fileobj is s:
            try: c, _ = s.accept()
            except BlockingIOError: continue
            c.setblocking(False); sel.register(c, selectors.EVENT_READ)
        else:
            try: gone = not key.fileobj.recv(4096)
            except (ConnectionResetError, BlockingIOError): gone = True
            if gone: sel.unregister(key.fileobj); key.fileobj.close()
