// The first-boot dialogue: token (masked, never echoed), UDP port range (default shown), agent
// name (default: hostname), optional tags, then a summary showing only the token's last 4
// characters. Each prompt validates with the shared rules and asks again on a bad answer.
import confirm from '@inquirer/confirm';
import input from '@inquirer/input';
import password from '@inquirer/password';
import { registerSecret, tokenHint } from './secrets.ts';
import { checkAgentName, checkToken, DEFAULT_PORT_RANGE, formatRange, parsePortRange, parseTags, type PortRules } from './validate.ts';

export interface DialogueAnswers {
  token: string;
  portRange: string;
  agentName: string;
  tags: string[];
}

export interface PromptContext {
  input?: NodeJS.ReadableStream;
  output?: NodeJS.WritableStream;
  signal?: AbortSignal;
  clearPromptOnDone?: boolean;
}

/** Prompt configurations, so each prompt can be exercised on its own (@inquirer/testing). */
export const tokenPrompt = { message: 'Syntropy agent token (input is hidden):', mask: '*', validate: (v: string) => checkToken(v) };

export const portRangePrompt = (rules: PortRules, def: string) => ({
  message: 'UDP port range for WireGuard tunnels (START-END):',
  default: def,
  validate: (v: string) => {
    const r = parsePortRange(v, rules);
    return typeof r === 'string' ? r : true;
  },
});

export const agentNamePrompt = (def: string) => ({ message: 'Agent name:', default: def, validate: (v: string) => checkAgentName(v.trim()) });

export const tagsPrompt = {
  message: 'Tags, comma-separated (optional; letters, digits and . _ : -):',
  default: '',
  validate: (v: string) => {
    const t = parseTags(v);
    return typeof t === 'string' ? t : true;
  },
};

/** The prompt functions the dialogue uses; Inquirer's by default. */
export interface Prompts {
  password: typeof password;
  input: typeof input;
  confirm: typeof confirm;
}

const INQUIRER: Prompts = { password, input, confirm };

export function summary(a: DialogueAnswers): string {
  return [
    `  token        ${tokenHint(a.token)}`,
    `  UDP ports    ${a.portRange}`,
    `  agent name   ${a.agentName}`,
    `  tags         ${a.tags.length > 0 ? a.tags.join(', ') : '(none)'}`,
  ].join('\n');
}

/** Runs the questions until the operator confirms; throws the prompt library's abort errors. */
export async function runDialogue(
  defaults: { portRange?: string; agentName: string },
  rules: PortRules,
  ctx: PromptContext,
  say: (text: string) => void,
  prompts: Prompts = INQUIRER,
): Promise<DialogueAnswers> {
  let portDefault = defaults.portRange ?? DEFAULT_PORT_RANGE;
  let nameDefault = defaults.agentName;
  for (;;) {
    const token = await prompts.password(tokenPrompt, ctx);
    registerSecret(token);
    const range = parsePortRange(await prompts.input(portRangePrompt(rules, portDefault), ctx), rules);
    if (typeof range === 'string') throw new Error(range); // unreachable: the prompt validated it
    const agentName = (await prompts.input(agentNamePrompt(nameDefault), ctx)).trim();
    const tags = parseTags(await prompts.input(tagsPrompt, ctx));
    if (typeof tags === 'string') throw new Error(tags);
    const answers: DialogueAnswers = { token, portRange: formatRange(range), agentName, tags };
    say(`\nAbout to configure the Syntropy agent:\n${summary(answers)}\n`);
    if (await prompts.confirm({ message: 'Apply this configuration?', default: true }, ctx)) return answers;
    say('Not applied. Answer the questions again (the token must be entered again).\n');
    portDefault = answers.portRange;
    nameDefault = answers.agentName;
  }
}
