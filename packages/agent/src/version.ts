// The agent's version, kept in code rather than read from package.json at run time so the single
// executable build reports it too.
export const AGENT_VERSION = '0.1.0';
