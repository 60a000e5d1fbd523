/**
 * Experiment files (`fedbiomed-ts researcher run EXPERIMENT.yaml`): YAML or JSON validated against
 * schemas/experiment.schema.json, relative paths resolved against the file's folder, turned into Experiment
 * options. Every error names the file and the place in it.
 */
import * as fs from 'fs';
import * as path from 'path';
import Ajv, { ErrorObject } from 'ajv';
import YAML from 'yaml';
import experimentSchema from '../schemas/experiment.schema.json';
import { loadPlanFile } from '../src/plan/load';
import type { ExperimentOptions } from './experiment';
import type { PlanInput } from './plan-source';
import { decodeNodeParams } from './weights-file';
import { FedbiomedTsError } from '../src/errors';

export class ExperimentFileError extends FedbiomedTsError {}

/** Options an experiment file gives under the same name and type as ExperimentOptions. */
type OptionsAsIs = 'tags' | 'nodes' | 'planClassName' | 'modelArgs' | 'trainingArgs' | 'aggregator' | 'strategy' |
  'lrSchedule' | 'roundLimit' | 'finalValidation' | 'seed';

/**
 * An experiment file: ExperimentOptions' own fields (their types come from there), the plan as a path or an inline
 * document, and the deadlines, network and outputs grouped. schemas/experiment.schema.json describes the same keys
 * (config.test.ts checks the two, and the training arguments against src/protocol's table).
 */
export interface ExperimentFile extends Pick<ExperimentOptions, OptionsAsIs> {
  name?: string;
  plan: string | { python: string; className: string; initialWeights: string } | Record<string, unknown>;
  timeouts?: {
    roundMs?: ExperimentOptions['roundTimeoutMs'];
    discoveryMs?: ExperimentOptions['discoveryTimeoutMs'];
    nodesMs?: ExperimentOptions['nodeTimeoutsMs'];
  };
  network?: { protocol?: 'v4.5' | 'v6'; broker?: string; uploads?: string; researcherId?: string; host?: string;
    port?: number; dir?: string; minNodes?: number; nodeWaitMs?: number };
  output?: { history?: string; tensorboard?: string; breakpoints?: string; weights?: string };
}

/** Every top-level key of an experiment file (a key missing here does not compile). */
export const EXPERIMENT_FILE_KEYS: Readonly<Record<keyof ExperimentFile, true>> = {
  name: true, tags: true, nodes: true, plan: true, planClassName: true, modelArgs: true, trainingArgs: true,
  aggregator: true, strategy: true, lrSchedule: true, roundLimit: true, finalValidation: true, seed: true,
  timeouts: true, network: true, output: true,
};

export interface LoadedExperiment {
  file: string;
  name: string;
  /** Everything but the network, which the caller completes from options and environment. */
  options: Omit<ExperimentOptions, 'network'>;
  network: ExperimentNetwork;
  /** Final weights file to write, if any (absolute). */
  weightsOut?: string;
}

/** The file's `network` section: v4.5 keys, or (protocol v6) where this researcher's gRPC server listens. */
export interface ExperimentNetwork {
  protocol?: 'v4.5' | 'v6';
  brokerUrl?: string;
  uploadsUrl?: string;
  researcherId?: string;
  host?: string;
  port?: number;
  dir?: string;
  minNodes?: number;
  nodeWaitMs?: number;
}

let validator: ReturnType<Ajv['compile']> | undefined;

function validate(doc: unknown): ErrorObject[] {
  validator ??= new Ajv({ allErrors: true, strict: false }).compile(experimentSchema);
  return validator(doc) ? [] : [...(validator.errors ?? [])];
}

function describeErrors(errors: ErrorObject[]): string {
  // oneOf failures repeat every branch's complaint; keep the most specific lines first and drop duplicates.
  const lines = new Set<string>();
  for (const e of errors) {
    const where = e.instancePath || '(top level)';
    if (e.keyword === 'additionalProperties') lines.add(`${where}: unknown key "${(e.params as { additionalProperty: string }).additionalProperty}"`);
    else if (e.keyword === 'required') lines.add(`${where}: missing "${(e.params as { missingProperty: string }).missingProperty}"`);
    else if (e.keyword === 'enum') lines.add(`${where}: must be one of ${JSON.stringify((e.params as { allowedValues: unknown[] }).allowedValues)}`);
    else lines.add(`${where}: ${e.message ?? e.keyword}`);
  }
  return [...lines].slice(0, 8).join('\n  ');
}

function parseExperimentText(text: string, file: string): unknown {
  try {
    return /\.json$/i.test(file) ? JSON.parse(text) : YAML.parse(text, { prettyErrors: true });
  } catch (err) {
    throw new ExperimentFileError(`${file}: not valid ${/\.json$/i.test(file) ? 'JSON' : 'YAML'}: ${(err as Error).message}`);
  }
}

export function loadExperimentFile(file: string): LoadedExperiment {
  const absolute = path.resolve(file);
  if (!fs.existsSync(absolute)) throw new ExperimentFileError(`${file}: no such file`);
  const doc = parseExperimentText(fs.readFileSync(absolute, 'utf8'), file);
  const errors = validate(doc);
  if (errors.length > 0) throw new ExperimentFileError(`${file}: invalid experiment:\n  ${describeErrors(errors)}`);
  const x = doc as ExperimentFile;
  const base = path.dirname(absolute);
  const resolve = (p: string) => path.resolve(base, p);
  const out = x.output ?? {};
  return {
    file: absolute,
    name: x.name ?? path.basename(file),
    options: {
      tags: x.tags,
      nodes: x.nodes,
      plan: loadPlan(x.plan, resolve, file),
      planClassName: x.planClassName,
      modelArgs: x.modelArgs,
      trainingArgs: x.trainingArgs,
      aggregator: x.aggregator,
      strategy: x.strategy,
      lrSchedule: x.lrSchedule,
      roundLimit: x.roundLimit,
      finalValidation: x.finalValidation,
      seed: x.seed,
      roundTimeoutMs: x.timeouts?.roundMs,
      discoveryTimeoutMs: x.timeouts?.discoveryMs,
      nodeTimeoutsMs: x.timeouts?.nodesMs,
      history: out.history ? resolve(out.history) : undefined,
      tensorboard: out.tensorboard ? resolve(out.tensorboard) : undefined,
      breakpointDir: out.breakpoints ? resolve(out.breakpoints) : undefined,
    },
    network: experimentNetwork(x.network ?? {}, resolve, file),
    weightsOut: out.weights ? resolve(out.weights) : undefined,
  };
}

function experimentNetwork(n: NonNullable<ExperimentFile['network']>, resolve: (p: string) => string, file: string): ExperimentNetwork {
  if (n.protocol === 'v6') {
    const v45 = (['broker', 'uploads', 'researcherId'] as const).filter((k) => n[k] !== undefined);
    // v6 has no broker nor repository, and the researcher id is the one in its certificate.
    if (v45.length > 0) throw new ExperimentFileError(`${file}: network.${v45.join(', network.')} do(es) not apply to a v6 network`);
    return { protocol: 'v6', host: n.host, port: n.port, dir: n.dir ? resolve(n.dir) : undefined, minNodes: n.minNodes,
      nodeWaitMs: n.nodeWaitMs };
  }
  const v6 = (['host', 'port', 'dir', 'minNodes', 'nodeWaitMs'] as const).filter((k) => n[k] !== undefined);
  if (v6.length > 0) throw new ExperimentFileError(`${file}: network.${v6.join(', network.')} only apply to protocol v6`);
  return { brokerUrl: n.broker, uploadsUrl: n.uploads, researcherId: n.researcherId };
}

function loadPlan(plan: ExperimentFile['plan'], resolve: (p: string) => string, file: string): PlanInput {
  try {
    if (typeof plan === 'string') return loadPlanFile(resolve(plan));
    if ('python' in plan && typeof plan.python === 'string') {
      const p = plan as { python: string; className: string; initialWeights: string };
      const weightsFile = resolve(p.initialWeights);
      if (!fs.existsSync(weightsFile)) throw new Error(`${p.initialWeights}: no such file`);
      const pyFile = resolve(p.python);
      if (!fs.existsSync(pyFile)) throw new Error(`${p.python}: no such file`);
      return {
        python: fs.readFileSync(pyFile, 'utf8'),
        className: p.className,
        initialWeights: decodeNodeParams(fs.readFileSync(weightsFile), weightsFile),
      };
    }
    return plan as unknown as PlanInput;
  } catch (err) {
    throw new ExperimentFileError(`${file}: plan: ${(err as Error).message}`);
  }
}
