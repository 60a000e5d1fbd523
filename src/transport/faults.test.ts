/**
 * Transport under faults, on a real Mosquitto: a broker that hangs (SIGSTOP: it stops reading its sockets) while
 * a client publishes, then dies and comes back. Every publish must settle within its deadline, and the connection
 * must work again afterwards; before the publish deadline, a publish caught this way never settled, and a node
 * awaiting it never trained again nor stopped.
 */
import { MqttConnection } from './connection';
import { startMosquitto, type TestBroker } from './testing/brokers';
import { waitFor } from './testing/waits';

jest.setTimeout(30_000);

describe('publishing through a broker that hangs then restarts', () => {
  let broker: TestBroker;
  afterAll(async () => broker?.stop());

  it('settles every publish within the deadline and publishes again after the restart', async () => {
    broker = await startMosquitto();
    const backoff = { initialDelayMs: 50, maxDelayMs: 200, factor: 2 };
    const publisher = await MqttConnection.open({ brokerUrl: broker.url, subscriptions: [], publishTimeoutMs: 1500,
      reconnectBackoff: backoff });
    try {
      broker.freeze?.();
      // 1 MB payloads until the sockets' buffers are full: the next writes wait for a 'drain'.
      const chunk = Buffer.alloc(1024 * 1024, 7);
      const outcomes: ('ok' | 'failed' | 'pending')[] = [];
      for (let i = 0; i < 40; i++) {
        const k = outcomes.push('pending') - 1;
        publisher.publish('general/test', chunk).then(() => (outcomes[k] = 'ok'), () => (outcomes[k] = 'failed'));
      }
      await new Promise((r) => setTimeout(r, 300));
      await broker.stop();
      await broker.restart();
      const started = Date.now();
      await waitFor(() => !outcomes.includes('pending'), 'every publish to settle', 5000);
      expect(Date.now() - started).toBeLessThan(3000);
      expect(outcomes).toContain('failed');

      await waitFor(() => publisher.connected, 'the reconnection', 10_000);
      const listener = await MqttConnection.open({ brokerUrl: broker.url, subscriptions: ['general/test'] });
      try {
        const got: string[] = [];
        listener.on('message', (_topic, payload) => void got.push(payload.toString()));
        await publisher.publish('general/test', 'after the restart');
        await waitFor(() => got.includes('after the restart'), 'the message published after the restart', 5000);
      } finally {
        await listener.close();
      }
    } finally {
      await publisher.close();
    }
  });
});
