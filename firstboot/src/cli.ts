// syntropy-firstboot: configures the Syntropy agent on first boot.
//   configure      [--non-interactive] [--token-file F | --token-stdin | --token-ssm-parameter NAME]
//                  [--port-range A-B] [--agent-name N] [--tags a,b]
//   reconfigure    the same, on an already configured instance
//   status         [--json]
//   update-agent   --image REF [--archive FILE]
//   recover        (systemd, at boot, before the agent starts) undo an interrupted apply
//   boot           (systemd, at boot) undo an interrupted apply, then apply user data if any
//   console        (systemd, on tty1/ttyS0) the dialogue while unconfigured
// Common: --root DIR (work on a directory; system steps are printed as a plan),
//         --imds-endpoint URL, --ssm-endpoint URL, --region R.
// Configuration sources, first found wins: user data (IMDSv2) -> SSM document -> dialogue.
import { parseArgs } from 'node:util';
import type { PromptContext } from './dialogue.ts';
import { RESUME, stats, UsageError, type Env } from './env.ts';
import { Console } from './secrets.ts';
import { ImdsClient, SourceError } from './sources.ts';
import { paths } from './state.ts';
import { LiveSystem, PlanSystem } from './system.ts';
import type { ConfigureFlags } from './commands/configure.ts';

export type { Env };
export { updateAgent } from './commands/update-agent.ts';

// ---------------------------------------------------------------- entry

export interface MainIO {
  stdout: { write(s: string): void };
  stderr: { write(s: string): void };
  stdin: NodeJS.ReadableStream;
  prompt?: PromptContext;
}

function readAll(stream: NodeJS.ReadableStream): Promise<string> {
  return new Promise((resolve, reject) => {
    let data = '';
    stream.setEncoding('utf8');
    stream.on('data', (c: string) => (data += c));
    stream.on('end', () => resolve(data));
    stream.on('error', reject);
  });
}

export async function main(argv: string[], io: MainIO): Promise<number> {
  const con = new Console(io.stdout, io.stderr);
  const code = await runMain(argv, io, con);
  if (process.env.SYNTROPY_FIRSTBOOT_STATS === '1') {
    const rss = (process.resourceUsage().maxRSS / 1024).toFixed(1);
    const applied =
      (stats.confirmedToRunningMs !== undefined ? ` confirmed_to_running_ms=${stats.confirmedToRunningMs}` : '') +
      (stats.applySteps ? ` apply_steps_ms=${stats.applySteps.map(([s, ms]) => `${s}:${ms}`).join(',')}` : '');
    con.warn(`syntropy-firstboot stats: peak_rss_mib=${rss}${applied} exit=${code}`);
  }
  return code;
}

async function runMain(argv: string[], io: MainIO, con: Console): Promise<number> {
  let command = '';
  try {
    const { values, positionals, tokens } = parseArgs({
      args: argv,
      allowPositionals: true,
      strict: true,
      tokens: true,
      options: {
        'non-interactive': { type: 'boolean' },
        'token-file': { type: 'string' },
        'token-stdin': { type: 'boolean' },
        'token-ssm-parameter': { type: 'string' },
        'port-range': { type: 'string' },
        'agent-name': { type: 'string' },
        tags: { type: 'string' },
        root: { type: 'string' },
        'imds-endpoint': { type: 'string' },
        'ssm-endpoint': { type: 'string' },
        region: { type: 'string' },
        json: { type: 'boolean' },
        image: { type: 'string' },
        archive: { type: 'string' },
        digest: { type: 'string' },
        source: { type: 'string' },
        help: { type: 'boolean' },
      },
    });
    // A flag given twice is a mistake to name, not a silent "last one wins".
    const seen = new Set<string>();
    for (const tok of tokens ?? []) {
      if (tok.kind !== 'option') continue;
      if (seen.has(tok.name)) throw new UsageError(`--${tok.name} is given more than once`);
      seen.add(tok.name);
    }
    command = positionals[0] ?? '';
    if (values.help || !command) {
      con.say('usage: syntropy-firstboot configure|reconfigure|status|update-agent|recover|boot|console [options] (see the README)');
      return values.help ? 0 : 2;
    }
    if (positionals.length > 1) throw new UsageError(`unexpected argument ${JSON.stringify(positionals[1])}`);
    if (values.root !== undefined && !values.root.startsWith('/')) {
      throw new UsageError(`--root must be an absolute directory, not ${JSON.stringify(values.root)} (the token file would land in the working directory)`);
    }
    const root = values.root ?? '/';
    const live = values.root === undefined;
    const p = paths(root);
    // With --root nothing talks to the real metadata service unless an endpoint is given.
    const imdsEndpoint = values['imds-endpoint'] ?? (live ? 'http://169.254.169.254' : undefined);
    const env: Env = {
      con,
      p,
      sys: live ? new LiveSystem() : new PlanSystem((l) => con.say(l)),
      // 3 tries of at most 5 s each, remembered: a silent service costs ~15 s once, not per call.
      imds: imdsEndpoint ? new ImdsClient(imdsEndpoint, 5_000, 3, (m) => con.warn(m)) : null,
      ssmEndpoint: values['ssm-endpoint'],
      region: values.region,
      prompt: io.prompt ?? { input: io.stdin, output: io.stdout as NodeJS.WritableStream },
      readStdin: () => readAll(io.stdin),
    };
    const flags: ConfigureFlags = {
      nonInteractive: values['non-interactive'] === true,
      reconfigure: command === 'reconfigure',
      tokenFile: values['token-file'],
      tokenStdin: values['token-stdin'] === true,
      tokenSsmParameter: values['token-ssm-parameter'],
      portRange: values['port-range'],
      agentName: values['agent-name'],
      tags: values.tags,
    };
    // Each command's module loads when it runs: Node parses every byte it loads, and at boot
    // three of these processes (boot, a console per terminal) start on a small instance's CPU.
    switch (command) {
      case 'configure':
      case 'reconfigure':
        return await (await import('./commands/configure.ts')).configure(env, flags);
      case 'status':
        return await (await import('./commands/status.ts')).status(env, values.json === true);
      case 'update-agent':
        return await (await import('./commands/update-agent.ts')).updateAgent(env, values.image, values.archive);
      case 'recover':
        return await (await import('./commands/boot.ts')).recover(env);
      case 'boot':
        return await (await import('./commands/boot.ts')).boot(env);
      case 'console':
        return await (await import('./commands/console.ts')).consoleDialogue(env);
      case 'record-image':
        return await (await import('./commands/record-image.ts')).recordImage(env, values.image, values.digest, values.source);
      default:
        throw new UsageError(`unknown command ${JSON.stringify(command)} (configure, reconfigure, status, update-agent, recover, boot, console)`);
    }
  } catch (e) {
    const err = e as Error;
    if (err.name === 'ExitPromptError' || err.name === 'AbortPromptError' || err.name === 'CancelPromptError') {
      con.warn(`\nSetup cancelled. ${RESUME}`);
      return 130;
    }
    if (err instanceof UsageError || (err as { code?: string }).code?.startsWith('ERR_PARSE_ARGS')) {
      con.warn(`syntropy-firstboot: ${err.message}`);
      return 2;
    }
    if (err instanceof SourceError) {
      con.warn(`syntropy-firstboot: ${err.message}`);
      return 2;
    }
    con.warn(`syntropy-firstboot ${command}: ${err.message}`);
    return 1;
  }
}

