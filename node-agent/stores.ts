/** Opens a node directory's stores: dataset registry and training-plan approvals. */
import { JsonDb } from './json-db';
import { DatasetRegistry } from './datasets';
import { TrainingPlanStore } from './training-plans';
import { loadConfig, nodePaths, NodeConfig, NodePaths } from './config';
import { inspectDataset } from './dataset-inspector';

export interface NodeStores {
  config: NodeConfig;
  paths: NodePaths;
  db: JsonDb;
  datasets: DatasetRegistry;
  plans: TrainingPlanStore;
}

export function openNodeStores(dir: string, env: NodeJS.ProcessEnv = process.env): NodeStores {
  const config = loadConfig(dir, env);
  const paths = nodePaths(dir);
  const db = new JsonDb(paths.db);
  return { config, paths, db, datasets: new DatasetRegistry(db, inspectDataset), plans: new TrainingPlanStore(db, paths.plans) };
}
