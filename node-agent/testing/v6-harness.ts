/**
 * The per-test set-up of the v6 node tests (v6-faults.test.ts, v6-replay.test.ts): a fresh directory for each test,
 * and the node and scripted researcher the test started stopped after it, whatever its outcome.
 */
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import type { NodeAgent } from '../agent';
import type { ScriptedResearcher } from '../../src/transport/v6/testing/scripted-researcher';

export interface V6Harness {
  /** This test's own directory, removed after it. */
  dir: string;
  /** Set by the test; stopped after it. */
  researcher?: ScriptedResearcher;
  agent?: NodeAgent;
}

/** Registers the jest hooks; call it at the top of a test file. */
export function v6Harness(tag: string): V6Harness {
  const harness: V6Harness = { dir: '' };
  beforeEach(() => {
    harness.dir = fs.mkdtempSync(path.join(os.tmpdir(), `fbts-${tag}-`));
  });
  afterEach(async () => {
    await harness.agent?.stop();
    harness.agent = undefined;
    await harness.researcher?.kill();
    harness.researcher = undefined;
    fs.rmSync(harness.dir, { recursive: true, force: true });
  });
  return harness;
}
