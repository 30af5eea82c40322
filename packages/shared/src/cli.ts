import { isK8sOnK8sError, ValidationError } from './errors.js';

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
