import socket, time, threading, http.client, json
s = socket.create_connection(("127.0.0.1", 8797))
s.sendall(b"GET /events/stream HTTP/1.1\r\nHost: x\r\n\r\n")
f = s.makefile("rb")
got = {}
def reader():
    for line in f:
        if line.startswith(b"data: {"):
            d = json.loads(line[6:])
            got[d["data"]["k"]] = time.perf_counter()
threading.Thread(target=reader, daemon=True).start()
time.sleep(0.5)
c = http.client.HTTPConnection("127.0.0.1", 8798)
lat = []
for k in range(50):
    t = time.perf_counter()
    c.request("POST", "/events", body=json.dumps({"type": "x", "data": {"k": k}}), headers={"content-type": "application/json"})
    c.getresponse().read()
    t1 = time.perf_counter()
    while k not in got and time.perf_counter() - t < 2: time.sleep(0.0002)
    lat.append(((t1-t)*1000, (got.get(k, 99) - t)*1000))
    time.sleep(0.02)
lat.sort(key=lambda x: x[1])
print("post ms / deliver ms, p50:", lat[25], "p90:", lat[45], "max", lat[-1])
