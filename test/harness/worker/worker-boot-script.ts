/**
 * The shell script that turns a process in fresh mount/PID/UTS/IPC/cgroup namespaces into a worker
 * machine: it assembles the root and execs systemd as PID 1. Arguments:
 * `LOWER UPPER WORK MERGED CONSOLE [SOURCE TARGET ro|rw]...`.
 *
 * Every mount is made inside the private mount namespace, so none is ever visible on the machine
 * and all of them vanish with the namespace when PID 1 dies, even if the test process was killed.
 */
export const WORKER_BOOT_SCRIPT = String.raw`
set -eu
lower=$1 upper=$2 work=$3 root=$4 console=$5
shift 5
mount --make-rprivate /
# The cached root is only the lower layer: everything the worker writes lands in its own upper dir.
mount -t overlay overlay -o "lowerdir=$lower,upperdir=$upper,workdir=$work" "$root"
mount -t proc proc "$root/proc"
# ip netns exec mounted a sysfs for this network namespace on /sys; systemd mounts its cgroup
# hierarchies below it itself, and sees only its own subtree through the cgroup namespace.
mount --rbind /sys "$root/sys"
# systemd mounts the v1 controllers with its built-in pairing (cpu,cpuacct and net_cls,net_prio);
# where the machine has them on separate hierarchies that mount fails and cpu and cpuacct stay
# unmounted, which a kubelet refuses ("Cgroup subsystem not mounted: [cpu cpuacct]"). Mount each
# hierarchy as the machine has it (one line per hierarchy in /proc/self/cgroup); systemd leaves
# mount points that already exist alone. The cgroup2 line (empty controller list) is skipped.
mount -t tmpfs -o mode=755,nosuid,nodev,noexec tmpfs "$root/sys/fs/cgroup"
while IFS=: read -r _ controllers _; do
  [ -n "$controllers" ] || continue
  dir=$root/sys/fs/cgroup/$(printf %s "$controllers" | sed 's/^name=//')
  mkdir -p "$dir"
  mount -t cgroup -o "nosuid,nodev,noexec,$controllers" cgroup "$dir"
done < /proc/self/cgroup
mount -t tmpfs -o mode=755,nosuid,nodev tmpfs "$root/run"
mount -t tmpfs -o mode=1777,nosuid,nodev tmpfs "$root/tmp"
mount --rbind /dev "$root/dev"
# systemd writes boot status to /dev/console; keep it off the machine's console and in our log.
mount --bind "$console" "$root/dev/console"
while [ $# -ge 3 ]; do
  source=$1 target=$root$2 mode=$3
  shift 3
  if [ -d "$source" ]; then mkdir -p "$target"; else mkdir -p "$(dirname "$target")"; touch "$target"; fi
  mount --rbind "$source" "$target"
  if [ "$mode" = ro ]; then mount -o remount,bind,ro "$target"; fi
done
cd "$root"
mkdir -p .old-root
pivot_root . .old-root
umount -l /.old-root
rmdir /.old-root
# container= tells systemd it is not on bare metal (no hardware units, no reboot of the machine);
# systemd 252 on a cgroup v1 machine exits 255 unless told to use the legacy hierarchy, and in a
# container it reads its "kernel command line" from SYSTEMD_PROC_CMDLINE (see systemd(1)).
export container=other
export SYSTEMD_PROC_CMDLINE="systemd.unified_cgroup_hierarchy=0 systemd.legacy_systemd_cgroup_controller=1"
exec /lib/systemd/systemd
`;
