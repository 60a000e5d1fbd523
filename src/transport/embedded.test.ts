import * as net from 'net';
import { startEmbeddedNetwork, advertisedHostFor } from './embedded';
import { Messaging } from './mqtt';
import { RepositoryClient } from './repository';
import { tracedMessage } from './testing/vectors';
import { waitFor } from './testing/waits';
import { protocolCodec, type WireMessage } from './wire';

function canConnect(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect(port, '127.0.0.1');
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}

test('startEmbeddedNetwork: a researcher and a node exchange a message and a file, then everything stops', async () => {
  const network = await startEmbeddedNetwork();
  expect(network.mqttUrl).toBe(`mqtt://127.0.0.1:${network.mqttPort}`);
  expect(network.uploadsUrl).toBe(`http://127.0.0.1:${network.httpPort}/upload/`);

  const researcher = await Messaging.connect({ role: 'researcher', brokerUrl: network.mqttUrl });
  const node = await Messaging.connect({ role: 'node', nodeId: 'node_peer1', brokerUrl: network.mqttUrl });
  const repository = new RepositoryClient({ uploadsUrl: network.uploadsUrl });

  const atNode: WireMessage[] = [];
  node.onMessage((m) => void atNode.push(m));
  const train = protocolCodec.parse(tracedMessage('train', 'general/node_peer1').payload, 'researcher-to-node');
  if (!train.ok) throw new Error(train.error);
  const paramsUrl = await repository.upload(Buffer.from([1, 2, 3, 4]), 'aggregated_params_x.mpk');
  await researcher.send({ ...train.message, params_url: paramsUrl } as WireMessage, 'node_peer1');
  await waitFor(() => atNode.length === 1, 'the train request at the node');
  const received = atNode[0] as WireMessage & { params_url: string };
  expect([...(await repository.download(received.params_url))]).toEqual([1, 2, 3, 4]);

  await researcher.close();
  await node.close();
  await network.close();
  expect(await canConnect(network.mqttPort)).toBe(false);
  expect(await canConnect(network.httpPort)).toBe(false);
});

test('a port in use gives a clear error and leaves nothing running', async () => {
  const first = await startEmbeddedNetwork();
  await expect(startEmbeddedNetwork({ mqttPort: first.mqttPort })).rejects.toThrow(
    new RegExp(`cannot start the embedded MQTT broker on 127.0.0.1:${first.mqttPort}: EADDRINUSE`),
  );
  await expect(startEmbeddedNetwork({ httpPort: first.httpPort })).rejects.toThrow(
    new RegExp(`cannot start the repository server on 127.0.0.1:${first.httpPort}: .*EADDRINUSE`),
  );
  await first.close();
});

test('URLs name a reachable host when bound to every interface', () => {
  expect(advertisedHostFor('127.0.0.1')).toBe('127.0.0.1');
  const wildcard = advertisedHostFor('0.0.0.0');
  expect(net.isIPv4(wildcard)).toBe(true);
  expect(wildcard).not.toBe('0.0.0.0');
});
