# Exits once the admission webhook answers on every path it registers: any status but 404
# means the handler is there (404 is the server's answer for a path nobody registered yet).
# Only liveness is probed, with an empty body, so the serving certificate is not verified.
import http.client
import os
import ssl
import time

context = ssl.create_default_context()
context.check_hostname = False
context.verify_mode = ssl.CERT_NONE
host = os.environ["WEBHOOK_HOST"]
while True:
    waiting = []
    for path in os.environ["WEBHOOK_PATHS"].split():
        try:
            connection = http.client.HTTPSConnection(host, timeout=5, context=context)
            connection.request("POST", path, "{}", {"Content-Type": "application/json"})
            status = connection.getresponse().status
        except OSError as error:
            status = error
        if not isinstance(status, int) or status == 404:
            waiting.append(f"{path}: {status}")
    if not waiting:
        print(f"{host} serves every webhook path", flush=True)
        break
    print("waiting for " + "; ".join(waiting), flush=True)
    time.sleep(float(os.environ.get("WEBHOOK_POLL_SECONDS", "5")))
