export * from './versions.js';
export * from './errors.js';
export * from './duration.js';
