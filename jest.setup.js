/** Keeps test output for failures: tfjs prints a hint to install tfjs-node the first time the CPU backend (the
 *  tests' oracle) stores a tensor. tfjs-node cannot install on our target machines, so the hint is noise here.
 *  Only that exact hint is dropped; every other warning still prints. */
const TFJS_NODE_HINT = 'looks like you are running TensorFlow.js in Node.js';
const warn = console.warn.bind(console);
console.warn = (...args) => {
  if (typeof args[0] === 'string' && args[0].includes(TFJS_NODE_HINT)) return;
  warn(...args);
};
