/**
 * `fedbiomed-ts node service`: a systemd unit that runs a node for months. systemd restarts it on failure, stops
 * it with SIGTERM (the agent then announces its shutdown and leaves an interrupted round queued) and keeps its
 * stderr in the journal; the node's own log files rotate by size (log-file.ts).
 */
import { ownCommand } from '../src/package-root';

/** The environment a node reads (see config.ts, src/engine), copied into the unit when set. */
export const NODE_ENVIRONMENT = [
  'MQTT_BROKER', 'MQTT_BROKER_PORT', 'UPLOADS_URL', 'NODE_ID', 'ENABLE_TRAINING_PLAN_APPROVAL',
  'FEDBIOMED_TS_BACKEND', 'FEDBIOMED_TS_THREADS', 'FEDBIOMED_TS_NATIVE',
] as const;

export interface SystemdUnitOptions {
  /** Absolute node folder. */
  dir: string;
  nodeId: string;
  user: string;
  env?: NodeJS.ProcessEnv;
  /** Node.js binary and the `fedbiomed-ts` script (default: the ones running now). */
  nodeBinary?: string;
  command?: string;
}

export interface SystemdUnit {
  fileName: string;
  text: string;
  enableCommands(file: string): string[];
}

/** A value as systemd reads it: `%` starts a specifier, a line break ends the setting. */
function raw(value: string): string {
  if (/[\n\r]/.test(value)) throw new Error(`a systemd unit value cannot hold a line break: ${JSON.stringify(value)}`);
  return value.replace(/%/g, '%%');
}

/** One word of ExecStart= or one assignment of Environment=: quoted when it holds more than plain characters. */
function quote(value: string): string {
  const escaped = raw(value);
  return /^[A-Za-z0-9_@%+=:,./-]+$/.test(escaped) ? escaped : `"${escaped.replace(/\\/g, '\\\\').replace(/"/g, '\\"')}"`;
}

export function systemdUnit(options: SystemdUnitOptions): SystemdUnit {
  const name = `fedbiomed-ts-node-${options.nodeId.replace(/[^A-Za-z0-9_.-]/g, '_')}`;
  const env = options.env ?? {};
  const environment = NODE_ENVIRONMENT.filter((k) => env[k] !== undefined && env[k] !== '')
    .map((k) => `Environment=${quote(`${k}=${env[k]}`)}`);
  const exec = [options.nodeBinary ?? process.execPath, options.command ?? ownCommand(), 'node', 'start', '--dir', options.dir];
  const text = [
    '[Unit]',
    `Description=fedbiomed-ts node ${options.nodeId} (Fed-BioMed v4.5 compatible)`,
    'Wants=network-online.target',
    'After=network-online.target',
    '',
    '[Service]',
    'Type=simple',
    `User=${raw(options.user)}`,
    // Path settings take the rest of the line as it is (quotes would be part of the path).
    `WorkingDirectory=${raw(options.dir)}`,
    ...environment,
    '# Secrets (broker password, …) go in this optional file, readable by the node user only: VAR=value lines.',
    `EnvironmentFile=-${raw(`${options.dir}/node.env`)}`,
    `ExecStart=${exec.map(quote).join(' ')}`,
    'Restart=on-failure',
    'RestartSec=10',
    // SIGTERM to the node only; a round in progress stops at its next batch and stays queued for the restart.
    'KillMode=mixed',
    'KillSignal=SIGTERM',
    'TimeoutStopSec=60',
    'StandardOutput=journal',
    'StandardError=journal',
    `SyslogIdentifier=${name}`,
    'NoNewPrivileges=true',
    'PrivateTmp=true',
    '',
    '[Install]',
    'WantedBy=multi-user.target',
    '',
  ].join('\n');
  return {
    fileName: `${name}.service`,
    text,
    enableCommands: (file) => [
      `cp ${quote(file)} /etc/systemd/system/${name}.service`,
      'systemctl daemon-reload',
      `systemctl enable --now ${name}`,
      `systemctl status ${name}        # logs: journalctl -u ${name} -f`,
    ],
  };
}
