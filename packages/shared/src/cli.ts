import { parseArgs, type ParseArgsConfig } from 'node:util';
import { isK8sOnK8sError, ValidationError } from './errors.js';
import { redactSecrets } from './redact.js';

/** One subcommand of a CLI: a line of help and a function from argv to an exit code. */
export interface Subcommand {
  readonly summary: string;
  readonly run: (argv: readonly string[]) => Promise<number>;
  /** Exit code for an expected error; default 2 for bad input, 1 otherwise. */
  readonly exitCode?: (error: unknown) => number;
}

/** A program made of subcommands, with the text `--help` prints above the list. */
export interface CliProgram {
  readonly name: string;
  readonly description: string;
  readonly subcommands: Readonly<Record<string, Subcommand>>;
  /** Runs this subcommand when argv starts with a flag (`k8s-join --token …` means join). */
  readonly defaultSubcommand?: string;
  readonly out: (text: string) => void;
  readonly err: (text: string) => void;
}

/** The program's usage text: description and one line per subcommand. */
export function renderUsage(program: CliProgram): string {
  const names = Object.keys(program.subcommands);
  const width = Math.max(...names.map((n) => n.length));
  return [
    `Usage: ${program.name} <command> [flags]`,
    '',
    program.description,
    '',
    'Commands:',
    ...Object.entries(program.subcommands).map(
      ([name, { summary }]) => `  ${name.padEnd(width)}  ${summary}`,
    ),
    '',
    `Run ${program.name} <command> --help for a command's flags.`,
  ].join('\n');
}

/**
 * Dispatches argv to a subcommand and turns expected failures into `error: CODE: message` and a
 * hint on stderr with a non-zero exit code; unexpected ones propagate (a bug shows its stack).
 */
export async function runCli(program: CliProgram, argv: readonly string[]): Promise<number> {
  const [first, ...rest] = argv;
  if (first === undefined || first === '--help' || first === '-h' || first === 'help') {
    program.out(renderUsage(program));
    return first === undefined ? 2 : 0;
  }
  const useDefault = first.startsWith('--') && program.defaultSubcommand !== undefined;
  const name = useDefault ? (program.defaultSubcommand ?? '') : first;
  const subcommand = program.subcommands[name];
  if (subcommand === undefined) {
    program.err(`error: unknown command ${JSON.stringify(first)}\n\n${renderUsage(program)}`);
    return 2;
  }
  try {
    return await subcommand.run(useDefault ? argv : rest);
  } catch (error) {
    if (!isK8sOnK8sError(error)) throw error;
    program.err(`error: ${error.code}: ${error.message}`);
    if (error.hint !== undefined) program.err(`hint: ${error.hint}`);
    else if (error instanceof ValidationError) program.err(`hint: run ${program.name} ${name} --help`);
    return subcommand.exitCode?.(error) ?? (error instanceof ValidationError ? 2 : 1);
  }
}

/** The flag table of a command, as node:util parseArgs takes it. */
export type FlagOptions = NonNullable<ParseArgsConfig['options']>;

/**
 * Parses a command's argv strictly (unknown flags and missing values are errors) and turns
 * parseArgs' own errors into a ValidationError, with any token the person mistyped redacted:
 * parseArgs quotes the offending argument verbatim.
 */
export function parseFlags<O extends FlagOptions>(
  argv: readonly string[],
  options: O,
  allowPositionals = false,
): ReturnType<typeof parseArgs<{ args: string[]; options: O; strict: true; allowPositionals: boolean }>> {
  try {
    return parseArgs({ args: [...argv], options, strict: true, allowPositionals });
  } catch (cause) {
    throw new ValidationError('INVALID_ARGUMENT', redactSecrets(describeParseArgsError(cause)));
  }
}

// node:util parseArgs explains itself in terms of its own API; say it in terms of our flags.
function describeParseArgsError(error: unknown): string {
  const message = error instanceof Error ? error.message : String(error);
  const code = (error as { code?: unknown }).code;
  const flag = /'(-[^' ]+)/.exec(message)?.[1];
  if (code === 'ERR_PARSE_ARGS_UNKNOWN_OPTION' && flag !== undefined) return `Unknown flag ${flag}`;
  if (code === 'ERR_PARSE_ARGS_INVALID_OPTION_VALUE' && flag !== undefined) {
    return `Expected ${flag} to have a value`;
  }
  if (code === 'ERR_PARSE_ARGS_UNEXPECTED_POSITIONAL') {
    return `Unexpected argument ${/'([^']*)'/.exec(message)?.[1] ?? ''}: every value follows a flag`;
  }
  return message;
}
