"""Exits 0 when every named node answers a ping within 3 s, 1 otherwise (run.sh retries it while nodes start).
Usage: wait_nodes.py PORT NODE_ID..."""
import json
import sys
import threading

import paho.mqtt.client as mqtt

port, wanted = int(sys.argv[1]), set(sys.argv[2:])
PING = {"protocol_version": "1", "researcher_id": "interop_probe", "sequence": 0, "command": "ping"}
answered, done = set(), threading.Event()


def on_connect(client, userdata, flags, rc):
    client.subscribe("general/researcher")


def on_subscribe(client, userdata, mid, granted_qos):
    client.publish("general/nodes", json.dumps(PING))


def on_message(client, userdata, msg):
    m = json.loads(msg.payload)
    if m.get("command") == "pong" and m.get("researcher_id") == "interop_probe":
        answered.add(m.get("node_id"))
        if wanted <= answered:
            done.set()


client = mqtt.Client()
client.on_connect, client.on_subscribe, client.on_message = on_connect, on_subscribe, on_message
client.connect("127.0.0.1", port)
client.loop_start()
done.wait(3)
client.loop_stop()
sys.exit(0 if wanted <= answered else 1)
