/**
 * Identity on the embedded network (`network start --auth FILE`). Fed-BioMed v4.5 lets anyone on the broker send
 * a message under any node or researcher id; with an auth file the embedded broker
 *  - accepts only the clients listed, each with its password (stored as a scrypt hash, never in clear);
 *  - binds each client to one role and id: a node publishes only on the node → researcher topics and only
 *    messages whose `node_id` is its own; a researcher publishes only requests (general/nodes, general/<node>)
 *    whose `researcher_id` is its own; an observer (e.g. `network spy`) publishes nothing;
 *  - lets each subscribe only to what its role reads (a node cannot read other nodes' replies).
 * A refused publish is dropped and its client disconnected (MQTT 3.1.1 has no negative publish acknowledgement).
 * The rules run in the broker's worker thread (broker.ts) on the plain data `BrokerAuth`.
 *
 * File (YAML):
 *   clients:
 *     - { username: hospital_a, password: "scrypt:…", role: node, id: node_a }
 *     - { username: alice, password: "scrypt:…", role: researcher, id: researcher_alice }
 *     - { username: ops, password: "scrypt:…", role: observer }
 * Hashes come from `fedbiomed-ts network hash-password`.
 */
import { randomBytes, scryptSync, timingSafeEqual } from 'crypto';
import * as fs from 'fs';
import YAML from 'yaml';
import { nodeIdProblem } from './topics';
import { FedbiomedTsError } from '../errors';

type ClientRole = 'node' | 'researcher' | 'observer';

interface AuthClient {
  username: string;
  /** `scrypt:<salt base64>:<key base64>` */
  password: string;
  role: ClientRole;
  /** The node_id / researcher_id this client must use (not for observers). */
  id?: string;
}

export interface BrokerAuth {
  clients: AuthClient[];
}

export class BrokerAuthError extends FedbiomedTsError {}

const KEY_BYTES = 32;

export function hashPassword(password: string): string {
  const salt = randomBytes(16);
  return `scrypt:${salt.toString('base64')}:${scryptSync(password, salt, KEY_BYTES).toString('base64')}`;
}

/** Constant-time check of `password` against a `scrypt:` hash (the worker uses the same code, see broker.ts). */
export function verifyPassword(password: string, hash: string): boolean {
  const [scheme, salt, key] = hash.split(':');
  if (scheme !== 'scrypt' || !salt || !key) return false;
  const expected = Buffer.from(key, 'base64');
  const got = scryptSync(password, Buffer.from(salt, 'base64'), expected.length);
  return got.length === expected.length && timingSafeEqual(got, expected);
}

export function loadBrokerAuth(file: string): BrokerAuth {
  let raw: unknown;
  try {
    raw = YAML.parse(fs.readFileSync(file, 'utf8'));
  } catch (err) {
    throw new BrokerAuthError(`cannot read the auth file ${file}: ${(err as Error).message}`);
  }
  return parseBrokerAuth(raw, file);
}

export function parseBrokerAuth(raw: unknown, where = 'auth'): BrokerAuth {
  const list = (raw as { clients?: unknown } | null)?.clients;
  if (!Array.isArray(list) || list.length === 0) throw new BrokerAuthError(`${where}: "clients" must be a non-empty list`);
  const seen = new Set<string>();
  const clients = list.map((entry: unknown, i): AuthClient => {
    const e = (entry ?? {}) as Record<string, unknown>;
    const at = `${where}: clients[${i}]`;
    const { username, password, role, id } = e;
    if (typeof username !== 'string' || username === '') throw new BrokerAuthError(`${at}: "username" is missing`);
    if (seen.has(username)) throw new BrokerAuthError(`${at}: username ${JSON.stringify(username)} is listed twice`);
    seen.add(username);
    if (typeof password !== 'string' || !/^scrypt:[A-Za-z0-9+/=]+:[A-Za-z0-9+/=]+$/.test(password)) {
      throw new BrokerAuthError(`${at}: "password" must be a hash from "fedbiomed-ts network hash-password" ` +
        '(scrypt:…), never the password itself');
    }
    if (role !== 'node' && role !== 'researcher' && role !== 'observer') {
      throw new BrokerAuthError(`${at}: "role" must be node, researcher or observer`);
    }
    if (role === 'observer') return { username, password, role };
    if (typeof id !== 'string' || id === '') throw new BrokerAuthError(`${at}: a ${role} needs its "id" (its ${role}_id)`);
    const problem = nodeIdProblem(id);
    if (problem) throw new BrokerAuthError(`${at}: ${problem}`);
    return { username, password, role, id };
  });
  return { clients };
}
