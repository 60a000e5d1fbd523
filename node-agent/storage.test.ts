import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { JsonDb, JsonDbError } from './json-db';
import { DatasetRegistry, DatasetError, listView, searchView, tagsConflict, DatasetInspector } from './datasets';
import { TrainingPlanStore } from './training-plans';
import { applyEnvironment, defaultConfig, loadConfig, writeConfig, ConfigError } from './config';

function tmpDir(): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), 'fbts-node-'));
}

const csvInspector: DatasetInspector = async (type, p) => {
  if (!fs.existsSync(p)) throw new Error('no such file');
  return { shape: [3, 2], dtypes: ['float64', 'int64'] };
};

describe('JsonDb', () => {
  it('writes TinyDB-shaped files and keeps the previous file when a change throws', () => {
    const dir = tmpDir();
    const db = new JsonDb(path.join(dir, 'db.json'));
    db.insert('Datasets', { a: 1 });
    db.insert('Datasets', { a: 2 });
    const before = fs.readFileSync(db.file, 'utf8');
    expect(JSON.parse(before)).toEqual({ Datasets: { '1': { a: 1 }, '2': { a: 2 } } });
    expect(() => db.update(() => { throw new Error('boom'); })).toThrow('boom');
    expect(fs.readFileSync(db.file, 'utf8')).toBe(before);
    expect(fs.existsSync(`${db.file}.lock`)).toBe(false);
  });

  it('refuses a corrupt file with a clear error and does not overwrite it', () => {
    const dir = tmpDir();
    const file = path.join(dir, 'db.json');
    fs.writeFileSync(file, '{"Datasets": {');
    const db = new JsonDb(file);
    expect(() => db.insert('Datasets', { a: 1 })).toThrow(JsonDbError);
    expect(() => db.all('Datasets')).toThrow(/not valid JSON/);
    expect(fs.readFileSync(file, 'utf8')).toBe('{"Datasets": {');
  });

  it('breaks a stale lock left by a dead process', () => {
    const dir = tmpDir();
    const db = new JsonDb(path.join(dir, 'db.json'));
    fs.writeFileSync(`${db.file}.lock`, '999999999');
    db.insert('T', { x: 1 });
    expect(db.all('T')).toEqual([{ x: 1 }]);
  });
});

describe('DatasetRegistry', () => {
  it('applies Fed-BioMed tag rules and hides path in the views', async () => {
    const dir = tmpDir();
    const csv = path.join(dir, 'data.csv');
    fs.writeFileSync(csv, 'a,b\n1,2\n');
    const reg = new DatasetRegistry(new JsonDb(path.join(dir, 'db.json')), csvInspector);
    const entry = await reg.add({ name: 'd1', dataType: 'csv', tags: ['csv', 'site-a'], path: csv });
    expect(entry.dataset_id).toMatch(/^dataset_[0-9a-f-]{36}$/);
    expect(Object.keys(entry)).toEqual(['name', 'data_type', 'tags', 'description', 'shape', 'path', 'dataset_id',
      'dtypes', 'dataset_parameters']);
    await expect(reg.add({ name: 'd2', dataType: 'csv', tags: ['csv'], path: csv })).rejects.toThrow(/conflicting tags/);
    await expect(reg.add({ name: 'd3', dataType: 'csv', tags: ['csv', 'site-a', 'x'], path: csv }))
      .rejects.toThrow(DatasetError);
    await reg.add({ name: 'd4', dataType: 'csv', tags: ['csv', 'site-b'], path: csv });
    expect(reg.search(['csv']).map((d) => d.name)).toEqual(['d1', 'd4']);
    expect(reg.search(['site-b']).map((d) => d.name)).toEqual(['d4']);
    expect(reg.search(['nope'])).toEqual([]);
    expect('path' in searchView(entry)).toBe(false);
    expect('dtypes' in listView(entry)).toBe(false);
    expect(tagsConflict(['a'], ['b'])).toBe(false);
  });

  it('stores nothing when the dataset cannot be read or the type is unknown', async () => {
    const dir = tmpDir();
    const reg = new DatasetRegistry(new JsonDb(path.join(dir, 'db.json')), csvInspector);
    await expect(reg.add({ name: 'x', dataType: 'csv', tags: ['t'], path: path.join(dir, 'missing.csv') }))
      .rejects.toThrow(/cannot read csv dataset at .*missing.csv/);
    await expect(reg.add({ name: 'x', dataType: 'parquet', tags: ['t'], path: dir })).rejects.toThrow(/unknown dataset type/);
    expect(reg.list()).toEqual([]);
  });

  it('strips the tabular file of medical-folder datasets before sending', async () => {
    const dir = tmpDir();
    const reg = new DatasetRegistry(new JsonDb(path.join(dir, 'db.json')), async () => ({ shape: { T1: [1] }, dtypes: [] }));
    const e = await reg.add({ name: 'mf', dataType: 'medical-folder', tags: ['mf'], path: dir,
      parameters: { tabular_file: '/secret/demographics.csv', index_col: 0 } });
    expect(searchView(e).dataset_parameters).toEqual({ index_col: 0 });
    expect(reg.get(e.dataset_id)?.dataset_parameters).toEqual({ tabular_file: '/secret/demographics.csv', index_col: 0 });
  });
});

describe('TrainingPlanStore', () => {
  it('registers a requested plan once as Pending and changes its status', () => {
    const dir = tmpDir();
    const store = new TrainingPlanStore(new JsonDb(path.join(dir, 'db.json')), path.join(dir, 'plans'));
    const a = store.registerRequested({ hash: 'ab'.repeat(32), source: 'x = 1\n', description: 'd', researcherId: 'r' });
    expect(a.created).toBe(true);
    expect(a.entry.training_plan_status).toBe('Pending');
    expect(fs.readFileSync(a.entry.training_plan_path, 'utf8')).toBe('x = 1\n');
    const b = store.registerRequested({ hash: 'ab'.repeat(32), source: 'x = 1\n', description: 'd', researcherId: 'r' });
    expect(b.created).toBe(false);
    expect(store.list()).toHaveLength(1);
    store.setStatus(a.entry.training_plan_id.slice(0, 20), 'Approved');
    expect(store.byHash('ab'.repeat(32))?.training_plan_status).toBe('Approved');
    expect(() => store.lookup('zzzz')).toThrow(/no training plan matches/);
    expect(() => store.lookup('')).toThrow(/at least 4 characters/);
  });
});

describe('node config', () => {
  it('round-trips through YAML and applies Fed-BioMed environment variables', () => {
    const dir = tmpDir();
    writeConfig(dir, defaultConfig({ nodeId: 'node_a' }));
    const plain = loadConfig(dir, {});
    expect(plain).toMatchObject({ nodeId: 'node_a', approval: true, broker: 'mqtt://localhost:1883' });
    const env = loadConfig(dir, { MQTT_BROKER: '10.0.0.2', MQTT_BROKER_PORT: '1999', NODE_ID: 'node_b',
      UPLOADS_URL: 'http://10.0.0.3:8000/upload/', ENABLE_TRAINING_PLAN_APPROVAL: 'False' });
    expect(env).toMatchObject({ nodeId: 'node_b', broker: 'mqtt://10.0.0.2:1999',
      uploadsUrl: 'http://10.0.0.3:8000/upload/', approval: false });
    expect(() => writeConfig(dir, defaultConfig())).toThrow(/exists already/);
    expect(() => applyEnvironment(plain, { NODE_ID: 'a/b' })).toThrow(ConfigError);
    expect(() => applyEnvironment(plain, { MQTT_BROKER_PORT: 'abc' })).toThrow(/not a port/);
  });

  it('names the missing or wrong key', () => {
    const dir = tmpDir();
    fs.writeFileSync(path.join(dir, 'config.yaml'), 'version: 1\nnode_id: n\nbroker: mqtt://x:1\napproval: yes please\nuploads_url: http://x/upload/\n');
    expect(() => loadConfig(dir, {})).toThrow(/"approval" must be true or false/);
    expect(() => loadConfig(tmpDir(), {})).toThrow(/node init/);
  });
});
