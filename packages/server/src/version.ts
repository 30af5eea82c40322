// The version of the server package's programs, kept here rather than read from package.json at run
// time so a bundled executable reports it too.
export const SERVER_VERSION = '0.1.0';
