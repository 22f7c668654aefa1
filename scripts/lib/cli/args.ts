// Command-line flags shared by the build scripts. Named shortcuts are sugar for --set.
import { parseArgs } from 'node:util';
import { ConfigError, parseSetFlag, type CliConfigInput } from '../config.ts';

export interface ParsedCli {
  configInput: CliConfigInput;
  flags: Record<string, string | boolean | undefined>;
  help: boolean;
}

/** Flag -> dotted config path; the value is validated by the config schema like any other. */
export const SHORTCUTS: Record<string, string> = {
  target: 'target',
  accel: 'local.accelerator',
  'output-dir': 'output_dir',
  region: 'aws.region',
};

/** What an entry script accepts: its usage text and its own flags beside the config flags. */
export interface CliSpec {
  usage: string;
  extraBooleans?: string[];
  extraStrings?: string[];
}

export function parseCli(argv: string[], opts: Omit<CliSpec, 'usage'> = {}): ParsedCli {
  const options: Record<string, { type: 'string' | 'boolean'; multiple?: boolean }> = {
    config: { type: 'string' },
    set: { type: 'string', multiple: true },
    help: { type: 'boolean' },
  };
  for (const k of Object.keys(SHORTCUTS)) options[k] = { type: 'string' };
  for (const k of opts.extraBooleans ?? []) options[k] = { type: 'boolean' };
  for (const k of opts.extraStrings ?? []) options[k] = { type: 'string' };
  let parsed;
  try {
    parsed = parseArgs({ args: argv, options, strict: true, allowPositionals: false, tokens: true });
  } catch (e) {
    const allowed = Object.keys(options).map((k) => `--${k}`).join(', ');
    throw new ConfigError(`${(e as Error).message.split('\n')[0]} (allowed flags: ${allowed})`);
  }
  // Keep command-line order: a later flag wins over an earlier one for the same key.
  const overrides: Record<string, unknown>[] = [];
  for (const tok of parsed.tokens ?? []) {
    if (tok.kind !== 'option' || tok.value === undefined) continue;
    if (tok.name === 'set') overrides.push(parseSetFlag(tok.value));
    else if (SHORTCUTS[tok.name]) overrides.push(parseSetFlag(`${SHORTCUTS[tok.name]}=${tok.value}`));
  }
  const values = parsed.values as Record<string, string | boolean | string[] | undefined>;
  const flags: Record<string, string | boolean | undefined> = {};
  for (const k of [...(opts.extraBooleans ?? []), ...(opts.extraStrings ?? [])]) flags[k] = values[k] as string | boolean | undefined;
  return {
    configInput: { configFile: values.config as string | undefined, overrides },
    flags,
    help: values.help === true,
  };
}
