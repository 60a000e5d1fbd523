import type { Direction } from './messages';
import { MESSAGE_SCHEMA_FILES } from './messages.generated';

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
 * Every wire message schema, keyed by direction then command (the table is generated from the schema folder).
 * Imported (not read from disk) so that tsc copies them next to the compiled code and ts-node / jest resolve them
 * the same way.
 */
export const MESSAGE_SCHEMAS = MESSAGE_SCHEMA_FILES as Readonly<Record<Direction, Readonly<Record<string, MessageSchema>>>>;

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
