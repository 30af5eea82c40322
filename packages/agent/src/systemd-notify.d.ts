// Types for the `systemd-notify` npm package (CommonJS, no bundled types). It spawns the
// systemd-notify(1) binary with --pid; because the sender is that child, not the main process,
// a Type=notify unit needs NotifyAccess=all.
declare module 'systemd-notify' {
  interface NotifyOptions {
    ready?: boolean;
    status?: string;
    pid?: number;
    booted?: boolean;
  }
  function notify(options?: NotifyOptions): Promise<unknown>;
  export default notify;
}
