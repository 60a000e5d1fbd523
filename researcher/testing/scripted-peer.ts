/**
 * A scripted node for tests: a raw MQTT client (no validation, no re-serialisation) subscribed like a Fed-BioMed
 * node, that records the exact payload text it receives and publishes whatever text the test script gives it —
 * typically the recorded Python node messages from the vectors.
 */
import mqtt, { MqttClient } from 'mqtt';

export interface Received {
  topic: string;
  text: string;
  message: Record<string, unknown>;
}

export type PeerScript = (received: Received, peer: ScriptedPeer) => void | Promise<void>;

export class ScriptedPeer {
  readonly received: Received[] = [];
  readonly failures: string[] = [];
  private chain: Promise<void> = Promise.resolve();

  private constructor(
    readonly nodeId: string,
    private readonly client: MqttClient,
    private readonly script: PeerScript,
  ) {
    client.on('message', (topic, payload) => {
      const text = payload.toString('utf8');
      const r: Received = { topic, text, message: JSON.parse(text) as Record<string, unknown> };
      this.received.push(r);
      // A Fed-BioMed node handles its requests one at a time, in arrival order.
      this.chain = this.chain.then(async () => {
        try {
          await this.script(r, this);
        } catch (err) {
          this.failures.push(`${nodeId}: ${(err as Error).stack ?? String(err)}`);
        }
      });
    });
  }

  /** `reconnectMs`: reconnect (and subscribe again) this long after losing the broker; never by default. */
  static async start(brokerUrl: string, nodeId: string, script: PeerScript, reconnectMs = 0): Promise<ScriptedPeer> {
    const client = await mqtt.connectAsync(brokerUrl, { protocolVersion: 4, clean: true, reconnectPeriod: reconnectMs });
    await client.subscribeAsync([`general/nodes`, `general/${nodeId}`], { qos: 0 });
    return new ScriptedPeer(nodeId, client, script);
  }

  async publish(topic: string, text: string): Promise<void> {
    await this.client.publishAsync(topic, text, { qos: 0, retain: false });
  }

  /** Waits until every received message has been handled. */
  async idle(): Promise<void> {
    let current: Promise<void>;
    do {
      current = this.chain;
      await current;
    } while (current !== this.chain);
  }

  /** Disconnects; `flush` waits for queued publishes to go out first (a node announcing its shutdown). */
  async close(flush = false): Promise<void> {
    await this.client.endAsync(!flush);
  }
}
