/** A v6 node's configuration: written and read back, Fed-BioMed v6's variables, bad addresses refused. */
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { ConfigError, defaultConfig, loadConfig, parseResearcherAddress, writeConfig } from './config';

let dir: string;
beforeEach(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'fbts-v6-config-'));
});
afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

test('protocol, researcher and node name round-trip; FBM_RESEARCHER_IP/PORT override as on a v6 node', () => {
  writeConfig(dir, defaultConfig({ nodeId: 'NODE_x', protocol: 'v6', researcher: 'localhost:50051', nodeName: 'Caen' }));
  expect(loadConfig(dir, {})).toMatchObject({ protocol: 'v6', researcher: 'localhost:50051', nodeName: 'Caen' });
  expect(loadConfig(dir, { FBM_RESEARCHER_IP: '10.222.0.2' }).researcher).toBe('10.222.0.2:50051');
  expect(loadConfig(dir, { FBM_RESEARCHER_PORT: '50057' }).researcher).toBe('localhost:50057');
  expect(() => loadConfig(dir, { FBM_RESEARCHER_PORT: 'x' })).toThrow(ConfigError);
});

test('a v4.5 node ignores the v6 variables and keeps no protocol key', () => {
  writeConfig(dir, defaultConfig({ nodeId: 'node_y' }));
  const config = loadConfig(dir, { FBM_RESEARCHER_IP: 'elsewhere' });
  expect(config.protocol).toBeUndefined();
  expect(config.researcher).toBeUndefined();
});

test.each(['localhost', 'localhost:0', 'localhost:99999', ':50051', 'a b:1'])('%s is not a researcher address', (bad) => {
  expect(() => parseResearcherAddress(bad)).toThrow(/not HOST:PORT/);
});
