// The dialogue: each real prompt driven with @inquirer/testing (masking, error text, asking
// again), and the whole flow (summary, decline and re-ask, cancel) with scripted prompts.
import { describe, expect, it } from 'vitest';
import { render } from '@inquirer/testing';
import input from '@inquirer/input';
import password from '@inquirer/password';
import { agentNamePrompt, portRangePrompt, runDialogue, summary, tagsPrompt, tokenPrompt, type Prompts } from '../../firstboot/src/dialogue.ts';
import { forgetSecrets } from '../../firstboot/src/secrets.ts';
import type { PortRules } from '../../firstboot/src/validate.ts';

const TOKEN = 'dialogue-token-abcdef0123456789';
/** Inquirer validates asynchronously: let it settle before reading the screen. */
const tick = () => new Promise((r) => setTimeout(r, 100));
const rules: PortRules = { maxWidth: 1000, sshPort: 22, boundUdpPorts: () => new Set([51830]) };

describe('prompts (rendered with @inquirer/testing)', () => {
  it('masks the token, never showing it, and asks again after a bad one', async () => {
    const { answer, events, getScreen } = await render(password, tokenPrompt);
    events.type('short');
    events.keypress('enter');
    await tick();
    expect(getScreen()).toMatch(/too short \(5 characters/);
    expect(getScreen()).not.toContain('short\n');
    events.keypress({ name: 'backspace' });
    for (let i = 0; i < 5; i++) events.keypress('backspace');
    events.type(TOKEN);
    expect(getScreen()).not.toContain(TOKEN);
    expect(getScreen()).toContain('*'.repeat(8));
    events.keypress('enter');
    await expect(answer).resolves.toBe(TOKEN);
    expect(getScreen()).not.toContain(TOKEN);
  });

  it('shows the default port range and refuses a range with a bound port, then accepts another', async () => {
    const { answer, events, getScreen } = await render(input, portRangePrompt(rules, '51820-51919'));
    expect(getScreen()).toContain('51820-51919');
    events.keypress('enter');
    await tick();
    expect(getScreen()).toMatch(/UDP port 51830 in the range is already in use/);
    events.keypress('tab'); // Tab fills in the default so it can be edited; clear and type anew
    for (let i = 0; i < 20; i++) events.keypress('backspace');
    events.type('1000-2000');
    events.keypress('enter');
    await tick();
    // The screen wraps long messages; compare with line breaks folded.
    expect(getScreen().replace(/\s+/g, ' ')).toMatch(/start at 1024 or above .* got 1000/);
    for (let i = 0; i < 20; i++) events.keypress('backspace');
    events.type('40000-40099');
    events.keypress('enter');
    await expect(answer).resolves.toBe('40000-40099');
  });

  it('defaults the agent name to the one given, keeps short tags (the agent does) and refuses unsafe ones', async () => {
    const name = await render(input, agentNamePrompt('ip-10-0-0-5'));
    expect(name.getScreen()).toContain('ip-10-0-0-5');
    name.events.keypress('enter');
    await expect(name.answer).resolves.toBe('ip-10-0-0-5');
    const tags = await render(input, tagsPrompt);
    tags.events.type('edge,eu,a b');
    tags.events.keypress('enter');
    await tick();
    expect(tags.getScreen()).toMatch(/"a b" may contain only/);
    for (let i = 0; i < 4; i++) tags.events.keypress('backspace');
    tags.events.keypress('enter');
    await expect(tags.answer).resolves.toBe('edge,eu');
  });
});

/** Scripted prompts: each answer is checked with the prompt's own validate, like Inquirer does. */
function scripted(answers: (string | boolean | Error)[]): { prompts: Prompts; asked: string[] } {
  const asked: string[] = [];
  const next = async (cfg: { message: string; validate?: (v: string) => true | string; default?: string }) => {
    for (;;) {
      const a = answers.shift();
      if (a === undefined) throw Object.assign(new Error('input ended'), { name: 'ExitPromptError' });
      if (a instanceof Error) throw a;
      asked.push(cfg.message);
      const value = typeof a === 'string' && a === '' && cfg.default !== undefined ? cfg.default : a;
      if (typeof value === 'boolean') return value;
      const ok = cfg.validate ? cfg.validate(value) : true;
      if (ok === true) return value;
      asked.push(`! ${ok}`);
    }
  };
  return {
    prompts: { password: next as unknown as Prompts['password'], input: next as unknown as Prompts['input'], confirm: next as unknown as Prompts['confirm'] },
    asked,
  };
}

describe('the dialogue flow', () => {
  it('collects answers, shows a summary with only the last 4 token characters, and applies on yes', async () => {
    forgetSecrets();
    const said: string[] = [];
    const { prompts, asked } = scripted([TOKEN, '', 'relay-1', 'edge, core', true]);
    const a = await runDialogue({ agentName: 'host-1' }, { ...rules, boundUdpPorts: () => new Set() }, {}, (t) => said.push(t), prompts);
    expect(a).toEqual({ token: TOKEN, portRange: '51820-51919', agentName: 'relay-1', tags: ['edge', 'core'] });
    expect(said.join('')).toContain('…6789');
    expect(said.join('')).not.toContain(TOKEN);
    expect(asked).toHaveLength(5);
  });

  it('asks again on each bad answer, and starts over when the summary is declined', async () => {
    const { prompts, asked } = scripted(['bad token', TOKEN, '80-90', '40000-40010', '', '', false, TOKEN, '', '', '', true]);
    const a = await runDialogue({ agentName: 'host-1' }, rules, {}, () => undefined, prompts);
    expect(asked.filter((l) => l.startsWith('!'))).toEqual([
      '! The agent token must not contain spaces, tabs or line breaks.',
      '! The range must start at 1024 or above (ports below 1024 are reserved); got 80.',
    ]);
    // The declined answers become the defaults of the second round.
    expect(a.portRange).toBe('40000-40010');
    expect(a.agentName).toBe('host-1');
  });

  it('lets Ctrl-C or the end of input out without applying anything', async () => {
    const ctrlC = Object.assign(new Error('User force closed the prompt'), { name: 'ExitPromptError' });
    await expect(runDialogue({ agentName: 'h' }, rules, {}, () => undefined, scripted([TOKEN, ctrlC]).prompts)).rejects.toMatchObject({ name: 'ExitPromptError' });
    await expect(runDialogue({ agentName: 'h' }, rules, {}, () => undefined, scripted([TOKEN]).prompts)).rejects.toMatchObject({ name: 'ExitPromptError' });
  });

  it('summarises without the token', () => {
    expect(summary({ token: TOKEN, portRange: '1-2', agentName: 'n', tags: [] })).not.toContain(TOKEN.slice(0, -4));
  });
});
