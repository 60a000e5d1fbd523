/**
 * A TS node under faults, on real parts: a node restarted with a train request still queued, the broker restarted
 * while the node trains, and the repository down when the node uploads its results.
 */
import * as fs from 'fs';
import { startBroker } from '../src/transport/broker';
import { freePort } from '../src/transport/testing/brokers';
import type { NodeToResearcherMessage } from '../src/protocol/messages';
import { nodePaths } from './config';
import { jobIdFor, researcherIdFor, trainReply as replyTo, until as waitFor, withRunningNode,
  type RunningNode, type RunningNodeOptions } from './testing/fault-bench';

jest.setTimeout(90_000);

const TAG = 'faults';
const RESEARCHER_ID = researcherIdFor(TAG);
const runningNode = (nodeId: string, options: RunningNodeOptions, body: (node: RunningNode) => Promise<void>) =>
  withRunningNode(TAG, nodeId, options, body);
const until = <T>(what: string, probe: () => T | undefined) => waitFor(what, probe, 40_000);
const trainReply = (replies: NodeToResearcherMessage[], job = jobIdFor(TAG)) => replyTo(replies, job);

describe('node faults', () => {
  it('executes a train request left in its queue when it restarts', async () => {
    // The state a node leaves when it is stopped with a request received but not yet answered.
    const leftOver = (b: RunningNode['bench']) => fs.writeFileSync(nodePaths(b.nodeDir).queue,
      JSON.stringify([{ id: 1, receivedAt: new Date().toISOString(), task: b.request({ job_id: 'job_left_over' }) }]));
    await runningNode('node_restart', { beforeStart: leftOver }, async ({ bench: b, agent, replies }) => {
      const reply = await until('the left-over train reply', () => trainReply(replies, 'job_left_over'));
      expect(reply).toMatchObject({ success: true, sample_size: 30, node_id: 'node_restart' });
      expect(agent.pendingTasks).toBe(0);
      expect(JSON.parse(fs.readFileSync(nodePaths(b.nodeDir).queue, 'utf8'))).toEqual([]);
    });
  });

  it('answers a round after the broker was restarted while it was training', async () => {
    const port = await freePort();
    let broker = await startBroker({ host: '127.0.0.1', port });
    try {
      // The node and the researcher use the restartable broker; the repository stays on the bench network.
      await runningNode('node_broker', { brokerUrl: `mqtt://127.0.0.1:${port}` }, async ({ bench: b, agent, messaging, replies }) => {
        let sawLoss = false;
        messaging.onMessage((m) => {
          if (m.command === 'add_scalar') sawLoss = true;
        });
        // Long enough to restart the broker in the middle of training. (This checks recovery; the node's reconnect
        // grace period, which protects against a researcher that re-subscribes after the node's reply, is not timed
        // here: timing assertions would be flaky.)
        await messaging.send(b.request({ training_args: { ...(b.request()).training_args, num_updates: 400,
          log_interval: 100 } }), 'node_broker');
        await until('training to start', () => (sawLoss ? true : undefined));
        await broker.close();
        await new Promise((r) => setTimeout(r, 300));
        broker = await startBroker({ host: '127.0.0.1', port });
        const reply = await until('the train reply after the broker restart', () => trainReply(replies));
        expect(reply).toMatchObject({ success: true, sample_size: 30 });
        expect(agent.pendingTasks).toBe(0);
      });
    } finally {
      await broker.close();
    }
  });

  it('retries an upload to a repository that is down, then answers success:false with the reason', async () => {
    const deadPort = await freePort();
    const lines: string[] = [];
    // Uploads go to a dead port while the plan and weights come from the bench's repository: a node restricted to
    // its own repository would refuse them, so this test lifts the restriction.
    await runningNode('node_norepo', { uploadsUrl: () => `http://127.0.0.1:${deadPort}/upload/`,
      agent: { env: {}, localLog: (l) => lines.push(l), repository: { retries: 2, downloadFrom: 'any' } } },
    async ({ bench: b, messaging, replies }) => {
      await messaging.send(b.request(), 'node_norepo');
      const reply = await until('the train reply', () => trainReply(replies));
      expect(reply).toMatchObject({ success: false, params_url: '', sample_size: null });
      expect(reply.state_id).toMatch(/^node_state_/); // as a Python node: the round's state id, even on failure
      expect(reply.msg).toMatch(/^Cannot upload results: /);
      expect(reply.msg).toContain(`127.0.0.1:${deadPort}`);
      // Still serving afterwards.
      await messaging.send({ researcher_id: RESEARCHER_ID, sequence: 3, command: 'ping' });
      await until('a pong', () => replies.find((m) => m.command === 'pong'));
    });
  });
});
