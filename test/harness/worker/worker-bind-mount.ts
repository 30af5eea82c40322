/** A path of the machine made visible inside the worker, e.g. the node binary or the repository. */
export interface WorkerBindMount {
  readonly source: string;
  /** Absolute path inside the worker. */
  readonly target: string;
  readonly readOnly?: boolean;
}
