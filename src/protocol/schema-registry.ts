import type { Direction } from './messages';

import r2nPing from '../../schemas/messages/researcher-to-node/ping.json';
import r2nSearch from '../../schemas/messages/researcher-to-node/search.json';
import r2nList from '../../schemas/messages/researcher-to-node/list.json';
import r2nTrain from '../../schemas/messages/researcher-to-node/train.json';
import r2nApproval from '../../schemas/messages/researcher-to-node/approval.json';
import r2nTrainingPlanStatus from '../../schemas/messages/researcher-to-node/training-plan-status.json';
import r2nSecagg from '../../schemas/messages/researcher-to-node/secagg.json';
import r2nSecaggDelete from '../../schemas/messages/researcher-to-node/secagg-delete.json';
import n2rPong from '../../schemas/messages/node-to-researcher/pong.json';
import n2rSearch from '../../schemas/messages/node-to-researcher/search.json';
import n2rList from '../../schemas/messages/node-to-researcher/list.json';
import n2rTrain from '../../schemas/messages/node-to-researcher/train.json';
import n2rApproval from '../../schemas/messages/node-to-researcher/approval.json';
import n2rTrainingPlanStatus from '../../schemas/messages/node-to-researcher/training-plan-status.json';
import n2rSecagg from '../../schemas/messages/node-to-researcher/secagg.json';
import n2rSecaggDelete from '../../schemas/messages/node-to-researcher/secagg-delete.json';
import n2rAddScalar from '../../schemas/messages/node-to-researcher/add_scalar.json';
import n2rLog from '../../schemas/messages/node-to-researcher/log.json';
import n2rError from '../../schemas/messages/node-to-researcher/error.json';

/** The subset of JSON Schema our message schemas use (see schemas/messages/README.md). */
export interface MessageSchema {
  title?: string;
  type?: string | string[];
  'x-python-type'?: PythonTypeName | PythonTypeName[];
  properties?: Record<string, MessageSchema>;
  additionalProperties?: boolean | MessageSchema;
  items?: MessageSchema;
  required?: string[];
  [keyword: string]: unknown;
}

export type PythonTypeName = 'int' | 'float' | 'null';

/**
 * Every wire message schema, keyed by direction then command. Imported (not read from disk) so that tsc
 * copies them next to the compiled code and ts-node / jest resolve them the same way.
 */
export const MESSAGE_SCHEMAS: Readonly<Record<Direction, Readonly<Record<string, MessageSchema>>>> = {
  'researcher-to-node': {
    ping: r2nPing,
    search: r2nSearch,
    list: r2nList,
    train: r2nTrain,
    approval: r2nApproval,
    'training-plan-status': r2nTrainingPlanStatus,
    secagg: r2nSecagg,
    'secagg-delete': r2nSecaggDelete,
  } as Record<string, MessageSchema>,
  'node-to-researcher': {
    pong: n2rPong,
    search: n2rSearch,
    list: n2rList,
    train: n2rTrain,
    approval: n2rApproval,
    'training-plan-status': n2rTrainingPlanStatus,
    secagg: n2rSecagg,
    'secagg-delete': n2rSecaggDelete,
    add_scalar: n2rAddScalar,
    log: n2rLog,
    error: n2rError,
  } as Record<string, MessageSchema>,
};

export function schemaFor(direction: Direction, command: string): MessageSchema | undefined {
  const table = MESSAGE_SCHEMAS[direction];
  return Object.prototype.hasOwnProperty.call(table, command) ? table[command] : undefined;
}

/** Whether the schema declares a Python float (and not "int or float"): where a whole number must be `x.0`. */
export function isFloatSchema(schema: MessageSchema): boolean {
  const declared = schema['x-python-type'];
  const names = Array.isArray(declared) ? declared : declared === undefined ? [] : [declared];
  return names.includes('float') && !names.includes('int');
}
