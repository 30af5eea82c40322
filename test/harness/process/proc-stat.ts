// Fields of /proc/PID/stat, read the one safe way: the command name (field 2) may hold spaces and
// parentheses, the fields after its last ')' do not.
import { readFileSync } from 'node:fs';

/** The fields of /proc/`pid`/stat from field 3 (state) on: index 0 is state, 1 ppid, 11 utime, 12 stime. */
export function procStatFields(pid: number | string): string[] {
  const stat = readFileSync(`/proc/${String(pid)}/stat`, 'utf8');
  return stat.slice(stat.lastIndexOf(')') + 2).split(' ');
}
