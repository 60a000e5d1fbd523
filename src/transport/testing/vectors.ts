/** Access to the recorded Fed-BioMed v4.5.0 MQTT trace (../shared/fedbiomed-v4.5-vectors) for tests. */
import * as fs from 'fs';
import * as path from 'path';
import { VECTORS_DIR } from '../../testing/vectors-dir';


export interface TracedMessage {
  topic: string;
  payload: string;
  command: string;
}

let cache: TracedMessage[] | undefined;

export function tracedMessages(): TracedMessage[] {
  if (!cache) {
    const file = path.join(VECTORS_DIR, 'mqtt-trace.jsonl');
    if (!fs.existsSync(file)) throw new Error(`recorded vectors not found at ${file} (shared/ must sit beside the repo)`);
    cache = fs
      .readFileSync(file, 'utf8')
      .split('\n')
      .filter((line) => line.trim() !== '')
      .map((line) => {
        const entry = JSON.parse(line) as { topic: string; payload: string };
        const command = (JSON.parse(entry.payload) as { command: string }).command;
        return { topic: entry.topic, payload: entry.payload, command };
      });
  }
  return cache;
}

/** The first recorded message with this command on this topic. */
export function tracedMessage(command: string, topic: string): TracedMessage {
  const found = tracedMessages().find((m) => m.command === command && m.topic === topic);
  if (!found) throw new Error(`no recorded ${command} message on ${topic}`);
  return found;
}

/** The first recorded message with this command on a topic matching `topicPattern`. */
export function tracedMessageMatching(command: string, topicPattern: RegExp): TracedMessage {
  const found = tracedMessages().find((m) => m.command === command && topicPattern.test(m.topic));
  if (!found) throw new Error(`no recorded ${command} message on a topic matching ${topicPattern}`);
  return found;
}
