import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { GENERATED_MESSAGES_PATH, MESSAGE_SCHEMA_DIR, generateMessagesModule } from './codegen';

const root = path.resolve(__dirname, '../..');

describe('messages.generated.ts', () => {
  it('is what the schemas give (run `npm run gen:messages` after changing a schema)', () => {
    const expected = generateMessagesModule(path.join(root, MESSAGE_SCHEMA_DIR));
    const actual = fs.readFileSync(path.join(root, GENERATED_MESSAGES_PATH), 'utf8');
    expect(actual).toBe(expected);
  });

  it('follows a schema change: a new message gives its interface, union member, command and schema entry', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'fbts-codegen-'));
    try {
      fs.cpSync(path.join(root, MESSAGE_SCHEMA_DIR), dir, { recursive: true });
      const ping = JSON.parse(fs.readFileSync(path.join(dir, 'researcher-to-node/ping.json'), 'utf8'));
      ping.title = 'EchoRequest';
      ping.properties.command.const = 'echo';
      ping.properties.note = { type: ['string', 'null'], description: 'Free text.' };
      ping.required.push('note');
      fs.writeFileSync(path.join(dir, 'researcher-to-node/echo.json'), JSON.stringify(ping));
      const text = generateMessagesModule(dir);
      expect(text).toContain("export interface EchoRequest {");
      expect(text).toContain('  /** Free text. */\n  note: string | null;');
      expect(text).toMatch(/export type ResearcherToNodeMessage =[^;]*\| EchoRequest\n/);
      expect(text).toMatch(/RESEARCHER_TO_NODE_COMMANDS[^;]*'echo',/);
      expect(text).toContain("    echo: r2nEcho,");
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it('refuses a schema it cannot name', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'fbts-codegen-'));
    try {
      fs.cpSync(path.join(root, MESSAGE_SCHEMA_DIR), dir, { recursive: true });
      const file = path.join(dir, 'researcher-to-node/ping.json');
      const ping = JSON.parse(fs.readFileSync(file, 'utf8'));
      delete ping.title;
      fs.writeFileSync(file, JSON.stringify(ping));
      expect(() => generateMessagesModule(dir)).toThrow('researcher-to-node/ping.json: a message schema needs a title');
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
