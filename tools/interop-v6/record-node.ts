/**
 * Dev tool: runs a fedbiomed-ts node (node dir already initialised with --protocol v6) and records its v6 traffic
 * into OUT_DIR: every task received and reply sent as `NNN-task-<Class>.mpk` / `NNN-reply-<Class>.mpk` (the exact
 * msgpack bytes) and the Feedback messages as `feedback.jsonl`. Stops on SIGTERM / SIGINT.
 *   npx ts-node --transpile-only tools/interop-v6/record-node.ts NODE_DIR OUT_DIR
 */
import * as fs from 'fs';
import * as path from 'path';
import { NodeAgent } from '../../node-agent/agent';
import { decodeV6Payload } from '../../src/transport/v6/payload';

const [dir, out] = process.argv.slice(2);
if (!dir || !out) throw new Error('usage: record-node.ts NODE_DIR OUT_DIR');
fs.mkdirSync(out, { recursive: true });
let n = 0;
const className = (bytes: Uint8Array): string => {
  try {
    const v = decodeV6Payload(bytes) as { __type_message__?: { class?: string } };
    return v.__type_message__?.class ?? 'Unknown';
  } catch {
    return 'Undecodable';
  }
};

void (async () => {
  const agent = await NodeAgent.start({ dir, v6Tap: (event) => {
    if (event.kind === 'feedback') {
      fs.appendFileSync(path.join(out, 'feedback.jsonl'), JSON.stringify({ seq: ++n, ...event.feedback }) + '\n');
      return;
    }
    const name = `${String(++n).padStart(3, '0')}-${event.kind}-${className(event.bytes)}.mpk`;
    fs.writeFileSync(path.join(out, name), event.bytes);
  } });
  const stop = () => void agent.stop('close').then(() => process.exit(0));
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
})();
