export * from './child-process-group.js';
export * from './control-plane.js';
export * from './free-port.js';
export * from './https-get.js';
export * from './kube-binaries.js';
