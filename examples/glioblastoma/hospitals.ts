/**
 * The three hospitals of the demo: one TS node agent per cancer centre, each with its own node directory, its own
 * DICOM dataset registered under the same tags, and training-plan approval on (the default a hospital gets).
 * They run in this process for convenience; they share nothing but the network (MQTT broker + file repository).
 */
import * as fs from 'fs';
import * as path from 'path';
import { NodeAgent, defaultConfig, writeConfig, openNodeStores } from 'fedbiomed-ts';
import type { EmbeddedV6Network } from 'fedbiomed-ts';
import type { TrainingPlanEntry } from 'fedbiomed-ts';
import type { CohortSummary, SplitSummary } from './cohort';
import { splitDataSource } from './datasets';

export const DATASET_TAGS = ['glioblastoma', 'mri', 'radiotherapy-response'];

export interface Hospital {
  site: string;
  nodeId: string;
  datasetId: string;
  agent: NodeAgent;
  /** Where the node's local log goes (never on the network). */
  logFile: string;
}

export interface NetworkUrls {
  mqttUrl: string;
  uploadsUrl: string;
}

/** Where the demo's nodes and researcher meet: the embedded v4.5 network, or a v6 researcher server nodes dial. */
export type DemoNetwork = NetworkUrls | EmbeddedV6Network;

export function nodeIdFor(site: string): string {
  return `node_${site.toLowerCase()}`;
}

/** What each centre registers: its dataset entry for a split of the cohort. */
export interface HospitalDataset {
  tags: string[];
  entry(cohortDir: string, split: SplitSummary): { name: string; description: string; dataType: string; path: string; parameters: Record<string, unknown> };
}

/** The responder task's dataset: the centre's DICOM folder and clinical CSV. */
export const RESPONSE_DATASET: HospitalDataset = {
  tags: DATASET_TAGS,
  entry: (cohortDir, split) => ({
    name: `${split.name} glioblastoma MRI (DICOM)`,
    description: `pre-treatment T1/T1ce/T2/FLAIR + RT dose, ${split.patients} patients`,
    ...splitDataSource(cohortDir, split),
  }),
};

/** Creates each site's node directory, registers its dataset (DICOM by default) and starts its agent. */
export async function startHospitals(
  network: DemoNetwork, cohortDir: string, cohort: CohortSummary, nodesDir: string, dataset: HospitalDataset = RESPONSE_DATASET,
): Promise<Hospital[]> {
  const hospitals: Hospital[] = [];
  try {
    for (const split of cohort.sites) {
      const dir = path.join(nodesDir, split.name);
      const nodeId = nodeIdFor(split.name);
      writeConfig(dir, defaultConfig({ nodeId, approval: true, ...('server' in network
        ? { protocol: 'v6', researcher: network.researcherAddress }
        : { broker: network.mqttUrl, uploadsUrl: network.uploadsUrl }) }));
      // An empty env: the demo's nodes must not pick up MQTT_BROKER & co. from the user's shell.
      const stores = openNodeStores(dir, {});
      const entry = await stores.datasets.add({ ...dataset.entry(cohortDir, split), tags: dataset.tags });
      const logFile = path.join(dir, 'node.log');
      const agent = await NodeAgent.start({
        dir, env: {}, localLog: (line) => fs.appendFileSync(logFile, `${line}\n`),
      });
      hospitals.push({ site: split.name, nodeId, datasetId: entry.dataset_id, agent, logFile });
    }
  } catch (err) {
    await stopHospitals(hospitals);
    throw err;
  }
  return hospitals;
}

export async function stopHospitals(hospitals: Hospital[]): Promise<void> {
  for (const h of hospitals) await h.agent.stop().catch(() => undefined);
}

/**
 * What a hospital operator does after reviewing a plan (`fedbiomed-ts node plan approve <id>`): approve the
 * pending request whose hash is the plan they reviewed. Throws when no such request arrived.
 */
export function approvePlan(hospital: Hospital, planHash: string, note: string): TrainingPlanEntry {
  const plans = hospital.agent.stores.plans;
  const entry = plans.byHash(planHash);
  if (!entry) {
    throw new Error(`${hospital.site}: no approval request for plan ${planHash.slice(0, 12)}… reached node ${hospital.nodeId}`);
  }
  return plans.setStatus(entry.training_plan_id, 'Approved', note);
}
