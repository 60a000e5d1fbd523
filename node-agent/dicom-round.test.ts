/**
 * FEDERATED-PET from DICOM, end to end: an 18F-FDG PET/CT site (CT in HU, PET in SUVbw, series mapped to the plan's
 * modalities by the operator's rules) holding one corrupt CT slice, registered on a TS node as a `dicom` dataset,
 * then FedAvg rounds from the researcher over the embedded network (real MQTT broker and HTTP repository).
 * - Registering lists the unreadable file and why, and a patient whose PET cannot be SUV (no injected dose).
 * - By default the round skips that patient, trains on the others and says so in a warning log line the researcher
 *   receives (without the dataset's path).
 * - With `unreadable: 'fail'` the round answers success:false with the reason, and the node keeps serving.
 */
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { startEmbeddedNetwork, EmbeddedNetwork } from '../src/transport/embedded';
import { petCtPlan } from '../src/plan/testing/plans';
import { phantomVolume, writePetCtStudy } from '../src/data/dicom-corpus.test-helper';
import { defaultConfig, writeConfig } from './config';
import { openNodeStores } from './stores';
import { NodeAgent } from './agent';
import { Experiment } from '../researcher/experiment';
import { runNodeCli } from './testing/run-cli';

jest.setTimeout(120_000);

const plan = petCtPlan('FdgPetCtRelapse');

describe('a PET/CT DICOM site on a TS node', () => {
  let network: EmbeddedNetwork;
  let agent: NodeAgent;
  let dir: string;
  let site: string;
  let corrupt: string;
  const unreadable: string[] = [];

  beforeAll(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'fbts-dicom-round-'));
    site = path.join(dir, 'petct');
    const ids = ['PET-1', 'PET-2', 'PET-3', 'PET-4', 'PET-5'];
    ids.forEach((id, n) => {
      const { ct } = writePetCtStudy(path.join(site, id), id, phantomVolume([12, 12, 4], n + 1), phantomVolume([6, 6, 2], n + 7));
      if (id === 'PET-3') corrupt = ct[1];
    });
    // A sixth patient whose PET lacks the injected dose: no SUV, so no PET role (registration names it).
    writePetCtStudy(path.join(site, 'PET-6'), 'PET-6', phantomVolume([12, 12, 4], 6), phantomVolume([6, 6, 2], 12), ['(0054,0016)[0].(0018,1074)=']);
    const bytes = fs.readFileSync(corrupt);
    fs.writeFileSync(corrupt, bytes.subarray(0, bytes.length - 100)); // pixel data cut short
    fs.writeFileSync(path.join(site, 'clinical.csv'), `id,age,relapse\n${[...ids, 'PET-6'].map((id, n) => `${id},${50 + 3 * n},${n % 2}`).join('\n')}\n`);

    network = await startEmbeddedNetwork({ mqttPort: 0, httpPort: 0, dataDir: path.join(dir, 'repo') });
    const nodeDir = path.join(dir, 'node');
    writeConfig(nodeDir, defaultConfig({ nodeId: 'node_petct', broker: network.mqttUrl, uploadsUrl: network.uploadsUrl, approval: false }));
    const { datasets } = openNodeStores(nodeDir, {});
    const parameters = { tabular_file: path.join(site, 'clinical.csv'), index_col: 0, series_rules: [{ role: 'CT', modality: 'CT' }, { role: 'PET', modality: 'PT' }] };
    const entry = await datasets.add({ name: 'FDG PET/CT', dataType: 'dicom', tags: ['petct'], path: site, parameters }, unreadable);
    expect(entry.shape).toEqual({ CT: [12, 12, 4], PET: [6, 6, 2], demographics: [6, 2], num_modalities: 2 });
    await datasets.add({ name: 'FDG PET/CT, strict', dataType: 'dicom', tags: ['petct-strict'], path: site, parameters: { ...parameters, unreadable: 'fail' } });
    agent = await NodeAgent.start({ dir: nodeDir, env: {}, localLog: () => undefined });
  });

  afterAll(async () => {
    await agent?.stop();
    await network?.close();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  const experiment = (tags: string[]) => new Experiment({
    tags,
    plan,
    trainingArgs: { loader_args: { batch_size: 2 }, num_updates: 3, test_ratio: 0, random_seed: 3 },
    roundLimit: 1,
    discoveryTimeoutMs: 1500,
    roundTimeoutMs: 60_000,
    network: { brokerUrl: network.mqttUrl, uploadsUrl: network.uploadsUrl },
  });

  it('registering the dataset lists the unreadable file and why, in the registry and at `node dataset add`', async () => {
    const why = `${corrupt}: corrupt DICOM file (truncated: an element runs past the end of the file)`;
    const lacking = expect.stringMatching(new RegExp(`^${path.join(site, 'PET-6')}: patient lacks PET \\(.*not usable as SUV.*\\) \\(patient skipped\\)$`)) as unknown as string;
    expect(unreadable).toEqual([why, lacking]);
    const cliNode = path.join(dir, 'cli-node');
    writeConfig(cliNode, defaultConfig({ nodeId: 'node_cli_petct' }));
    const rules = path.join(dir, 'rules.json');
    fs.writeFileSync(rules, JSON.stringify([{ role: 'CT', modality: 'CT' }, { role: 'PET', modality: 'PT' }]));
    const out = await runNodeCli('node', 'dataset', 'add', '--dir', cliNode, '--type', 'dicom', '--path', site,
        '--tags', 'petct', '--name', 'FDG PET/CT', '--tabular-file', path.join(site, 'clinical.csv'), '--series-rules', rules);
    expect(out.split('\n').slice(1)).toEqual(['2 unreadable file(s) or incomplete patient(s), their patients are skipped in rounds:', `  ${why}`,
      expect.stringMatching(/^ {2}.*PET-6: patient lacks PET/), '']);
  });

  it('a round skips the patient with the unreadable file, trains on the four others and logs why, without the path', async () => {
    const exp = experiment(['petct']);
    const logs: { level: string; message: string }[] = [];
    exp.on('log', (ev: { level: string; message: string }) => logs.push(ev));
    await exp.run();
    const reply = [...exp.replies.get(0)!.values()][0];
    expect(reply.success).toBe(true);
    expect(reply.sample_size).toBe(4);
    const skipped = logs.filter((l) => l.level === 'WARNING' && /corrupt DICOM file/.test(l.message));
    expect(skipped.map((l) => l.message)).toEqual([
      `data: <dataset>/PET-3/ct/${path.basename(corrupt)}: corrupt DICOM file (truncated: an element runs past the end of the file) (patient skipped)`]);
    expect(logs.some((l) => l.message.includes(dir))).toBe(false);
  });

  it("with unreadable: 'fail' the round answers success:false with the reason; the node goes on serving", async () => {
    const strict = experiment(['petct-strict']);
    await strict.run().catch(() => undefined); // the experiment itself may give up on a round with no success
    const reply = [...strict.replies.get(0)!.values()][0];
    expect(reply.success).toBe(false);
    expect(reply.msg).toMatch(/1 unreadable DICOM file\(s\): <dataset>\/PET-3\/ct\/IM0002\.dcm: corrupt DICOM file \(truncated/);
    expect(reply.msg).not.toContain(dir);
    const again = experiment(['petct']);
    await again.run();
    expect([...again.replies.get(0)!.values()][0].success).toBe(true);
  });
});
