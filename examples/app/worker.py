"""A background process of the example app (`app.processes` in an
inventory): twice a second it writes, into the shared media directory, the
release it runs from, so a test can see each worker follow a deploy and a
rollback. A real app runs Celery or RQ here; SIGTERM ends it cleanly.
"""

import os
import signal
import sys
import time

running = True


def stop(*_):
    global running
    running = False


signal.signal(signal.SIGTERM, stop)
release = os.path.basename(os.getcwd())
instance = os.environ.get("INFRA_PROCESS_INSTANCE", "0")
beat = os.path.join("media", f"worker-{instance}")
print(f"worker {instance}: release {release}", flush=True)
while running:
    with open(beat + ".partial", "w") as partial:
        partial.write(f"{release} {os.getpid()}\n")
    os.replace(beat + ".partial", beat)
    time.sleep(0.5)
sys.exit(0)
