import { readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { execa } from 'execa';
import { deleteTestNamespaceSync } from '../net/network-namespace.js';
import { findTestCgroups, removeCgroupTree } from '../worker/worker-cgroup.js';
import { isStaleTestResource, TEST_RESOURCE_PREFIX } from './test-resource-name.js';

/** What cleanupStaleTestResources removed, by name. */
export interface StaleTestResources {
  readonly networkNamespaces: readonly string[];
  readonly cgroups: readonly string[];
  readonly tempDirs: readonly string[];
}

/**
 * Removes what crashed test runs left behind: test network namespaces (killing the processes in them,
 * which ends any worker host's systemd and with it its mount and PID namespaces), worker cgroups and
 * worker temp dirs. Only names with the test prefix whose creating process is gone are touched, so
 * a test run going on at the same time keeps its namespaces.
 */
export async function cleanupStaleTestResources(): Promise<StaleTestResources> {
  const listed = await execa('ip', ['netns', 'list'], { reject: false });
  const networkNamespaces = listed.stdout
    .split('\n')
    .map((line) => line.split(' ')[0] ?? '')
    .filter(isStaleTestResource);
  for (const name of networkNamespaces) deleteTestNamespaceSync(name);

  const cgroups = findTestCgroups().filter((dir) => isStaleTestResource(basename(dir)));
  // The processes just killed leave their cgroups a moment later.
  for (let attempt = 0; attempt < 50 && !cgroups.map(removeCgroupTree).every(Boolean); attempt++) {
    await sleep(100);
  }

  const tempDirs = readdirSync(tmpdir())
    .filter((name) => name.startsWith(TEST_RESOURCE_PREFIX) && isStaleTestResource(name))
    .map((name) => join(tmpdir(), name));
  for (const dir of tempDirs) rmSync(dir, { recursive: true, force: true });
  return { networkNamespaces, cgroups, tempDirs };
}
