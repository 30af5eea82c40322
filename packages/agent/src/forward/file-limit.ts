// Every connection holds two descriptors; a limit below that turns into EMFILE at accept time,
// which looks like a hung VIP. systemd's default soft limit is 1024 (LimitNOFILE=).

/** A warning when the soft open-file limit in /proc/self/limits is too low for maxConnections. */
export function fileLimitWarning(limits: string, maxConnections: number): string | undefined {
  const soft = /^Max open files\s+(\d+)/m.exec(limits)?.[1];
  const needed = maxConnections * 2 + 100;
  if (soft === undefined || Number(soft) >= needed) return undefined;
  return `warning: open-file limit ${soft} < 2 * --max-connections + 100 = ${needed}; set LimitNOFILE= in the unit or lower --max-connections`;
}

/** Reads this process's limits and prints the warning, if any; an unreadable file is no warning. */
export async function warnAboutFileLimit(
  maxConnections: number,
  deps: { readonly readFile: (path: string) => Promise<string>; readonly stderr: (line: string) => void },
): Promise<void> {
  const warning = fileLimitWarning(await deps.readFile('/proc/self/limits').catch(() => ''), maxConnections);
  if (warning !== undefined) deps.stderr(warning);
}
