"""A stand-in Python Fed-BioMed v4.5 node for interop tests: it talks to the network with the same libraries and
settings as a v4.5 node (paho-mqtt 1.6 client with an empty client id, keepalive 60, QoS 0; python-requests for
POST /upload/ with files={'file': ...} and plain GET downloads; validators.url on URLs).

Usage: python_peer.py MQTT_HOST MQTT_PORT UPLOADS_URL FILE_URL NODE_ID
Prints one JSON object per line on stdout; exits 0 after answering one ping.
"""
import hashlib
import json
import os
import sys
import tempfile
import uuid

import paho.mqtt.client as mqtt
import requests
import validators

host, port, uploads_url, file_url, node_id = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4], sys.argv[5]


def say(**fields):
    print(json.dumps(fields), flush=True)


# Repository: download what the TypeScript side uploaded, upload a file of our own.
res = requests.get(file_url)
say(event="downloaded", status=res.status_code, sha256=hashlib.sha256(res.content).hexdigest(),
    url_valid=bool(validators.url(file_url)))

path = os.path.join(tempfile.mkdtemp(), "node_params_%s.mpk" % uuid.uuid4())
with open(path, "wb") as f:
    f.write(b"\x82\xa4from\xa6python")
res = requests.post(uploads_url, files={"file": open(path, "rb")})
body = res.json()
say(event="uploaded", status=res.status_code, file=body.get("file"), keys=list(body.keys()),
    url_valid=bool(validators.url(body.get("file", ""))))

# Messaging: subscribe like a node, answer one ping with a pong.
done = False


def on_connect(client, userdata, flags, rc):
    client.subscribe("general/nodes")
    client.subscribe("general/" + node_id)


def on_subscribe(client, userdata, mid, granted_qos):
    if mid == 2:
        say(event="ready")


def on_message(client, userdata, msg):
    global done
    message = json.loads(msg.payload)
    say(event="received", topic=msg.topic, command=message.get("command"))
    if message.get("command") == "ping":
        pong = {"protocol_version": "1", "researcher_id": message["researcher_id"], "node_id": node_id,
                "success": True, "sequence": message["sequence"], "command": "pong"}
        client.publish("general/researcher", json.dumps(pong))
        done = True


client = mqtt.Client()
client.on_connect = on_connect
client.on_subscribe = on_subscribe
client.on_message = on_message
client.connect(host, port, keepalive=60)
client.loop_start()
import time
deadline = time.time() + 30
while not done and time.time() < deadline:
    time.sleep(0.05)
time.sleep(0.2)
client.loop_stop()
client.disconnect()
sys.exit(0 if done else 3)
