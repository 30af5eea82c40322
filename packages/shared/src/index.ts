export * from './versions.js';
export * from './errors.js';
export * from './duration.js';
export * from './pki.js';
export * from './kubeconfig.js';
export * from './token.js';
export * from './bootstrap-token.js';
