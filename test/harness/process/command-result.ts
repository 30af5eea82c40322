/** The output of a command that ran to completion (a non-zero exit is a result, not an error). */
export interface CommandResult {
  readonly stdout: string;
  readonly stderr: string;
  readonly exitCode: number;
}
