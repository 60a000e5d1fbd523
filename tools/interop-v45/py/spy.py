"""Records every MQTT message of the run (subscribed to '#') as JSON lines: {ts, topic, payload}.
Usage: spy.py PORT OUT_FILE READY_FILE. Touches READY_FILE once subscribed; stops on SIGTERM."""
import json
import signal
import sys
import time

import paho.mqtt.client as mqtt

port, out_path, ready_path = int(sys.argv[1]), sys.argv[2], sys.argv[3]
out = open(out_path, "a", buffering=1)


def on_connect(client, userdata, flags, rc):
    client.subscribe("#", qos=0)


def on_subscribe(client, userdata, mid, granted_qos):
    open(ready_path, "w").close()


def on_message(client, userdata, msg):
    try:
        payload = msg.payload.decode("utf-8")
    except UnicodeDecodeError:
        payload = None
    out.write(json.dumps({"ts": time.time(), "topic": msg.topic, "payload": payload}) + "\n")


client = mqtt.Client()
client.on_connect, client.on_subscribe, client.on_message = on_connect, on_subscribe, on_message
signal.signal(signal.SIGTERM, lambda *_: client.disconnect())
client.connect("127.0.0.1", port, keepalive=60)
client.loop_forever()
