/**
 * Writes `messages.generated.ts` from the wire-message schemas (`schemas/messages/<direction>/<command>.json`), so
 * that a message is defined once: its schema. The generated module holds the message interfaces, the two unions,
 * the command lists and the table of schema files; `npm run gen:messages` rewrites it and `codegen.test.ts` fails
 * when the checked-in file differs from what the schemas give (it cannot drift).
 *
 * The mapping is deliberately small (the subset of JSON Schema our files use, schemas/messages/README.md):
 *  - `x-python-type` decides a number's type when present (`int`/`float` → number, `null` → null), else `type`;
 *  - `const` and `enum` give literal types;
 *  - an object with `properties` and a `title` becomes a named interface (extending PyJsonObject unless
 *    `additionalProperties: false`), an object without `properties` is a free-form PyJsonObject;
 *  - `protocol_version` is optional in the types: serializeMessage always writes it.
 */
import * as fs from 'fs';
import * as path from 'path';

interface SchemaNode {
  title?: string;
  description?: string;
  type?: string | string[];
  'x-python-type'?: string | string[];
  const?: unknown;
  enum?: unknown[];
  properties?: Record<string, SchemaNode>;
  required?: string[];
  additionalProperties?: boolean | SchemaNode;
  items?: SchemaNode;
}

interface MessageFile {
  direction: string;
  command: string;
  /** The JSON file's path relative to the schema folder, with '/' separators. */
  file: string;
  schema: SchemaNode;
}

/** Folder names are the directions, in this order (the unions and lists follow it). */
const DIRECTIONS = ['researcher-to-node', 'node-to-researcher'] as const;

const DIRECTION_NAMES: Record<(typeof DIRECTIONS)[number], { union: string; list: string; prefix: string }> = {
  'researcher-to-node': { union: 'ResearcherToNodeMessage', list: 'RESEARCHER_TO_NODE_COMMANDS', prefix: 'r2n' },
  'node-to-researcher': { union: 'NodeToResearcherMessage', list: 'NODE_TO_RESEARCHER_COMMANDS', prefix: 'n2r' },
};

/** Fields always optional in the types although every message carries them on the wire. */
const FILLED_BY_SERIALIZER = new Set(['protocol_version']);

function readMessageFiles(schemaDir: string): MessageFile[] {
  const found: MessageFile[] = [];
  for (const direction of DIRECTIONS) {
    const names = fs.readdirSync(path.join(schemaDir, direction)).filter((n) => n.endsWith('.json')).sort();
    for (const name of names) {
      const schema = JSON.parse(fs.readFileSync(path.join(schemaDir, direction, name), 'utf8')) as SchemaNode;
      const command = schema.properties?.command?.const;
      if (typeof command !== 'string') throw new Error(`${direction}/${name}: properties.command.const must be a string`);
      if (!schema.title) throw new Error(`${direction}/${name}: a message schema needs a title (its type name)`);
      found.push({ direction, command, file: `${direction}/${name}`, schema });
    }
  }
  return found;
}

function comment(text: string | undefined, indent: string): string {
  if (!text) return '';
  return `${indent}/** ${text.replace(/\*\//g, '*\\/')} */\n`;
}

function literal(value: unknown): string {
  return typeof value === 'string' ? `'${value.replace(/\\/g, '\\\\').replace(/'/g, "\\'")}'` : JSON.stringify(value);
}

function unique(parts: string[]): string {
  return [...new Set(parts)].join(' | ');
}

class TypeWriter {
  /** Named interfaces met on the way, by name → text (the same name must give the same text). */
  readonly named = new Map<string, string>();

  typeOf(node: SchemaNode): string {
    if (node.const !== undefined) return literal(node.const);
    if (node.enum) return unique(node.enum.map(literal));
    const python = node['x-python-type'];
    if (python !== undefined) {
      return unique((Array.isArray(python) ? python : [python]).map((t) => (t === 'null' ? 'null' : 'number')));
    }
    const types = node.type === undefined ? [] : Array.isArray(node.type) ? node.type : [node.type];
    if (types.length === 0) throw new Error(`no type for ${JSON.stringify(node).slice(0, 80)}`);
    return unique(types.map((t) => this.typeOfJsonType(t, node)));
  }

  private typeOfJsonType(type: string, node: SchemaNode): string {
    switch (type) {
      case 'string':
        return 'string';
      case 'boolean':
        return 'boolean';
      case 'integer':
      case 'number':
        return 'number';
      case 'null':
        return 'null';
      case 'array': {
        if (!node.items) return 'PyJsonValue[]';
        const item = this.typeOf(node.items);
        return /^[\w.]+$/.test(item) ? `${item}[]` : `Array<${item}>`;
      }
      case 'object':
        return node.properties ? this.objectType(node) : 'PyJsonObject';
      default:
        throw new Error(`unsupported JSON type ${type}`);
    }
  }

  private objectType(node: SchemaNode): string {
    if (!node.title) throw new Error('an object schema with properties needs a title (its type name)');
    this.declare(node.title, node);
    return node.title;
  }

  /** Declares `name` as an interface of the object schema `node` (messages and nested objects alike). */
  declare(name: string, node: SchemaNode): void {
    const required = new Set(node.required ?? []);
    const closed = node.additionalProperties === false;
    let body = '';
    for (const [key, child] of Object.entries(node.properties ?? {})) {
      const optional = !required.has(key) || FILLED_BY_SERIALIZER.has(key);
      body += comment(child.description, '  ') + `  ${key}${optional ? '?' : ''}: ${this.typeOf(child)};\n`;
    }
    const text = comment(node.description, '') +
      `export interface ${name}${closed ? '' : ' extends PyJsonObject'} {\n${body}}\n`;
    const previous = this.named.get(name);
    if (previous !== undefined && previous !== text) {
      throw new Error(`two different schemas are titled ${name}`);
    }
    if (previous === undefined) this.named.set(name, text);
  }
}

/** The text of messages.generated.ts for the schemas under `schemaDir`, imported from `importBase`. */
export function generateMessagesModule(schemaDir: string, importBase = '../../schemas/messages'): string {
  const files = readMessageFiles(schemaDir);
  const writer = new TypeWriter();
  for (const f of files) writer.declare(f.schema.title as string, f.schema);
  const body = [...writer.named.values()].join('\n');
  const usesPyJsonValue = body.includes('PyJsonValue');

  const importName = (f: MessageFile) =>
    DIRECTION_NAMES[f.direction as (typeof DIRECTIONS)[number]].prefix +
    f.command.replace(/(^|[-_])(\w)/g, (_m, _sep: string, c: string) => c.toUpperCase());

  const out: string[] = [];
  out.push(
    '// Generated by `npm run gen:messages` (src/protocol/codegen.ts) from schemas/messages/**: do not edit.',
    '// To change a message, change its schema and run `npm run gen:messages`; codegen.test.ts checks this file.',
    `import type { ${usesPyJsonValue ? 'PyJsonObject, PyJsonValue' : 'PyJsonObject'} } from './python-json-value';`,
  );
  for (const f of files) out.push(`import ${importName(f)} from '${importBase}/${f.file}';`);
  out.push('', `export type Direction = ${DIRECTIONS.map(literal).join(' | ')};`,
    `export const DIRECTIONS: readonly Direction[] = [${DIRECTIONS.map(literal).join(', ')}];`, '', body);
  for (const direction of DIRECTIONS) {
    const names = DIRECTION_NAMES[direction];
    const own = files.filter((f) => f.direction === direction);
    out.push(`export type ${names.union} =\n${own.map((f) => `  | ${f.schema.title as string}`).join('\n')};\n`);
    out.push(`export const ${names.list}: readonly ${names.union}['command'][] = [\n` +
      `${own.map((f) => `  ${literal(f.command)},`).join('\n')}\n];\n`);
  }
  out.push('/** The schema files as imported JSON, by direction then command (schema-registry.ts types them). */');
  out.push('export const MESSAGE_SCHEMA_FILES = {');
  for (const direction of DIRECTIONS) {
    out.push(`  ${literal(direction)}: {`);
    for (const f of files.filter((g) => g.direction === direction)) {
      const key = /^[a-z_]\w*$/.test(f.command) ? f.command : literal(f.command);
      out.push(`    ${key}: ${importName(f)},`);
    }
    out.push('  },');
  }
  out.push('};', '');
  return out.join('\n');
}

/** Where the checked-in module lives, relative to the repository root. */
export const GENERATED_MESSAGES_PATH = 'src/protocol/messages.generated.ts';
export const MESSAGE_SCHEMA_DIR = 'schemas/messages';
