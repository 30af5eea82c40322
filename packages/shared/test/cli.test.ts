import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ValidationError } from '../src/errors.js';
import { parseFlags, runCli, type CliProgram } from '../src/cli.js';

const OPTIONS = { server: { type: 'string' }, wait: { type: 'boolean' } } as const;

describe('parseFlags', () => {
  it('parses strictly into typed values', () => {
    const { values, positionals } = parseFlags(['--server', 'https://x', '--wait', 'name'], OPTIONS, true);
    assert.equal(values.server, 'https://x');
    assert.equal(values.wait, true);
    assert.deepEqual(positionals, ['name']);
  });

  it('says what is wrong in terms of our flags', () => {
    assert.throws(
      () => parseFlags(['--bogus'], OPTIONS),
      (e: unknown) => e instanceof ValidationError && e.message === 'Unknown flag --bogus',
    );
    assert.throws(() => parseFlags(['--server'], OPTIONS), /Expected --server to have a value/);
    assert.throws(
      () => parseFlags(['stray'], OPTIONS),
      /Unexpected argument stray: every value follows a flag/,
    );
  });

  it('never echoes a token typed where a flag was expected', () => {
    const token = 'abcdef.0123456789abcdef0123456789abcdef';
    assert.throws(
      () => parseFlags([token], OPTIONS),
      (e: unknown) => e instanceof ValidationError && !e.message.includes('0123456789abcdef0123456789abcdef'),
    );
  });
});

describe('runCli', () => {
  function program(lines: string[]): CliProgram {
    return {
      name: 'demo',
      description: 'A demo.',
      defaultSubcommand: 'go',
      out: (t) => lines.push(`out: ${t}`),
      err: (t) => lines.push(`err: ${t}`),
      subcommands: {
        go: {
          summary: 'go somewhere',
          run: (argv) => {
            const { values } = parseFlags(argv, OPTIONS);
            return Promise.resolve(values.wait === true ? 0 : 7);
          },
        },
      },
    };
  }

  it('dispatches, defaults to the default subcommand on a leading flag, and maps errors to exit codes', async () => {
    const lines: string[] = [];
    assert.equal(await runCli(program(lines), ['go', '--wait']), 0);
    assert.equal(await runCli(program(lines), ['--wait']), 0);
    assert.equal(await runCli(program(lines), ['go']), 7);
    assert.equal(await runCli(program(lines), ['go', '--nope']), 2);
    assert.ok(lines.includes('err: error: INVALID_ARGUMENT: Unknown flag --nope'));
    assert.ok(lines.includes('err: hint: run demo go --help'));
    assert.equal(await runCli(program(lines), ['fly']), 2);
    assert.equal(await runCli(program(lines), []), 2);
    assert.equal(await runCli(program(lines), ['--help']), 0);
    assert.ok(lines.some((l) => l.includes('  go  go somewhere')));
  });
});
